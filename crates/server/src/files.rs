//! The file operations the job queue and the janitor share (so neither imports the other):
//! removing a job's files, checking a bundle's file name, marking cached .debs as used.

use std::path::Path;
use std::time::SystemTime;

/// Removes a file or a directory tree; absent is fine.
pub fn remove_any(p: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(p),
        Ok(_) => std::fs::remove_file(p),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// A bundle file name as the engine makes it (`offline_pkg_…​.tar.gz`): one path component of
/// safe characters, usable in a path and a header.
pub fn safe_file_name(n: &str) -> Option<String> {
    let ok = !n.is_empty()
        && n.len() <= 255
        && !n.starts_with('.')
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'+'));
    ok.then(|| n.to_string())
}

/// Marks the cached .debs a bundle used (its manifest's packages) as used now. Returns how
/// many files were touched.
pub fn touch_debs(cache_dir: &Path, packages: &[opaas_engine::PackageInfo]) -> usize {
    let cas = opaas_fetch::Cas::new(cache_dir);
    let now = SystemTime::now();
    let mut n = 0;
    for p in packages {
        let sha = p.sha256.as_str();
        if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        let path = cas.path(sha);
        if let Ok(f) = std::fs::File::options().write(true).open(&path) {
            if f.set_modified(now).is_ok() {
                n += 1;
            }
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_and_removal() {
        assert!(safe_file_name("offline_pkg_debian-12_amd64_1a2b3c4d.tar.gz").is_some());
        for bad in ["", ".hidden", "a/b", "../x", "a b", "x\n"] {
            assert!(safe_file_name(bad).is_none(), "{bad:?}");
        }
        let d = tempfile::tempdir().expect("tmp");
        let tree = d.path().join("t");
        std::fs::create_dir_all(tree.join("sub")).expect("mkdir");
        std::fs::write(tree.join("sub/f"), b"x").expect("write");
        remove_any(&tree).expect("tree");
        assert!(!tree.exists());
        remove_any(&tree).expect("absent is fine");
        let f = d.path().join("f");
        std::fs::write(&f, b"x").expect("write");
        remove_any(&f).expect("file");
        assert!(!f.exists());
    }
}
