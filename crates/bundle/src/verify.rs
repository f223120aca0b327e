//! `opaas verify`: checks a bundle's structure, hashes, and that its repository index matches
//! the .debs it carries — in the tarball, or in the directory it was unpacked to.

use crate::read::archive_from;
use crate::{io_err, BundleError, Manifest, PackageInfo};
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::{self, Read, Seek};
use std::path::Path;
use std::rc::Rc;

/// What `verify` found. `problems` empty means the bundle is good.
#[derive(Debug, Default, serde::Serialize)]
pub struct VerifyReport {
    pub top: String,
    pub id: String,
    pub distro: String,
    pub arch: String,
    pub files: usize,
    pub packages: usize,
    pub bytes: u64,
    pub problems: Vec<String>,
    /// `manifest.json` as the bundle holds it (for reusing a verified bundle without reading it
    /// again).
    #[serde(skip)]
    pub manifest_json: Option<Vec<u8>>,
    /// A tarball's own SHA256 (lowercase hex) and size, hashed while it was read (None for a
    /// directory): reusing a verified bundle needs no second pass over it.
    #[serde(skip)]
    pub file_sha256: Option<(String, u64)>,
}

const KEEP: [&str; 4] = [
    "SHA256SUMS",
    "manifest.json",
    "repo/Packages",
    "repo/Release",
];
const REQUIRED: [&str; 8] = [
    "install.sh",
    "README.txt",
    "manifest.json",
    "SHA256SUMS",
    "build.log",
    "repo/Packages",
    "repo/Packages.gz",
    "repo/Release",
];

/// Verifies a bundle: a tarball (`.tar.gz`, `.tar.zst`) or the directory it unpacks to.
pub fn verify(path: &Path) -> Result<VerifyReport, BundleError> {
    let mut w = Walk::default();
    let mut file_sha256 = None;
    if std::fs::metadata(path).map_err(io_err(path))?.is_dir() {
        walk_dir(path, &mut w)?;
    } else {
        file_sha256 = Some(walk_archive(path, &mut w)?);
    }
    let mut rep = w.finish();
    rep.file_sha256 = file_sha256;
    Ok(rep)
}

/// Hashes the bytes read through it (the tarball, as the decompressor pulls them in).
struct Tee {
    inner: std::fs::File,
    hashed: Rc<RefCell<(Sha256, u64)>>,
}

impl Read for Tee {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let k = self.inner.read(buf)?;
        let mut h = self.hashed.borrow_mut();
        h.0.update(&buf[..k]);
        h.1 += k as u64;
        Ok(k)
    }
}

/// What the walk over a bundle's files collected.
#[derive(Default)]
struct Walk {
    rep: VerifyReport,
    hashes: BTreeMap<String, (String, u64)>,
    kept: BTreeMap<String, Vec<u8>>,
}

impl Walk {
    /// Notes the top-level directory of an entry.
    fn top(&mut self, top: &str) {
        if self.rep.top.is_empty() {
            self.rep.top = top.to_string();
        } else if self.rep.top != top {
            self.rep.problems.push(format!(
                "more than one top-level directory: {} and {top}",
                self.rep.top
            ));
        }
    }

    /// Hashes one regular file of the bundle (`rel`: its path under the top directory).
    fn file(&mut self, rel: String, r: &mut dyn Read) -> io::Result<()> {
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut keep = Vec::new();
        let mut n = 0u64;
        loop {
            let k = r.read(&mut buf)?;
            if k == 0 {
                break;
            }
            h.update(&buf[..k]);
            if KEEP.contains(&rel.as_str()) {
                keep.extend_from_slice(&buf[..k]);
            }
            n += k as u64;
        }
        self.rep.bytes += n;
        self.rep.files += 1;
        if KEEP.contains(&rel.as_str()) {
            self.kept.insert(rel.clone(), keep);
        }
        self.hashes.insert(rel, (hex::encode(h.finalize()), n));
        Ok(())
    }
}

/// Walks a tarball's members; returns the tarball's own SHA256 and size.
fn walk_archive(path: &Path, w: &mut Walk) -> Result<(String, u64), BundleError> {
    let hashed = Rc::new(RefCell::new((Sha256::new(), 0u64)));
    let f = std::fs::File::open(path).map_err(io_err(path))?;
    let mut ar = archive_from(
        path,
        Tee {
            inner: f,
            hashed: Rc::clone(&hashed),
        },
    )?;
    let bad =
        |e: io::Error| BundleError::Invalid(format!("{}: corrupt archive: {e}", path.display()));
    for entry in ar.entries().map_err(bad)? {
        let mut e = entry.map_err(bad)?;
        let p = e.path().map_err(bad)?.to_string_lossy().into_owned();
        let (top, rel) = match p.split_once('/') {
            Some((t, r)) => (t.to_string(), r.to_string()),
            None => (p.clone(), String::new()),
        };
        w.top(&top);
        if e.header().entry_type().is_dir() || rel.is_empty() {
            continue;
        }
        if !e.header().entry_type().is_file() {
            w.rep.problems.push(format!("{rel}: not a regular file"));
            continue;
        }
        w.file(rel, &mut e).map_err(bad)?;
    }
    drop(ar);
    // the end of the tar stream and the compressor's trailer were not all read: hash on from
    // where the decompressor stopped
    let (mut h, mut n) = Rc::try_unwrap(hashed)
        .map(RefCell::into_inner)
        .unwrap_or_else(|rc| rc.borrow().clone());
    let mut f = std::fs::File::open(path).map_err(io_err(path))?;
    f.seek(io::SeekFrom::Start(n)).map_err(io_err(path))?;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let k = f.read(&mut buf).map_err(io_err(path))?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((hex::encode(h.finalize()), n))
}

