//! Direct I/O for the store's files: `.debs` written and read past the page cache.
//!
//! A cold build moves each .deb's bytes through the machine once: from the socket into our
//! buffer (hashed there), to the disk, and later from the disk into the tarball. Through the
//! page cache each of those disk steps is a kernel copy plus page allocation, ext4's delayed
//! block reservation, dirty-page writeback and its completion interrupts; on the 2-core test
//! machine that was about a sixth of a cold build's CPU, which is what bounds it (issue 12).
//! With `O_DIRECT` the device reads and writes our own aligned buffers.
//!
//! Direct I/O needs buffer addresses, file offsets and lengths aligned to [`ALIGN`]. Writers
//! therefore stage bytes in an [`AlignedBuf`], write whole buffers, and pad the last one,
//! truncating the file to its length afterwards; at an unaligned offset (a resumed `.part`)
//! they fall back to the page cache. Where a filesystem refuses direct I/O (tmpfs: `EINVAL`)
//! everything goes through the page cache; the bytes are the same either way.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Alignment of addresses, offsets and lengths for direct I/O (covers 512- and 4096-byte
/// logical sectors).
pub const ALIGN: usize = 4096;

/// An [`ALIGN`]-aligned window of `cap` bytes into an over-allocated buffer (no unsafe
/// allocation: the window starts at the first aligned address).
pub struct AlignedBuf {
    mem: Vec<u8>,
    at: usize,
    cap: usize,
}

impl AlignedBuf {
    /// `cap` is rounded up to a multiple of [`ALIGN`].
    pub fn new(cap: usize) -> AlignedBuf {
        let cap = cap.div_ceil(ALIGN).max(1) * ALIGN;
        let mem = vec![0u8; cap + ALIGN];
        let at = mem.as_ptr().align_offset(ALIGN).min(ALIGN);
        AlignedBuf { mem, at, cap }
    }
    pub fn window(&self) -> &[u8] {
        &self.mem[self.at..self.at + self.cap]
    }
    pub fn window_mut(&mut self) -> &mut [u8] {
        &mut self.mem[self.at..self.at + self.cap]
    }
}

/// Turns `O_DIRECT` on or off for an open file; false where that is refused or unsupported
/// (then the file stays as it was).
pub fn set_direct(file: &File, on: bool) -> bool {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let fd = file.as_raw_fd();
        // SAFETY: fcntl on a descriptor the caller owns; F_GETFL/F_SETFL read no memory of ours.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            if flags < 0 {
                return false;
            }
            let want = if on {
                flags | libc::O_DIRECT
            } else {
                flags & !libc::O_DIRECT
            };
            want == flags || libc::fcntl(fd, libc::F_SETFL, want) == 0
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (file, on);
        !on
    }
}

/// Writes all of `buf` at `offset` (a direct write when the file is in direct mode).
pub(crate) fn write_at(file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    #[cfg(test)]
    if REFUSE.with(|r| r.get()) {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    file.write_all_at(buf, offset)
}

#[cfg(test)]
thread_local! {
    /// Tests: every [`write_at`] fails as a filesystem that refuses direct I/O would.
    pub(crate) static REFUSE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Is this the error of a refused direct transfer (the filesystem or the alignment)?
pub fn refused(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EINVAL)
}

/// Reads a store file from the start, directly where the filesystem allows it: whole aligned
/// blocks into its own buffer, handed out by [`Read`].
pub struct StoreReader {
    file: File,
    /// Whether reads are direct; decided at the first [`Read::read`].
    direct: Option<bool>,
    buf: AlignedBuf,
    /// Next file offset to read at.
    offset: u64,
    pos: usize,
    filled: usize,
}

impl StoreReader {
    /// Block size of the reads.
    const BLOCK: usize = 1 << 20;

    pub fn open(path: &Path) -> io::Result<StoreReader> {
        let file = File::open(path)?;
        Ok(StoreReader {
            file,
            direct: None,
            buf: AlignedBuf::new(Self::BLOCK),
            offset: 0,
            pos: 0,
            filled: 0,
        })
    }

    /// The open file. Until the first [`Read::read`] it is an ordinary one (small reads at
    /// offsets go through the page cache); after it, reads of it may have to be aligned.
    pub fn file(&self) -> &File {
        &self.file
    }

    fn fill(&mut self) -> io::Result<()> {
        let direct = *self
            .direct
            .get_or_insert_with(|| set_direct(&self.file, true));
        let mut direct = direct;
        loop {
            match self.file.read_at(self.buf.window_mut(), self.offset) {
                Ok(n) => {
                    self.pos = 0;
                    self.filled = n;
                    self.offset += n as u64;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if direct && refused(&e) => {
                    // refused after all (a filesystem that accepts the flag but not the
                    // transfer): the page cache then
                    direct = !set_direct(&self.file, false);
                    self.direct = Some(direct);
                    if direct {
                        return Err(e);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Read for StoreReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.filled {
            self.fill()?;
        }
        let n = out.len().min(self.filled - self.pos);
        out[..n].copy_from_slice(&self.buf.window()[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(n: usize) -> Vec<u8> {
        opaas_testkit::noise(0x9e37_79b9_7f4a_7c15u64, n)
    }

    #[test]
    fn aligned_windows_are_aligned_and_sized() {
        for cap in [1, ALIGN, ALIGN + 1, 1 << 20] {
            let mut b = AlignedBuf::new(cap);
            assert_eq!(b.window().as_ptr() as usize % ALIGN, 0);
            assert!(b.window().len() >= cap && b.window().len() % ALIGN == 0);
            b.window_mut()[0] = 1;
        }
    }

    #[test]
    fn store_reader_returns_every_byte_across_block_edges() {
        let dir = std::env::temp_dir().join(format!("opaas-direct-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for n in [
            0,
            1,
            ALIGN - 1,
            ALIGN,
            StoreReader::BLOCK + 7,
            3 * StoreReader::BLOCK,
        ] {
            let p = dir.join(format!("f{n}"));
            let data = noise(n);
            std::fs::write(&p, &data).unwrap();
            let mut r = StoreReader::open(&p).unwrap();
            let mut got = Vec::new();
            // odd-sized reads, like the tarball's stored blocks
            let mut piece = vec![0u8; 65_535];
            loop {
                let k = r.read(&mut piece).unwrap();
                if k == 0 {
                    break;
                }
                got.extend_from_slice(&piece[..k]);
            }
            assert_eq!(got.len(), data.len(), "size {n}");
            assert!(got == data, "size {n}: bytes differ");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
