//! All Packages indices of one target, loaded together: name look-ups, providers, and apt's
//! default candidate policy.

use crate::index::IndexFile;
use crate::store::SourceMeta;
use opaas_deb::{compare_versions, Paragraph};
use std::cmp::Ordering;
use std::collections::HashMap;

/// A paragraph in one of the loaded indices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PkgRef {
    pub src: u16,
    pub idx: u32,
}

/// One version of a package, possibly published in several pockets (same version string).
#[derive(Debug, Clone)]
pub struct Candidate<'u> {
    pub name: &'u str,
    pub arch: &'u str,
    pub version: &'u str,
    /// The paragraph used for fields (the first source in load order that has this version).
    pub main: PkgRef,
    /// Every source publishing this version.
    pub refs: Vec<PkgRef>,
    pub priority: i32,
}

/// The loaded indices.
pub struct Universe {
    pub native_arch: String,
    pub sources: Vec<SourceMeta>,
    files: Vec<IndexFile>,
    by_name: HashMap<Box<str>, Vec<PkgRef>>,
    provides: HashMap<Box<str>, Vec<PkgRef>>,
}

impl Universe {
    pub fn new(native_arch: &str, loaded: Vec<(SourceMeta, IndexFile)>) -> Universe {
        let n: usize = loaded.iter().map(|(_, f)| f.entries.len()).sum();
        let mut by_name: HashMap<Box<str>, Vec<PkgRef>> = HashMap::with_capacity(n);
        let mut provides: HashMap<Box<str>, Vec<PkgRef>> = HashMap::new();
        let (mut sources, mut files) = (Vec::new(), Vec::new());
        for (si, (meta, f)) in loaded.into_iter().enumerate() {
            for (i, e) in f.entries.iter().enumerate() {
                let r = PkgRef {
                    src: si as u16,
                    idx: i as u32,
                };
                let name = f.str_at(e.name);
                match by_name.get_mut(name) {
                    Some(v) => v.push(r),
                    None => {
                        by_name.insert(name.into(), vec![r]);
                    }
                }
            }
            for p in &f.provides {
                let r = PkgRef {
                    src: si as u16,
                    idx: p.entry,
                };
                let name = f.str_at(p.name);
                match provides.get_mut(name) {
                    Some(v) => v.push(r),
                    None => {
                        provides.insert(name.into(), vec![r]);
                    }
                }
            }
            sources.push(meta);
            files.push(f);
        }
        Universe {
            native_arch: native_arch.to_string(),
            sources,
            files,
            by_name,
            provides,
        }
    }

    pub fn len(&self) -> usize {
        self.files.iter().map(|f| f.entries.len()).sum()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn entry(&self, r: PkgRef) -> (&IndexFile, crate::index::Entry) {
        let f = &self.files[r.src as usize];
        (f, f.entries[r.idx as usize])
    }
    pub fn name(&self, r: PkgRef) -> &str {
        let (f, e) = self.entry(r);
        f.str_at(e.name)
    }
    pub fn version(&self, r: PkgRef) -> &str {
        let (f, e) = self.entry(r);
        f.str_at(e.version)
    }
    /// The architecture as written (`all` stays `all`).
    pub fn raw_arch(&self, r: PkgRef) -> &str {
        let (f, e) = self.entry(r);
        f.str_at(e.arch)
    }
    /// The architecture apt files the package under (`all` is the native architecture).
    pub fn arch(&self, r: PkgRef) -> &str {
        match self.raw_arch(r) {
            "all" => &self.native_arch,
            a => a,
        }
    }
    pub fn paragraph(&self, r: PkgRef) -> Paragraph<'_> {
        self.files[r.src as usize].paragraph(r.idx)
    }
    pub fn source(&self, r: PkgRef) -> &SourceMeta {
        &self.sources[r.src as usize]
    }

    /// Every paragraph named `name` (any architecture, any source).
    pub fn named(&self, name: &str) -> &[PkgRef] {
        self.by_name.get(name).map_or(&[], |v| v.as_slice())
    }
    /// Every paragraph that Provides `name`.
    pub fn providers(&self, name: &str) -> &[PkgRef] {
        self.provides.get(name).map_or(&[], |v| v.as_slice())
    }
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(|k| &**k)
    }
    pub fn all_refs(&self) -> impl Iterator<Item = PkgRef> + '_ {
        self.files.iter().enumerate().flat_map(|(s, f)| {
            (0..f.entries.len() as u32).map(move |i| PkgRef {
                src: s as u16,
                idx: i,
            })
        })
    }

    /// The versions of `name` for architecture `arch`, highest first, same versions merged.
    pub fn versions(&self, name: &str, arch: &str) -> Vec<Candidate<'_>> {
        let mut out: Vec<Candidate<'_>> = Vec::new();
        for &r in self.named(name) {
            if self.arch(r) != arch {
                continue;
            }
            let v = self.version(r);
            let prio = self.source(r).priority;
            if let Some(c) = out.iter_mut().find(|c| c.version == v) {
                c.refs.push(r);
                c.priority = c.priority.max(prio);
            } else {
                out.push(Candidate {
                    name: self.name(r),
                    arch: self.arch(r),
                    version: v,
                    main: r,
                    refs: vec![r],
                    priority: prio,
                });
            }
        }
        out.sort_by(|a, b| compare_versions(b.version, a.version));
        out
    }

    /// apt's default candidate (policy.cc `GetCandidateVer`): walking versions from the highest,
    /// the first one with a strictly higher pin priority wins; an installed version (priority
    /// at least 100) is never downgraded below priority 1000.
    pub fn candidate(
        &self,
        name: &str,
        arch: &str,
        installed: Option<&str>,
    ) -> Option<Candidate<'_>> {
        let versions = self.versions(name, arch);
        let mut best: Option<Candidate<'_>> = None;
        let mut best_prio = -1;
        for c in versions {
            let mut p = c.priority;
            if installed == Some(c.version) {
                p = p.max(100);
            }
            if p == 0 || p <= best_prio {
                continue;
            }
            if let Some(inst) = installed {
                if p < 1000 && compare_versions(c.version, inst) == Ordering::Less {
                    continue;
                }
            }
            best_prio = p;
            best = Some(c);
        }
        best
    }
}
