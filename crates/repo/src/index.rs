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
use std::io::{self, Write};
use std::path::Path;

const MAGIC: &[u8; 8] = b"OPAASIX6";

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
                entries: self.entries,
                provides: self.provides,
                refs: self.refs,
                marks: self.marks,
                names: self.names,
                ..Table::default()
            }
            .with_orders(),
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
    /// Indices into `entries`, sorted by package name (stable): a name's paragraphs are a run.
    pub entries_by_name: Vec<u32>,
    /// Indices into `provides`, sorted by the provided name (stable).
    pub provides_by_name: Vec<u32>,
    pub names: Vec<u8>,
}

/// The permutation of `items` that sorts them by the name each one's range points to.
fn sort_by_names(items: &[(u32, u32)], names: &[u8]) -> Vec<u32> {
    let name = |r: (u32, u32)| &names[r.0 as usize..(r.0 + r.1) as usize];
    let mut v: Vec<u32> = (0..items.len() as u32).collect();
    v.sort_by(|&a, &b| name(items[a as usize]).cmp(name(items[b as usize])));
    v
}

impl Table {
    /// Fills the name-sorted permutations from the rest.
    fn with_orders(mut self) -> Table {
        self.refs_by_name = sort_by_names(&self.refs, &self.names);
        let en: Vec<(u32, u32)> = self.entries.iter().map(|e| e.name).collect();
        self.entries_by_name = sort_by_names(&en, &self.names);
        let pn: Vec<(u32, u32)> = self.provides.iter().map(|p| p.name).collect();
        self.provides_by_name = sort_by_names(&pn, &self.names);
        self
    }
}

/// The header: magic, the text's SHA-256 and length, the five counts (entries, provides,
/// refs, marks, name bytes) and a CRC-32 of everything after the header.
const HDR: usize = 72;

/// Serializes the table. `sha256` identifies the text it describes.
pub fn write_idx(
    w: &mut impl Write,
    sha256: &[u8; 32],
    text_len: u64,
    t: &Table,
) -> io::Result<()> {
    w.write_all(&idx_bytes(sha256, text_len, t))
}

fn idx_bytes(sha256: &[u8; 32], text_len: u64, t: &Table) -> Vec<u8> {
    let (entries, provides) = (&t.entries, &t.provides);
    let mut b = Vec::with_capacity(
        HDR + entries.len() * 36
            + provides.len() * 16
            + t.refs.len() * 12
            + t.marks.len() * 8
            + t.names.len(),
    );
    b.extend_from_slice(MAGIC);
    b.extend_from_slice(sha256);
    b.extend_from_slice(&text_len.to_le_bytes());
    for n in [
        entries.len(),
        provides.len(),
        t.refs.len(),
        t.marks.len(),
        t.names.len(),
    ] {
        b.extend_from_slice(&(n as u32).to_le_bytes());
    }
    b.extend_from_slice(&[0; 4]); // the CRC, below
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
    for i in t
        .refs_by_name
        .iter()
        .chain(&t.entries_by_name)
        .chain(&t.provides_by_name)
    {
        b.extend_from_slice(&i.to_le_bytes());
    }
    b.extend_from_slice(&t.names);
    let crc = crc32fast::hash(&b[HDR..]);
    b[HDR - 4..HDR].copy_from_slice(&crc.to_le_bytes());
    b
}

/// Bytes held by a loaded index: mapped from the cache, or owned (built in memory).
enum Bytes {
    Mapped(Mmap),
    Owned(Vec<u8>),
}

