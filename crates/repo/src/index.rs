//! The parsed form of one Packages file, and how it is built and loaded.
//!
//! A verified, decompressed `Packages` file is kept as is and memory-mapped; beside it a small
//! binary `.idx` file lists, for every paragraph, its byte range and the ranges of its
//! Package, Version and Architecture values, plus every name it Provides. Loading an index is
//! reading that table (a few MB for a whole distro) and mapping the text: no paragraph is
//! parsed until somebody asks for it, so a warm load costs milliseconds and the text pages
//! stay file-backed (cheap, shared, evictable) instead of living on the heap.
//!
//! The `.idx` is built while the text is written ([`ScanWriter`]), in one pass, with memory
//! bounded by the longest paragraph's relation fields.
//!
//! The table also keeps, for apt's package ID order, every name the file *references* in the
//! order apt's cache generator would create its package (see [`relation_names`] and
//! docs/apt-semantics.md §7): for each paragraph its own name, then the names of its
//! Pre-Depends, Depends, Conflicts, Breaks, Recommends, Suggests, Replaces, Enhances and
//! Provides, each name once per file, at its first reference.

use memmap2::Mmap;
use std::io::{self, Read, Write};
use std::path::Path;

const MAGIC: &[u8; 8] = b"OPAASIX5";

/// [`IndexFile::marks`] bits: the paragraph says `Essential: yes`.
pub const MARK_ESSENTIAL: u32 = 1;
/// `Priority: required`.
pub const MARK_REQUIRED: u32 = 2;
/// `Important: yes` or `Protected: yes`.
pub const MARK_IMPORTANT: u32 = 4;

/// One paragraph of a Packages file: byte ranges into the text, except `name`, which is a range
/// into the table's own name blob (so indexing every name never touches the text's pages).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Entry {
    pub off: u32,
    pub len: u32,
    pub name: (u32, u32),
    pub version: (u32, u32),
    pub arch: (u32, u32),
}

/// `entry` provides the name at `name` (a range into the name blob).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Provide {
    pub entry: u32,
    pub name: (u32, u32),
}

/// A `Write` that records the paragraph table of the Packages text passing through it.
pub struct ScanWriter<W: Write> {
    inner: W,
    pos: u64,
    line: Vec<u8>,
    line_start: u64,
    cur: Option<Entry>,
    last_field_provides: bool,
    /// The relation field the current line continues ([`REF_FIELDS`] index).
    rel_field: Option<usize>,
    /// The current paragraph's relation field values, by [`REF_FIELDS`] index.
    rel: [Vec<u8>; 9],
    /// Names already referenced in this file.
    seen: hashbrown::HashSet<Vec<u8>>,
    /// MARK_* bits of the current paragraph.
    cur_marks: u32,
    /// (entry, MARK_* bits) of every paragraph with a bit set.
    pub marks: Vec<(u32, u32)>,
    pub entries: Vec<Entry>,
    pub provides: Vec<Provide>,
    /// Names in first-reference order (ranges into `names`).
    pub refs: Vec<(u32, u32)>,
    /// Package, Provides and referenced names, concatenated.
    pub names: Vec<u8>,
}

/// The fields whose names make apt's cache generator create packages, in the order
/// `debListParser::NewVersion` parses them (Provides last, from `ParseProvides`).
pub const REF_FIELDS: [&str; 9] = [
    "Pre-Depends",
    "Depends",
    "Conflicts",
    "Breaks",
    "Recommends",
    "Suggests",
    "Replaces",
    "Enhances",
    "Provides",
];

