//! Per-hash exclusive lock files (`<sha>.lock`), safe across threads and processes.
//!
//! `File::lock` locks the open file description (flock on Linux), so two handles in one
//! process exclude each other just as two processes do. The holder removes the lock file
//! before releasing it, so the cache does not fill with empty files; a waiter that was
//! blocked on the removed inode notices (the path no longer names its inode) and starts over.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};

/// A held lock; released (and its file removed) on drop.
#[derive(Debug)]
pub(crate) struct Lock {
    path: PathBuf,
    _file: File,
}

/// Takes the lock, waiting for its holder if `wait`; `Ok(None)` when it is held and `!wait`.
pub(crate) fn acquire(path: &Path, wait: bool) -> io::Result<Option<Lock>> {
    loop {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let locked = if wait {
            file.lock()
        } else {
            match file.try_lock() {
                Ok(()) => Ok(()),
                Err(TryLockError::WouldBlock) => return Ok(None),
                Err(TryLockError::Error(e)) => Err(e),
            }
        };
        match locked {
            Ok(()) => {}
            // a file system without locks: proceed unprotected rather than not at all
            Err(e) if e.kind() == io::ErrorKind::Unsupported => {}
            Err(e) => return Err(e),
        }
        if still_named(&file, path)? {
            return Ok(Some(Lock {
                path: path.to_path_buf(),
                _file: file,
            }));
        }
        // the previous holder removed the file while we waited: our lock is on an orphan
    }
}

/// Takes the lock, waiting for its holder.
pub(crate) fn acquire_wait(path: &Path) -> io::Result<Lock> {
    loop {
        if let Some(l) = acquire(path, true)? {
            return Ok(l);
        }
    }
}

#[cfg(unix)]
fn still_named(file: &File, path: &Path) -> io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let held = file.metadata()?;
    match std::fs::metadata(path) {
        Ok(named) => Ok(named.dev() == held.dev() && named.ino() == held.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(not(unix))]
fn still_named(_file: &File, _path: &Path) -> io::Result<bool> {
    // lock files are never removed there (see Drop), so the path always names our file
    Ok(true)
}

impl Drop for Lock {
    fn drop(&mut self) {
        // removed while still held, then released when the handle closes
        #[cfg(unix)]
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excludes_within_a_process_and_cleans_up() {
        let d = tempfile::tempdir().expect("tmp");
        let p = d.path().join("x.lock");
        let a = acquire(&p, false).expect("lock").expect("free");
        assert!(acquire(&p, false).expect("try").is_none());
        let p2 = p.clone();
        let waiter = std::thread::spawn(move || acquire_wait(&p2).is_ok());
        std::thread::sleep(std::time::Duration::from_millis(50));
        drop(a);
        assert!(waiter.join().expect("join"));
        assert!(!p.exists());
    }
}
