//! A gzip stream that compresses only what compresses.
//!
//! A bundle is mostly .debs, whose members are already xz/zstd/gzip-compressed: deflating them
//! again saves about 2 % and made packing four times slower than copying the bytes. This writer
//! produces one ordinary gzip member (RFC 1952) whose single deflate stream (RFC 1951) mixes
//! two kinds of blocks:
//!
//! - bytes written through [`Write`] (tar headers, padding, the text members) are compressed
//!   with a raw deflate compressor and closed with a *sync flush*, which ends on a byte
//!   boundary (an empty stored block);
//! - bytes given to [`MixedGz::write_stored`] (the .debs) become *stored* blocks: a 5-byte
//!   header (`BFINAL=0, BTYPE=00`, `LEN`, `NLEN`) in front of up to 65,535 raw bytes, so the
//!   cost is a CRC-32 and a copy.
//!
//! After stored data the compressor is reset before it is used again: its window would not
//! contain the stored bytes, so a back-reference across them would point at the wrong place
//! (a reset compressor only refers back into its own segment, which the decoder holds too).
//! The stream ends with an empty final stored block and the CRC-32 / length trailer. Every
//! inflater reads it (GNU gzip and tar, busybox, zlib, Python); the output depends only on the
//! bytes and the order of the calls, so it is deterministic.

use flate2::{Compress, Compression, FlushCompress};
use std::io::{self, Read, Write};

/// A writer that can let its caller fill its own buffer: `fill` gets the next `n` bytes of the
/// output as one or more consecutive slices, so data read from a file lands where it is
/// written from, without a copy through a buffer of the caller's (issue 12: the copy was 3 %
/// of a cold build's CPU).
pub(crate) trait FillWrite: Write {
    fn write_filled(
        &mut self,
        n: usize,
        fill: &mut dyn FnMut(&mut [u8]) -> io::Result<()>,
    ) -> io::Result<()>;
}

impl FillWrite for Vec<u8> {
    fn write_filled(
        &mut self,
        n: usize,
        fill: &mut dyn FnMut(&mut [u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        let at = self.len();
        self.resize(at + n, 0);
        let r = fill(&mut self[at..]);
        if r.is_err() {
            self.truncate(at);
        }
        r
    }
}

/// Largest payload of one stored block.
const STORED_MAX: usize = 65_535;
/// Compressible bytes are buffered up to this size before they are deflated.
const PENDING_MAX: usize = 1 << 20;

pub(crate) struct MixedGz<W: Write> {
    out: W,
    crc: crc32fast::Hasher,
    len: u64,
    pending: Vec<u8>,
    comp: Compress,
    /// Stored bytes were written since the compressor last ran: reset it before reuse.
    needs_reset: bool,
    scratch: Vec<u8>,
}

fn deflate_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("deflate: {e}"))
}

impl<W: Write> MixedGz<W> {
    /// Writes the gzip header (no name, no time, OS unknown) and returns the writer.
    pub(crate) fn new(mut out: W, level: Compression) -> io::Result<Self> {
        out.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff])?;
        Ok(MixedGz {
            out,
            crc: crc32fast::Hasher::new(),
            len: 0,
            pending: Vec::with_capacity(PENDING_MAX),
            comp: Compress::new(level, false),
            needs_reset: false,
            scratch: Vec::new(),
        })
    }

    /// Deflates the buffered compressible bytes and ends them on a byte boundary.
    fn deflate_pending(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        if self.needs_reset {
            self.comp.reset();
            self.needs_reset = false;
        }
        let mut input = &self.pending[..];
        while !input.is_empty() {
            self.scratch.clear();
            self.scratch.reserve(input.len() + 4096);
            let before = self.comp.total_in();
            self.comp
                .compress_vec(input, &mut self.scratch, FlushCompress::None)
                .map_err(deflate_err)?;
            let used = (self.comp.total_in() - before) as usize;
            input = &input[used..];
            self.out.write_all(&self.scratch)?;
        }
        // the sync flush (once: each call would add another empty stored block), then drain
        let mut flush = FlushCompress::Sync;
        loop {
            self.scratch.clear();
            self.scratch.reserve(64 * 1024);
            let before = self.comp.total_out();
            self.comp
                .compress_vec(&[], &mut self.scratch, flush)
                .map_err(deflate_err)?;
            self.out.write_all(&self.scratch)?;
            if flush == FlushCompress::None && self.comp.total_out() == before {
                break;
            }
            flush = FlushCompress::None;
        }
        self.pending.clear();
        Ok(())
    }

    /// Copies exactly `size` bytes from `src` into the stream as stored blocks: each block's
    /// 5-byte header, then its bytes read from `src` straight into the output.
    pub(crate) fn write_stored(&mut self, src: &mut dyn Read, size: u64) -> io::Result<()>
    where
        W: FillWrite,
    {
        self.deflate_pending()?;
        if size == 0 {
            return Ok(());
        }
        self.needs_reset = true;
        let mut left = size;
        while left > 0 {
            let n = left.min(STORED_MAX as u64) as usize;
            let n16 = n as u16;
            let mut head = [0u8; 5]; // BFINAL = 0, BTYPE = 00 (stored), padding to the byte boundary
            head[1..3].copy_from_slice(&n16.to_le_bytes());
            head[3..5].copy_from_slice(&(!n16).to_le_bytes());
            self.out.write_all(&head)?;
            let crc = &mut self.crc;
            self.out.write_filled(n, &mut |data: &mut [u8]| {
                src.read_exact(data)?;
                crc.update(data);
                Ok(())
            })?;
            left -= n as u64;
        }
        self.len += size;
        Ok(())
    }

    /// Ends the deflate stream, writes the trailer and returns the inner writer.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.deflate_pending()?;
        // an empty final stored block, then CRC-32 and the length modulo 2^32
        self.out.write_all(&[1, 0, 0, 0xff, 0xff])?;
        self.out
            .write_all(&self.crc.clone().finalize().to_le_bytes())?;
        self.out.write_all(&(self.len as u32).to_le_bytes())?;
        Ok(self.out)
    }
}