/// The package names that one relation field value makes apt's cache generator create, in
/// order (pkgCacheListParser::NewDepends / NewProvides with a single configured
/// architecture): every alternative's name, except `name:any`, which creates only the pseudo
/// package `name:any`; an arch-qualified `name:arch` counts as `name`. In Provides, an
/// entry with a relation other than `=` is ignored, as apt ignores it.
pub fn relation_names(value: &[u8], provides: bool, mut f: impl FnMut(&[u8])) {
    for item in value.split(|c| *c == b',' || *c == b'|') {
        let lead = item.iter().take_while(|c| c.is_ascii_whitespace()).count();
        let item = &item[lead..];
        let n = item
            .iter()
            .take_while(|c| !(c.is_ascii_whitespace() || matches!(**c, b'(' | b':' | b'[' | b'<')))
            .count();
        if n == 0 {
            continue;
        }
        let rest = &item[n..];
        if let Some(q) = rest.strip_prefix(b":") {
            let qn = q
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == b'-')
                .count();
            if &q[..qn] == b"any" {
                continue;
            }
        }
        if provides {
            if let Some(open) = rest.iter().position(|c| *c == b'(') {
                let op: Vec<u8> = rest[open + 1..]
                    .iter()
                    .copied()
                    .skip_while(|c| c.is_ascii_whitespace())
                    .take_while(|c| matches!(c, b'<' | b'>' | b'='))
                    .collect();
                if op != b"=" {
                    continue;
                }
            }
        }
        f(&item[..n]);
    }
}

impl<W: Write> ScanWriter<W> {
    pub fn new(inner: W) -> Self {
        ScanWriter {
            inner,
            pos: 0,
            line: Vec::with_capacity(4096),
            line_start: 0,
            cur: None,
            last_field_provides: false,
            rel_field: None,
            rel: Default::default(),
            seen: hashbrown::HashSet::new(),
            cur_marks: 0,
            marks: Vec::new(),
            entries: Vec::new(),
            provides: Vec::new(),
            refs: Vec::new(),
            names: Vec::new(),
        }
    }

    fn end_paragraph(&mut self, end: u64) {
        self.rel_field = None;
        let marks = std::mem::take(&mut self.cur_marks);
        if let Some(mut e) = self.cur.take() {
            e.len = (end - e.off as u64) as u32;
            if e.name.1 > 0 {
                if marks != 0 {
                    self.marks.push((self.entries.len() as u32, marks));
                }
                self.entries.push(e);
                let own = self.names[e.name.0 as usize..(e.name.0 + e.name.1) as usize].to_vec();
                self.reference(&own);
                let rel = std::mem::take(&mut self.rel);
                for (k, v) in rel.iter().enumerate() {
                    relation_names(v, k == 8, |n| self.reference(n));
                }
                self.rel = rel;
            }
        }
        for v in &mut self.rel {
            v.clear();
        }
    }

    /// Records `name` as referenced, if this file has not referenced it yet.
    fn reference(&mut self, name: &[u8]) {
        if self.seen.contains(name) {
            return;
        }
        self.seen.insert(name.to_vec());
        self.refs.push((self.names.len() as u32, name.len() as u32));
        self.names.extend_from_slice(name);
    }

