//! The marking algorithm of apt's classic solver (apt-pkg/depcache.cc, apt 2.6–2.8), ported.
//!
//! `apt-get install A B` marks every requested package first (without dependencies, and
//! protects them), then, in command-line order, installs each one's dependency tree depth
//! first (`MarkInstall`). For every or-group of a version, in the order the fields are stored
//! (Pre-Depends, Depends, Conflicts, Breaks, Recommends), it
//! 1. skips groups already satisfied by what is installed or marked,
//! 2. handles Conflicts/Breaks first: a conflicting installed package is upgraded away when its
//!    candidate no longer conflicts, a conflicting marked package is unmarked,
//! 3. installs, for each remaining group, the first possible solution in apt's order
//!    (`getAllPossibleSolutions` + `CompareProviders`): installed packages (upgrades) before new
//!    ones, then protected, same name as the dependency, Essential, Important, native
//!    architecture, Priority, and the package created later in apt's cache.
//!
//! Installing a package also upgrades the installed binaries built from the same source
//! (`APT::Get::Upgrade-By-Source-Package`). A failed automatic install discards that package's
//! candidate for the rest of the run, as apt does. See docs/apt-semantics.md for the source
//! references; every rule here names the apt function it mirrors.
//!
//! What is not ported: apt's `pkgProblemResolver` (the scoring fixer that runs after marking).
//! On the requests that matter it has nothing to fix; when something is left broken this
//! solver reports the conflict instead of guessing what the fixer would have done.

use crate::baseline::Baseline;
use crate::request::Request;
use opaas_deb::relation::{parse_relations, Op};
use opaas_deb::Paragraph;
use opaas_repo::universe::{PkgRef, Universe};
use serde::Serialize;
use std::collections::{HashMap, HashSet};

pub type PkgId = usize;
pub type VerId = usize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DepKind {
    PreDepends,
    Depends,
    Conflicts,
    Breaks,
    Recommends,
    Suggests,
}

