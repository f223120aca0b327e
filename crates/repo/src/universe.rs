//! All Packages indices of one target, loaded together: name look-ups, providers, and apt's
//! default candidate policy.

use crate::index::IndexFile;
use crate::store::SourceMeta;
use opaas_deb::{compare_versions, Paragraph};
use std::cmp::Ordering;

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

/// The loaded indices. Look-ups by name are binary searches in each file's name-sorted
/// permutations (built once when the index was written, and mapped): nothing is built per
/// process, so loading a target's indices costs page faults, not a pass over 60 000 names.
pub struct Universe {
    pub native_arch: String,
    pub sources: Vec<SourceMeta>,
    files: Vec<IndexFile>,
}

impl Universe {
    /// The `.idx` tables whose CRC check (run beside the caller's work since loading) failed.
    /// Whatever was computed from this universe is then not to be trusted: remove them
    /// ([`crate::store::remove_damaged`]), load again (they are rebuilt from the verified
    /// Packages text) and compute again.
    pub fn damaged_tables(&self) -> Vec<std::path::PathBuf> {
        self.files
            .iter()
            .filter_map(IndexFile::damaged_path)
            .collect()
    }

    pub fn new(native_arch: &str, loaded: Vec<(SourceMeta, IndexFile)>) -> Universe {
        let (sources, files): (Vec<SourceMeta>, Vec<IndexFile>) = loaded.into_iter().unzip();
        Universe {
            native_arch: native_arch.to_string(),
            sources,
            files,
        }
    }

    /// A universe over Packages texts held in memory, one per source, in load order: no HTTP,
    /// no OpenPGP, no cache directory (solver tests, tools). `SourceMeta` gives each text its
    /// suite, component, architecture and pin priority as `store::load_cached` would.
    pub fn from_texts(native_arch: &str, texts: Vec<(SourceMeta, String)>) -> Universe {
        Universe::new(
            native_arch,
            texts
                .into_iter()
                .map(|(m, t)| (m, IndexFile::from_text(t)))
                .collect(),
        )
    }

    pub fn len(&self) -> usize {
        self.files.iter().map(|f| f.entry_count()).sum()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn entry(&self, r: PkgRef) -> (&IndexFile, crate::index::Entry) {
        let f = &self.files[r.src as usize];
        (f, f.entry(r.idx))
    }
    pub fn name(&self, r: PkgRef) -> &str {
        let (f, e) = self.entry(r);
        f.name_at(e.name)
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

    /// Every paragraph named `name` (any architecture, any source), sources in load order.
    pub fn named(&self, name: &str) -> Vec<PkgRef> {
        let mut out = Vec::new();
        for (s, f) in self.files.iter().enumerate() {
            out.extend(
                f.entries_named(name)
                    .map(|idx| PkgRef { src: s as u16, idx }),
            );
        }
        out
    }
    /// Every paragraph that Provides `name` (once per Provides item), sources in load order.
    pub fn providers(&self, name: &str) -> Vec<PkgRef> {
        let mut out = Vec::new();
        for (s, f) in self.files.iter().enumerate() {
            out.extend(
                f.providers_of(name)
                    .map(|idx| PkgRef { src: s as u16, idx }),
            );
        }
        out
    }
    /// apt's package ID order of `name` among the loaded indices: the position of its first
    /// reference (a paragraph of its own, a relation naming it, a Provides), files in load
    /// order. `None` when no index mentions it (a name only the dpkg status knows, which apt
    /// creates after every index). See docs/apt-semantics.md §7.
    pub fn first_reference(&self, name: &str) -> Option<u64> {
        self.files.iter().enumerate().find_map(|(s, f)| {
            f.first_reference(name)
                .map(|i| ((s as u64) << 32) | i as u64)
        })
    }

    /// Every paragraph whose MARK_* bits (`Essential: yes`, `Priority: required`, `Important` /
    /// `Protected: yes`; see [`crate::index`]) intersect `mask`, recorded when the index was
    /// written: no paragraph is parsed to find them.
    pub fn marked(&self, mask: u32) -> impl Iterator<Item = PkgRef> + '_ {
        self.files.iter().enumerate().flat_map(move |(s, f)| {
            f.marks()
                .filter(move |(_, bits)| bits & mask != 0)
                .map(move |(idx, _)| PkgRef { src: s as u16, idx })
        })
    }

    /// Every distinct package name, sorted (a merge of each file's sorted names).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        let mut its: Vec<_> = self
            .files
            .iter()
            .map(|f| f.sorted_names().peekable())
            .collect();
        let mut last: Option<&str> = None;
        std::iter::from_fn(move || loop {
            let k = its
                .iter_mut()
                .enumerate()
                .filter_map(|(k, it)| it.peek().map(|n| (k, *n)))
                .min_by(|a, b| a.1.cmp(b.1))?
                .0;
            let n = its[k].next()?;
            if last != Some(n) {
                last = Some(n);
                return Some(n);
            }
        })
    }
    pub fn all_refs(&self) -> impl Iterator<Item = PkgRef> + '_ {
        self.files.iter().enumerate().flat_map(|(s, f)| {
            (0..f.entry_count() as u32).map(move |i| PkgRef {
                src: s as u16,
                idx: i,
            })
        })
    }

    /// The versions of `name` for architecture `arch`, highest first, same versions merged.
    pub fn versions(&self, name: &str, arch: &str) -> Vec<Candidate<'_>> {
        let mut out: Vec<Candidate<'_>> = Vec::new();
        for r in self.named(name) {
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