    fn on_line(&mut self) {
        let line = std::mem::take(&mut self.line);
        let start = self.line_start;
        let content = line.strip_suffix(b"\n").unwrap_or(&line);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        if content.iter().all(|c| c.is_ascii_whitespace()) {
            self.end_paragraph(start);
        } else {
            let cur = self.cur.get_or_insert(Entry {
                off: start as u32,
                ..Entry::default()
            });
            let value = |prefix_len: usize| -> (u32, u32) {
                let v = &content[prefix_len..];
                let lead = v.iter().take_while(|c| **c == b' ' || **c == b'\t').count();
                let v = &v[lead..];
                let trail = v
                    .iter()
                    .rev()
                    .take_while(|c| c.is_ascii_whitespace())
                    .count();
                (
                    (start as usize + prefix_len + lead) as u32,
                    (v.len() - trail) as u32,
                )
            };
            let is_cont = content[0] == b' ' || content[0] == b'\t';
            let mut provides_at: Option<usize> = None;
            if is_cont {
                if self.last_field_provides {
                    provides_at = Some(0);
                }
                if let Some(k) = self.rel_field {
                    self.rel[k].push(b' ');
                    self.rel[k].extend_from_slice(content);
                }
            } else {
                self.last_field_provides = false;
                self.rel_field = None;
                let v =
                    |p: &[u8]| -> Option<&[u8]> { content.strip_prefix(p).map(|x| x.trim_ascii()) };
                if v(b"Essential:") == Some(b"yes") {
                    self.cur_marks |= MARK_ESSENTIAL;
                } else if v(b"Priority:") == Some(b"required") {
                    self.cur_marks |= MARK_REQUIRED;
                } else if v(b"Important:") == Some(b"yes") || v(b"Protected:") == Some(b"yes") {
                    self.cur_marks |= MARK_IMPORTANT;
                }
                if let Some(colon) = content.iter().position(|c| *c == b':') {
                    let field = &content[..colon];
                    if let Some(k) = REF_FIELDS
                        .iter()
                        .position(|f| f.as_bytes().eq_ignore_ascii_case(field))
                    {
                        self.rel_field = Some(k);
                        self.rel[k].push(b',');
                        self.rel[k].extend_from_slice(&content[colon + 1..]);
                    }
                }
                if content.starts_with(b"Package:") {
                    let (o, l) = value(8);
                    let rel = (o as u64 - start) as usize;
                    cur.name = (self.names.len() as u32, l);
                    self.names
                        .extend_from_slice(&content[rel..rel + l as usize]);
                } else if content.starts_with(b"Version:") {
                    cur.version = value(8);
                } else if content.starts_with(b"Architecture:") {
                    cur.arch = value(13);
                } else if content.starts_with(b"Provides:") {
                    self.last_field_provides = true;
                    provides_at = Some(9);
                }
            }
            if let Some(p) = provides_at {
                let entry = self.entries.len() as u32;
                let text = &content[p..];
                for item in text.split(|c| *c == b',' || *c == b'|') {
                    let lead = item.iter().take_while(|c| c.is_ascii_whitespace()).count();
                    let name_len = item[lead..]
                        .iter()
                        .take_while(|c| !(c.is_ascii_whitespace() || **c == b'(' || **c == b':'))
                        .count();
                    if name_len > 0 {
                        let name = &item[lead..lead + name_len];
                        self.provides.push(Provide {
                            entry,
                            name: (self.names.len() as u32, name_len as u32),
                        });
                        self.names.extend_from_slice(name);
                    }
                }
            }
        }
        self.line = line;
        self.line.clear();
    }

    /// Flushes and returns the inner writer plus the table.
    pub fn finish(mut self) -> io::Result<(W, Table)> {
        if !self.line.is_empty() {
            self.on_line();
        }
        self.end_paragraph(self.pos);
        self.inner.flush()?;
        Ok((
            self.inner,
            Table {
                refs_by_name: sort_refs(&self.refs, &self.names),
                entries: self.entries,
                provides: self.provides,
                refs: self.refs,
                marks: self.marks,
                names: self.names,
            },
        ))
    }

    pub fn bytes_written(&self) -> u64 {
        self.pos
    }
}

impl<W: Write> Write for ScanWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        let mut rest = &buf[..n];
        while !rest.is_empty() {
            if self.line.is_empty() {
                self.line_start = self.pos;
            }
            match rest.iter().position(|c| *c == b'\n') {
                Some(i) => {
                    self.line.extend_from_slice(&rest[..=i]);
                    self.pos += (i + 1) as u64;
                    rest = &rest[i + 1..];
                    self.on_line();
                }
                None => {
                    self.line.extend_from_slice(rest);
                    self.pos += rest.len() as u64;
                    rest = &[];
                }
            }
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The paragraph table of one Packages text.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub entries: Vec<Entry>,
    pub provides: Vec<Provide>,
    /// Referenced names in first-reference order (ranges into `names`).
    pub refs: Vec<(u32, u32)>,
    /// (entry, MARK_* bits) of the Essential, required and Important paragraphs.
    pub marks: Vec<(u32, u32)>,
    /// Indices into `refs`, sorted by name (a name's first reference by binary search).
    pub refs_by_name: Vec<u32>,
    pub names: Vec<u8>,
}

/// The permutation of `refs` that sorts them by name.
fn sort_refs(refs: &[(u32, u32)], names: &[u8]) -> Vec<u32> {
    let name = |r: (u32, u32)| &names[r.0 as usize..(r.0 + r.1) as usize];
    let mut v: Vec<u32> = (0..refs.len() as u32).collect();
    v.sort_by(|&a, &b| name(refs[a as usize]).cmp(name(refs[b as usize])));
    v
}