impl<W: Write> Write for MixedGz<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        self.crc.update(buf);
        self.len += buf.len() as u64;
        if self.pending.len() >= PENDING_MAX {
            self.deflate_pending()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn gunzip(b: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(b)
            .read_to_end(&mut out)
            .expect("inflate");
        out
    }

    #[test]
    fn mixed_stream_round_trips_and_stores_noise() {
        let text = b"Package: hello\nVersion: 2.10-3\n".repeat(3000);
        let big = noise(3 * STORED_MAX + 17, 7);
        let mut g = MixedGz::new(Vec::new(), Compression::default()).expect("new");
        g.write_all(&text).expect("text");
        g.write_stored(&mut big.as_slice(), big.len() as u64)
            .expect("stored");
        // text after stored data again (the compressor is reset), then an empty stored member
        g.write_all(&text).expect("text 2");
        g.write_stored(&mut &b""[..], 0).expect("empty");
        let small = noise(100, 9);
        g.write_stored(&mut small.as_slice(), 100).expect("small");
        let gz = g.finish().expect("finish");
        let mut expect = text.clone();
        expect.extend_from_slice(&big);
        expect.extend_from_slice(&text);
        expect.extend_from_slice(&small);
        assert_eq!(gunzip(&gz), expect);
        // noise costs 5 bytes per 64 KiB; the text compresses
        let overhead = gz.len() as i64 - (big.len() + small.len()) as i64;
        assert!(
            overhead > 0 && overhead < 2 * 2000,
            "{overhead} bytes beyond the stored data"
        );
        // same calls, same bytes
        let mut g2 = MixedGz::new(Vec::new(), Compression::default()).expect("new");
        g2.write_all(&text).expect("text");
        g2.write_stored(&mut big.as_slice(), big.len() as u64)
            .expect("stored");
        g2.write_all(&text).expect("text 2");
        g2.write_stored(&mut &b""[..], 0).expect("empty");
        g2.write_stored(&mut small.as_slice(), 100).expect("small");
        assert_eq!(g2.finish().expect("finish"), gz);
    }

    #[test]
    fn empty_and_short_sources() {
        let g = MixedGz::new(Vec::new(), Compression::fast()).expect("new");
        assert_eq!(gunzip(&g.finish().expect("finish")), b"");
        // a source shorter than announced is an error, not a short member
        let mut g = MixedGz::new(Vec::new(), Compression::fast()).expect("new");
        assert!(g.write_stored(&mut &b"abc"[..], 10).is_err());
    }

    #[test]
    fn large_text_is_deflated_in_pieces() {
        let text: Vec<u8> = (0..3 * PENDING_MAX).map(|i| b"abcdefgh\n"[i % 9]).collect();
        let mut g = MixedGz::new(Vec::new(), Compression::default()).expect("new");
        g.write_all(&text).expect("write");
        let gz = g.finish().expect("finish");
        assert!(gz.len() < text.len() / 50, "{} bytes", gz.len());
        assert_eq!(gunzip(&gz), text);
    }
}
