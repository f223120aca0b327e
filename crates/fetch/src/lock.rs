//! Per-hash exclusive locks, safe across threads and processes.
//!
//! **Linux:** one lock file for the whole store (`<root>/.locks`, never removed), and one byte
//! of it per hash: an open-file-description lock (`F_OFD_SETLK`) on the byte at an offset taken
//! from the hash's first 60 bits. Such locks belong to the open file description, so two handles
//! in one process exclude each other just as two processes do, and closing the handle releases
//! the lock (also when the process dies). Nothing is created or removed per download: a lock
//! *file* per hash cost an inode allocation and a removal for every .deb, and ext4's allocator
//! then scans past the recently removed inodes — 11 % of a cold 677-package build's CPU
//! (issue 12). Two hashes that share 60 bits would only wait for each other.
//!
//! **Elsewhere:** a lock file per hash (`<sha>.lock`, `File::lock`), removed by its holder; a
//! waiter blocked on a removed file notices (the path names another inode) and starts over.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// A held lock; released on drop.
#[derive(Debug)]
pub(crate) struct Lock {
    _file: File,
    /// The per-hash lock file to remove on release (not on Linux).
    #[cfg_attr(target_os = "linux", allow(dead_code))]
    path: Option<PathBuf>,
}

/// Where the locks of a store live: `root` is the store's directory.
pub(crate) fn lock_file(root: &Path) -> PathBuf {
    root.join(".locks")
}

/// Takes the lock of `sha` in the store at `root`, waiting for its holder if `wait`;
/// `Ok(None)` when it is held and `!wait`.
pub(crate) fn acquire(root: &Path, sha: &str, wait: bool) -> io::Result<Option<Lock>> {
    imp::acquire(root, sha, wait)
}

/// Takes the lock of `sha`, waiting for its holder.
pub(crate) fn acquire_wait(root: &Path, sha: &str) -> io::Result<Lock> {
    loop {
        if let Some(l) = acquire(root, sha, true)? {
            return Ok(l);
        }
    }
}

#[cfg(target_os = "linux")]
mod imp {
    use super::*;
    use std::os::fd::AsRawFd;

    /// The byte of the lock file that stands for `sha`: its first 15 hex digits (60 bits, so
    /// the offset is a positive `off_t`).
    pub(super) fn offset(sha: &str) -> i64 {
        let digits = sha.get(..15).unwrap_or(sha);
        i64::from_str_radix(digits, 16).unwrap_or(0)
    }

    pub(super) fn acquire(root: &Path, sha: &str, wait: bool) -> io::Result<Option<Lock>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(lock_file(root))?;
        // SAFETY: all-zero is a valid `struct flock` (plain integers); every field the call
        // reads is set below.
        let mut fl: libc::flock = unsafe { std::mem::zeroed() };
        fl.l_type = libc::F_WRLCK as libc::c_short;
        fl.l_whence = libc::SEEK_SET as libc::c_short;
        fl.l_start = offset(sha);
        fl.l_len = 1;
        fl.l_pid = 0; // required by OFD locks
        let cmd = if wait {
            libc::F_OFD_SETLKW
        } else {
            libc::F_OFD_SETLK
        };
        loop {
            // SAFETY: fcntl on a descriptor this function owns, with a pointer to a live,
            // initialised `flock` that it only reads (F_OFD_SETLK[W] do not write it back).
            let r = unsafe { libc::fcntl(file.as_raw_fd(), cmd, &mut fl as *mut libc::flock) };
            if r == 0 {
                return Ok(Some(Lock {
                    _file: file,
                    path: None,
                }));
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EAGAIN | libc::EACCES) if !wait => return Ok(None),
                // a file system (or kernel) without these locks: proceed unprotected rather
                // than not at all
                Some(libc::EINVAL | libc::ENOLCK | libc::EOPNOTSUPP) => {
                    return Ok(Some(Lock {
                        _file: file,
                        path: None,
                    }))
                }
                _ => return Err(e),
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use super::*;
    use std::fs::TryLockError;

    pub(super) fn acquire(root: &Path, sha: &str, wait: bool) -> io::Result<Option<Lock>> {
        let shard = sha.get(..2).unwrap_or("__");
        let dir = root.join(shard);
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{sha}.lock"));
        loop {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)?;
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
                Err(e) if e.kind() == io::ErrorKind::Unsupported => {}
                Err(e) => return Err(e),
            }
            if still_named(&file, &path)? {
                return Ok(Some(Lock {
                    _file: file,
                    path: Some(path),
                }));
            }
            // the previous holder removed the file while we waited: our lock is on an orphan
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
        Ok(true)
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // removed while still held, then released when the handle closes
        #[cfg(all(unix, not(target_os = "linux")))]
        if let Some(p) = &self.path {
            let _ = std::fs::remove_file(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "ab12000000000000000000000000000000000000000000000000000000000001";
    const B: &str = "cd34000000000000000000000000000000000000000000000000000000000002";

    #[test]
    fn excludes_within_a_process_and_leaves_one_file() {
        let d = tempfile::tempdir().expect("tmp");
        let a = acquire(d.path(), A, false).expect("lock").expect("free");
        assert!(acquire(d.path(), A, false).expect("try").is_none());
        // another hash is not held
        let b = acquire(d.path(), B, false)
            .expect("lock b")
            .expect("b is free");
        let root = d.path().to_path_buf();
        let waiter = std::thread::spawn(move || acquire_wait(&root, A).is_ok());
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!waiter.is_finished(), "the waiter waits while A is held");
        drop(a);
        assert!(waiter.join().expect("join"));
        drop(b);
        let names: Vec<_> = std::fs::read_dir(d.path())
            .expect("list")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect();
        #[cfg(target_os = "linux")]
        assert_eq!(names, vec![std::ffi::OsString::from(".locks")]);
        #[cfg(not(target_os = "linux"))]
        assert!(names.is_empty(), "{names:?}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn another_process_is_excluded_too() {
        // a child process holds A's byte (flock(1) cannot take OFD locks, so the child is a
        // python3 one-liner where there is one)
        let Ok(py) = which_python() else {
            eprintln!("SKIP: no python3 to hold a lock from another process");
            return;
        };
        let d = tempfile::tempdir().expect("tmp");
        let path = lock_file(d.path());
        let script = format!(
            "import fcntl,struct,sys,time\nf=open({p:?},'a+')\nfl=struct.pack('hhqqi',fcntl.F_WRLCK,0,{off},1,0)\nfcntl.fcntl(f,37,fl)\nprint('held',flush=True)\ntime.sleep(0.5)\n",
            p = path.to_string_lossy(),
            off = imp::offset(A),
        );
        let mut child = std::process::Command::new(py)
            .args(["-c", &script])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawn python3");
        let mut line = String::new();
        use std::io::BufRead;
        let out = child.stdout.take().expect("stdout");
        std::io::BufReader::new(out)
            .read_line(&mut line)
            .expect("read");
        assert_eq!(line.trim(), "held");
        assert!(
            acquire(d.path(), A, false).expect("try").is_none(),
            "held by another process"
        );
        assert!(acquire(d.path(), B, false).expect("try b").is_some());
        // released when the child exits
        let l = acquire_wait(d.path(), A).expect("wait");
        drop(l);
        let _ = child.wait();
    }

    #[cfg(target_os = "linux")]
    fn which_python() -> Result<&'static str, ()> {
        std::process::Command::new("python3")
            .arg("-c")
            .arg("pass")
            .status()
            .ok()
            .filter(|s| s.success())
            .map(|_| "python3")
            .ok_or(())
    }
}