/// Serializes the table. `sha256` identifies the text it describes.
pub fn write_idx(
    w: &mut impl Write,
    sha256: &[u8; 32],
    text_len: u64,
    t: &Table,
) -> io::Result<()> {
    let (entries, provides) = (&t.entries, &t.provides);
    let mut b = Vec::with_capacity(
        68 + entries.len() * 32
            + provides.len() * 12
            + t.refs.len() * 8
            + t.marks.len() * 8
            + t.refs_by_name.len() * 4
            + t.names.len(),
    );
    b.extend_from_slice(MAGIC);
    b.extend_from_slice(sha256);
    b.extend_from_slice(&text_len.to_le_bytes());
    b.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    b.extend_from_slice(&(provides.len() as u32).to_le_bytes());
    b.extend_from_slice(&(t.refs.len() as u32).to_le_bytes());
    b.extend_from_slice(&(t.marks.len() as u32).to_le_bytes());
    b.extend_from_slice(&(t.names.len() as u32).to_le_bytes());
    for e in entries {
        for x in [
            e.off,
            e.len,
            e.name.0,
            e.name.1,
            e.version.0,
            e.version.1,
            e.arch.0,
            e.arch.1,
        ] {
            b.extend_from_slice(&x.to_le_bytes());
        }
    }
    for p in provides {
        for x in [p.entry, p.name.0, p.name.1] {
            b.extend_from_slice(&x.to_le_bytes());
        }
    }
    for r in t.refs.iter().chain(&t.marks) {
        for x in [r.0, r.1] {
            b.extend_from_slice(&x.to_le_bytes());
        }
    }
    for i in &t.refs_by_name {
        b.extend_from_slice(&i.to_le_bytes());
    }
    b.extend_from_slice(&t.names);
    w.write_all(&b)
}

/// The text of a loaded Packages file: mapped from the cache, or owned (built in memory).
enum Text {
    Mapped(Mmap),
    Owned(Vec<u8>),
}

/// A loaded Packages file: the mapped text and its table.
pub struct IndexFile {
    text: Option<Text>,
    pub sha256: [u8; 32],
    pub entries: Vec<Entry>,
    pub provides: Vec<Provide>,
    /// Names in the order this file first references them (apt's package ID order).
    pub refs: Vec<(u32, u32)>,
    /// (entry, MARK_* bits) of the Essential, required and Important paragraphs.
    pub marks: Vec<(u32, u32)>,
    /// Indices into `refs`, sorted by name.
    pub refs_by_name: Vec<u32>,
    pub names: Vec<u8>,
}

fn bad(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.to_string())
}

