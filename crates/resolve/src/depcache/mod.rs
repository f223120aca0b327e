//! The marking state: apt-pkg/depcache.cc (`pkgDepCache`).
//!
//! Every package carries a mode (keep, install, delete), the version it would have
//! (`InstallVer`), its candidate and the Protected flag; the dependency checks here are apt's
//! `DependencyState` / `IsInstallOk` on that state. The marking itself (`MarkInstall` and its
//! helpers, `MarkKeep`, `MarkDelete`) is in [`mark`], kept in depcache.cc's order so both can be
//! read side by side.

mod mark;

use crate::baseline::Baseline;
use crate::model::{DepGroup, DepKind, DepRef, Pkg, PkgId, ProviderInfo, Ver, VerId, Which};
use opaas_deb::Paragraph;
use opaas_repo::universe::Universe;
use rustc_hash::FxHashMap;
use std::collections::HashMap;

/// Resolver options (`APT::Install-Recommends`, `APT::Install-Suggests`).
#[derive(Debug, Clone)]
pub struct Options {
    pub recommends: bool,
    pub suggests: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            recommends: true,
            suggests: false,
        }
    }
}

/// Why a package was marked: ids into the cache, rendered by [`crate::explain`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    /// On the command line.
    Requested,
    /// Chosen to satisfy or-group `dep` (of `dep.ver`); `choice` is the version chosen.
    Dependency { dep: DepRef, choice: VerId },
    /// An installed binary of the same source as `sibling` (Upgrade-By-Source-Package).
    SameSource { sibling: VerId },
    /// Upgraded because installing `parent` would otherwise break or conflict with it;
    /// `dep` is the relation involved (of `parent`, or of the upgraded package itself).
    ConflictUpgrade { parent: VerId, dep: DepRef },
    /// An installed package upgraded (or pulled in) by apt-get upgrade / dist-upgrade.
    Upgrade,
}

/// The cache and its marking state (apt's pkgCache + pkgDepCache).
pub(crate) struct DepCache<'u> {
    pub u: &'u Universe,
    pub base: &'u Baseline,
    pub opts: Options,
    pub native: String,
    /// Shared: walked while packages are created.
    pub arches: std::rc::Rc<[String]>,
    pub pkgs: Vec<Pkg>,
    /// name → (arch, id): looked up by `&str` without allocating ([`DepCache::pkg_id`]).
    pub pkg_ix: FxHashMap<Box<str>, Vec<(Box<str>, PkgId)>>,
    pub vers: Vec<Ver<'u>>,
    pub prov_cache: HashMap<String, std::rc::Rc<[ProviderInfo]>>,
    pub status_provides: HashMap<String, Vec<(String, String)>>,
    pub next_order: u64,
    /// The packages requested, in command-line order (the roots of every explanation chain).
    pub requested: Vec<PkgId>,
}

impl<'u> DepCache<'u> {
    pub fn new(
        u: &'u Universe,
        base: &'u Baseline,
        opts: Options,
        arches: &[String],
    ) -> DepCache<'u> {
        let native = u.native_arch.clone();
        let mut arches: Vec<String> = arches.to_vec();
        if !arches.contains(&native) {
            arches.insert(0, native.clone());
        }
        let mut status_provides: HashMap<String, Vec<(String, String)>> = HashMap::new();
        for ((n, a), i) in &base.packages {
            for pr in crate::model::parse_provides(&Paragraph::new(&i.stanza)) {
                status_provides
                    .entry(pr.name)
                    .or_default()
                    .push((n.clone(), a.clone()));
            }
        }
        let mut s = DepCache {
            u,
            base,
            opts,
            native,
            arches: arches.into(),
            pkgs: Vec::new(),
            pkg_ix: FxHashMap::default(),
            vers: Vec::new(),
            prov_cache: HashMap::new(),
            status_provides,
            next_order: 0,
            requested: Vec::new(),
        };
        // installed packages exist in apt's cache from the start
        let keys: Vec<(String, String)> = base.packages.keys().cloned().collect();
        for (n, a) in keys {
            s.pkg(&n, &a);
        }
        s
    }

    /// The package (name, arch), if the cache has created it.
    pub fn pkg_id(&self, name: &str, arch: &str) -> Option<PkgId> {
        self.pkg_ix
            .get(name)?
            .iter()
            .find(|(a, _)| &**a == arch)
            .map(|&(_, id)| id)
    }

    /// The or-group a [`DepRef`] points to.
    pub fn group(&self, d: DepRef) -> &DepGroup<'u> {
        &self.vers[d.ver].deps[d.group]
    }

    /// pkgDepCache::IsImportantDep.
    pub fn important(&self, k: DepKind) -> bool {
        k.critical()
            || (k == DepKind::Recommends && self.opts.recommends)
            || (k == DepKind::Suggests && self.opts.suggests)
    }

    /// DependencyState: is the or-group satisfied by the `w` versions (for negative kinds:
    /// does no `w` version match it)?
    pub fn group_satisfied(&mut self, parent: VerId, g: &DepGroup, w: Which) -> bool {
        let neg = g.kind.negative();
        let any = g
            .alts
            .iter()
            .any(|a| !self.alt_solutions(parent, a, w, neg).is_empty());
        if neg {
            !any
        } else {
            any
        }
    }

    /// InstBroken (and InstPolicyBroken with `important_too`): a dependency of the version to
    /// be installed is not satisfied by what is to be installed.
    pub fn inst_broken(&mut self, p: PkgId, important_too: bool) -> bool {
        let Some(v) = self.pkgs[p].inst else {
            return false;
        };
        let deps = self.vers[v].deps.clone();
        for g in deps.iter() {
            let relevant = g.kind.critical() || (important_too && self.important(g.kind));
            if relevant && !self.group_satisfied(v, g, Which::Inst) {
                return true;
            }
        }
        false
    }

    /// IsInstallOk's DependenciesSatisfiableByCandidates: every critical positive or-group of
    /// the candidate has a member installed or installable; if not, an unprotected package
    /// loses its candidate.
    pub fn install_ok(&mut self, p: PkgId, auto_inst: bool) -> bool {
        let (cand, cur) = (self.pkgs[p].cand, self.pkgs[p].current);
        let Some(cv) = cand else { return true };
        if !auto_inst || cand == cur {
            return true;
        }
        let deps = self.vers[cv].deps.clone();
        for g in deps
            .iter()
            .filter(|g| g.kind.critical() && !g.kind.negative())
        {
            let ok = g.alts.iter().any(|a| {
                !self.alt_solutions(cv, a, Which::Inst, false).is_empty()
                    || !self.alt_solutions(cv, a, Which::Cand, false).is_empty()
            });
            if !ok {
                if !self.pkgs[p].protect {
                    let pk = &mut self.pkgs[p];
                    pk.cand = pk.current;
                }
                return false;
            }
        }
        true
    }
}
