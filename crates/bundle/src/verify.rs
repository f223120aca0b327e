//! `opaas verify`: checks a bundle's structure, hashes, and that its repository index matches
//! the .debs it carries — in the tarball, or in the directory it was unpacked to.

use crate::read::{archive_from, hash_rest};
use crate::{io_err, BundleError, Manifest, PackageInfo};
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::{self, Read, Seek};
use std::path::Path;
use std::rc::Rc;

/// Checks the signature of a suite's signed Release (the engine gives one that uses the
/// distribution's keyrings; this crate knows no OpenPGP).
pub trait SignatureChecker {
    /// `signed`: an `InRelease` (cleartext-signed; `detached` is `None`) or a `Release` with
    /// its `Release.gpg`. Returns the signed text and who signed it (fingerprint, user id), or
    /// why the signature does not count.
    fn check(&self, signed: &[u8], detached: Option<&[u8]>) -> Result<(Vec<u8>, String), String>;
}

/// One suite of a signed bundle, as verified.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct SuiteCheck {
    pub suite: String,
    /// The key whose good signature was found; `None` when signatures were not checked or
    /// none was good.
    pub signed_by: Option<String>,
    /// Index files checked against the signed Release, and .debs against the indices.
    pub indices: usize,
    pub debs: usize,
}

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
    /// Signed bundles: each suite, and whether its signature was checked (`signatures`).
    pub signed: bool,
    pub signatures_checked: bool,
    pub suites: Vec<SuiteCheck>,
    /// `manifest.json` as the bundle holds it (for reusing a verified bundle without reading it
    /// again).
    #[serde(skip)]
    pub manifest_json: Option<Vec<u8>>,
    /// A tarball's own SHA256 (lowercase hex) and size, hashed while it was read (None for a
    /// directory): reusing a verified bundle needs no second pass over it.
    #[serde(skip)]
    pub file_sha256: Option<(String, u64)>,
    /// `sbom.cdx.json` as the bundle holds it (bundles before it was written have none).
    #[serde(skip)]
    pub sbom_json: Option<Vec<u8>>,
}

const KEEP: [&str; 5] = [
    "SHA256SUMS",
    "manifest.json",
    "sbom.cdx.json",
    "repo/Packages",
    "repo/Release",
];
const REQUIRED: [&str; 5] = [
    "install.sh",
    "README.txt",
    "manifest.json",
    "SHA256SUMS",
    "build.log",
];
const REQUIRED_FLAT: [&str; 3] = ["repo/Packages", "repo/Packages.gz", "repo/Release"];

/// Whether a file's bytes are kept for the checks after the walk.
fn keep(rel: &str) -> bool {
    KEEP.contains(&rel)
        || rel.starts_with("archive/dists/")
        || (rel.starts_with("repo/plans/") && rel.ends_with("/Packages"))
}

/// Verifies a bundle: a tarball (`.tar.gz`, `.tar.zst`) or the directory it unpacks to. In a
/// signed bundle the chain signed Release → index → .deb is checked, the signatures
/// themselves not (see [`verify_with`]).
pub fn verify(path: &Path) -> Result<VerifyReport, BundleError> {
    verify_with(path, None)
}