impl IndexFile {
    /// Loads `text_path` and its `.idx`; a table that does not match the text is an error
    /// (the caller rebuilds it).
    pub fn load(text_path: &Path, idx_path: &Path) -> io::Result<IndexFile> {
        let mut raw = Vec::new();
        std::fs::File::open(idx_path)?.read_to_end(&mut raw)?;
        const HDR: usize = 68;
        if raw.len() < HDR || &raw[..8] != MAGIC {
            return Err(bad("index table has a wrong header"));
        }
        let u32_at = |i: usize| u32::from_le_bytes([raw[i], raw[i + 1], raw[i + 2], raw[i + 3]]);
        let mut sha256 = [0u8; 32];
        sha256.copy_from_slice(&raw[8..40]);
        let mut l = [0u8; 8];
        l.copy_from_slice(&raw[40..48]);
        let text_len = u64::from_le_bytes(l);
        let ne = u32_at(48) as usize;
        let np = u32_at(52) as usize;
        let nr = u32_at(56) as usize;
        let nm = u32_at(60) as usize;
        let nb = u32_at(64) as usize;
        if raw.len() != HDR + ne * 32 + np * 12 + nr * 8 + nm * 8 + nr * 4 + nb {
            return Err(bad("index table is truncated"));
        }
        let f = std::fs::File::open(text_path)?;
        if f.metadata()?.len() != text_len {
            return Err(bad("Packages text does not match its index table"));
        }
        // SAFETY: cache files are only ever replaced by rename, never written in place, so the
        // mapping stays valid and unchanged for its lifetime.
        let text = if text_len == 0 {
            None
        } else {
            Some(Text::Mapped(unsafe { Mmap::map(&f)? }))
        };
        let mut entries = Vec::with_capacity(ne);
        for k in 0..ne {
            let b = HDR + k * 32;
            let x = |j: usize| u32_at(b + 4 * j);
            let e = Entry {
                off: x(0),
                len: x(1),
                name: (x(2), x(3)),
                version: (x(4), x(5)),
                arch: (x(6), x(7)),
            };
            if e.off as u64 + e.len as u64 > text_len || e.name.0 as usize + e.name.1 as usize > nb
            {
                return Err(bad("index table points outside the text"));
            }
            entries.push(e);
        }
        let mut provides = Vec::with_capacity(np);
        let pb = HDR + ne * 32;
        for k in 0..np {
            let b = pb + k * 12;
            let p = Provide {
                entry: u32_at(b),
                name: (u32_at(b + 4), u32_at(b + 8)),
            };
            if p.entry as usize >= ne || p.name.0 as usize + p.name.1 as usize > nb {
                return Err(bad("index table has a bad Provides entry"));
            }
            provides.push(p);
        }
        let rb = pb + np * 12;
        let mut refs = Vec::with_capacity(nr);
        for k in 0..nr {
            let r = (u32_at(rb + k * 8), u32_at(rb + k * 8 + 4));
            if r.0 as usize + r.1 as usize > nb {
                return Err(bad("index table has a bad reference"));
            }
            refs.push(r);
        }
        let mb = rb + nr * 8;
        let mut marks = Vec::with_capacity(nm);
        for k in 0..nm {
            let m = (u32_at(mb + k * 8), u32_at(mb + k * 8 + 4));
            if m.0 as usize >= ne {
                return Err(bad("index table has a bad mark"));
            }
            marks.push(m);
        }
        let sb = mb + nm * 8;
        let mut refs_by_name = Vec::with_capacity(nr);
        for k in 0..nr {
            let i = u32_at(sb + k * 4);
            if i as usize >= nr {
                return Err(bad("index table has a bad reference order"));
            }
            refs_by_name.push(i);
        }
        let names = raw[sb + nr * 4..].to_vec();
        let file = IndexFile {
            text,
            sha256,
            entries,
            provides,
            refs,
            marks,
            refs_by_name,
            names,
        };
        // the text was verified by hash when written; a cheap sanity check of UTF-8 happens
        // per paragraph on access.
        Ok(file)
    }

    /// An index over Packages text held in memory (no cache files, no signature): for
    /// tests and tools that make their own paragraphs.
    pub fn from_text(text: impl Into<Vec<u8>>) -> IndexFile {
        let text = text.into();
        let mut sw = ScanWriter::new(io::sink());
        // writing to a sink cannot fail
        let _ = sw.write_all(&text);
        let table = match sw.finish() {
            Ok((_, t)) => t,
            Err(_) => Table::default(),
        };
        IndexFile {
            text: Some(Text::Owned(text)),
            sha256: [0; 32],
            entries: table.entries,
            provides: table.provides,
            refs: table.refs,
            marks: table.marks,
            refs_by_name: table.refs_by_name,
            names: table.names,
        }
    }

    pub fn text(&self) -> &[u8] {
        match &self.text {
            Some(Text::Mapped(m)) => m,
            Some(Text::Owned(v)) => v,
            None => &[],
        }
    }

    /// The string at an absolute range (empty if it is not UTF-8).
    pub fn str_at(&self, r: (u32, u32)) -> &str {
        let t = self.text();
        let (a, b) = (r.0 as usize, r.0 as usize + r.1 as usize);
        t.get(a..b)
            .and_then(|s| std::str::from_utf8(s).ok())
            .unwrap_or("")
    }

    /// The position of `name`'s first reference in this file (see [`ScanWriter`]).
    pub fn first_reference(&self, name: &str) -> Option<u32> {
        self.refs_by_name
            .binary_search_by(|&i| self.name_at(self.refs[i as usize]).cmp(name))
            .ok()
            .map(|k| self.refs_by_name[k])
    }

    /// A name (Package or Provides) from the name blob.
    pub fn name_at(&self, r: (u32, u32)) -> &str {
        let (a, b) = (r.0 as usize, r.0 as usize + r.1 as usize);
        self.names
            .get(a..b)
            .and_then(|s| std::str::from_utf8(s).ok())
            .unwrap_or("")
    }

