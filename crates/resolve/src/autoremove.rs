//! apt-get's `DoAutomaticRemove` without `--autoremove` (apt-private/private-install.cc) and
//! the mark-and-sweep it runs (`pkgDepCache::MarkRequired` / `Sweep`, apt-pkg/depcache.cc,
//! apt 2.6).
//!
//! After the marking and the problem resolver, apt computes which packages nothing needs any
//! more ("garbage"). Installed garbage is only listed ("no longer required"), but a package
//! that would be *newly* installed and is garbage already — typically a dependency marked for
//! a package the marking later gave up — is not installed at all ("tooMuch"): apt marks it
//! for deletion, which for a package that is not installed means keep. If that leaves
//! something broken, each such package that an interesting version still depends on is
//! installed again. docs/apt-semantics.md §8 has the pseudo-code.
//!
//! What the oracle's apt reads, this reads: no `APT::NeverAutoRemove` patterns (apt's own
//! `01autoremove` lives in `/etc/apt/apt.conf.d`, which a private `APT_CONFIG` root does not
//! read), `APT::AutoRemove::RecommendsImportant` and `SuggestsImportant` at their default
//! (true).

use crate::depcache::DepCache;
use crate::model::{Mode, PkgId, VerId, Which};

impl DepCache<'_> {
    /// DoAutomaticRemove with `APT::Get::AutomaticRemove=false`: new installs that are garbage
    /// are dropped (and saved again where dropping them broke a reverse dependency).
    pub(crate) fn do_automatic_remove(&mut self) {
        let garbage = self.mark_and_sweep();
        let mut too_much: Vec<PkgId> = Vec::new();
        for (p, &g) in garbage.iter().enumerate() {
            if g && self.pkgs[p].mode == Mode::Install && self.pkgs[p].current.is_none() {
                too_much.push(p);
                self.mark_delete(p, false);
            }
        }
        if too_much.is_empty() {
            return;
        }
        // APT::PackageSet: ordered by package ID
        too_much.sort_by_key(|&p| self.pkgs[p].order);
        let mut broken = None;
        loop {
            let b = *broken.get_or_insert_with(|| self.any_policy_broken());
            if !b {
                return;
            }
            let Some(i) = (0..too_much.len()).find(|&i| self.has_interesting_rdep(too_much[i]))
            else {
                return;
            };
            let p = too_much.remove(i);
            self.mark_install(p, false, 0, false, None);
            // apt checks BrokenCount once, before the loop
        }
    }

    /// BrokenCount() != 0 || PolicyBrokenCount() != 0.
    fn any_policy_broken(&mut self) -> bool {
        (0..self.pkgs.len()).any(|p| self.pkgs[p].inst.is_some() && self.inst_broken(p, true))
    }

    /// The "Save … as another installed package depends on it" test: an important positive
    /// dependency on the package (or on a name its candidate provides) from an installed
    /// version that is kept, or from a candidate that is a new install or an upgrade. It does
    /// not ask whether that dependency is broken.
    fn has_interesting_rdep(&mut self, p: PkgId) -> bool {
        let mut names = vec![self.pkgs[p].name.clone()];
        if let Some(cv) = self.pkgs[p].cand {
            for pr in self.ver_provides(cv) {
                if !names.contains(&pr) {
                    names.push(pr);
                }
            }
        }
        let arch = self.pkgs[p].arch.clone();
        for rp in 0..self.pkgs.len() {
            let k = &self.pkgs[rp];
            let rv = match (k.mode, k.current, k.cand) {
                (Mode::Keep, Some(c), _) => c,
                (Mode::Install, _, Some(c)) if k.inst == Some(c) => c,
                _ => continue,
            };
            let parent_arch = k.arch.clone();
            for g in self.vers[rv].deps.iter() {
                if g.kind.negative() || !self.important(g.kind) {
                    continue;
                }
                let hit = g.alts.iter().any(|a| {
                    names.iter().any(|n| n == a.name)
                        && match a.arch {
                            None => parent_arch == arch || a.name != self.pkgs[p].name,
                            Some("any") => true,
                            Some(x) => x == arch,
                        }
                });
                if hit {
                    return true;
                }
            }
        }
        false
    }

    /// The names a version provides.
    fn ver_provides(&self, v: VerId) -> Vec<String> {
        let ver = &self.vers[v];
        let stanza;
        let para = match ver.pref {
            Some(r) => self.u.paragraph(r),
            None => {
                let k = &self.pkgs[ver.pkg];
                stanza = self
                    .base
                    .packages
                    .get(&(k.name.clone(), k.arch.clone()))
                    .map(|i| i.stanza.clone())
                    .unwrap_or_default();
                opaas_deb::Paragraph::new(&stanza)
            }
        };
        crate::model::parse_provides(&para)
            .into_iter()
            .map(|p| p.name)
            .collect()
    }

    /// pkgDepCache::MarkAndSweep: which packages (installed or to be installed) nothing needs.
    pub(crate) fn mark_and_sweep(&mut self) -> Vec<bool> {
        let n = self.pkgs.len();
        let mut st = Sweep {
            marked: vec![false; n],
            explored: vec![false; n],
        };
        let mut roots: Vec<PkgId> = (0..n).collect();
        roots.sort_by_key(|&p| self.pkgs[p].order);
        for p in roots {
            if st.marked.get(p).copied().unwrap_or(false) {
                continue;
            }
            let Some(v) = self.pkgs[p].inst else {
                continue; // IsPkgInBoringState
            };
            let k = &self.pkgs[p];
            let required_now = k.current.is_some_and(|c| self.vers[c].prio == 1);
            let root = !k.auto || k.essential || k.important || required_now || k.protect || k.held;
            if root && !self.mark_package(p, v, 0, &mut st) {
                break;
            }
        }
        // packages created while marking (providers looked up) are not installed: not garbage
        (0..self.pkgs.len())
            .map(|p| {
                let k = &self.pkgs[p];
                let required_now = k.current.is_some_and(|c| self.vers[c].prio == 1);
                !required_now && !st.marked.get(p).copied().unwrap_or(false) && k.inst.is_some()
            })
            .collect()
    }

    /// MarkPackage: marks `p` and follows the Pre-Depends, Depends, Recommends and Suggests of
    /// `v` to every version that is installed or to be installed and satisfies them — of the
    /// satisfying versions built from one source package, only those of its highest source
    /// version.
    fn mark_package(&mut self, p: PkgId, v: VerId, depth: u32, st: &mut Sweep) -> bool {
        st.grow(self.pkgs.len());
        if st.marked[p] {
            return true;
        }
        if self.pkgs[p].inst.is_none() {
            st.explored[p] = true;
            return true;
        }
        if depth > 3000 {
            return false;
        }
        st.marked[p] = true;
        let deps = self.vers[v].deps.clone();
        for g in deps.iter() {
            use crate::model::DepKind::*;
            if !matches!(g.kind, Depends | PreDepends | Recommends | Suggests) {
                continue;
            }
            for alt in &g.alts {
                let targets = self.direct_target_ids(alt, v);
                if targets.iter().all(|&t| st.explored_at(t)) && !targets.is_empty() {
                    continue;
                }
                // every interesting version of the target or of its providers
                let cands = self.alt_candidates_any(v, alt);
                let sat = self.alt_solutions(v, alt, Which::Inst, false);
                let unsatisfied = cands.iter().any(|c| !sat.contains(c));
                st.grow(self.pkgs.len());
                if sat.is_empty() && !unsatisfied {
                    for &t in &targets {
                        st.marked[t] = true;
                    }
                }
                // only the latest binary packages of a source package
                let mut keep: Vec<VerId> = Vec::new();
                for &s in &sat {
                    let (src, _) = &self.vers[s].source;
                    let best = sat
                        .iter()
                        .filter(|&&o| &self.vers[o].source.0 == src)
                        .map(|&o| self.vers[o].source.1.clone())
                        .max_by(|a, b| opaas_deb::version::compare(a, b))
                        .unwrap_or_default();
                    if self.vers[s].source.1 == best {
                        keep.push(s);
                    }
                }
                if !unsatisfied {
                    for &t in &targets {
                        st.explored[t] = true;
                    }
                }
                for s in keep {
                    let sp = self.vers[s].pkg;
                    if !self.mark_package(sp, s, depth + 1, st) {
                        return false;
                    }
                }
            }
        }
        true
    }

    /// The real packages an or-group member names (D.TargetPkg()).
    fn direct_target_ids(&mut self, alt: &crate::model::Alt, parent: VerId) -> Vec<PkgId> {
        let parent_arch = self.parent_arch(parent);
        self.direct_targets(alt, &parent_arch, false)
            .into_iter()
            .map(|(p, _)| p)
            .collect()
    }

    /// The interesting versions (installed or to be installed) the member could match if its
    /// version constraint were ignored: the target's own and its providers'.
    fn alt_candidates_any(&mut self, parent: VerId, alt: &crate::model::Alt) -> Vec<VerId> {
        let loose = crate::model::Alt {
            name: alt.name,
            arch: alt.arch,
            cons: None,
        };
        self.alt_solutions(parent, &loose, Which::Inst, false)
    }
}

/// The mark-and-sweep state: Marked and fullyExplored per package.
struct Sweep {
    marked: Vec<bool>,
    explored: Vec<bool>,
}

impl Sweep {
    /// Packages created during the sweep (provider lookups) get entries too.
    fn grow(&mut self, n: usize) {
        if self.marked.len() < n {
            self.marked.resize(n, false);
            self.explored.resize(n, false);
        }
    }
    fn explored_at(&self, p: PkgId) -> bool {
        self.explored.get(p).copied().unwrap_or(false)
    }
}
