//! The package cache the marking works on: packages (name, architecture), their versions, the
//! dependency or-groups and Provides of each version, read from index and status stanzas.
//!
//! Mirrors apt-pkg/pkgcachegen.cc (`pkgCacheGenerator`: `NewPackage`, `NewVersion`,
//! `NewDepends`, `NewProvides`) and the `pkgCache` structures it fills. apt builds the whole
//! cache up front; here a package is created on first use (installed ones at start), which is
//! all the marking needs and keeps a resolve over 60 000 paragraphs in milliseconds.

use crate::depcache::{DepCache, Reason};
use opaas_deb::relation::{parse_relations, Op};
use opaas_deb::Paragraph;
use opaas_repo::universe::{PkgRef, Universe};
use serde::Serialize;

pub type PkgId = usize;
pub type VerId = usize;

/// A dependency field (pkgCache::Dep::DepType), in the order apt stores them.
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
    /// The control field name.
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
    /// pkgCache::DepIterator::IsCritical.
    pub(crate) fn critical(self) -> bool {
        matches!(
            self,
            DepKind::PreDepends | DepKind::Depends | DepKind::Conflicts | DepKind::Breaks
        )
    }
    /// pkgCache::DepIterator::IsNegative.
    pub(crate) fn negative(self) -> bool {
        matches!(self, DepKind::Conflicts | DepKind::Breaks)
    }
}

impl std::fmt::Display for DepKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.field())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MultiArch {
    No,
    Same,
    Foreign,
    Allowed,
}

/// One member of an or-group: `name[:arch] [(op version)]`.
#[derive(Debug, Clone)]
/// Borrowed from the index or status text the cache reads (`'u`), so creating a version
/// allocates no string per member.
pub(crate) struct Alt<'u> {
    pub name: &'u str,
    pub arch: Option<&'u str>,
    pub cons: Option<(Op, &'u str)>,
}

impl std::fmt::Display for Alt<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)?;
        if let Some(a) = &self.arch {
            write!(f, ":{a}")?;
        }
        if let Some((op, v)) = &self.cons {
            write!(f, " ({op} {v})")?;
        }
        Ok(())
    }
}

/// An or-group of one dependency field.
#[derive(Debug, Clone)]
pub(crate) struct DepGroup<'u> {
    pub kind: DepKind,
    pub alts: Vec<Alt<'u>>,
}

impl DepGroup<'_> {
    /// The group as written: `a (>= 1) | b`.
    pub fn text(&self) -> String {
        self.alts
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(" | ")
    }
}

/// Or-group `group` of version `ver`'s dependencies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DepRef {
    pub ver: VerId,
    pub group: usize,
}

/// A name a version provides (the provided version is read where it matters, by
/// `provided_versions`).
#[derive(Debug, Clone)]
pub(crate) struct Provide {
    pub name: String,
}

/// A version of a package (pkgCache::Version).
#[derive(Debug, Clone)]
pub(crate) struct Ver<'u> {
    pub pkg: PkgId,
    pub version: String,
    /// The index paragraph, if the version is downloadable.
    pub pref: Option<PkgRef>,
    pub multi_arch: MultiArch,
    /// apt's numeric priority (required=1 … extra=5, 0 = no field).
    pub prio: u8,
    /// Shared: the marking loops walk a version's groups while they change the cache.
    pub deps: std::rc::Rc<[DepGroup<'u>]>,
    /// (source package, source version)
    pub source: (String, String),
}

/// pkgDepCache::StateCache::Mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Keep,
    Install,
    Delete,
}

/// A package (pkgCache::Package) with its pkgDepCache state.
#[derive(Debug, Clone)]
pub(crate) struct Pkg {
    pub name: String,
    pub arch: String,
    pub current: Option<VerId>,
    pub cand: Option<VerId>,
    pub mode: Mode,
    pub inst: Option<VerId>,
    pub protect: bool,
    pub essential: bool,
    pub important: bool,
    /// apt's package ID order (the last CompareProviders tie-break).
    pub order: u64,
    /// dpkg's selection is `hold` (the status file says `hold ok installed`).
    pub held: bool,
    /// apt's Auto flag: installed as a dependency (extended_states for installed packages,
    /// set by MarkInstall for new ones); roots of the autoremover's marking are not auto.
    pub auto: bool,
    pub reason: Option<Reason>,
}

/// Which version of a package a check looks at (pkgDepCache's NowVersion / InstVersion /
/// CandidateVersion).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Which {
    Now,
    Inst,
    Cand,
}

