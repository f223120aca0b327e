//! The store files a tarball packs, opened in member order through a read-ahead window (the
//! page-cache policy is in `crate::pagecache`).
//!
//! Files after the one being packed that are already complete are opened early and announced
//! (`POSIX_FADV_WILLNEED`) up to [`WINDOW`] bytes ahead, so a rebuild whose `.deb`s are not
//! cached reads the disk ahead of the packer, many files at a time, instead of one read-ahead
//! at a time. A file that is not there yet is not waited for here: it is still downloading,
//! into the page cache, and is looked for again after the next file. Whether a file was
//! cached is asked before it is announced; the caller gives the pages of one that was not back
//! once it is packed.

use crate::pagecache::{advise, mostly_cached, Advice};
use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// Bytes announced ahead of the file being packed.
const WINDOW: u64 = 64 << 20;
/// Files held open ahead at most: a bundle of many small .debs must not take the process's
/// descriptors (the downloads and the service need them too).
const MAX_EARLY: usize = 32;

/// The files of a tarball in member order.
pub(crate) struct Sources {
    /// (path, size) of every file member, in order.
    files: Vec<(PathBuf, u64)>,
    /// The next file [`Sources::open`] hands out.
    next: usize,
    /// Files opened ahead, in order, all at or after `next`, and whether each was cached.
    early: VecDeque<(usize, File, bool)>,
    /// The first file not opened ahead yet (at least `next`).
    ahead: usize,
}

impl Sources {
    pub(crate) fn new(files: Vec<(PathBuf, u64)>) -> Sources {
        Sources {
            files,
            next: 0,
            early: VecDeque::new(),
            ahead: 0,
        }
    }

    /// Opens the next member's file, `path`, which must be complete, and says whether it was
    /// in the page cache before this read; then opens and announces the complete files after
    /// it, within [`WINDOW`].
    pub(crate) fn open(&mut self, path: &Path) -> io::Result<(File, bool)> {
        let i = self.next;
        self.next += 1;
        let early = match self.early.front() {
            Some((j, ..)) if *j == i => self.early.pop_front().map(|(_, f, c)| (f, c)),
            _ => None,
        };
        let opened = match early {
            Some(fc) if self.files.get(i).is_some_and(|(p, _)| p == path) => fc,
            _ => {
                let f = File::open(path)?;
                let len = f.metadata().map(|m| m.len()).unwrap_or(0);
                let cached = mostly_cached(&f, len);
                (f, cached)
            }
        };
        self.ahead = self.ahead.max(self.next);
        self.read_ahead();
        Ok(opened)
    }

    fn read_ahead(&mut self) {
        let mut bytes: u64 = self.early.iter().map(|(j, ..)| self.files[*j].1).sum();
        while bytes < WINDOW && self.early.len() < MAX_EARLY {
            let Some((path, size)) = self.files.get(self.ahead) else {
                break;
            };
            let Ok(f) = File::open(path) else {
                break;
            };
            let cached = mostly_cached(&f, *size);
            advise(&f, 0, 0, Advice::WillNeed);
            self.early.push_back((self.ahead, f, cached));
            bytes += size;
            self.ahead += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn read((mut f, _): (File, bool)) -> String {
        let mut s = String::new();
        f.read_to_string(&mut s).expect("read");
        s
    }

    #[test]
    fn files_come_in_order_and_missing_ones_are_looked_for_again() {
        let dir = tempfile::tempdir().expect("tmp");
        let paths: Vec<PathBuf> = (0..4)
            .map(|i| dir.path().join(format!("{i}.deb")))
            .collect();
        // 2 is still downloading when 0 and 1 are packed
        for i in [0, 1, 3] {
            std::fs::write(&paths[i], format!("file {i}")).expect("write");
        }
        let mut s = Sources::new(paths.iter().map(|p| (p.clone(), 6)).collect());
        assert_eq!(read(s.open(&paths[0]).expect("0")), "file 0");
        // 1 was opened ahead; 2 stopped the window, so 3 was not
        assert_eq!(s.early.iter().map(|(i, ..)| *i).collect::<Vec<_>>(), [1]);
        assert_eq!(read(s.open(&paths[1]).expect("1")), "file 1");
        std::fs::write(&paths[2], "file 2").expect("write");
        assert_eq!(read(s.open(&paths[2]).expect("2")), "file 2");
        assert_eq!(read(s.open(&paths[3]).expect("3")), "file 3");
        assert!(s.early.is_empty());
    }

    #[test]
    fn few_descriptors_are_held_ahead_however_small_the_files() {
        let dir = tempfile::tempdir().expect("tmp");
        let paths: Vec<PathBuf> = (0..100).map(|i| dir.path().join(format!("{i}"))).collect();
        for p in &paths {
            std::fs::write(p, "x").expect("write");
        }
        let mut s = Sources::new(paths.iter().map(|p| (p.clone(), 1)).collect());
        for p in &paths {
            s.open(p).expect("open");
            assert!(s.early.len() <= MAX_EARLY);
        }
        assert!(s.early.is_empty());
    }

    #[test]
    fn a_file_opened_early_is_only_used_for_its_own_path() {
        let dir = tempfile::tempdir().expect("tmp");
        let (a, b, c) = (
            dir.path().join("a"),
            dir.path().join("b"),
            dir.path().join("c"),
        );
        for p in [&a, &b, &c] {
            std::fs::write(p, p.file_name().and_then(|n| n.to_str()).unwrap_or("")).expect("w");
        }
        let mut s = Sources::new(vec![(a.clone(), 1), (b, 1)]);
        assert_eq!(read(s.open(&a).expect("a")), "a");
        // the caller asks for another path than the list says: it gets that path
        assert_eq!(read(s.open(&c).expect("c")), "c");
        assert!(s.open(&dir.path().join("missing")).is_err());
        // more files than the list has: opened as asked, the window stays empty
        assert_eq!(read(s.open(&a).expect("a again")), "a");
        assert!(s.early.is_empty());
    }
}
