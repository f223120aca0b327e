//! Tiny but real binary packages: an `ar` archive of `debian-binary`, `control.tar.gz` and
//! `data.tar.gz`, laid out like `dpkg-deb --build` lays them out (member names without a
//! trailing slash, tar paths starting with `./`, directories before their contents).
//! The output is deterministic: the same inputs give the same bytes.

use crate::{Error, Result};
use flate2::write::GzEncoder;
use std::collections::BTreeSet;
use std::io::Write;

/// A fixed timestamp for every member and tar entry (2023-11-14), so builds are reproducible.
const MTIME: u64 = 1_700_000_000;

/// A built `.deb`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebFile {
    pub bytes: Vec<u8>,
    /// The `control` file inside `control.tar.gz`.
    pub control: String,
}

/// Builds a `.deb` from its control file text, the files it installs (absolute paths such as
/// `/usr/share/doc/foo/README`, content, mode) and maintainer scripts (`postinst`, … with their
/// text; mode 0755).
pub fn build_deb(
    control: &str,
    files: &[(String, Vec<u8>, u32)],
    scripts: &[(String, String)],
) -> Result<DebFile> {
    let mut control = control.trim_end_matches('\n').to_string();
    control.push('\n');
    for k in ["Package:", "Version:", "Architecture:"] {
        if !control.lines().any(|l| l.starts_with(k)) {
            return Err(Error::Invalid(format!("control file has no {k} field")));
        }
    }
    let mut ctl: Vec<(String, Vec<u8>, u32)> =
        vec![("./control".into(), control.clone().into_bytes(), 0o644)];
    for (name, text) in scripts {
        if name.contains('/') || name.is_empty() {
            return Err(Error::Invalid(format!(
                "bad maintainer script name {name:?}"
            )));
        }
        ctl.push((format!("./{name}"), text.clone().into_bytes(), 0o755));
    }
    let control_tar = tar_gz(&ctl)?;
    let mut data = Vec::new();
    for (path, content, mode) in files {
        let rel = path.trim_start_matches('/');
        if rel.is_empty()
            || rel
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return Err(Error::Invalid(format!("bad path in package: {path:?}")));
        }
        data.push((format!("./{rel}"), content.clone(), *mode));
    }
    let data_tar = tar_gz(&data)?;
    let mut ar = b"!<arch>\n".to_vec();
    ar_member(&mut ar, "debian-binary", b"2.0\n")?;
    ar_member(&mut ar, "control.tar.gz", &control_tar)?;
    ar_member(&mut ar, "data.tar.gz", &data_tar)?;
    Ok(DebFile { bytes: ar, control })
}

/// One member of a common (System V / GNU) `ar` archive.
fn ar_member(out: &mut Vec<u8>, name: &str, data: &[u8]) -> Result<()> {
    if name.len() > 16 {
        return Err(Error::Invalid(format!("ar member name too long: {name}")));
    }
    let header = format!(
        "{name:<16}{MTIME:<12}{:<6}{:<6}{:<8}{:<10}`\n",
        0,
        0,
        "100644",
        data.len()
    );
    debug_assert_eq!(header.len(), 60);
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    if data.len() % 2 == 1 {
        out.push(b'\n');
    }
    Ok(())
}

/// A gzipped tar of `entries` (`./`-relative paths) with every parent directory, `./` first.
fn tar_gz(entries: &[(String, Vec<u8>, u32)]) -> Result<Vec<u8>> {
    let mut dirs = BTreeSet::new();
    dirs.insert("./".to_string());
    for (path, _, _) in entries {
        let mut acc = String::from(".");
        let comps: Vec<&str> = path.trim_start_matches("./").split('/').collect();
        for c in &comps[..comps.len().saturating_sub(1)] {
            acc.push('/');
            acc.push_str(c);
            dirs.insert(format!("{acc}/"));
        }
    }
    let mut sorted: Vec<&(String, Vec<u8>, u32)> = entries.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut b = tar::Builder::new(gz);
    let io = |e: std::io::Error| Error::Invalid(format!("building tar: {e}"));
    for d in &dirs {
        let h = tar_header(d, tar::EntryType::Directory, 0o755, 0)?;
        b.append(&h, std::io::empty()).map_err(io)?;
    }
    for (path, content, mode) in sorted {
        let h = tar_header(path, tar::EntryType::Regular, *mode, content.len() as u64)?;
        b.append(&h, content.as_slice()).map_err(io)?;
    }
    let gz = b.into_inner().map_err(io)?;
    let mut out = gz.finish().map_err(io)?;
    out.flush().map_err(io)?;
    Ok(out)
}