/// A provider of a virtual name: (owner name, owner arch, owner version, provided version).
pub(crate) type ProviderInfo = (String, String, String, Option<String>);

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

/// The fields of a stanza the cache needs, read in one pass (a paragraph's `get` scans it
/// every time; a version reads a dozen fields).
#[derive(Default)]
struct VerFields<'a> {
    package: Option<&'a str>,
    source: Option<&'a str>,
    multi_arch: Option<&'a str>,
    priority: Option<&'a str>,
    essential: bool,
    important: bool,
    deps: [Option<&'a str>; 6],
}

const DEP_KINDS: [DepKind; 6] = [
    DepKind::PreDepends,
    DepKind::Depends,
    DepKind::Conflicts,
    DepKind::Breaks,
    DepKind::Recommends,
    DepKind::Suggests,
];

fn ver_fields<'a>(p: &Paragraph<'a>) -> VerFields<'a> {
    let mut f = VerFields::default();
    for (name, v) in p.fields() {
        let is = |x: &str| name.eq_ignore_ascii_case(x);
        if is("Package") {
            f.package = Some(v);
        } else if is("Source") {
            f.source = Some(v);
        } else if is("Multi-Arch") {
            f.multi_arch = Some(v);
        } else if is("Priority") {
            f.priority = Some(v);
        } else if is("Essential") {
            f.essential = v == "yes";
        } else if is("Important") || is("Protected") {
            f.important |= v == "yes";
        } else if let Some(k) = DEP_KINDS.iter().position(|k| is(k.field())) {
            f.deps[k] = Some(v);
        }
    }
    f
}

fn multi_arch_of(v: Option<&str>) -> MultiArch {
    match v {
        Some("same") => MultiArch::Same,
        Some("foreign") => MultiArch::Foreign,
        Some("allowed") => MultiArch::Allowed,
        _ => MultiArch::No,
    }
}

/// pkgCacheGenerator::NewDepends for every dependency field, in stored order.
fn parse_groups<'u>(f: &VerFields<'u>, native: &'u str) -> Vec<DepGroup<'u>> {
    let mut out = Vec::new();
    for (k, kind) in DEP_KINDS.into_iter().enumerate() {
        let Some(v) = f.deps[k] else {
            continue;
        };
        let Ok(groups) = parse_relations(v) else {
            continue;
        };
        for g in groups {
            let alts: Vec<Alt<'u>> = g
                .iter()
                .filter(|a| a.applies_to(native))
                .map(|a| Alt {
                    name: a.name,
                    arch: a.arch.map(|x| if x == "native" { native } else { x }),
                    cons: a.constraint,
                })
                .collect();
            if !alts.is_empty() {
                out.push(DepGroup { kind, alts });
            }
        }
    }
    out
}

/// The versions with which a Provides field provides `name` (one entry per item naming it;
/// `None`: unversioned): only the items naming it are parsed, as [`parse_provides`] would.
fn provided_versions(field: &str, name: &str) -> Vec<Option<String>> {
    let mut out = Vec::new();
    for item in field.split(',') {
        let t = item.trim_start();
        // a cheap filter: the item must start with the name, followed by its end
        if !t.starts_with(name) {
            continue;
        }
        let rest = &t[name.len()..];
        if !(rest.is_empty() || rest.starts_with([' ', '\t', '\n', '(', ':'])) {
            continue;
        }
        if let Ok(groups) = parse_relations(item) {
            for a in groups.into_iter().flatten() {
                if a.name == name {
                    out.push(
                        a.constraint
                            .filter(|(o, _)| *o == Op::Eq)
                            .map(|(_, v)| v.to_string()),
                    );
                }
            }
        }
    }
    out
}

/// The names of a Provides field (pkgCacheGenerator::NewProvides).
pub(crate) fn parse_provides(p: &Paragraph) -> Vec<Provide> {
    let Ok(groups) = parse_relations(p.get("Provides").unwrap_or("")) else {
        return Vec::new();
    };
    groups
        .into_iter()
        .flatten()
        .map(|a| Provide {
            name: a.name.to_string(),
        })
        .collect()
}

