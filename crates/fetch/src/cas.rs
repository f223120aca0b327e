//! The content-addressed store: `<cache>/debs-v1/<sha[0..2]>/<sha>.deb`.

use std::io;
use std::path::{Path, PathBuf};

/// The on-disk store of verified `.deb` files, named by their SHA256.
///
/// Layout under `<cache_dir>/debs-v1/`, sharded by the first two hex digits:
///
/// ```text
/// ab/ab12…ef.deb    a verified file (only ever created by renaming a verified .part)
/// ab/ab12…ef.part   a download in progress, or left by an interrupted one (resumable)
/// .locks            one byte per hash, locked while one process downloads it (`lock.rs`)
/// ```
///
/// A `.deb` is immutable once present; readers never see a partial or unverified file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cas {
    root: PathBuf,
}

/// Whether `s` is a SHA256 in hex (64 hex digits, either case).
pub(crate) fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Cas {
    /// The store inside `cache_dir` (its `debs-v1` subdirectory; created on first download).
    pub fn new(cache_dir: impl Into<PathBuf>) -> Cas {
        Cas {
            root: cache_dir.into().join("debs-v1"),
        }
    }

    /// `<cache_dir>/debs-v1`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn file(&self, sha256: &str, ext: &str) -> PathBuf {
        let sha = sha256.to_ascii_lowercase();
        let shard = sha.get(..2).unwrap_or("__").to_string();
        self.root.join(shard).join(format!("{sha}.{ext}"))
    }

    /// Where the verified file with this SHA256 lives (`<root>/<sha[0..2]>/<sha>.deb`).
    /// The hash is expected in hex; it is lower-cased.
    pub fn path(&self, sha256: &str) -> PathBuf {
        self.file(sha256, "deb")
    }

    /// Where a download of this hash in progress (or interrupted) keeps its bytes.
    pub fn part_path(&self, sha256: &str) -> PathBuf {
        self.file(sha256, "part")
    }

    /// Whether the verified file is present with this size. Files only get their final name
    /// after their SHA256 was checked, so presence with the right size is enough.
    pub fn contains(&self, sha256: &str, size: u64) -> bool {
        is_sha256(sha256)
            && std::fs::metadata(self.path(sha256)).is_ok_and(|m| m.is_file() && m.len() == size)
    }

    /// Bytes used on disk by the store: verified files plus `.part` files of interrupted
    /// downloads. A store that does not exist yet is empty.
    pub fn total_size(&self) -> io::Result<u64> {
        let shards = match std::fs::read_dir(&self.root) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        let mut total = 0;
        for shard in shards {
            let shard = shard?;
            if !shard.file_type()?.is_dir() {
                continue;
            }
            let files = match std::fs::read_dir(shard.path()) {
                Ok(rd) => rd,
                // removed concurrently
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            for f in files {
                let f = f?;
                match f.metadata() {
                    Ok(m) if m.is_file() => total += m.len(),
                    Ok(_) => {}
                    // a .part renamed while we were listing
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "AB00000000000000000000000000000000000000000000000000000000000001";

    #[test]
    fn layout() {
        let c = Cas::new("/cache");
        let lower = SHA.to_ascii_lowercase();
        assert_eq!(c.root(), Path::new("/cache/debs-v1"));
        assert_eq!(
            c.path(SHA),
            PathBuf::from(format!("/cache/debs-v1/ab/{lower}.deb"))
        );
        assert_eq!(
            c.part_path(SHA),
            PathBuf::from(format!("/cache/debs-v1/ab/{lower}.part"))
        );
        // never panics on junk
        assert_eq!(c.path("x"), PathBuf::from("/cache/debs-v1/__/x.deb"));
        assert!(!c.contains("x", 0));
        assert!(is_sha256(SHA));
        assert!(!is_sha256(&SHA[1..]));
        assert!(!is_sha256(&format!("{}g", &SHA[1..])));
    }

    #[test]
    fn contains_and_total_size() {
        let d = tempfile::tempdir().expect("tmp");
        let c = Cas::new(d.path());
        assert_eq!(c.total_size().expect("size"), 0);
        let p = c.path(SHA);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, b"12345").expect("write");
        std::fs::write(c.part_path(SHA), b"12").expect("write");
        assert!(c.contains(SHA, 5));
        assert!(c.contains(&SHA.to_ascii_lowercase(), 5));
        assert!(!c.contains(SHA, 4));
        assert_eq!(c.total_size().expect("size"), 7);
    }
}
