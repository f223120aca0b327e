//! How bundles use the page cache: what a bundle pulls in from the disk to read once passes
//! through a bounded window of it instead of filling it.
//!
//! A huge bundle reads half a gigabyte of `.deb`s once (packing) and its own tarball once
//! (the check before it is reused). Left to the kernel, all of it stays cached. That evicts
//! what the machine does need again (the service's database, the mapped package indices of
//! the next resolve), and on a VM whose host takes freed guest memory back (free page
//! reporting or a balloon: the 2-core test machine runs with `page_reporting_order=11`) every
//! fresh page costs a host fault on first touch. There, writing 558 MiB into new page-cache
//! pages took 2.5 s of system time, against 0.17 s when the same amount went through pages
//! that had just been freed (issue 12).
//!
//! So what a bundle pulls in from the disk it gives back, like a database scanning a table
//! (PostgreSQL's ring buffers): once read, those pages are handed back with
//! `POSIX_FADV_DONTNEED`, and the kernel gives them to the next read. What was already cached
//! stays cached: the `.deb`s a build has just downloaded are what a rebuild soon after reads
//! (giving them back as well made such a rebuild read the disk again: 1.17 s instead of
//! 0.61 s). [`mostly_cached`] tells the two apart before the first read. What is needed soon
//! is announced with `POSIX_FADV_WILLNEED`, so the disk reads ahead of the consumer. Advice is
//! only advice: where a filesystem ignores it (tmpfs), or the kernel cannot say what is
//! cached (before Linux 6.5), files are read as before and stay cached.

use std::fs::File;
use std::os::fd::AsRawFd;

#[derive(Debug, Clone, Copy)]
pub(crate) enum Advice {
    /// Will be read soon: start reading it now.
    WillNeed,
    /// Was read and will not be again: its pages may go.
    DontNeed,
}

/// Advises the kernel about `len` bytes of `f` from `offset` (`len` 0: to the end).
pub(crate) fn advise(f: &File, offset: u64, len: u64, advice: Advice) {
    let a = match advice {
        Advice::WillNeed => libc::POSIX_FADV_WILLNEED,
        Advice::DontNeed => libc::POSIX_FADV_DONTNEED,
    };
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: a plain system call on a descriptor `f` keeps open; no memory is passed. Its
    // result is ignored on purpose: a refused advice changes no byte.
    unsafe {
        libc::posix_fadvise(f.as_raw_fd(), offset, len, a);
    }
}

/// Whether at least half of `f`'s first `len` bytes are in the page cache (`cachestat(2)`,
/// Linux 6.5); true when the kernel cannot say, so that nothing is given back on a guess.
pub(crate) fn mostly_cached(f: &File, len: u64) -> bool {
    #[repr(C)]
    struct Range {
        off: u64,
        len: u64,
    }
    #[repr(C)]
    #[derive(Default)]
    struct Stat {
        nr_cache: u64,
        nr_dirty: u64,
        nr_writeback: u64,
        nr_evicted: u64,
        nr_recently_evicted: u64,
    }
    /// `cachestat`'s number: system calls from 424 on have one number on every architecture
    /// but alpha; the `libc` crate does not name this one for x86_64 yet.
    const SYS_CACHESTAT: libc::c_long = 451;
    if len == 0 {
        return true;
    }
    let range = Range { off: 0, len };
    let mut stat = Stat::default();
    // SAFETY: `range` and `stat` are live, properly laid out (`repr(C)`, as in
    // <linux/mman.h>) for the duration of the call; the descriptor is open.
    let r = unsafe {
        libc::syscall(
            SYS_CACHESTAT,
            f.as_raw_fd(),
            &range as *const Range,
            &mut stat as *mut Stat,
            0u32,
        )
    };
    if r != 0 {
        return true;
    }
    // SAFETY: sysconf has no memory arguments.
    let page = u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
    stat.nr_cache * 2 >= len.div_ceil(page.max(1))
}
