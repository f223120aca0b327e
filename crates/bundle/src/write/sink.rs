//! The tarball's file: written with direct I/O where the filesystem allows it, hashed on the way.
//!
//! A bundle is half a gigabyte of bytes that nobody reads again on this machine (the .debs
//! stay in the store; the tarball goes to the offline host). Written through the page cache,
//! each byte costs a kernel copy into a freshly allocated page, and the final `fsync` then
//! waits for the whole file: on the 2-core test machine that was 0.2–2.6 s of system time for
//! 560 MiB, depending on how fresh the pages were (issue 12). With `O_DIRECT` the device reads
//! our own buffers: no copy, no page cache, and `fsync` has only metadata left.
//!
//! The stream is cut into aligned blocks of [`BLOCK`] bytes. A full block goes to two threads
//! at once: one writes it at its offset, one feeds it to SHA-256; the block returns to a
//! small pool when both are done, so the encoder, the writer and the hash overlap and memory
//! stays at [`POOL`] blocks. The last block is written padded to the alignment and the file
//! is then truncated to its length.
//!
//! Where direct I/O is refused (tmpfs before Linux 6.6, some network filesystems: `open` or
//! the first write fails with `EINVAL`), the same threads write through the page cache
//! instead; the bytes and the digest are the same either way.

use crate::{io_err, BundleError};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Bytes per block (a multiple of [`ALIGN`]).
const BLOCK: usize = 4 << 20;
/// Direct I/O alignment of buffer addresses, offsets and lengths (covers 512- and 4096-byte
/// logical sectors).
const ALIGN: usize = 4096;
/// Blocks in flight: one filling, the rest queued for the writer and the hash.
const POOL: usize = 4;

/// A block-sized, [`ALIGN`]-aligned window into an over-allocated buffer (no unsafe
/// allocation: the window starts at the first aligned address).
struct Buf {
    mem: Vec<u8>,
    at: usize,
    /// Bytes of the stream in it.
    len: usize,
}

impl Buf {
    fn new() -> Buf {
        let mem = vec![0u8; BLOCK + ALIGN];
        let at = mem.as_ptr().align_offset(ALIGN).min(ALIGN);
        Buf { mem, at, len: 0 }
    }
    fn window(&self) -> &[u8] {
        &self.mem[self.at..self.at + BLOCK]
    }
    fn window_mut(&mut self) -> &mut [u8] {
        &mut self.mem[self.at..self.at + BLOCK]
    }
}

/// A full (or the last) block on its way to the writer and the hash; back to the pool when
/// both have dropped it.
struct Block {
    buf: Option<Buf>,
    offset: u64,
    pool: Sender<Buf>,
}

impl Drop for Block {
    fn drop(&mut self) {
        if let Some(mut b) = self.buf.take() {
            b.len = 0;
            let _ = self.pool.send(b);
        }
    }
}

impl Block {
    fn data(&self) -> &[u8] {
        match &self.buf {
            Some(b) => &b.window()[..b.len],
            None => &[],
        }
    }
}

/// What the writing thread returns: the file, whether it wrote directly, or the first error.
type WriterResult = io::Result<(File, bool)>;

pub(crate) struct TarFile {
    path: PathBuf,
    cur: Option<Buf>,
    /// Buffers allocated so far (at most [`POOL`]).
    allocated: usize,
    pool_tx: Sender<Buf>,
    pool_rx: Receiver<Buf>,
    written: u64,
    to_writer: Option<SyncSender<Arc<Block>>>,
    to_hash: Option<SyncSender<Arc<Block>>>,
    writer: Option<JoinHandle<WriterResult>>,
    hasher: Option<JoinHandle<Sha256>>,
}

/// Where a test makes direct I/O fail as a filesystem that does not support it would (Linux
/// 6.6 and later accept `O_DIRECT` on tmpfs, so no filesystem at hand refuses it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refuse {
    Never,
    #[cfg(test)]
    AtOpen,
    #[cfg(test)]
    AtWrite,
}

/// `EINVAL`, what a refused direct open or transfer fails with.
fn refused(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EINVAL)
}