impl Bytes {
    fn get(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// A loaded Packages file: the mapped text and its mapped table. Nothing is copied or parsed
/// at load; every accessor reads the table in place, so loading a whole distro costs a few page
/// faults, not a pass over its entries.
///
/// The table's CRC is checked on another thread while the caller works ([`IndexFile::load`]);
/// the caller asks [`IndexFile::intact`] before it trusts what it computed (a damaged table is
/// removed and rebuilt from its verified text). Until then every accessor is still safe on any
/// bytes: reads are bounds-checked and names are checked UTF-8 one by one.
pub struct IndexFile {
    text: Option<Bytes>,
    idx: std::sync::Arc<Bytes>,
    /// The `.idx` file this table was loaded from.
    idx_path: Option<std::path::PathBuf>,
    /// The CRC check: running (`pending`), or its result.
    pending: std::sync::Mutex<Option<std::thread::JoinHandle<bool>>>,
    crc_ok: std::sync::OnceLock<bool>,
    pub sha256: [u8; 32],
    ne: usize,
    np: usize,
    nr: usize,
    nm: usize,
    nb: usize,
}

fn crc_matches(raw: &[u8]) -> bool {
    raw.len() >= HDR && crc32fast::hash(&raw[HDR..]) == le32(raw, 68)
}

fn bad(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.to_string())
}

fn le32(b: &[u8], i: usize) -> u32 {
    match b.get(i..i + 4) {
        Some(x) => u32::from_le_bytes([x[0], x[1], x[2], x[3]]),
        None => 0,
    }
}

impl IndexFile {
    /// Loads `text_path` and its `.idx`; a table that does not match the text, or whose CRC
    /// fails, is an error (the caller rebuilds it).
    pub fn load(text_path: &Path, idx_path: &Path) -> io::Result<IndexFile> {
        let fi = std::fs::File::open(idx_path)?;
        // SAFETY: cache files are only ever replaced by rename, never written in place, so the
        // mapping stays valid and unchanged for its lifetime.
        let idx = if fi.metadata()?.len() == 0 {
            Bytes::Owned(Vec::new())
        } else {
            Bytes::Mapped(unsafe { Mmap::map(&fi)? })
        };
        let f = std::fs::File::open(text_path)?;
        let text_len = f.metadata()?.len();
        let text = if text_len == 0 {
            None
        } else {
            Some(Bytes::Mapped(unsafe { Mmap::map(&f)? }))
        };
        let mut f = IndexFile::from_parts(text, idx, Some(text_len))?;
        f.idx_path = Some(idx_path.to_path_buf());
        // the CRC pass reads every page of the table; it runs beside the caller's work
        let bytes = std::sync::Arc::clone(&f.idx);
        match std::thread::Builder::new()
            .name("opaas-idx-crc".into())
            .spawn(move || crc_matches(bytes.get()))
        {
            Ok(h) => {
                if let Ok(mut p) = f.pending.lock() {
                    *p = Some(h);
                }
            }
            Err(_) => {
                let _ = f.crc_ok.set(crc_matches(f.raw()));
            }
        }
        Ok(f)
    }

    /// Loads and checks the CRC at once (for callers that keep the table for long).
    pub fn load_checked(text_path: &Path, idx_path: &Path) -> io::Result<IndexFile> {
        let f = IndexFile::load(text_path, idx_path)?;
        if !f.intact() {
            return Err(bad("index table is damaged (CRC)"));
        }
        Ok(f)
    }

    /// Whether the table's CRC matched (waits for the check started by [`IndexFile::load`]).
    pub fn intact(&self) -> bool {
        *self.crc_ok.get_or_init(|| {
            let h = self.pending.lock().ok().and_then(|mut p| p.take());
            match h {
                Some(h) => h.join().unwrap_or(false),
                None => crc_matches(self.raw()),
            }
        })
    }

    /// The `.idx` file the table was loaded from (none for tables built in memory).
    pub fn idx_path(&self) -> Option<&Path> {
        self.idx_path.as_deref()
    }

    /// The `.idx` file, if its CRC failed (waits for the check): the file to remove so that the
    /// next load rebuilds it.
    pub fn damaged_path(&self) -> Option<std::path::PathBuf> {
        if self.intact() {
            return None;
        }
        self.idx_path.clone()
    }

    fn from_parts(text: Option<Bytes>, idx: Bytes, text_len: Option<u64>) -> io::Result<Self> {
        let raw = idx.get();
        if raw.len() < HDR || &raw[..8] != MAGIC {
            return Err(bad("index table has a wrong header"));
        }
        let mut sha256 = [0u8; 32];
        sha256.copy_from_slice(&raw[8..40]);
        let mut l = [0u8; 8];
        l.copy_from_slice(&raw[40..48]);
        let want_len = u64::from_le_bytes(l);
        let ne = le32(raw, 48) as usize;
        let np = le32(raw, 52) as usize;
        let nr = le32(raw, 56) as usize;
        let nm = le32(raw, 60) as usize;
        let nb = le32(raw, 64) as usize;
        if raw.len() != HDR + ne * 36 + np * 16 + nr * 12 + nm * 8 + nb {
            return Err(bad("index table is truncated"));
        }
        if text_len.is_some_and(|n| n != want_len) {
            return Err(bad("Packages text does not match its index table"));
        }
        Ok(IndexFile {
            text,
            idx: std::sync::Arc::new(idx),
            idx_path: None,
            pending: std::sync::Mutex::new(None),
            crc_ok: std::sync::OnceLock::new(),
            sha256,
            ne,
            np,
            nr,
            nm,
            nb,
        })
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
        let idx = idx_bytes(&[0; 32], text.len() as u64, &table);
        let text = Some(Bytes::Owned(text));
        match IndexFile::from_parts(text, Bytes::Owned(idx), None) {
            Ok(f) => f,
            // a table just built always has a good header; an empty one otherwise
            Err(_) => IndexFile {
                text: None,
                idx: std::sync::Arc::new(Bytes::Owned(idx_bytes(&[0; 32], 0, &Table::default()))),
                idx_path: None,
                pending: std::sync::Mutex::new(None),
                crc_ok: std::sync::OnceLock::new(),
                sha256: [0; 32],
                ne: 0,
                np: 0,
                nr: 0,
                nm: 0,
                nb: 0,
            },
        }
    }