fn source_of(f: &VerFields<'_>, version: &str) -> (String, String) {
    let name = f.package.unwrap_or("");
    match f.source {
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

impl<'u> DepCache<'u> {
    /// pkgCacheGenerator::NewVersion: a version of `pkg` from an index paragraph or a status
    /// stanza.
    pub(crate) fn make_ver(
        &mut self,
        pkg: PkgId,
        version: &str,
        pref: Option<PkgRef>,
        stanza: Option<&'u str>,
    ) -> VerId {
        let u: &'u Universe = self.u;
        let para = match (pref, stanza) {
            (Some(r), _) => u.paragraph(r),
            (None, Some(s)) => Paragraph::new(s),
            (None, None) => Paragraph::new(""),
        };
        let f = ver_fields(&para);
        let v = Ver {
            pkg,
            version: version.to_string(),
            pref,
            multi_arch: multi_arch_of(f.multi_arch),
            prio: priority_num(f.priority),
            deps: parse_groups(&f, u.native_arch.as_str()).into(),
            source: source_of(&f, version),
        };
        if f.essential {
            self.pkgs[pkg].essential = true;
        }
        if f.important {
            self.pkgs[pkg].important = true;
        }
        self.vers.push(v);
        self.vers.len() - 1
    }

    /// pkgCacheGenerator::NewPackage: the package (name, arch), created on first use with its
    /// installed version and its candidate (policy.cc, see [`crate::candidates`]).
    pub(crate) fn pkg(&mut self, name: &str, arch: &str) -> PkgId {
        if let Some(id) = self.pkg_id(name, arch) {
            return id;
        }
        let id = self.pkgs.len();
        let order = self.package_order(name);
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
            held: false,
            auto: false,
            reason: None,
        });
        self.pkg_ix
            .entry(name.into())
            .or_default()
            .push((arch.into(), id));
        let base = self.base;
        let installed = base.packages.get(&(name.to_string(), arch.to_string()));
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
        let cand = self.default_candidate(id, installed.map(|i| i.version.as_str()), current);
        let held = installed.is_some_and(|i| {
            Paragraph::new(&i.stanza)
                .get("Status")
                .is_some_and(|s| s.starts_with("hold "))
        });
        let p = &mut self.pkgs[id];
        p.held = held;
        p.auto = current.is_some() && self.base.is_auto(name, arch);
        p.current = current;
        p.cand = cand;
        p.inst = current;
        id
    }

    /// apt's package ID order (pkgcachegen.cc: `Pkg->ID = PackageCount++` when a name is
    /// first referenced): the indices in sources order, then the dpkg status file.
    fn package_order(&mut self, name: &str) -> u64 {
        if let Some(r) = self.u.first_reference(name) {
            return r;
        }
        if let Some(i) = self.base.first_reference(name) {
            return (1u64 << 48) + i as u64;
        }
        self.next_order += 1;
        (1u64 << 49) + self.next_order
    }

    pub(crate) fn ver_of(&self, p: PkgId, w: Which) -> Option<VerId> {
        let p = &self.pkgs[p];
        match w {
            Which::Now => p.current,
            Which::Inst => p.inst,
            Which::Cand => p.cand,
        }
    }

    pub(crate) fn parent_arch(&self, v: VerId) -> String {
        self.pkgs[self.vers[v].pkg].arch.clone()
    }

    /// Providers of `name` (pkgCache::PkgIterator::ProvidesList): (owner name, owner arch,
    /// owner version, provided version), from the indices and the installed status. Computed
    /// once per name and shared (a name is asked for again and again while marking).
    pub(crate) fn providers(&mut self, name: &str) -> std::rc::Rc<[ProviderInfo]> {
        if let Some(v) = self.prov_cache.get(name) {
            return std::rc::Rc::clone(v);
        }
        let mut out = Vec::new();
        for r in self.u.providers(name) {
            let p = self.u.paragraph(r);
            for pv in provided_versions(p.get("Provides").unwrap_or(""), name) {
                out.push((
                    self.u.name(r).to_string(),
                    self.u.arch(r).to_string(),
                    self.u.version(r).to_string(),
                    pv,
                ));
            }
        }
        if let Some(list) = self.status_provides.get(name) {
            for (n, a) in list {
                if let Some(i) = self.base.packages.get(&(n.clone(), a.clone())) {
                    let para = Paragraph::new(&i.stanza);
                    for pv in provided_versions(para.get("Provides").unwrap_or(""), name) {
                        out.push((n.clone(), a.clone(), i.version.clone(), pv));
                    }
                }
            }
        }
        out.sort();
        out.dedup();
        let out: std::rc::Rc<[ProviderInfo]> = out.into();
        self.prov_cache
            .insert(name.to_string(), std::rc::Rc::clone(&out));
        out
    }
}