/// An unpacked bundle: `dir` is the `offline_pkg_…` directory itself.
fn walk_dir(dir: &Path, w: &mut Walk) -> Result<(), BundleError> {
    let abs = std::fs::canonicalize(dir).map_err(io_err(dir))?;
    let top = abs
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    w.top(&top);
    let mut stack = vec![(abs, String::new())];
    while let Some((d, prefix)) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&d)
            .map_err(io_err(&d))?
            .collect::<Result<_, _>>()
            .map_err(io_err(&d))?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name().to_string_lossy().into_owned();
            let rel = format!("{prefix}{name}");
            let p = e.path();
            let t = e.file_type().map_err(io_err(&p))?;
            if t.is_dir() {
                stack.push((p, format!("{rel}/")));
            } else if t.is_file() {
                let mut f = std::fs::File::open(&p).map_err(io_err(&p))?;
                w.file(rel, &mut f).map_err(io_err(&p))?;
            } else {
                w.rep.problems.push(format!("{rel}: not a regular file"));
            }
        }
    }
    Ok(())
}

impl Walk {
    /// Checks what was collected: structure, SHA256SUMS, manifest ↔ repo ↔ .debs, Release.
    fn finish(self) -> VerifyReport {
        let Walk {
            mut rep,
            hashes,
            kept,
        } = self;
        if !rep.top.starts_with("offline_pkg_") {
            rep.problems.push(format!(
                "top-level directory '{}' is not offline_pkg_…",
                rep.top
            ));
        }
        for req in REQUIRED {
            if !hashes.contains_key(req) {
                rep.problems.push(format!("missing {req}"));
            }
        }
        // SHA256SUMS covers every other file, exactly
        let sums =
            String::from_utf8_lossy(kept.get("SHA256SUMS").map_or(&[][..], |v| v)).into_owned();
        let mut listed = std::collections::BTreeSet::new();
        for line in sums.lines().filter(|l| !l.trim().is_empty()) {
            let Some((h, f)) = line.split_once("  ") else {
                rep.problems
                    .push(format!("SHA256SUMS: malformed line '{line}'"));
                continue;
            };
            listed.insert(f.to_string());
            match hashes.get(f) {
                None => rep
                    .problems
                    .push(format!("SHA256SUMS lists {f}, which is not in the bundle")),
                Some((got, _)) if got != h => rep.problems.push(format!(
                    "{f}: SHA256 mismatch (SHA256SUMS says {h}, file has {got})"
                )),
                _ => {}
            }
        }
        for f in hashes.keys().filter(|f| f.as_str() != "SHA256SUMS") {
            if !listed.contains(f) {
                rep.problems
                    .push(format!("{f} is not listed in SHA256SUMS"));
            }
        }
        // manifest ↔ repo/Packages ↔ .debs
        let manifest = kept
            .get("manifest.json")
            .and_then(|b| match Manifest::from_json(b) {
                Ok(m) => Some(m),
                Err(e) => {
                    rep.problems.push(format!("manifest.json: {e}"));
                    None
                }
            });
        if manifest.is_some() {
            rep.manifest_json = kept.get("manifest.json").cloned();
        }
        if let Some(m) = &manifest {
            rep.id = m.id.clone();
            rep.distro = m.distro.id.clone();
            rep.arch = m.arch.clone();
        }
        let packages_text =
            String::from_utf8_lossy(kept.get("repo/Packages").map_or(&[][..], |v| v)).into_owned();
        let mut index: BTreeMap<String, (String, String, String)> = BTreeMap::new();
        for p in opaas_deb::paragraphs(&packages_text) {
            let file = p
                .get("Filename")
                .unwrap_or("")
                .trim_start_matches("./")
                .to_string();
            index.insert(
                file,
                (
                    p.get("Package").unwrap_or("").into(),
                    p.get("Version").unwrap_or("").into(),
                    p.get("SHA256").unwrap_or("").into(),
                ),
            );
        }
        let mpk: &[PackageInfo] = manifest.as_ref().map_or(&[], |m| &m.packages);
        rep.packages = mpk.len();
        for m in mpk {
            let (name, ver, sha, file) = (
                m.name.as_str(),
                m.version.as_str(),
                m.sha256.as_str(),
                m.filename.as_str(),
            );
            match hashes.get(&format!("repo/{file}")) {
                None => rep
                    .problems
                    .push(format!("{name} {ver}: repo/{file} is missing")),
                Some((got, _)) if got != sha => rep.problems.push(format!(
                    "{name} {ver}: repo/{file} does not match the manifest's SHA256"
                )),
                _ => {}
            }
            match index.get(file) {
                None => rep
                    .problems
                    .push(format!("{name} {ver}: not in repo/Packages")),
                Some((n, v, s)) if n != name || v != ver || s != sha => rep
                    .problems
                    .push(format!("{name} {ver}: repo/Packages says {n} {v} {s}")),
                _ => {}
            }
        }
        let debs = hashes
            .keys()
            .filter(|k| k.starts_with("repo/") && k.ends_with(".deb"))
            .count();
        if debs != mpk.len() || index.len() != mpk.len() {
            rep.problems.push(format!(
                "{} packages in the manifest, {} in repo/Packages, {debs} .deb files",
                mpk.len(),
                index.len()
            ));
        }
        // Release vouches for Packages
        let release =
            String::from_utf8_lossy(kept.get("repo/Release").map_or(&[][..], |v| v)).into_owned();
        if let Some((h, n)) = hashes.get("repo/Packages") {
            if !release.contains(&format!(" {h} {n} Packages\n")) {
                rep.problems
                    .push("repo/Release does not match repo/Packages".into());
            }
        }
        rep
    }
}
