//! `opaas verify`: checks a bundle tarball's structure, hashes, and that its repository index
//! matches the .debs it carries.

use crate::{io_err, BundleError};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{self, BufRead, Read};
use std::path::Path;

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

pub fn verify(path: &Path) -> Result<VerifyReport, BundleError> {
    let f = std::fs::File::open(path).map_err(io_err(path))?;
    let mut r = io::BufReader::with_capacity(1 << 20, f);
    let magic = r
        .fill_buf()
        .map_err(io_err(path))?
        .get(..4)
        .map(|m| m.to_vec())
        .unwrap_or_default();
    let reader: Box<dyn Read> = if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::GzDecoder::new(r))
    } else if magic == [0x28, 0xb5, 0x2f, 0xfd] {
        Box::new(zstd::stream::read::Decoder::with_buffer(r).map_err(io_err(path))?)
    } else {
        return Err(BundleError::Invalid(format!(
            "{}: not a .tar.gz or .tar.zst file",
            path.display()
        )));
    };
    let mut ar = tar::Archive::new(reader);
    let mut rep = VerifyReport::default();
    let mut hashes: BTreeMap<String, (String, u64)> = BTreeMap::new();
    let mut kept: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let bad =
        |e: io::Error| BundleError::Invalid(format!("{}: corrupt archive: {e}", path.display()));
    for entry in ar.entries().map_err(bad)? {
        let mut e = entry.map_err(bad)?;
        let p = e.path().map_err(bad)?.to_string_lossy().into_owned();
        let (top, rel) = match p.split_once('/') {
            Some((t, r)) => (t.to_string(), r.to_string()),
            None => (p.clone(), String::new()),
        };
        if rep.top.is_empty() {
            rep.top = top.clone();
        } else if rep.top != top {
            rep.problems.push(format!(
                "more than one top-level directory: {} and {top}",
                rep.top
            ));
        }
        if e.header().entry_type().is_dir() || rel.is_empty() {
            continue;
        }
        if !e.header().entry_type().is_file() {
            rep.problems.push(format!("{rel}: not a regular file"));
            continue;
        }
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut keep = Vec::new();
        let mut n = 0u64;
        loop {
            let k = e.read(&mut buf).map_err(bad)?;
            if k == 0 {
                break;
            }
            h.update(&buf[..k]);
            if KEEP.contains(&rel.as_str()) {
                keep.extend_from_slice(&buf[..k]);
            }
            n += k as u64;
        }
        rep.bytes += n;
        rep.files += 1;
        if KEEP.contains(&rel.as_str()) {
            kept.insert(rel.clone(), keep);
        }
        hashes.insert(rel, (hex::encode(h.finalize()), n));
    }
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
    let sums = String::from_utf8_lossy(kept.get("SHA256SUMS").map_or(&[][..], |v| v)).into_owned();
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
    let manifest: serde_json::Value =
        serde_json::from_slice(kept.get("manifest.json").map_or(&[][..], |v| v))
            .unwrap_or_default();
    rep.id = manifest["id"].as_str().unwrap_or("").to_string();
    rep.distro = manifest["distro"]["id"].as_str().unwrap_or("").to_string();
    rep.arch = manifest["arch"].as_str().unwrap_or("").to_string();
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
    let empty = Vec::new();
    let mpk = manifest["packages"].as_array().unwrap_or(&empty);
    rep.packages = mpk.len();
    for m in mpk {
        let (name, ver, sha, file) = (
            m["name"].as_str().unwrap_or(""),
            m["version"].as_str().unwrap_or(""),
            m["sha256"].as_str().unwrap_or(""),
            m["filename"].as_str().unwrap_or(""),
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
    Ok(rep)
}