fn tar_header(path: &str, kind: tar::EntryType, mode: u32, size: u64) -> Result<tar::Header> {
    let mut h = tar::Header::new_gnu();
    let name = &mut h.as_old_mut().name;
    // set the name bytes directly: `Header::set_path` would drop the leading "./"
    if path.len() >= name.len() {
        return Err(Error::Invalid(format!("tar path too long: {path}")));
    }
    name[..path.len()].copy_from_slice(path.as_bytes());
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(MTIME);
    h.set_uid(0);
    h.set_gid(0);
    h.set_username("root")
        .map_err(|e| Error::Invalid(e.to_string()))?;
    h.set_groupname("root")
        .map_err(|e| Error::Invalid(e.to_string()))?;
    h.set_cksum();
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> DebFile {
        build_deb(
            "Package: hello\nVersion: 1:1.0-1\nArchitecture: all\nMaintainer: T <t@example.invalid>\nDescription: test\n",
            &[("/usr/share/doc/hello/README".into(), b"hi\n".to_vec(), 0o644)],
            &[("postinst".into(), "#!/bin/sh\nexit 0\n".into())],
        )
        .expect("deb")
    }

    #[test]
    fn layout_and_determinism() {
        let d = sample();
        assert!(d.bytes.starts_with(b"!<arch>\ndebian-binary   "));
        assert_eq!(d, sample(), "same input, same bytes");
        assert!(build_deb("Package: x\n", &[], &[]).is_err());
        // the data tar lists parents first, with ./ paths
        let start = d
            .bytes
            .windows(11)
            .position(|w| w == b"data.tar.gz")
            .expect("member");
        let size: usize = std::str::from_utf8(&d.bytes[start + 48..start + 58])
            .expect("utf8")
            .trim()
            .parse()
            .expect("size");
        let gz = &d.bytes[start + 60..start + 60 + size];
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(gz));
        let names: Vec<String> = ar
            .entries()
            .expect("entries")
            .map(|e| {
                let e = e.expect("entry");
                String::from_utf8_lossy(&e.path_bytes()).into_owned()
            })
            .collect();
        assert_eq!(
            names,
            [
                "./",
                "./usr/",
                "./usr/share/",
                "./usr/share/doc/",
                "./usr/share/doc/hello/",
                "./usr/share/doc/hello/README"
            ]
        );
    }

    #[test]
    fn dpkg_deb_accepts_it() {
        let Ok(out) = std::process::Command::new("dpkg-deb")
            .arg("--version")
            .output()
        else {
            eprintln!("dpkg-deb not installed; skipping");
            return;
        };
        assert!(out.status.success());
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("hello.deb");
        std::fs::write(&p, sample().bytes).expect("write");
        let info = std::process::Command::new("dpkg-deb")
            .arg("--info")
            .arg(&p)
            .output()
            .expect("run dpkg-deb");
        let text = String::from_utf8_lossy(&info.stdout);
        assert!(
            info.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&info.stderr)
        );
        assert!(text.contains("Package: hello"), "{text}");
        assert!(text.contains("postinst"), "{text}");
        let contents = std::process::Command::new("dpkg-deb")
            .arg("--contents")
            .arg(&p)
            .output()
            .expect("run dpkg-deb");
        assert!(contents.status.success());
        assert!(String::from_utf8_lossy(&contents.stdout).contains("./usr/share/doc/hello/README"));
        let x = dir.path().join("x");
        let st = std::process::Command::new("dpkg-deb")
            .arg("-x")
            .arg(&p)
            .arg(&x)
            .status()
            .expect("run dpkg-deb");
        assert!(st.success());
        assert_eq!(
            std::fs::read(x.join("usr/share/doc/hello/README")).expect("extracted"),
            b"hi\n"
        );
    }
}