/// [`verify`], and in a signed bundle each suite's signature with `checker`.
pub fn verify_with(
    path: &Path,
    checker: Option<&dyn SignatureChecker>,
) -> Result<VerifyReport, BundleError> {
    let mut w = Walk::default();
    let mut file_sha256 = None;
    if std::fs::metadata(path).map_err(io_err(path))?.is_dir() {
        walk_dir(path, &mut w)?;
    } else {
        file_sha256 = Some(walk_archive(path, &mut w)?);
    }
    let mut rep = w.finish(checker);
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
        let mut keep_buf = Vec::new();
        let mut n = 0u64;
        loop {
            let k = r.read(&mut buf)?;
            if k == 0 {
                break;
            }
            h.update(&buf[..k]);
            if keep(&rel) {
                keep_buf.extend_from_slice(&buf[..k]);
            }
            n += k as u64;
        }
        self.rep.bytes += n;
        self.rep.files += 1;
        if keep(&rel) {
            self.kept.insert(rel.clone(), keep_buf);
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
    let (h, n) = Rc::try_unwrap(hashed)
        .map(RefCell::into_inner)
        .unwrap_or_else(|rc| rc.borrow().clone());
    let mut f = std::fs::File::open(path).map_err(io_err(path))?;
    f.seek(io::SeekFrom::Start(n)).map_err(io_err(path))?;
    hash_rest(path, &mut f, h, n)
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
    fn finish(self, checker: Option<&dyn SignatureChecker>) -> VerifyReport {
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
        let manifest_signed = kept
            .get("manifest.json")
            .and_then(|b| Manifest::from_json(b).ok())
            .is_some_and(|m| m.archive.is_some());
        rep.signed = manifest_signed || hashes.keys().any(|k| k.starts_with("archive/"));
        for req in REQUIRED.iter().chain(if rep.signed {
            &[][..]
        } else {
            &REQUIRED_FLAT[..]
        }) {
            if !hashes.contains_key(*req) {
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
        rep.sbom_json = kept.get("sbom.cdx.json").cloned();
        if let Some(m) = &manifest {
            rep.id = m.id.clone();
            rep.distro = m.distro.id.clone();
            rep.arch = m.arch.clone();
        }
        let mpk: &[PackageInfo] = manifest.as_ref().map_or(&[], |m| &m.packages);
        rep.packages = mpk.len();
        if rep.signed {
            let suites: Vec<String> = manifest
                .as_ref()
                .and_then(|m| m.archive.as_ref())
                .map(|a| a.suites.iter().map(|s| s.suite.clone()).collect())
                .unwrap_or_default();
            check_signed(&mut rep, &hashes, &kept, &suites, mpk, checker);
        } else {
            check_flat(&mut rep, &hashes, &kept, mpk);
            if let Some(m) = &manifest {
                check_plans(&mut rep, &kept, m);
            }
        }
        rep
    }
}

type Hashes = BTreeMap<String, (String, u64)>;
type Kept = BTreeMap<String, Vec<u8>>;

/// A fleet upgrade bundle: each host's index `repo/plans/<n>/Packages` lists exactly the files
/// of its plan in the manifest, each with the manifest's SHA256 (the .debs themselves are
/// checked against repo/Packages and SHA256SUMS).
fn check_plans(rep: &mut VerifyReport, kept: &Kept, m: &Manifest) {
    let sha: BTreeMap<&str, &str> = m
        .packages
        .iter()
        .map(|p| (p.filename.as_str(), p.sha256.as_str()))
        .collect();
    for (i, h) in m.hosts.iter().enumerate() {
        let path = format!("repo/plans/{}/Packages", i + 1);
        let Some(text) = kept.get(&path) else {
            rep.problems
                .push(format!("{path} (the plan of {}) is missing", h.host));
            continue;
        };
        let text = String::from_utf8_lossy(text);
        let mut listed: Vec<String> = Vec::new();
        for p in opaas_deb::paragraphs(&text) {
            let file = p
                .get("Filename")
                .unwrap_or("")
                .trim_start_matches("./")
                .to_string();
            let want = sha.get(file.as_str()).copied().unwrap_or("");
            if want.is_empty() || !p.get("SHA256").unwrap_or("").eq_ignore_ascii_case(want) {
                rep.problems.push(format!(
                    "{path}: {file} is not the manifest's file (the plan of {})",
                    h.host
                ));
            }
            listed.push(file);
        }
        let mut planned = h.files.clone();
        planned.sort();
        listed.sort();
        if planned != listed {
            rep.problems.push(format!(
                "{path} lists {} files, the manifest's plan of {} {}",
                listed.len(),
                h.host,
                planned.len()
            ));
        }
    }
}

/// An unsigned bundle: manifest ↔ repo/Packages ↔ .debs, and repo/Release ↔ repo/Packages.
fn check_flat(rep: &mut VerifyReport, hashes: &Hashes, kept: &Kept, mpk: &[PackageInfo]) {
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
}

/// The text an `InRelease` signs, without checking the signature (apt's view of it: dash
/// escapes undone). `None` when it is not a cleartext-signed message.
fn cleartext(b: &[u8]) -> Option<String> {
    let t = std::str::from_utf8(b).ok()?;
    let rest = &t[t.find("-----BEGIN PGP SIGNED MESSAGE-----")?..];
    let body = &rest[rest.find("\n\n")? + 2..];
    let body = &body[..body.find("\n-----BEGIN PGP SIGNATURE-----")?];
    Some(
        body.lines()
            .map(|l| l.strip_prefix("- ").unwrap_or(l).trim_end())
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

/// The `SHA256` table of a Release text: path → (sha256, size).
fn release_sums(text: &str) -> BTreeMap<String, (String, u64)> {
    let mut out = BTreeMap::new();
    let Some(p) = opaas_deb::paragraphs(text).next() else {
        return out;
    };
    for line in p.get("SHA256").unwrap_or("").lines() {
        let mut w = line.split_whitespace();
        if let (Some(h), Some(n), Some(path), None) = (w.next(), w.next(), w.next(), w.next()) {
            if let Ok(n) = n.parse() {
                out.insert(path.to_string(), (h.to_ascii_lowercase(), n));
            }
        }
    }
    out
}

/// The decompressed text of an index file (`Packages`, `.xz`, `.gz`).
fn decompress(name: &str, data: &[u8]) -> io::Result<String> {
    let mut out = String::new();
    if name.ends_with(".xz") {
        liblzma::read::XzDecoder::new(data).read_to_string(&mut out)?;
    } else if name.ends_with(".gz") {
        flate2::read::GzDecoder::new(data).read_to_string(&mut out)?;
    } else {
        out = String::from_utf8_lossy(data).into_owned();
    }
    Ok(out)
}

/// What a signed index says of one .deb.
struct Vouched {
    package: String,
    version: String,
    sha256: String,
    size: u64,
    suite: String,
}

/// A signed bundle: each suite's signature (with `checker`), every file under `dists/` against
/// its signed Release, every .deb against the signed indices, and the manifest's packages.
fn check_signed(
    rep: &mut VerifyReport,
    hashes: &Hashes,
    kept: &Kept,
    suites: &[String],
    mpk: &[PackageInfo],
    checker: Option<&dyn SignatureChecker>,
) {
    rep.signatures_checked = checker.is_some();
    if suites.is_empty() {
        rep.problems
            .push("manifest.json names no suite of the signed archive".into());
    }
    let debs: std::collections::BTreeSet<&str> = hashes
        .keys()
        .filter(|k| !k.starts_with("archive/dists/"))
        .filter_map(|k| k.strip_prefix("archive/"))
        .collect();
    let wanted_sha: std::collections::BTreeSet<&str> =
        mpk.iter().map(|m| m.sha256.as_str()).collect();
    // pool path → what a signed index says of it (only the bundle's files and packages)
    let mut vouched: BTreeMap<String, Vouched> = BTreeMap::new();
    let mut covered = std::collections::BTreeSet::new();
    for suite in suites {
        let prefix = format!("archive/dists/{suite}/");
        let mut sc = SuiteCheck {
            suite: suite.clone(),
            ..SuiteCheck::default()
        };
        for file in hashes.range(prefix.clone()..).map(|(f, _)| f) {
            if !file.starts_with(&prefix) {
                break;
            }
            covered.insert(file.clone());
        }
        let inrelease = kept.get(&format!("{prefix}InRelease"));
        let detached = kept
            .get(&format!("{prefix}Release"))
            .zip(kept.get(&format!("{prefix}Release.gpg")));
        let (signed_name, signed, sig) = match (inrelease, detached) {
            (Some(b), _) => ("InRelease", b, None),
            (None, Some((r, g))) => ("Release", r, Some(g.as_slice())),
            (None, None) => {
                rep.problems.push(format!(
                    "{prefix}InRelease is missing: suite {suite} is not signed"
                ));
                rep.suites.push(sc);
                continue;
            }
        };
        let text = match checker {
            Some(c) => match c.check(signed, sig) {
                Ok((text, who)) => {
                    sc.signed_by = Some(who);
                    String::from_utf8_lossy(&text).into_owned()
                }
                Err(e) => {
                    rep.problems.push(format!(
                        "{prefix}{signed_name}: signature check failed: {e}"
                    ));
                    rep.suites.push(sc);
                    continue;
                }
            },
            None => match sig {
                Some(_) => String::from_utf8_lossy(signed).into_owned(),
                None => match cleartext(signed) {
                    Some(t) => t,
                    None => {
                        rep.problems.push(format!(
                            "{prefix}InRelease: not a cleartext-signed Release file"
                        ));
                        rep.suites.push(sc);
                        continue;
                    }
                },
            },
        };
        let sums = release_sums(&text);
        for (file, (got, n)) in hashes.range(prefix.clone()..) {
            let Some(rel) = file.strip_prefix(&prefix) else {
                break;
            };
            if matches!(rel, "InRelease" | "Release" | "Release.gpg") {
                continue;
            }
            match sums.get(rel) {
                None => {
                    rep.problems.push(format!(
                        "{file}: not listed in the signed Release of {suite}"
                    ));
                    continue;
                }
                Some((want, wn)) if want != got || wn != n => {
                    rep.problems.push(format!(
                        "{file}: does not match the signed Release of {suite} (SHA256 {got}, {n} bytes; signed: {want}, {wn} bytes)"
                    ));
                    continue;
                }
                _ => {}
            }
            if !rel.contains("/binary-")
                || !rel
                    .rsplit('/')
                    .next()
                    .is_some_and(|b| b.starts_with("Packages"))
            {
                continue;
            }
            let text = match decompress(rel, kept.get(file).map_or(&[][..], |v| v)) {
                Ok(t) => t,
                Err(e) => {
                    rep.problems.push(format!("{file}: cannot be read: {e}"));
                    continue;
                }
            };
            sc.indices += 1;
            for p in opaas_deb::paragraphs(&text) {
                let (Some(f), Some(sha)) = (p.get("Filename"), p.get("SHA256")) else {
                    continue;
                };
                if debs.contains(f) || wanted_sha.contains(sha) {
                    vouched.insert(
                        f.to_string(),
                        Vouched {
                            package: p.get("Package").unwrap_or("").into(),
                            version: p.get("Version").unwrap_or("").into(),
                            sha256: sha.to_ascii_lowercase(),
                            size: p.get("Size").and_then(|s| s.parse().ok()).unwrap_or(0),
                            suite: suite.clone(),
                        },
                    );
                }
            }
        }
        rep.suites.push(sc);
    }
    for file in hashes.keys().filter(|k| k.starts_with("archive/dists/")) {
        if !covered.contains(file) {
            rep.problems
                .push(format!("{file}: belongs to no suite of the manifest"));
        }
    }
    // every .deb is one a signed index lists, byte for byte
    for f in &debs {
        let file = format!("archive/{f}");
        let Some((got, n)) = hashes.get(&file) else {
            continue;
        };
        match vouched.get(*f) {
            None => rep
                .problems
                .push(format!("{file}: no signed index lists this file")),
            Some(v) if &v.sha256 != got || v.size != *n => rep.problems.push(format!(
                "{file}: does not match the signed index of {} ({} {}: SHA256 {}, {} bytes; the file has {got}, {n} bytes)",
                v.suite, v.package, v.version, v.sha256, v.size
            )),
            Some(v) => {
                if let Some(sc) = rep.suites.iter_mut().find(|s| s.suite == v.suite) {
                    sc.debs += 1;
                }
            }
        }
    }
    // every package of the manifest is there, as its signed index says
    for m in mpk {
        let hit = vouched
            .iter()
            .find(|(_, v)| v.sha256 == m.sha256 && v.package == m.name && v.version == m.version);
        match hit {
            None => rep.problems.push(format!(
                "{} {}: no signed index of the bundle lists it with SHA256 {}",
                m.name, m.version, m.sha256
            )),
            Some((f, _)) if !hashes.contains_key(&format!("archive/{f}")) => rep
                .problems
                .push(format!("{} {}: archive/{f} is missing", m.name, m.version)),
            _ => {}
        }
    }
    if debs.len() != mpk.len() {
        rep.problems.push(format!(
            "{} packages in the manifest, {} .deb files in archive/",
            mpk.len(),
            debs.len()
        ));
    }
}