impl DepKind {
    pub fn field(self) -> &'static str {
        match self {
            DepKind::PreDepends => "Pre-Depends",
            DepKind::Depends => "Depends",
            DepKind::Conflicts => "Conflicts",
            DepKind::Breaks => "Breaks",
            DepKind::Recommends => "Recommends",
            DepKind::Suggests => "Suggests",
        }
    }
    fn critical(self) -> bool {
        matches!(
            self,
            DepKind::PreDepends | DepKind::Depends | DepKind::Conflicts | DepKind::Breaks
        )
    }
    fn negative(self) -> bool {
        matches!(self, DepKind::Conflicts | DepKind::Breaks)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MultiArch {
    No,
    Same,
    Foreign,
    Allowed,
}

#[derive(Debug, Clone)]
pub struct Alt {
    pub name: String,
    pub arch: Option<String>,
    pub cons: Option<(Op, String)>,
}

impl std::fmt::Display for Alt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)?;
        if let Some(a) = &self.arch {
            write!(f, ":{a}")?;
        }
        if let Some((op, v)) = &self.cons {
            write!(f, " ({op} {v})")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct DepGroup {
    pub kind: DepKind,
    pub alts: Vec<Alt>,
}

impl DepGroup {
    pub fn text(&self) -> String {
        self.alts
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(" | ")
    }
}

#[derive(Debug, Clone)]
struct Provide {
    name: String,
    version: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Ver {
    pub pkg: PkgId,
    pub version: String,
    /// The index paragraph, if the version is downloadable.
    pub pref: Option<PkgRef>,
    multi_arch: MultiArch,
    /// apt's numeric priority (required=1 … extra=5, 0 = no field).
    prio: u8,
    pub deps: Vec<DepGroup>,
    source: (String, String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Keep,
    Install,
    Delete,
}

/// Why a package is in the result.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Reason {
    Requested,
    Dependency {
        parent: String,
        field: &'static str,
        relation: String,
        choice: String,
    },
    SameSource {
        sibling: String,
    },
    ConflictUpgrade {
        parent: String,
        field: &'static str,
        relation: String,
    },
}

#[derive(Debug, Clone)]
struct Pkg {
    name: String,
    arch: String,
    current: Option<VerId>,
    cand: Option<VerId>,
    mode: Mode,
    inst: Option<VerId>,
    protect: bool,
    essential: bool,
    important: bool,
    order: u64,
    reason: Option<Reason>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    Now,
    Inst,
    Cand,
}

/// Resolver options.
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

/// One package of the result.
#[derive(Debug, Clone, Serialize)]
pub struct Chosen {
    pub name: String,
    pub arch: String,
    pub version: String,
    pub upgrade_from: Option<String>,
    #[serde(skip)]
    pub pref: Option<PkgRef>,
    pub reason: Reason,
}

#[derive(Debug, Clone, Serialize)]
pub struct Resolution {
    pub install: Vec<Chosen>,
    /// Installed packages apt would remove (a bundle cannot do that; reported, not hidden).
    pub remove: Vec<String>,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ResolveError {
    #[error("unknown package '{name}' for {arch}{hint}")]
    UnknownPackage {
        name: String,
        arch: String,
        hint: String,
    },
    #[error("package '{name}' is a virtual package provided by: {providers}. Ask for one of them explicitly")]
    VirtualPackage { name: String, providers: String },
    #[error("version '{version}' of '{name}' is not available; available: {available}")]
    UnknownVersion {
        name: String,
        version: String,
        available: String,
    },
    #[error("'{name}' has no version in suite '{suite}'; available: {available}")]
    UnknownSuite {
        name: String,
        suite: String,
        available: String,
    },
    #[error("the request cannot be satisfied:\n{0}")]
    Unsatisfiable(String),
}

/// A provider of a virtual name: (owner name, owner arch, owner version, provided version).
type ProviderInfo = (String, String, String, Option<String>);

/// The solver state (apt's pkgDepCache).
pub struct Solver<'u> {
    u: &'u Universe,
    base: &'u Baseline,
    opts: Options,
    native: String,
    arches: Vec<String>,
    pkgs: Vec<Pkg>,
    pkg_ix: HashMap<(String, String), PkgId>,
    vers: Vec<Ver>,
    prov_cache: HashMap<String, Vec<ProviderInfo>>,
    status_provides: HashMap<String, Vec<(String, String)>>,
    next_order: u64,
}

fn priority_num(p: Option<&str>) -> u8 {
    match p {
        None => 0,
        Some("required") => 1,
        Some("important") => 2,
        Some("standard") => 3,
        Some("optional") => 4,
        Some(_) => 5,
    }
}

fn multi_arch(p: &Paragraph) -> MultiArch {
    match p.get("Multi-Arch") {
        Some("same") => MultiArch::Same,
        Some("foreign") => MultiArch::Foreign,
        Some("allowed") => MultiArch::Allowed,
        _ => MultiArch::No,
    }
}

fn parse_groups(p: &Paragraph, native: &str) -> Vec<DepGroup> {
    let mut out = Vec::new();
    for kind in [
        DepKind::PreDepends,
        DepKind::Depends,
        DepKind::Conflicts,
        DepKind::Breaks,
        DepKind::Recommends,
        DepKind::Suggests,
    ] {
        let Some(v) = p.get(kind.field()) else {
            continue;
        };
        let Ok(groups) = parse_relations(v) else {
            continue;
        };
        for g in groups {
            let alts: Vec<Alt> = g
                .iter()
                .filter(|a| a.applies_to(native))
                .map(|a| Alt {
                    name: a.name.to_string(),
                    arch: a.arch.map(|x| {
                        if x == "native" {
                            native.to_string()
                        } else {
                            x.to_string()
                        }
                    }),
                    cons: a.constraint.map(|(o, v)| (o, v.to_string())),
                })
                .collect();
            if !alts.is_empty() {
                out.push(DepGroup { kind, alts });
            }
        }
    }
    out
}

fn parse_provides(p: &Paragraph) -> Vec<Provide> {
    let Ok(groups) = parse_relations(p.get("Provides").unwrap_or("")) else {
        return Vec::new();
    };
    groups
        .into_iter()
        .flatten()
        .map(|a| Provide {
            name: a.name.to_string(),
            version: a
                .constraint
                .filter(|(o, _)| *o == Op::Eq)
                .map(|(_, v)| v.to_string()),
        })
        .collect()
}

fn source_of(p: &Paragraph, version: &str) -> (String, String) {
    let name = p.get("Package").unwrap_or("");
    match p.get("Source") {
        None => (name.to_string(), version.to_string()),
        Some(s) => match s.split_once('(') {
            Some((n, v)) => (
                n.trim().to_string(),
                v.trim_end_matches(')').trim().to_string(),
            ),
            None => (s.trim().to_string(), version.to_string()),
        },
    }
}

impl<'u> Solver<'u> {
    pub fn new(
        u: &'u Universe,
        base: &'u Baseline,
        opts: Options,
        arches: &[String],
    ) -> Solver<'u> {
        let native = u.native_arch.clone();
        let mut arches: Vec<String> = arches.to_vec();
        if !arches.contains(&native) {
            arches.insert(0, native.clone());
        }
        let mut status_provides: HashMap<String, Vec<(String, String)>> = HashMap::new();
        for ((n, a), i) in &base.packages {
            for pr in parse_provides(&Paragraph::new(&i.stanza)) {
                status_provides
                    .entry(pr.name)
                    .or_default()
                    .push((n.clone(), a.clone()));
            }
        }
        let mut s = Solver {
            u,
            base,
            opts,
            native,
            arches,
            pkgs: Vec::new(),
            pkg_ix: HashMap::new(),
            vers: Vec::new(),
            prov_cache: HashMap::new(),
            status_provides,
            next_order: 0,
        };
        // installed packages exist in apt's cache from the start
        let keys: Vec<(String, String)> = base.packages.keys().cloned().collect();
        for (n, a) in keys {
            s.pkg(&n, &a);
        }
        s
    }

    fn make_ver(
        &mut self,
        pkg: PkgId,
        version: &str,
        pref: Option<PkgRef>,
        stanza: Option<&str>,
    ) -> VerId {
        let para = match (pref, stanza) {
            (Some(r), _) => self.u.paragraph(r),
            (None, Some(s)) => Paragraph::new(s),
            (None, None) => Paragraph::new(""),
        };
        let v = Ver {
            pkg,
            version: version.to_string(),
            pref,
            multi_arch: multi_arch(&para),
            prio: priority_num(para.get("Priority")),
            deps: parse_groups(&para, &self.native),
            source: source_of(&para, version),
        };
        if para.get("Essential") == Some("yes") {
            self.pkgs[pkg].essential = true;
        }
        if para.get("Important") == Some("yes") || para.get("Protected") == Some("yes") {
            self.pkgs[pkg].important = true;
        }
        self.vers.push(v);
        self.vers.len() - 1
    }

    /// The package (name, arch), created on first use with its installed and candidate versions.
    fn pkg(&mut self, name: &str, arch: &str) -> PkgId {
        if let Some(&id) = self.pkg_ix.get(&(name.to_string(), arch.to_string())) {
            return id;
        }
        let id = self.pkgs.len();
        // apt's package ID order: roughly the order in which the cache met the name
        let order = self
            .u
            .named(name)
            .iter()
            .map(|r| ((r.src as u64) << 32) | r.idx as u64)
            .min()
            .unwrap_or_else(|| {
                self.next_order += 1;
                (1u64 << 48) + self.next_order
            });
        self.pkgs.push(Pkg {
            name: name.to_string(),
            arch: arch.to_string(),
            current: None,
            cand: None,
            mode: Mode::Keep,
            inst: None,
            protect: false,
            essential: name == "apt",
            important: false,
            order,
            reason: None,
        });
        self.pkg_ix.insert((name.to_string(), arch.to_string()), id);
        let installed = self
            .base
            .packages
            .get(&(name.to_string(), arch.to_string()))
            .cloned();
        let versions = self.u.versions(name, arch);
        let mut current = None;
        if let Some(i) = &installed {
            // an installed version also published in an index takes its fields from the index
            let pref = versions
                .iter()
                .find(|c| c.version == i.version)
                .map(|c| c.main);
            current = Some(self.make_ver(id, &i.version, pref, Some(&i.stanza)));
        }
        let cand =
            match self
                .u
                .candidate(name, arch, installed.as_ref().map(|i| i.version.as_str()))
            {
                Some(c) if Some(c.version) == installed.as_ref().map(|i| i.version.as_str()) => {
                    current
                }
                Some(c) => Some(self.make_ver(id, c.version, Some(c.main), None)),
                None => current,
            };
        let p = &mut self.pkgs[id];
        p.current = current;
        p.cand = cand;
        p.inst = current;
        id
    }

    fn ver_of(&self, p: PkgId, w: Which) -> Option<VerId> {
        let p = &self.pkgs[p];
        match w {
            Which::Now => p.current,
            Which::Inst => p.inst,
            Which::Cand => p.cand,
        }
    }

    fn parent_arch(&self, v: VerId) -> String {
        self.pkgs[self.vers[v].pkg].arch.clone()
    }

    /// Providers of `name`: (owner name, owner arch, owner version, provided version).
    fn providers(&mut self, name: &str) -> Vec<ProviderInfo> {
        if let Some(v) = self.prov_cache.get(name) {
            return v.clone();
        }
        let mut out = Vec::new();
        for &r in self.u.providers(name) {
            let p = self.u.paragraph(r);
            for pr in parse_provides(&p) {
                if pr.name == name {
                    out.push((
                        self.u.name(r).to_string(),
                        self.u.arch(r).to_string(),
                        self.u.version(r).to_string(),
                        pr.version.clone(),
                    ));
                }
            }
        }
        if let Some(list) = self.status_provides.get(name) {
            for (n, a) in list {
                if let Some(i) = self.base.packages.get(&(n.clone(), a.clone())) {
                    for pr in parse_provides(&Paragraph::new(&i.stanza)) {
                        if pr.name == name {
                            out.push((n.clone(), a.clone(), i.version.clone(), pr.version.clone()));
                        }
                    }
                }
            }
        }
        out.sort();
        out.dedup();
        self.prov_cache.insert(name.to_string(), out.clone());
        out
    }

    /// Target packages an alternative can be satisfied by directly, with the arch rule to check.
    fn direct_targets(
        &mut self,
        alt: &Alt,
        parent_arch: &str,
        negative: bool,
    ) -> Vec<(PkgId, bool)> {
        // (pkg, needs_foreign_or_allowed)
        let mut out = Vec::new();
        let arches = self.arches.clone();
        match alt.arch.as_deref() {
            Some("any") => {
                for a in &arches {
                    out.push((self.pkg(&alt.name, a), true));
                }
            }
            Some(a) => out.push((self.pkg(&alt.name, a), false)),
            None => {
                out.push((self.pkg(&alt.name, parent_arch), false));
                for a in &arches {
                    if a != parent_arch {
                        // negative dependencies apply to every architecture of the target
                        out.push((self.pkg(&alt.name, a), !negative));
                    }
                }
            }
        }
        out
    }

    fn arch_ok(&self, v: VerId, alt: &Alt, needs_other: bool) -> bool {
        if !needs_other {
            return true;
        }
        match alt.arch.as_deref() {
            Some("any") => {
                self.vers[v].multi_arch == MultiArch::Allowed
                    || self.pkgs[self.vers[v].pkg].arch == self.native
                        && self.vers[v].multi_arch == MultiArch::Foreign
            }
            _ => self.vers[v].multi_arch == MultiArch::Foreign,
        }
    }

    /// Versions (of kind `w`) that satisfy `alt` (for negative kinds: that match it).
    fn alt_solutions(&mut self, parent: VerId, alt: &Alt, w: Which, negative: bool) -> Vec<VerId> {
        let parent_arch = self.parent_arch(parent);
        let parent_pkg = self.vers[parent].pkg;
        let mut out = Vec::new();
        for (p, needs_other) in self.direct_targets(alt, &parent_arch, negative) {
            if negative && self.pkgs[p].name == self.pkgs[parent_pkg].name {
                continue; // self-conflicts are ignored (IsIgnorable)
            }
            if let Some(v) = self.ver_of(p, w) {
                let ok_ver = alt
                    .cons
                    .as_ref()
                    .is_none_or(|(op, want)| op.matches(&self.vers[v].version, want));
                if ok_ver && self.arch_ok(v, alt, needs_other) && !out.contains(&v) {
                    out.push(v);
                }
            }
        }
        for (on, oa, ov, pv) in self.providers(&alt.name) {
            if negative && on == self.pkgs[parent_pkg].name {
                continue;
            }
            // a versioned dependency needs a versioned Provides
            if let Some((op, want)) = &alt.cons {
                match &pv {
                    Some(pv) if op.matches(pv, want) => {}
                    _ => continue,
                }
            }
            let arch_fits = match alt.arch.as_deref() {
                Some("any") | None if negative => true,
                Some("any") => true,
                Some(a) => oa == a,
                None => oa == parent_arch,
            };
            let p = self.pkg(&on, &oa);
            let Some(v) = self.ver_of(p, w) else { continue };
            if self.vers[v].version != ov {
                continue;
            }
            let fits = arch_fits || self.vers[v].multi_arch == MultiArch::Foreign;
            if fits && !out.contains(&v) {
                out.push(v);
            }
        }
        out
    }

    fn group_satisfied(&mut self, parent: VerId, g: &DepGroup, w: Which) -> bool {
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

    fn inst_broken(&mut self, p: PkgId, important_too: bool) -> bool {
        let Some(v) = self.pkgs[p].inst else {
            return false;
        };
        let deps = self.vers[v].deps.clone();
        for g in &deps {
            let relevant = g.kind.critical() || (important_too && self.important(g.kind));
            if relevant && !self.group_satisfied(v, g, Which::Inst) {
                return true;
            }
        }
        false
    }

    fn important(&self, k: DepKind) -> bool {
        k.critical()
            || (k == DepKind::Recommends && self.opts.recommends)
            || (k == DepKind::Suggests && self.opts.suggests)
    }

    fn group_has_installed(&self, name: &str) -> bool {
        self.arches.iter().any(|a| {
            self.pkg_ix
                .get(&(name.to_string(), a.clone()))
                .is_some_and(|&p| self.pkgs[p].current.is_some())
        })
    }

    /// apt's CompareProviders: true when `a` should be tried before `b`.
    fn compare_providers(&self, a: VerId, b: VerId, target: &str) -> std::cmp::Ordering {
        use std::cmp::Ordering::*;
        let (pa, pb) = (&self.pkgs[self.vers[a].pkg], &self.pkgs[self.vers[b].pkg]);
        let first = |x: bool| if x { Less } else { Greater };
        if pa.protect != pb.protect {
            return first(pa.protect);
        }
        if self.vers[a].multi_arch == MultiArch::Same || self.vers[b].multi_arch == MultiArch::Same
        {
            let (ia, ib) = (
                self.group_has_installed(&pa.name),
                self.group_has_installed(&pb.name),
            );
            if ia != ib {
                return first(ia);
            }
        }
        if (pa.current.is_none() || pb.current.is_none())
            && pa.current.is_some() != pb.current.is_some()
        {
            return first(pa.current.is_some());
        }
        if pa.name != pb.name {
            if pa.name == target && pb.name != target {
                return Less;
            }
            if pb.name == target && pa.name != target {
                return Greater;
            }
        }
        if pa.essential != pb.essential {
            return first(pa.essential);
        }
        if pa.important != pb.important {
            return first(pa.important);
        }
        if pa.arch != pb.arch {
            if pa.arch == self.native {
                return Less;
            }
            if pb.arch == self.native {
                return Greater;
            }
            let ia = self.arches.iter().position(|x| *x == pa.arch);
            let ib = self.arches.iter().position(|x| *x == pb.arch);
            if ia != ib {
                return ia.unwrap_or(usize::MAX).cmp(&ib.unwrap_or(usize::MAX));
            }
        }
        let (qa, qb) = (self.vers[a].prio, self.vers[b].prio);
        if qa != qb {
            return qa.cmp(&qb);
        }
        pb.order.cmp(&pa.order)
    }

    /// getAllPossibleSolutions(Start, End, CANDIDATE, sorted=true)
    fn possible_solutions(&mut self, parent: VerId, g: &DepGroup, w: Which) -> Vec<VerId> {
        let neg = g.kind.negative();
        let mut upgrades = Vec::new();
        let mut news = Vec::new();
        for alt in &g.alts {
            let mut list = self.alt_solutions(parent, alt, w, neg);
            list.sort_by(|&a, &b| self.compare_providers(a, b, &alt.name));
            for v in list {
                if self.pkgs[self.vers[v].pkg].current.is_some() {
                    upgrades.push(v);
                } else {
                    news.push(v);
                }
            }
        }
        upgrades.extend(news);
        upgrades.dedup();
        if !neg {
            upgrades.retain(|&v| {
                let p = &self.pkgs[self.vers[v].pkg];
                !(p.protect
                    && (p.mode == Mode::Delete || (p.mode == Mode::Keep && p.current.is_none())))
            });
        }
        upgrades
    }

    fn state_change(&mut self, p: PkgId, reason: Option<Reason>) {
        let pk = &mut self.pkgs[p];
        pk.mode = Mode::Install;
        pk.inst = pk.cand;
        if pk.cand == pk.current {
            pk.mode = Mode::Keep;
        }
        if pk.reason.is_none() || matches!(reason, Some(Reason::Requested)) {
            if let Some(r) = reason {
                pk.reason = Some(r);
            }
        }
    }

    fn mark_keep(&mut self, p: PkgId, from_user: bool) -> bool {
        if !from_user && self.pkgs[p].protect && self.pkgs[p].mode != Mode::Keep {
            return false;
        }
        let pk = &mut self.pkgs[p];
        pk.mode = Mode::Keep;
        pk.inst = pk.current;
        true
    }

    fn mark_delete(&mut self, p: PkgId, from_user: bool) -> bool {
        let pk = &self.pkgs[p];
        if !from_user && (pk.protect || pk.essential || pk.important) && pk.mode != Mode::Delete {
            return false;
        }
        let pk = &mut self.pkgs[p];
        pk.mode = Mode::Delete;
        pk.inst = None;
        true
    }

    fn discard_install(&mut self, p: PkgId) {
        let pk = &mut self.pkgs[p];
        pk.mode = Mode::Keep;
        pk.inst = pk.current;
        pk.cand = pk.inst;
    }

    /// DependenciesSatisfiableByCandidates (part of IsInstallOk).
    fn install_ok(&mut self, p: PkgId, auto_inst: bool) -> bool {
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

    fn describe(&self, v: VerId) -> String {
        let p = &self.pkgs[self.vers[v].pkg];
        format!("{} {}", self.full_name(p), self.vers[v].version)
    }

    fn full_name(&self, p: &Pkg) -> String {
        if p.arch == self.native {
            p.name.clone()
        } else {
            format!("{}:{}", p.name, p.arch)
        }
    }

    /// pkgDepCache::MarkInstall.
    pub fn mark_install(
        &mut self,
        p: PkgId,
        auto_inst: bool,
        depth: u32,
        from_user: bool,
        reason: Option<Reason>,
    ) -> bool {
        let (protect, mode, cand, cur) = (
            self.pkgs[p].protect,
            self.pkgs[p].mode,
            self.pkgs[p].cand,
            self.pkgs[p].current,
        );
        if protect && mode == Mode::Keep && cand.is_some() && cand == cur {
            // only propagating protection
        } else if !from_user && (depth > 3000 || (protect && mode != Mode::Install)) {
            return false;
        }
        let Some(cv) = cand else { return false };
        if !protect && !self.inst_broken(p, true) {
            if cand == cur {
                if self.pkgs[p].inst.is_none() {
                    return self.mark_keep(p, from_user);
                }
                return true;
            } else if mode == Mode::Install {
                return true;
            }
        }
        if !self.install_ok(p, auto_inst) {
            return false;
        }
        if from_user {
            self.state_change(p, reason.clone());
        }
        let fail_early = !protect && !from_user;
        let mut failed = false;
        let mut to_install: Vec<DepGroup> = Vec::new();
        let mut to_upgrade: Vec<(PkgId, Reason)> = Vec::new();
        let mut delayed_remove: Vec<PkgId> = Vec::new();
        if auto_inst {
            let deps = self.vers[cv].deps.clone();
            let mut to_remove = Vec::new();
            for g in deps {
                let satisfied = self.group_satisfied(cv, &g, Which::Inst);
                if satisfied && !protect {
                    continue;
                }
                if !self.important(g.kind) {
                    continue;
                }
                if g.kind.negative() {
                    to_remove.push(g);
                } else {
                    to_install.push(g);
                }
            }
            // MarkInstall_RemoveConflictsIfNotUpgradeable
            let mut bad_cand: HashSet<PkgId> = HashSet::new();
            for g in &to_remove {
                for v in self.possible_solutions(cv, g, Which::Cand) {
                    let tp = self.vers[v].pkg;
                    if self.pkgs[tp].cand != Some(v) {
                        continue;
                    }
                    if self.pkgs[tp].current != Some(v) {
                        if self.pkgs[tp].mode == Mode::Install && !self.mark_keep(tp, false) {
                            failed = true;
                            if fail_early {
                                return false;
                            }
                        } else if protect {
                            let pk = &mut self.pkgs[tp];
                            pk.cand = pk.inst;
                            if pk.current.is_none() {
                                pk.protect = true;
                            }
                        } else {
                            bad_cand.insert(tp);
                        }
                    } else if !self.pkgs[tp].protect && !self.pkgs[tp].essential {
                        delayed_remove.push(tp);
                    } else {
                        failed = true;
                        if fail_early {
                            return false;
                        }
                    }
                }
                for v in self.possible_solutions(cv, g, Which::Now) {
                    let tp = self.vers[v].pkg;
                    let tc = self.pkgs[tp].cand;
                    if tc != Some(v) && tc.is_some() && !bad_cand.contains(&tp) {
                        let r = Reason::ConflictUpgrade {
                            parent: self.describe(cv),
                            field: g.kind.field(),
                            relation: g.text(),
                        };
                        if !to_upgrade.iter().any(|(x, _)| *x == tp) {
                            to_upgrade.push((tp, r));
                        }
                    } else if tc == self.pkgs[tp].current {
                    } else if !self.pkgs[tp].protect && !self.pkgs[tp].essential {
                        delayed_remove.push(tp);
                    } else {
                        failed = true;
                        if fail_early {
                            return false;
                        }
                    }
                }
            }
            // MarkInstall_CollectReverseDepends: installed packages whose dependency on this
            // package the new version no longer satisfies get upgraded
            if cur.is_some() {
                self.collect_reverse_depends(p, cv, &mut to_upgrade);
            }
        }
        if !from_user {
            self.state_change(p, reason.clone());
        }
        if !auto_inst {
            return !failed;
        }
        let was_protected = self.pkgs[p].protect;
        self.pkgs[p].protect = true;
        let result = (|| {
            self.upgrade_other_binaries(p, cv, depth);
            for (tp, r) in to_upgrade.clone() {
                if self.pkgs[tp].mode != Mode::Install
                    && !self.mark_install(tp, true, depth + 1, false, Some(r))
                    && !self.mark_delete(tp, false)
                {
                    failed = true;
                    if fail_early {
                        return false;
                    }
                }
            }
            if !self.install_dependencies(p, cv, &to_install, depth, protect, from_user) {
                failed = true;
                if fail_early {
                    return false;
                }
            }
            for tp in delayed_remove.clone() {
                if !self.mark_delete(tp, false) {
                    failed = true;
                    if fail_early {
                        return false;
                    }
                }
            }
            true
        })();
        self.pkgs[p].protect = was_protected;
        if !result {
            self.discard_install(p);
            return false;
        }
        !failed
    }

    fn collect_reverse_depends(
        &mut self,
        p: PkgId,
        cv: VerId,
        to_upgrade: &mut Vec<(PkgId, Reason)>,
    ) {
        let name = self.pkgs[p].name.clone();
        let new_version = self.vers[cv].version.clone();
        let cur_version = self.pkgs[p]
            .current
            .map(|v| self.vers[v].version.clone())
            .unwrap_or_default();
        let installed: Vec<PkgId> = (0..self.pkgs.len())
            .filter(|&q| self.pkgs[q].current.is_some() && self.pkgs[q].mode != Mode::Install)
            .collect();
        for q in installed {
            let Some(qv) = self.pkgs[q].current else {
                continue;
            };
            let deps = self.vers[qv].deps.clone();
            for g in deps
                .iter()
                .filter(|g| !g.kind.negative() && self.important(g.kind))
            {
                for a in g.alts.iter().filter(|a| a.name == name) {
                    let sat =
                        |v: &str| a.cons.as_ref().is_none_or(|(op, want)| op.matches(v, want));
                    if sat(&cur_version)
                        && !sat(&new_version)
                        && !to_upgrade.iter().any(|(x, _)| *x == q)
                    {
                        let r = Reason::ConflictUpgrade {
                            parent: self.describe(cv),
                            field: g.kind.field(),
                            relation: g.text(),
                        };
                        to_upgrade.push((q, r));
                    }
                }
            }
        }
    }

    /// MarkInstall_UpgradeOtherBinaries: installed binaries of the same source follow along.
    fn upgrade_other_binaries(&mut self, p: PkgId, cv: VerId, depth: u32) {
        let (src, srcver) = self.vers[cv].source.clone();
        let mut others = Vec::new();
        for q in 0..self.pkgs.len() {
            if q == p {
                continue;
            }
            let (Some(cur), Some(cand)) = (self.pkgs[q].current, self.pkgs[q].cand) else {
                continue;
            };
            if cur == cand
                || (self.pkgs[q].mode == Mode::Install && self.pkgs[q].inst == Some(cand))
            {
                continue;
            }
            if self.vers[cand].source.0 == src && self.vers[cand].source.1 == srcver {
                others.push(q);
            }
        }
        others.sort_by_key(|&q| self.pkgs[q].order);
        let sib = self.describe(cv);
        for &q in &others {
            self.mark_install(
                q,
                false,
                depth + 1,
                false,
                Some(Reason::SameSource {
                    sibling: sib.clone(),
                }),
            );
        }
        for &q in &others {
            self.mark_install(
                q,
                true,
                depth + 1,
                false,
                Some(Reason::SameSource {
                    sibling: sib.clone(),
                }),
            );
        }
    }

    fn install_dependencies(
        &mut self,
        p: PkgId,
        cv: VerId,
        to_install: &[DepGroup],
        depth: u32,
        propagate_protected: bool,
        from_user: bool,
    ) -> bool {
        let mut failed = false;
        for g in to_install {
            let critical = g.kind.critical();
            let found = self.group_satisfied(cv, g, Which::Inst);
            if found && !propagate_protected {
                continue;
            }
            if found {
                if !critical {
                    continue;
                }
                // propagate protection to a unique solution
                let mut sols: Vec<VerId> = Vec::new();
                for a in &g.alts {
                    for w in [Which::Cand, Which::Now] {
                        for v in self.alt_solutions(cv, a, w, false) {
                            if !sols.contains(&v) {
                                sols.push(v);
                            }
                        }
                    }
                }
                if sols.len() != 1 {
                    continue;
                }
                let sp = self.vers[sols[0]].pkg;
                if self.pkgs[sp].protect {
                    continue;
                }
                self.pkgs[sp].protect = true;
                let r = self.dep_reason(cv, g, sols[0]);
                if !self.mark_install(sp, true, depth + 1, false, Some(r)) {
                    failed = true;
                }
                continue;
            }
            // "new Recommends" rule for upgrades
            if let Some(curv) = self.pkgs[p].current {
                if !critical {
                    let old = self.vers[curv].deps.clone();
                    let mut is_new = true;
                    let mut prev_sat = false;
                    let old: Vec<DepGroup> = old
                        .into_iter()
                        .filter(|d| !d.kind.critical() && self.important(d.kind))
                        .collect();
                    for od in old.iter() {
                        if od.alts.first().map(|a| &a.name) != g.alts.first().map(|a| &a.name) {
                            continue;
                        }
                        is_new = false;
                        prev_sat = self.group_satisfied(curv, od, Which::Now);
                        if prev_sat {
                            break;
                        }
                    }
                    if !is_new && !prev_sat {
                        continue;
                    }
                }
            }
            let sols = self.possible_solutions(cv, g, Which::Cand);
            let mut found = false;
            let n_sols = sols.len();
            for v in sols {
                let sp = self.vers[v].pkg;
                if self.pkgs[sp].cand != Some(v) {
                    continue;
                }
                let r = self.dep_reason(cv, g, v);
                if propagate_protected && critical && n_sols == 1 {
                    if !self.mark_install(sp, false, depth + 1, false, Some(r.clone())) {
                        continue;
                    }
                    self.pkgs[sp].protect = true;
                }
                if !self.mark_install(sp, true, depth + 1, false, Some(r)) {
                    continue;
                }
                found = true;
                break;
            }
            if !found && critical {
                failed = true;
                if !propagate_protected && !from_user {
                    break;
                }
            }
        }
        !failed
    }

    fn dep_reason(&self, cv: VerId, g: &DepGroup, chosen: VerId) -> Reason {
        let cp = &self.pkgs[self.vers[chosen].pkg];
        let choice = if g.alts.len() > 1 || g.alts.first().is_some_and(|a| a.name != cp.name) {
            let idx = g.alts.iter().position(|a| a.name == cp.name);
            match idx {
                Some(0) => "first alternative".to_string(),
                Some(i) => format!("alternative {} (earlier ones not installable)", i + 1),
                None => format!(
                    "provides {}",
                    g.alts
                        .iter()
                        .map(|a| a.name.as_str())
                        .collect::<Vec<_>>()
                        .join(" | ")
                ),
            }
        } else {
            String::new()
        };
        Reason::Dependency {
            parent: self.describe(cv),
            field: g.kind.field(),
            relation: g.text(),
            choice,
        }
    }

    /// Resolves a request list as `apt-get install` does.
    pub fn install(&mut self, reqs: &[Request]) -> Result<Resolution, ResolveError> {
        let mut targets = Vec::new();
        for r in reqs {
            let p = self.request_pkg(r)?;
            targets.push(p);
        }
        // pass 1: mark without dependencies, protected
        for &p in &targets {
            self.pkgs[p].protect = true;
            self.mark_install(p, false, 0, true, Some(Reason::Requested));
        }
        // pass 2: dependencies, in command-line order
        for &p in &targets {
            self.mark_install(p, true, 0, true, Some(Reason::Requested));
        }
        self.check_broken(&targets)?;
        Ok(self.result())
    }

    fn request_pkg(&mut self, r: &Request) -> Result<PkgId, ResolveError> {
        let arch = r.arch.clone().unwrap_or_else(|| self.native.clone());
        let p = self.pkg(&r.name, &arch);
        if let Some(ver) = &r.version {
            let found = self
                .u
                .versions(&r.name, &arch)
                .into_iter()
                .find(|c| c.version == ver.as_str())
                .map(|c| (c.version.to_string(), c.main));
            let cur = self.pkgs[p].current;
            if cur.is_some_and(|c| &self.vers[c].version == ver) {
                self.pkgs[p].cand = cur;
            } else if let Some((v, pref)) = found {
                let vid = self.make_ver(p, &v, Some(pref), None);
                self.pkgs[p].cand = Some(vid);
            } else {
                let available = self
                    .u
                    .versions(&r.name, &arch)
                    .iter()
                    .map(|c| c.version.to_string())
                    .collect::<Vec<_>>();
                if available.is_empty() {
                    return Err(self.unknown(&r.name, &arch));
                }
                return Err(ResolveError::UnknownVersion {
                    name: r.name.clone(),
                    version: ver.clone(),
                    available: available.join(", "),
                });
            }
        }
        if let Some(suite) = &r.suite {
            let versions = self.u.versions(&r.name, &arch);
            let hit = versions
                .iter()
                .find(|c| {
                    c.refs.iter().any(|x| {
                        self.u.source(*x).suite == *suite || self.u.source(*x).codename == *suite
                    })
                })
                .map(|c| (c.version.to_string(), c.main));
            match hit {
                Some((v, pref)) => {
                    let vid = self.make_ver(p, &v, Some(pref), None);
                    self.pkgs[p].cand = Some(vid);
                    self.set_candidate_release(vid, suite);
                }
                None => {
                    if versions.is_empty() {
                        return Err(self.unknown(&r.name, &arch));
                    }
                    let available = versions
                        .iter()
                        .map(|c| {
                            format!(
                                "{} ({})",
                                c.version,
                                c.refs
                                    .iter()
                                    .map(|x| self.u.source(*x).suite.clone())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        })
                        .collect::<Vec<_>>();
                    return Err(ResolveError::UnknownSuite {
                        name: r.name.clone(),
                        suite: suite.clone(),
                        available: available.join("; "),
                    });
                }
            }
        }
        if self.pkgs[p].cand.is_none() {
            // a virtual package: apt picks the provider only when all are one package
            let provs = self.providers(&r.name);
            let mut owners: Vec<String> = provs.iter().map(|(n, _, _, _)| n.clone()).collect();
            owners.sort();
            owners.dedup();
            // only providers whose candidate is the providing version count
            let mut live = Vec::new();
            for (n, a, v, _) in &provs {
                let q = self.pkg(n, a);
                if self.pkgs[q]
                    .cand
                    .is_some_and(|c| &self.vers[c].version == v)
                    && !live.contains(&q)
                {
                    live.push(q);
                }
            }
            let names: HashSet<String> = live.iter().map(|&q| self.pkgs[q].name.clone()).collect();
            if names.len() == 1 {
                let q = live
                    .iter()
                    .copied()
                    .find(|&q| self.pkgs[q].arch == arch)
                    .unwrap_or(live[0]);
                return Ok(q);
            }
            if owners.is_empty() {
                return Err(self.unknown(&r.name, &arch));
            }
            return Err(ResolveError::VirtualPackage {
                name: r.name.clone(),
                providers: owners.join(", "),
            });
        }
        Ok(p)
    }

    /// pkg/suite: dependencies the default candidates cannot satisfy switch to that suite too.
    fn set_candidate_release(&mut self, v: VerId, suite: &str) {
        let deps = self.vers[v].deps.clone();
        let deps: Vec<DepGroup> = deps
            .into_iter()
            .filter(|g| !g.kind.negative() && self.important(g.kind))
            .collect();
        for g in deps.iter() {
            if g.alts.iter().any(|a| {
                !self.alt_solutions(v, a, Which::Now, false).is_empty()
                    || !self.alt_solutions(v, a, Which::Cand, false).is_empty()
            }) {
                continue;
            }
            for a in &g.alts {
                let arch = self.parent_arch(v);
                let tp = self.pkg(&a.name, &arch);
                let versions = self.u.versions(&a.name, &arch);
                let hit = versions
                    .iter()
                    .find(|c| {
                        c.refs.iter().any(|x| {
                            self.u.source(*x).suite == suite || self.u.source(*x).codename == suite
                        }) && a
                            .cons
                            .as_ref()
                            .is_none_or(|(op, w)| op.matches(c.version, w))
                    })
                    .map(|c| (c.version.to_string(), c.main));
                if let Some((ver, pref)) = hit {
                    let nv = self.make_ver(tp, &ver, Some(pref), None);
                    self.pkgs[tp].cand = Some(nv);
                    self.set_candidate_release(nv, suite);
                    break;
                }
            }
        }
    }

    fn unknown(&mut self, name: &str, arch: &str) -> ResolveError {
        ResolveError::UnknownPackage {
            name: name.to_string(),
            arch: arch.to_string(),
            hint: crate::suggest::hint(self.u, name),
        }
    }

    /// Reports what is left broken, in plain words, with the chain that pulled each side in.
    fn check_broken(&mut self, targets: &[PkgId]) -> Result<(), ResolveError> {
        let mut msgs = Vec::new();
        for &t in targets {
            if self.pkgs[t].mode != Mode::Install && self.pkgs[t].current.is_none() {
                msgs.push(format!(
                    "  {} cannot be installed",
                    self.full_name(&self.pkgs[t])
                ));
            }
        }
        for p in 0..self.pkgs.len() {
            if self.pkgs[p].inst.is_none() {
                continue;
            }
            let Some(v) = self.pkgs[p].inst else { continue };
            let deps = self.vers[v].deps.clone();
            for g in deps.iter().filter(|g| g.kind.critical()) {
                if self.group_satisfied(v, g, Which::Inst) {
                    continue;
                }
                let who = self.describe(v);
                let chain = self.chain(p);
                let detail = self.why_unsatisfied(v, g);
                msgs.push(format!(
                    "  {who} {} {}{}\n    {detail}",
                    g.kind.field(),
                    g.text(),
                    chain
                ));
            }
        }
        if msgs.is_empty() {
            Ok(())
        } else {
            msgs.dedup();
            Err(ResolveError::Unsatisfiable(msgs.join("\n")))
        }
    }

    fn why_unsatisfied(&mut self, v: VerId, g: &DepGroup) -> String {
        let mut parts = Vec::new();
        for a in &g.alts {
            if g.kind.negative() {
                for s in self.alt_solutions(v, a, Which::Inst, true) {
                    let sp = self.vers[s].pkg;
                    parts.push(format!(
                        "but {} is to be installed{}",
                        self.describe(s),
                        self.chain(sp)
                    ));
                }
                continue;
            }
            let arch = self.parent_arch(v);
            let tp = self.pkg(&a.name, &arch);
            let avail: Vec<String> = self
                .u
                .versions(&a.name, &arch)
                .iter()
                .map(|c| c.version.to_string())
                .collect();
            let cand = self.pkgs[tp].cand.map(|c| self.vers[c].version.clone());
            let why = if avail.is_empty() && self.providers(&a.name).is_empty() {
                format!("{a}: no such package in the indices")
            } else if let Some(c) = cand {
                let blocked = self.pkgs[tp].mode != Mode::Install;
                if a.cons.as_ref().is_some_and(|(op, w)| !op.matches(&c, w)) {
                    format!("{a}: candidate is {c}")
                } else if blocked {
                    format!("{a}: {c} cannot be installed (it conflicts with or breaks something chosen)")
                } else {
                    format!("{a}: {c}")
                }
            } else {
                format!(
                    "{a}: no installable version (available: {})",
                    avail.join(", ")
                )
            };
            parts.push(why);
        }
        parts.join("; ")
    }

    /// " (pulled in by X <- Y <- requested Z)"
    fn chain(&self, p: PkgId) -> String {
        let mut out = Vec::new();
        let mut cur = p;
        let mut seen = HashSet::new();
        while let Some(r) = &self.pkgs[cur].reason {
            if !seen.insert(cur) {
                break;
            }
            match r {
                Reason::Requested => {
                    out.push("requested".to_string());
                    break;
                }
                Reason::Dependency { parent, .. }
                | Reason::ConflictUpgrade { parent, .. }
                | Reason::SameSource { sibling: parent } => {
                    out.push(parent.clone());
                    let pname = parent.split(' ').next().unwrap_or("");
                    let (n, a) = match pname.split_once(':') {
                        Some((n, a)) => (n.to_string(), a.to_string()),
                        None => (pname.to_string(), self.native.clone()),
                    };
                    match self.pkg_ix.get(&(n, a)) {
                        Some(&q) => cur = q,
                        None => break,
                    }
                }
            }
        }
        if out.is_empty() {
            String::new()
        } else {
            format!(" (via {})", out.join(" <- "))
        }
    }

    fn result(&self) -> Resolution {
        let mut install = Vec::new();
        let mut remove = Vec::new();
        for p in &self.pkgs {
            match p.mode {
                Mode::Install => {
                    let Some(v) = p.inst else { continue };
                    install.push(Chosen {
                        name: p.name.clone(),
                        arch: p.arch.clone(),
                        version: self.vers[v].version.clone(),
                        upgrade_from: p.current.map(|c| self.vers[c].version.clone()),
                        pref: self.vers[v].pref,
                        reason: p.reason.clone().unwrap_or(Reason::Requested),
                    });
                }
                Mode::Delete if p.current.is_some() => remove.push(self.full_name(p)),
                _ => {}
            }
        }
        install.sort_by(|a, b| a.name.cmp(&b.name).then(a.arch.cmp(&b.arch)));
        Resolution {
            install,
            remove,
            notes: Vec::new(),
        }
    }
}

/// Resolves `reqs` on top of `base`.
pub fn resolve(
    u: &Universe,
    base: &Baseline,
    reqs: &[Request],
    opts: Options,
) -> Result<Resolution, ResolveError> {
    let mut arches: Vec<String> = vec![u.native_arch.clone()];
    for s in &u.sources {
        if !arches.contains(&s.arch) {
            arches.push(s.arch.clone());
        }
    }
    let mut s = Solver::new(u, base, opts, &arches);
    s.install(reqs)
}