    fn raw(&self) -> &[u8] {
        self.idx.get()
    }
    // section offsets
    fn pb(&self) -> usize {
        HDR + self.ne * 32
    }
    fn rb(&self) -> usize {
        self.pb() + self.np * 12
    }
    fn mb(&self) -> usize {
        self.rb() + self.nr * 8
    }
    fn sb(&self) -> usize {
        self.mb() + self.nm * 8
    }
    fn eb_by_name(&self) -> usize {
        self.sb() + self.nr * 4
    }
    fn pb_by_name(&self) -> usize {
        self.eb_by_name() + self.ne * 4
    }
    fn names(&self) -> &[u8] {
        let r = self.raw();
        &r[r.len() - self.nb..]
    }

    /// The number of paragraphs.
    pub fn entry_count(&self) -> usize {
        self.ne
    }
    /// Paragraph `i`'s ranges (all empty if `i` is out of range).
    pub fn entry(&self, i: u32) -> Entry {
        if i as usize >= self.ne {
            return Entry::default();
        }
        let b = HDR + i as usize * 32;
        let r = self.raw();
        let x = |j: usize| le32(r, b + 4 * j);
        Entry {
            off: x(0),
            len: x(1),
            name: (x(2), x(3)),
            version: (x(4), x(5)),
            arch: (x(6), x(7)),
        }
    }
    /// Every paragraph's ranges, in file order.
    pub fn entries(&self) -> impl Iterator<Item = Entry> + '_ {
        (0..self.ne as u32).map(|i| self.entry(i))
    }
    /// The number of Provides items.
    pub fn provide_count(&self) -> usize {
        self.np
    }
    /// Provides item `i`.
    pub fn provide(&self, i: u32) -> Provide {
        let b = self.pb() + i as usize * 12;
        let r = self.raw();
        Provide {
            entry: le32(r, b),
            name: (le32(r, b + 4), le32(r, b + 8)),
        }
    }
    /// Every Provides item, in file order.
    pub fn provides(&self) -> impl Iterator<Item = Provide> + '_ {
        (0..self.np as u32).map(|i| self.provide(i))
    }
    /// Referenced names in first-reference order (apt's package ID order).
    pub fn refs(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        let (r, b) = (self.raw(), self.rb());
        (0..self.nr).map(move |k| (le32(r, b + k * 8), le32(r, b + k * 8 + 4)))
    }
    /// (entry, MARK_* bits) of the Essential, required and Important paragraphs.
    pub fn marks(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        let (r, b) = (self.raw(), self.mb());
        (0..self.nm).map(move |k| (le32(r, b + k * 8), le32(r, b + k * 8 + 4)))
    }

    pub fn text(&self) -> &[u8] {
        match &self.text {
            Some(t) => t.get(),
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

    /// The run of a name-sorted permutation (`count` u32 at `base`, each an index whose name
    /// `name_of` gives) whose names equal `name`: a binary search for its first position, then
    /// forward while the name matches (runs are short).
    fn run<'a>(
        &'a self,
        base: usize,
        count: usize,
        name_of: impl Fn(u32) -> &'a [u8] + 'a,
        name: &'a str,
    ) -> impl Iterator<Item = u32> + 'a {
        let name = name.as_bytes();
        let r = self.raw();
        let at = move |k: usize| le32(r, base + k * 4);
        let (mut lo, mut hi) = (0usize, count);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if name_of(at(mid)) < name {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        (lo..count).map(at).take_while(move |&i| name_of(i) == name)
    }

    /// The name range of entry `i`, read alone (the binary searches read nothing else).
    fn entry_name(&self, i: u32) -> (u32, u32) {
        if i as usize >= self.ne {
            return (0, 0);
        }
        let b = HDR + i as usize * 32 + 8;
        let r = self.raw();
        (le32(r, b), le32(r, b + 4))
    }

    /// The paragraphs named `name`, in file order.
    pub fn entries_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = u32> + 'a {
        let name_of = move |i: u32| self.name_bytes_at(self.entry_name(i));
        self.run(self.eb_by_name(), self.ne, name_of, name)
    }

    /// The paragraphs that provide `name`, in file order (one per Provides item).
    pub fn providers_of<'a>(&'a self, name: &'a str) -> impl Iterator<Item = u32> + 'a {
        let name_of = move |i: u32| self.name_bytes_at(self.provide(i).name);
        self.run(self.pb_by_name(), self.np, name_of, name)
            .map(move |i| self.provide(i).entry)
    }

    /// Every package name of the file, sorted, each once.
    pub fn sorted_names(&self) -> impl Iterator<Item = &str> + '_ {
        let (r, b) = (self.raw(), self.eb_by_name());
        let mut last: Option<&str> = None;
        (0..self.ne).filter_map(move |k| {
            let n = self.name_at(self.entry(le32(r, b + k * 4)).name);
            if last == Some(n) {
                return None;
            }
            last = Some(n);
            Some(n)
        })
    }

    /// The position of `name`'s first reference in this file (see [`ScanWriter`]).
    pub fn first_reference(&self, name: &str) -> Option<u32> {
        let (r, rb) = (self.raw(), self.rb());
        let ref_name = move |i: u32| {
            let k = i as usize;
            self.name_bytes_at((le32(r, rb + k * 8), le32(r, rb + k * 8 + 4)))
        };
        self.run(self.sb(), self.nr, ref_name, name).next()
    }

    /// A name (Package or Provides) from the name blob.
    pub fn name_at(&self, r: (u32, u32)) -> &str {
        let (a, b) = (r.0 as usize, r.0 as usize + r.1 as usize);
        self.names()
            .get(a..b)
            .and_then(|s| std::str::from_utf8(s).ok())
            .unwrap_or("")
    }

    /// A name's bytes (what the binary searches compare: byte order is `str` order).
    fn name_bytes_at(&self, r: (u32, u32)) -> &[u8] {
        let (a, b) = (r.0 as usize, r.0 as usize + r.1 as usize);
        self.names().get(a..b).unwrap_or(&[])
    }

    /// The whole paragraph of entry `i`.
    pub fn paragraph(&self, i: u32) -> opaas_deb::Paragraph<'_> {
        let e = self.entry(i);
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
        let refs: Vec<_> = ix.refs().map(|r| ix.name_at(r)).collect();
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
            ix.marks().collect::<Vec<_>>(),
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
        assert_eq!(ix.name_at(ix.entry(0).name), "a");
        assert_eq!(ix.str_at(ix.entry(0).version), "1.0");
        assert_eq!(ix.str_at(ix.entry(1).arch), "all");
        assert_eq!(ix.str_at(ix.entry(1).version), "2");
        let pn: Vec<_> = ix.provides().map(|p| ix.name_at(p.name)).collect();
        assert_eq!(pn, ["x", "y", "z"]);
        assert_eq!(ix.paragraph(1).get("Version"), Some("2"));
        assert_eq!(ix.paragraph(0).get("Description"), Some("d\n more"));
        // a table for another text is refused
        std::fs::write(&tp, "Package: a\n").expect("w");
        assert!(IndexFile::load(&tp, &ip).is_err());
        // the same text indexed in memory gives the same table
        let mem = IndexFile::from_text(text);
        assert!(mem.entries().eq(ix.entries()));
        assert!(mem.provides().eq(ix.provides()));
        assert_eq!(mem.names(), ix.names());
        assert!(mem.refs().eq(ix.refs()));
        let refs: Vec<_> = ix.refs().map(|r| ix.name_at(r)).collect();
        assert_eq!(refs, ["a", "x", "z", "b"]);
        assert!(mem.marks().eq(ix.marks()));
        // look-ups by name: runs of the name-sorted permutations
        assert_eq!(ix.entries_named("b").collect::<Vec<_>>(), [1]);
        assert_eq!(ix.entries_named("c").count(), 0);
        assert_eq!(ix.providers_of("z").collect::<Vec<_>>(), [0]);
        assert_eq!(ix.sorted_names().collect::<Vec<_>>(), ["a", "b"]);
        // a damaged table is found by its CRC (checked on another thread), so the caller
        // rebuilds it; load_checked waits for the check
        let mut raw = std::fs::read(&ip).expect("idx");
        let k = raw.len() - 1;
        raw[k] ^= 1;
        std::fs::write(&tp, text).expect("w");
        std::fs::write(&ip, &raw).expect("w");
        let damaged = IndexFile::load(&tp, &ip).expect("loads: well-formed");
        assert!(!damaged.intact());
        assert_eq!(damaged.idx_path(), Some(ip.as_path()));
        assert!(IndexFile::load_checked(&tp, &ip).is_err());
        raw[k] ^= 1;
        std::fs::write(&ip, &raw).expect("w");
        assert!(IndexFile::load(&tp, &ip).expect("loads").intact());
        assert!(IndexFile::load_checked(&tp, &ip).is_ok());
        assert_eq!(ix.first_reference("z"), Some(2));
        assert_eq!(ix.first_reference("a"), Some(0));
        assert_eq!(ix.first_reference("y"), None);
        assert_eq!(mem.paragraph(0).get("Description"), Some("d\n more"));
    }
}