/// Opens `path` for writing with `O_DIRECT` (Linux), or without where that is refused.
fn create(path: &Path, refuse: Refuse) -> io::Result<(File, bool)> {
    #[cfg(target_os = "linux")]
    if refuse == Refuse::Never {
        use std::os::unix::fs::OpenOptionsExt;
        match std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_DIRECT)
            .open(path)
        {
            Ok(f) => return Ok((f, true)),
            Err(e) if refused(&e) => {}
            Err(e) => return Err(e),
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = refuse;
    Ok((File::create(path)?, false))
}

/// The same file, opened again without `O_DIRECT` (after a refused direct write).
fn reopen_buffered(path: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new().write(true).open(path)
}

fn write_block(
    path: &Path,
    file: &mut File,
    direct: &mut bool,
    block: &Block,
    refuse: Refuse,
) -> io::Result<()> {
    let data = block.data();
    if *direct {
        // the whole window up to the alignment: a short last block is padded here and
        // truncated away at the end
        let padded = data.len().div_ceil(ALIGN) * ALIGN;
        let full = match &block.buf {
            Some(b) => &b.window()[..padded],
            None => return Ok(()),
        };
        let written = match refuse {
            #[cfg(test)]
            Refuse::AtWrite => Err(io::Error::from_raw_os_error(libc::EINVAL)),
            _ => file.write_all_at(full, block.offset),
        };
        match written {
            Ok(()) => return Ok(()),
            Err(e) if refused(&e) => {
                *file = reopen_buffered(path)?;
                *direct = false;
            }
            Err(e) => return Err(e),
        }
    }
    file.write_all_at(data, block.offset)
}

impl TarFile {
    pub(crate) fn create(path: &Path) -> Result<TarFile, BundleError> {
        TarFile::create_as(path, Refuse::Never)
    }

    fn create_as(path: &Path, refuse: Refuse) -> Result<TarFile, BundleError> {
        let (file, direct) = create(path, refuse).map_err(io_err(path))?;
        let (pool_tx, pool_rx) = mpsc::channel();
        let (to_writer, writer_rx) = mpsc::sync_channel::<Arc<Block>>(POOL);
        let (to_hash, hash_rx) = mpsc::sync_channel::<Arc<Block>>(POOL);
        let wpath = path.to_path_buf();
        let writer = std::thread::Builder::new()
            .name("opaas-tar-write".into())
            .spawn(move || -> WriterResult {
                let mut file = file;
                let mut direct = direct;
                for block in writer_rx {
                    write_block(&wpath, &mut file, &mut direct, &block, refuse)?;
                }
                Ok((file, direct))
            })
            .map_err(io_err(path))?;
        let hasher = std::thread::Builder::new()
            .name("opaas-tar-sha256".into())
            .spawn(move || {
                let mut h = Sha256::new();
                for block in hash_rx {
                    h.update(block.data());
                }
                h
            })
            .map_err(io_err(path))?;
        Ok(TarFile {
            path: path.to_path_buf(),
            cur: None,
            allocated: 0,
            pool_tx,
            pool_rx,
            written: 0,
            to_writer: Some(to_writer),
            to_hash: Some(to_hash),
            writer: Some(writer),
            hasher: Some(hasher),
        })
    }

    /// A free buffer: a new one while fewer than [`POOL`] exist, else the next one returned.
    fn free_buf(&mut self) -> io::Result<Buf> {
        if let Ok(b) = self.pool_rx.try_recv() {
            return Ok(b);
        }
        if self.allocated < POOL {
            self.allocated += 1;
            return Ok(Buf::new());
        }
        // the pool's sender lives in self, so this ends only when a block comes back; a
        // writer that failed drops its blocks, which return them too
        self.pool_rx
            .recv()
            .map_err(|_| io::Error::other("the tarball's buffer pool closed"))
    }

    /// Hands the current block to the writer and the hash.
    fn ship(&mut self) -> io::Result<()> {
        let Some(buf) = self.cur.take() else {
            return Ok(());
        };
        let len = buf.len as u64;
        let block = Arc::new(Block {
            buf: Some(buf),
            offset: self.written,
            pool: self.pool_tx.clone(),
        });
        self.written += len;
        let sent = match (&self.to_writer, &self.to_hash) {
            (Some(w), Some(h)) => w.send(block.clone()).is_ok() && h.send(block).is_ok(),
            _ => false,
        };
        if !sent {
            // a thread ended early: the writer with an error, which finish() reports
            self.to_writer = None;
            self.to_hash = None;
            return Err(self.writer_error());
        }
        Ok(())
    }

    /// The writing thread's error, once it has stopped.
    fn writer_error(&mut self) -> io::Error {
        match self.writer.take().map(JoinHandle::join) {
            Some(Ok(Err(e))) => e,
            _ => io::Error::other("the tarball's writing thread stopped"),
        }
    }

    /// Writes the last block, truncates the padding away, syncs, and returns the SHA-256
    /// (lowercase hex) and the size.
    pub(crate) fn finish(mut self) -> Result<(String, u64), BundleError> {
        let path = self.path.clone();
        self.ship().map_err(io_err(&path))?;
        self.to_writer = None;
        self.to_hash = None;
        let (file, _direct) = match self.writer.take().map(JoinHandle::join) {
            Some(Ok(r)) => r.map_err(io_err(&path))?,
            _ => {
                return Err(io_err(&path)(io::Error::other(
                    "the tarball's writing thread stopped",
                )))
            }
        };
        file.set_len(self.written).map_err(io_err(&path))?;
        file.sync_all().map_err(io_err(&path))?;
        let h = match self.hasher.take().map(JoinHandle::join) {
            Some(Ok(h)) => h,
            _ => {
                return Err(io_err(&path)(io::Error::other(
                    "the tarball's hashing thread stopped",
                )))
            }
        };
        Ok((hex::encode(h.finalize()), self.written))
    }
}

impl super::gz::FillWrite for TarFile {
    fn write_filled(
        &mut self,
        mut n: usize,
        fill: &mut dyn FnMut(&mut [u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        while n > 0 {
            if self.cur.is_none() {
                self.cur = Some(self.free_buf()?);
            }
            let full = {
                let Some(buf) = self.cur.as_mut() else {
                    break;
                };
                let len = buf.len;
                let take = n.min(BLOCK - len);
                fill(&mut buf.window_mut()[len..len + take])?;
                buf.len += take;
                n -= take;
                buf.len == BLOCK
            };
            if full {
                self.ship()?;
            }
        }
        Ok(())
    }
}

impl Write for TarFile {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        use super::gz::FillWrite;
        let mut rest = data;
        self.write_filled(data.len(), &mut |s: &mut [u8]| {
            let (now, later) = rest.split_at(s.len());
            s.copy_from_slice(now);
            rest = later;
            Ok(())
        })?;
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(dir: &Path, sizes: &[usize]) {
        roundtrip_as(dir, sizes, Refuse::Never)
    }

    fn roundtrip_as(dir: &Path, sizes: &[usize], refuse: Refuse) {
        let path = dir.join("t.bin");
        let mut f = TarFile::create_as(&path, refuse).expect("create");
        let mut all = Vec::new();
        let mut x: u32 = 7;
        for &s in sizes {
            let chunk: Vec<u8> = (0..s)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    (x >> 16) as u8
                })
                .collect();
            f.write_all(&chunk).expect("write");
            all.extend_from_slice(&chunk);
        }
        let (sha, size) = f.finish().expect("finish");
        let back = std::fs::read(&path).expect("read back");
        assert_eq!(size, all.len() as u64);
        assert_eq!(back.len(), all.len(), "the padding is truncated away");
        assert!(back == all, "the bytes come back as written");
        assert_eq!(sha, hex::encode(Sha256::digest(&all)));
    }

    #[test]
    fn bytes_and_digest_survive_block_edges_and_padding() {
        let dir = tempfile::tempdir().expect("tempdir");
        roundtrip(dir.path(), &[]);
        roundtrip(dir.path(), &[1]);
        roundtrip(dir.path(), &[BLOCK]);
        roundtrip(dir.path(), &[BLOCK - 1, 2, ALIGN + 3]);
        // more blocks than the pool holds: buffers must come back to be reused
        roundtrip(dir.path(), &[3 * BLOCK + 17, 5 * BLOCK, 100_000]);
    }

    #[test]
    fn filled_writes_across_block_edges_are_the_bytes_in_order() {
        use super::super::gz::FillWrite;
        const SIZES: [usize; 6] = [5, BLOCK - 3, 70_000, 2 * BLOCK + 1, 0, 1];
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f.bin");
        let mut f = TarFile::create(&path).expect("create");
        let mut expect = Vec::new();
        let mut next = 0u8;
        for n in SIZES {
            f.write_all(b"head!").expect("header");
            expect.extend_from_slice(b"head!");
            let mut calls = 0;
            f.write_filled(n, &mut |s: &mut [u8]| {
                calls += 1;
                for b in s.iter_mut() {
                    *b = next;
                    expect.push(next);
                    next = next.wrapping_add(7);
                }
                Ok(())
            })
            .expect("fill");
            assert!(calls <= n / BLOCK + 2, "{calls} slices for {n} bytes");
        }
        let (sha, size) = f.finish().expect("finish");
        let back = std::fs::read(&path).expect("read back");
        assert_eq!(size, expect.len() as u64);
        assert!(back == expect, "filled bytes land in order");
        assert_eq!(sha, hex::encode(Sha256::digest(&expect)));
    }

    #[test]
    fn a_filesystem_without_direct_io_gets_the_same_bytes() {
        // refused at open (older tmpfs, some network filesystems) and at the first write
        // (a filesystem that takes the flag but not the transfer): the page cache then
        let dir = tempfile::tempdir().expect("tempdir");
        for refuse in [Refuse::AtOpen, Refuse::AtWrite] {
            roundtrip_as(dir.path(), &[BLOCK + 5, 9], refuse);
            roundtrip_as(dir.path(), &[3 * BLOCK + 1], refuse);
            roundtrip_as(dir.path(), &[7], refuse);
        }
    }

    #[test]
    fn tmpfs_gets_the_same_bytes() {
        // /dev/shm is tmpfs: it refuses O_DIRECT before Linux 6.6, takes it since
        let shm = Path::new("/dev/shm");
        if !shm.is_dir() {
            eprintln!("SKIP: no /dev/shm here");
            return;
        }
        let dir = tempfile::tempdir_in(shm).expect("tempdir in /dev/shm");
        roundtrip(dir.path(), &[BLOCK + 5, 9]);
    }
}
