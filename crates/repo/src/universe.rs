//! All Packages indices of one target, loaded together: name look-ups, providers, and apt's
//! default candidate policy.

use crate::index::IndexFile;
use crate::store::SourceMeta;
use opaas_deb::{compare_versions, Paragraph};
use std::cmp::Ordering;
use std::hash::BuildHasher;

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

/// Names → paragraphs, allocation-free: a hash table of slots whose key strings live in the
/// index files' name blobs, and one array of references grouped by slot (so a look-up returns
/// a slice).
#[derive(Default)]
struct NameTable {
    table: hashbrown::HashTable<u32>,
    slots: Vec<Slot>,
    refs: Vec<PkgRef>,
}

#[derive(Clone, Copy)]
struct Slot {
    src: u16,
    name: (u32, u32),
    start: u32,
    len: u32,
}

impl NameTable {
    /// `items`: (src, entry, name range in that file's blob).
    fn build(
        files: &[IndexFile],
        items: impl Iterator<Item = (u16, u32, (u32, u32))> + Clone,
        hasher: &hashbrown::DefaultHashBuilder,
    ) -> NameTable {
        let mut t = NameTable::default();
        let mut of_item: Vec<u32> = Vec::new();
        for (src, _, name) in items.clone() {
            let key = files[src as usize].name_at(name);
            let h = hasher.hash_one(key);
            let slots = &t.slots;
            let found = t.table.find(h, |&s| {
                let sl = slots[s as usize];
                files[sl.src as usize].name_at(sl.name) == key
            });
            let s = match found {
                Some(&s) => s,
                None => {
                    let s = t.slots.len() as u32;
                    t.slots.push(Slot {
                        src,
                        name,
                        start: 0,
                        len: 0,
                    });
                    let slots = &t.slots;
                    t.table.insert_unique(h, s, |&x| {
                        let sl = slots[x as usize];
                        hasher.hash_one(files[sl.src as usize].name_at(sl.name))
                    });
                    s
                }
            };
            t.slots[s as usize].len += 1;
            of_item.push(s);
        }
        let mut next = 0u32;
        for sl in &mut t.slots {
            sl.start = next;
            next += sl.len;
            sl.len = 0;
        }
        t.refs = vec![PkgRef { src: 0, idx: 0 }; next as usize];
        for ((src, idx, _), s) in items.zip(of_item) {
            let sl = &mut t.slots[s as usize];
            t.refs[(sl.start + sl.len) as usize] = PkgRef { src, idx };
            sl.len += 1;
        }
        t
    }

    fn get(
        &self,
        files: &[IndexFile],
        hasher: &hashbrown::DefaultHashBuilder,
        name: &str,
    ) -> &[PkgRef] {
        let h = hasher.hash_one(name);
        match self.table.find(h, |&s| {
            let sl = self.slots[s as usize];
            files[sl.src as usize].name_at(sl.name) == name
        }) {
            Some(&s) => {
                let sl = self.slots[s as usize];
                &self.refs[sl.start as usize..(sl.start + sl.len) as usize]
            }
            None => &[],
        }
    }
}

/// The loaded indices.
pub struct Universe {
    pub native_arch: String,
    pub sources: Vec<SourceMeta>,
    files: Vec<IndexFile>,
    hasher: hashbrown::DefaultHashBuilder,
    by_name: NameTable,
    provides: NameTable,
}

impl Universe {
    pub fn new(native_arch: &str, loaded: Vec<(SourceMeta, IndexFile)>) -> Universe {
        let (sources, files): (Vec<SourceMeta>, Vec<IndexFile>) = loaded.into_iter().unzip();
        let hasher = hashbrown::DefaultHashBuilder::default();
        let fr = &files;
        let entries = fr.iter().enumerate().flat_map(|(s, f)| {
            f.entries
                .iter()
                .enumerate()
                .map(move |(i, e)| (s as u16, i as u32, e.name))
        });
        let by_name = NameTable::build(fr, entries, &hasher);
        let provs = fr
            .iter()
            .enumerate()
            .flat_map(|(s, f)| f.provides.iter().map(move |p| (s as u16, p.entry, p.name)));
        let provides = NameTable::build(fr, provs, &hasher);
        Universe {
            native_arch: native_arch.to_string(),
            sources,
            files,
            hasher,
            by_name,
            provides,
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

    /// Every paragraph named `name` (any architecture, any source).
    pub fn named(&self, name: &str) -> &[PkgRef] {
        self.by_name.get(&self.files, &self.hasher, name)
    }
    /// Every paragraph that Provides `name`.
    pub fn providers(&self, name: &str) -> &[PkgRef] {
        self.provides.get(&self.files, &self.hasher, name)
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
            f.marks
                .iter()
                .filter(move |(_, bits)| bits & mask != 0)
                .map(move |&(idx, _)| PkgRef { src: s as u16, idx })
        })
    }

    /// Every distinct package name.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name
            .slots
            .iter()
            .map(|sl| self.files[sl.src as usize].name_at(sl.name))
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