    /// The whole paragraph of entry `i`.
    pub fn paragraph(&self, i: u32) -> opaas_deb::Paragraph<'_> {
        let e = self.entries[i as usize];
        opaas_deb::Paragraph::new(self.str_at((e.off, e.len)).trim_end())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// apt's cache generator creates a paragraph's package, then the targets of its relation
    /// fields in parse order (not text order), then its Provides; `name:any` creates only a
    /// pseudo package.
    #[test]
    fn references_follow_apt_creation_order() {
        let text = "Package: p\nProvides: virt, bad (>= 1)\nDepends: d1 | d2:any, d3:amd64\nRecommends: r1,\n r2\nPre-Depends: pre\nReplaces: old\nConflicts: d1, c1\nBreaks: b1\n\nPackage: q\nDepends: d1, p, newdep\nEnhances: en\nSuggests: s1\n\nPackage: r1\n";
        let ix = IndexFile::from_text(text);
        let refs: Vec<_> = ix.refs.iter().map(|r| ix.name_at(*r)).collect();
        assert_eq!(
            refs,
            [
                "p", "pre", "d1", "d3", "c1", "b1", "r1", "r2", "old", "virt", "q", "newdep", "s1",
                "en"
            ]
        );
    }

    #[test]
    fn essential_required_and_important_paragraphs_are_marked() {
        let text = "Package: a\nEssential: yes\nPriority: required\n\nPackage: b\nPriority: optional\n\nPackage: c\nPriority: required\n\nPackage: d\nProtected: yes\n";
        let ix = IndexFile::from_text(text);
        assert_eq!(
            ix.marks,
            [
                (0, MARK_ESSENTIAL | MARK_REQUIRED),
                (2, MARK_REQUIRED),
                (3, MARK_IMPORTANT)
            ]
        );
    }

    #[test]
    fn scan_write_load() {
        let text = "Package: a\nVersion: 1.0\nArchitecture: amd64\nProvides: x (= 1), y:any,\n z\nDescription: d\n more\n\nPackage: b\nArchitecture: all\nVersion: 2\n";
        let mut sw = ScanWriter::new(Vec::new());
        // write in odd-sized chunks to exercise line reassembly
        for chunk in text.as_bytes().chunks(7) {
            sw.write_all(chunk).expect("write");
        }
        let (out, table) = sw.finish().expect("finish");
        assert_eq!(out, text.as_bytes());
        assert_eq!(table.entries.len(), 2);
        let d = tempfile::tempdir().expect("tmp");
        let (tp, ip) = (d.path().join("P"), d.path().join("P.idx"));
        std::fs::write(&tp, text).expect("w");
        let mut f = std::fs::File::create(&ip).expect("c");
        write_idx(&mut f, &[7; 32], text.len() as u64, &table).expect("idx");
        let ix = IndexFile::load(&tp, &ip).expect("load");
        assert_eq!(ix.name_at(ix.entries[0].name), "a");
        assert_eq!(ix.str_at(ix.entries[0].version), "1.0");
        assert_eq!(ix.str_at(ix.entries[1].arch), "all");
        assert_eq!(ix.str_at(ix.entries[1].version), "2");
        let pn: Vec<_> = ix.provides.iter().map(|p| ix.name_at(p.name)).collect();
        assert_eq!(pn, ["x", "y", "z"]);
        assert_eq!(ix.paragraph(1).get("Version"), Some("2"));
        assert_eq!(ix.paragraph(0).get("Description"), Some("d\n more"));
        // a table for another text is refused
        std::fs::write(&tp, "Package: a\n").expect("w");
        assert!(IndexFile::load(&tp, &ip).is_err());
        // the same text indexed in memory gives the same table
        let mem = IndexFile::from_text(text);
        assert_eq!(mem.entries, ix.entries);
        assert_eq!(mem.provides, ix.provides);
        assert_eq!(mem.names, ix.names);
        assert_eq!(mem.refs, ix.refs);
        let refs: Vec<_> = ix.refs.iter().map(|r| ix.name_at(*r)).collect();
        assert_eq!(refs, ["a", "x", "z", "b"]);
        assert_eq!(mem.marks, ix.marks);
        assert_eq!(mem.refs_by_name, ix.refs_by_name);
        assert_eq!(ix.first_reference("z"), Some(2));
        assert_eq!(ix.first_reference("a"), Some(0));
        assert_eq!(ix.first_reference("y"), None);
        assert_eq!(mem.paragraph(0).get("Description"), Some("d\n more"));
    }
}
