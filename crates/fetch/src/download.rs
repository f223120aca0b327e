//! One file: its mirrors in order, retries with backoff on each, a resumable `.part`, and
//! verification before the rename into the store. The caller holds the file's lock.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::{Cas, FetchError, Options, Progress};

const BUF: usize = 256 * 1024;

/// What to fetch (already validated: `sha` is 64 lower-case hex digits, `urls` is not empty).
pub(crate) struct Job<'a> {
    pub name: &'a str,
    pub sha: &'a str,
    pub size: u64,
    pub urls: &'a [String],
}

/// A failed file. `fatal`: the whole batch should stop (disk full, cache not writable).
#[derive(Debug)]
pub(crate) struct Failed {
    pub err: FetchError,
    pub fatal: bool,
}

/// What the retry loop does after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// Transient (network, 5xx, 429, wrong bytes in transit): back off, try this URL again.
    /// Whatever `.part` is left is resumed.
    Retry,
    /// Try this URL again at once, from scratch (the `.part` was just found unusable).
    RetryNow,
    /// This URL cannot serve the file (404, bad URL, local mirror error): next mirror.
    OtherMirror,
    /// The cache itself failed (disk full, permissions): stop everything.
    Fatal,
}

struct Attempt {
    err: FetchError,
    next: Next,
}

fn attempt(err: FetchError, next: Next) -> Attempt {
    Attempt { err, next }
}

/// The `.part` file and the hash of the bytes in it. The in-memory state is trusted only
/// while the file's length equals `len`; otherwise the prefix is hashed again from disk.
struct Part {
    path: PathBuf,
    hasher: Sha256,
    len: u64,
    /// The one from-scratch retry after a resumed download failed verification was used.
    fresh_retry_used: bool,
}

impl Part {
    fn reset(&mut self) {
        self.hasher = Sha256::new();
        self.len = 0;
    }

    /// Removes the file (its bytes are wrong) and forgets them.
    fn discard(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        self.reset();
    }
}

/// The exponential backoff before retry number `n` (1-based): `base * 2^(n-1)`, at most 30 s.
pub(crate) fn backoff(base: Duration, n: u32) -> Duration {
    let factor = 1u32 << n.saturating_sub(1).min(16);
    base.saturating_mul(factor).min(Duration::from_secs(30))
}

/// The local path of a `file:///path` (or `file://localhost/path`) URL, percent-decoded.
pub(crate) fn file_url_path(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("file://")?;
    let rest = rest.strip_prefix("localhost").unwrap_or(rest);
    if !rest.starts_with('/') {
        return None;
    }
    let out: Vec<u8> = percent_encoding::percent_decode_str(rest).collect();
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStringExt;
        Some(PathBuf::from(std::ffi::OsString::from_vec(out)))
    }
    #[cfg(not(unix))]
    {
        Some(PathBuf::from(String::from_utf8_lossy(&out).into_owned()))
    }
}

/// `bytes START-END/TOTAL` → (START, TOTAL if known).
fn parse_content_range(v: &str) -> Option<(u64, Option<u64>)> {
    let spec = v.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = spec.split_once('/')?;
    let (start, _end) = range.split_once('-')?;
    let start = start.trim().parse().ok()?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    Some((start, total))
}

fn network(url: &str, message: impl std::fmt::Display) -> FetchError {
    FetchError::Network {
        url: url.to_string(),
        message: message.to_string(),
    }
}

/// Transient ureq errors are retried; configuration-like ones move to the next mirror.
fn classify(e: &ureq::Error) -> Next {
    match e {
        ureq::Error::BadUri(_)
        | ureq::Error::Http(_)
        | ureq::Error::TooManyRedirects
        | ureq::Error::RequireHttpsOnly(_)
        | ureq::Error::InvalidProxyUrl => Next::OtherMirror,
        _ => Next::Retry,
    }
}

pub(crate) struct Downloader<'a> {
    pub agent: &'a ureq::Agent,
    pub opts: &'a Options,
    pub cas: &'a Cas,
    pub progress: &'a dyn Progress,
    pub hosts: &'a HostLimit,
    pub bufs: &'a std::sync::Arc<BufPool>,
}

/// Chunk buffers shared by all transfers of a fetcher: a body's helper thread takes one per
/// read and the worker gives it back once written, so a build allocates (and zeroes) a few
/// dozen, not one per read (issue 12: that was 4 % of a cold build's CPU, plus the page faults
/// of fresh memory).
#[derive(Debug, Default)]
pub(crate) struct BufPool(Mutex<Vec<Vec<u8>>>);

impl BufPool {
    /// Buffers kept for reuse at most (16 MiB).
    const KEEP: usize = 64;
    fn get(&self) -> Vec<u8> {
        let b = self.0.lock().unwrap_or_else(|e| e.into_inner()).pop();
        b.unwrap_or_else(|| vec![0u8; BUF])
    }
    fn put(&self, b: Vec<u8>) {
        if b.len() != BUF {
            return;
        }
        let mut v = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if v.len() < Self::KEEP {
            v.push(b);
        }
    }
}

/// How often a waiting worker looks at the cancel flag.
const POLL: Duration = Duration::from_millis(100);

/// At most `max` connections per host (scheme and authority of the URL), over all workers.
#[derive(Debug)]
pub(crate) struct HostLimit {
    max: usize,
    busy: Mutex<HashMap<String, usize>>,
    freed: Condvar,
}

/// A connection slot for one host, given back on drop.
struct HostSlot<'a> {
    limit: &'a HostLimit,
    host: String,
}

impl HostLimit {
    pub(crate) fn new(max: usize) -> HostLimit {
        HostLimit {
            max: max.max(1),
            busy: Mutex::new(HashMap::new()),
            freed: Condvar::new(),
        }
    }

    /// Waits for a slot; `None` when cancelled meanwhile.
    fn acquire(&self, url: &str, progress: &dyn Progress) -> Option<HostSlot<'_>> {
        let host = host_key(url).to_string();
        let mut busy = crate::lock(&self.busy);
        loop {
            let n = busy.entry(host.clone()).or_insert(0);
            if *n < self.max {
                *n += 1;
                return Some(HostSlot { limit: self, host });
            }
            if progress.cancelled() {
                return None;
            }
            busy = match self.freed.wait_timeout(busy, POLL) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
    }
}

impl Drop for HostSlot<'_> {
    fn drop(&mut self) {
        let mut busy = crate::lock(&self.limit.busy);
        if let Some(n) = busy.get_mut(&self.host) {
            *n = n.saturating_sub(1);
        }
        self.limit.freed.notify_all();
    }
}

/// `scheme://authority` of a URL.
fn host_key(url: &str) -> &str {
    let after = url.find("://").map_or(0, |i| i + 3);
    match url[after..].find('/') {
        Some(i) => &url[..after + i],
        None => url,
    }
}

/// What the helper thread of an HTTP transfer reports.
enum Msg {
    /// Status, `Content-Range` and `Content-Length` of the response.
    Head(u16, Option<String>, Option<u64>),
    /// The request failed before a response (with what to do about it).
    CallFailed(String, Next),
    /// A buffer and how many bytes of it arrived (its tail is stale: buffers are recycled
    /// without zeroing).
    Data(Vec<u8>, usize),
    End,
    Failed(String),
}

/// Sends the GET on a helper thread that streams the body back in chunks, so that the worker
/// can give up on a stalled connection or a cancelled call at once (the helper ends by itself
/// when its next send fails or the agent's read timeout fires). Chunk buffers come from, and
/// go back to, `bufs`.
///
/// Each worker thread keeps its helper for the next request once the helper is free again (it
/// says so before its last message), so a build starts a few threads, not one per file: a
/// cold libreoffice build started 772 (each a stack mapping, and at its exit the unmapping and
/// its TLB-shootdown IPIs), and reusing them took 6 % off its CPU time in alternating runs. A
/// helper still blocked on an abandoned transfer is left to end by itself, and the worker
/// starts a new one.
fn spawn_get(
    agent: &ureq::Agent,
    url: &str,
    range_from: u64,
    bufs: std::sync::Arc<BufPool>,
) -> Receiver<Msg> {
    let (tx, rx) = mpsc::sync_channel(8);
    let mut req = GetReq {
        agent: agent.clone(),
        url: url.to_string(),
        range_from,
        bufs,
        reply: tx,
    };
    HELPER.with(|cell| {
        let mut cell = cell.borrow_mut();
        if let Some(h) = cell.as_ref().filter(|h| !h.busy.load(Ordering::SeqCst)) {
            h.busy.store(true, Ordering::SeqCst);
            match h.tx.send(req) {
                Ok(()) => return,
                Err(mpsc::SendError(r)) => req = r,
            }
        }
        let (to_helper, requests) = mpsc::channel::<GetReq>();
        let busy = std::sync::Arc::new(AtomicBool::new(true));
        let b = busy.clone();
        std::thread::spawn(move || {
            for r in requests {
                run_get(r, &b);
            }
        });
        // a new thread has not dropped its receiver: this send cannot fail
        let _ = to_helper.send(req);
        *cell = Some(Helper {
            tx: to_helper,
            busy,
        });
    });
    rx
}

/// One GET for a helper thread.
struct GetReq {
    agent: ureq::Agent,
    url: String,
    range_from: u64,
    bufs: std::sync::Arc<BufPool>,
    reply: mpsc::SyncSender<Msg>,
}

/// A worker's helper thread: where to send its next request, and whether it is in one.
struct Helper {
    tx: mpsc::Sender<GetReq>,
    busy: std::sync::Arc<AtomicBool>,
}

thread_local! {
    static HELPER: std::cell::RefCell<Option<Helper>> = const { std::cell::RefCell::new(None) };
}

/// Runs one request on the helper thread, streaming its messages to `r.reply`; clears `busy`
/// before the last message it sends (or once the worker has hung up).
fn run_get(r: GetReq, busy: &AtomicBool) {
    let GetReq {
        agent,
        url,
        range_from,
        bufs,
        reply: tx,
    } = r;
    let last = |tx: &mpsc::SyncSender<Msg>, m: Msg| {
        busy.store(false, Ordering::SeqCst);
        let _ = tx.send(m);
    };
    let mut req = agent.get(&url);
    if range_from > 0 {
        req = req.header("Range", &format!("bytes={range_from}-"));
    }
    let resp = match req.call() {
        Ok(r) => r,
        Err(e) => return last(&tx, Msg::CallFailed(e.to_string(), classify(&e))),
    };
    let status = resp.status().as_u16();
    let cr = resp
        .headers()
        .get("content-range")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let len = resp.body().content_length();
    if !matches!(status, 200 | 206) {
        return last(&tx, Msg::Head(status, cr, len));
    }
    if tx.send(Msg::Head(status, cr, len)).is_err() {
        busy.store(false, Ordering::SeqCst);
        return;
    }
    let mut r = resp.into_body().into_reader();
    let mut spare = None;
    loop {
        let mut buf = spare.take().unwrap_or_else(|| bufs.get());
        match r.read(&mut buf) {
            Ok(0) => {
                bufs.put(buf);
                // the connection goes back to the agent's pool before the worker hears of it
                drop(r);
                return last(&tx, Msg::End);
            }
            Ok(n) => {
                if tx.send(Msg::Data(buf, n)).is_err() {
                    busy.store(false, Ordering::SeqCst);
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => spare = Some(buf),
            Err(e) => {
                bufs.put(buf);
                return last(&tx, Msg::Failed(e.to_string()));
            }
        }
    }
}

/// Why a wait on the helper thread ended without a message.
enum Waited {
    Stalled,
    Cancelled,
    Gone,
}

/// The next message, waiting at most `stall` and checking the cancel flag meanwhile.
fn next_msg(rx: &Receiver<Msg>, stall: Duration, progress: &dyn Progress) -> Result<Msg, Waited> {
    let since = Instant::now();
    loop {
        if progress.cancelled() {
            return Err(Waited::Cancelled);
        }
        match rx.recv_timeout(POLL.min(stall)) {
            Ok(m) => return Ok(m),
            Err(RecvTimeoutError::Disconnected) => return Err(Waited::Gone),
            Err(RecvTimeoutError::Timeout) if since.elapsed() >= stall => {
                return Err(Waited::Stalled)
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
    }
}

/// A response body (or a local file) as a sequence of chunks, written and hashed where they
/// are, without another copy.
trait Body {
    /// The next bytes; empty at the end.
    fn chunk(&mut self) -> io::Result<&[u8]>;
}

/// The body of an HTTP transfer: the helper thread's chunks, each buffer sent back for reuse
/// when the next one is asked for.
struct ChanBody<'a> {
    rx: Receiver<Msg>,
    bufs: &'a BufPool,
    chunk: Vec<u8>,
    len: usize,
    stall: Duration,
    progress: &'a dyn Progress,
    done: bool,
}

impl Body for ChanBody<'_> {
    fn chunk(&mut self) -> io::Result<&[u8]> {
        if self.done {
            return Ok(&[]);
        }
        let used = std::mem::take(&mut self.chunk);
        if !used.is_empty() {
            self.bufs.put(used);
        }
        loop {
            match next_msg(&self.rx, self.stall, self.progress) {
                Ok(Msg::Data(d, n)) if n > 0 => {
                    self.chunk = d;
                    self.len = n.min(self.chunk.len());
                    return Ok(&self.chunk[..self.len]);
                }
                Ok(Msg::Data(..)) => {}
                Ok(Msg::End) => {
                    self.done = true;
                    return Ok(&[]);
                }
                Ok(Msg::Failed(m)) => return Err(io::Error::other(m)),
                Ok(Msg::Head(..) | Msg::CallFailed(..)) => {
                    return Err(io::Error::other("unexpected message"))
                }
                Err(Waited::Stalled) => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no data for {} s", self.stall.as_secs_f32()),
                    ))
                }
                Err(Waited::Cancelled) => {
                    return Err(io::Error::new(io::ErrorKind::Interrupted, "cancelled"))
                }
                Err(Waited::Gone) => return Err(io::Error::other("connection lost")),
            }
        }
    }
}

/// A local mirror's file, read into one reused buffer.
struct FileBody {
    f: File,
    buf: Vec<u8>,
}

impl Body for FileBody {
    fn chunk(&mut self) -> io::Result<&[u8]> {
        loop {
            match self.f.read(&mut self.buf) {
                Ok(n) => return Ok(&self.buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

/// A download whose size and SHA-256 were checked: its `.part`, still open and not yet synced
/// or renamed; [`publish`] makes it a store file.
pub(crate) struct Verified {
    file: File,
    part: PathBuf,
    /// Bytes received for it in this call.
    pub received: u64,
}

impl Downloader<'_> {
    /// Downloads `job` into its `.part` and verifies it; [`publish`] then puts it in the
    /// store. The caller holds the file's lock and has checked that the store does not have
    /// it.
    pub fn run(&self, job: &Job) -> Result<Verified, Failed> {
        let mut part = Part {
            path: self.cas.part_path(job.sha),
            hasher: Sha256::new(),
            len: 0,
            fresh_retry_used: false,
        };
        if let Some(dir) = part.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Failed {
                err: disk_error(dir, e),
                fatal: true,
            })?;
        }
        let mut received = 0;
        let result = self.mirrors(job, &mut part, &mut received);
        if result.is_err() {
            // an empty .part (nothing arrived) is not worth keeping; a non-empty one is resumed
            // by the next run
            if std::fs::metadata(&part.path).is_ok_and(|m| m.len() == 0) {
                let _ = std::fs::remove_file(&part.path);
            }
        }
        result.map(|file| {
            // the kernel starts writing it back now; publish() waits for it later
            start_writeback(&file);
            Verified {
                file,
                part: part.path,
                received,
            }
        })
    }

    /// Tries the URLs in order.
    fn mirrors(&self, job: &Job, part: &mut Part, received: &mut u64) -> Result<File, Failed> {
        let mut tried = Vec::new();
        let mut last = None;
        for (i, url) in job.urls.iter().enumerate() {
            tried.push(url.clone());
            match self.on_url(job, url, part, received) {
                Ok(f) => return Ok(f),
                Err(f) if f.fatal => return Err(f),
                Err(f) => {
                    if i + 1 < job.urls.len() {
                        self.progress
                            .message(&format!("{}: {}; trying the next mirror", job.name, f.err));
                    }
                    last = Some(f.err);
                }
            }
        }
        let Some(last) = last else {
            return Err(Failed {
                err: FetchError::InvalidItem {
                    name: job.name.to_string(),
                    reason: "no URL to download from".into(),
                },
                fatal: false,
            });
        };
        // with one URL its own error says everything (and names the URL)
        let err = if tried.len() == 1 {
            last
        } else {
            FetchError::AllMirrorsFailed {
                name: job.name.to_string(),
                tried,
                last: last.to_string(),
                source: Box::new(last),
            }
        };
        Err(Failed { err, fatal: false })
    }

    /// Attempts on one URL until success, a non-retryable error, or the retries are spent.
    fn on_url(
        &self,
        job: &Job,
        url: &str,
        part: &mut Part,
        received: &mut u64,
    ) -> Result<File, Failed> {
        let local = url.starts_with("file:");
        let mut failures = 0;
        let mut immediate = 0;
        let mut since = Instant::now();
        loop {
            let before = part.len;
            let result = if local {
                self.attempt(job, url, part, received)
            } else {
                match self.hosts.acquire(url, self.progress) {
                    Some(_slot) => self.attempt(job, url, part, received),
                    None => Err(attempt(FetchError::Cancelled, Next::Fatal)),
                }
            };
            let a = match result {
                Ok(f) => return Ok(f),
                Err(a) => a,
            };
            if part.len > before && a.next == Next::Retry {
                // it moved: a reset or a stall mid-body is not held against the mirror
                failures = 0;
                since = Instant::now();
            }
            let give_up = |a: Attempt| Failed {
                err: a.err,
                fatal: a.next == Next::Fatal,
            };
            match a.next {
                Next::Fatal | Next::OtherMirror => return Err(give_up(a)),
                Next::RetryNow if immediate < 2 => {
                    immediate += 1;
                    continue;
                }
                // a local file gives the same answer on every try
                _ if local => return Err(give_up(a)),
                _ if failures >= self.opts.retries && since.elapsed() >= self.opts.patience => {
                    return Err(give_up(a))
                }
                _ => {
                    failures += 1;
                    let wait = backoff(self.opts.backoff, failures);
                    self.progress.message(&format!(
                        "{}: {}; retry {failures}/{} in {} ms",
                        job.name,
                        a.err,
                        self.opts.retries,
                        wait.as_millis()
                    ));
                    let until = Instant::now() + wait;
                    while Instant::now() < until {
                        if self.progress.cancelled() {
                            return Err(Failed {
                                err: FetchError::Cancelled,
                                fatal: true,
                            });
                        }
                        std::thread::sleep(
                            POLL.min(until.saturating_duration_since(Instant::now())),
                        );
                    }
                }
            }
        }
    }

    /// One request (or local copy): resume the `.part`, stream, verify.
    fn attempt(
        &self,
        job: &Job,
        url: &str,
        part: &mut Part,
        received: &mut u64,
    ) -> Result<File, Attempt> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&part.path)
            .map_err(|e| disk(part, e))?;
        self.sync_prefix(&mut file, part, job.size)?;
        let offset = part.len;
        if offset == job.size {
            // complete but unverified (interrupted between the last write and the rename)
            return self.verify(job, url, file, part, true);
        }
        let (mut body, start): (Box<dyn Body + '_>, u64) = if url.starts_with("file:") {
            open_local(job, url, offset)?
        } else {
            self.open_http(job, url, part)?
        };
        if start != offset {
            // the server sent the whole file instead of the rest
            file.set_len(0).map_err(|e| disk(part, e))?;
            part.reset();
        }
        file.seek(SeekFrom::Start(part.len))
            .map_err(|e| disk(part, e))?;
        let resumed = part.len > 0;
        loop {
            let buf = match body.chunk() {
                Ok([]) => break,
                Ok(b) => b,
                Err(_) if self.progress.cancelled() => {
                    return Err(attempt(FetchError::Cancelled, Next::Fatal));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // keep what arrived: the next attempt resumes from there
                    return Err(if url.starts_with("file:") {
                        attempt(
                            FetchError::Io {
                                path: file_url_path(url).unwrap_or_default(),
                                source: e,
                            },
                            Next::OtherMirror,
                        )
                    } else {
                        attempt(network(url, e), Next::Retry)
                    });
                }
            };
            let n = buf.len();
            if part.len + n as u64 > job.size {
                let got = part.len + n as u64;
                drop(file);
                part.discard();
                return Err(attempt(self.size_mismatch(job, url, got), Next::Retry));
            }
            file.write_all(buf).map_err(|e| disk(part, e))?;
            part.hasher.update(buf);
            part.len += n as u64;
            *received += n as u64;
            self.progress.bytes(n as u64);
        }
        if part.len != job.size {
            // a complete response that is too short: the server has another file
            let got = part.len;
            drop(file);
            part.discard();
            return Err(attempt(self.size_mismatch(job, url, got), Next::Retry));
        }
        self.verify(job, url, file, part, resumed)
    }

    /// Makes `part` describe the file's bytes: hashes a prefix left by an interrupted run (or
    /// attempt), drops one longer than the file can be.
    fn sync_prefix(&self, file: &mut File, part: &mut Part, size: u64) -> Result<(), Attempt> {
        let on_disk = file.metadata().map_err(|e| disk(part, e))?.len();
        if on_disk > size {
            file.set_len(0).map_err(|e| disk(part, e))?;
            part.reset();
            return Ok(());
        }
        if on_disk == part.len {
            return Ok(());
        }
        part.reset();
        file.seek(SeekFrom::Start(0)).map_err(|e| disk(part, e))?;
        let mut buf = vec![0u8; BUF];
        let mut left = on_disk;
        while left > 0 {
            let want = left.min(BUF as u64) as usize;
            let n = match file.read(&mut buf[..want]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(disk(part, e)),
            };
            part.hasher.update(&buf[..n]);
            part.len += n as u64;
            left -= n as u64;
        }
        self.progress.bytes(part.len);
        Ok(())
    }

    /// Sends the GET (with `Range` when resuming) and checks status and lengths. Returns the
    /// body and the offset it starts at.
    fn open_http(
        &self,
        job: &Job,
        url: &str,
        part: &mut Part,
    ) -> Result<(Box<dyn Body + '_>, u64), Attempt> {
        let offset = part.len;
        let rx = spawn_get(self.agent, url, offset, self.bufs.clone());
        let stall = self.opts.stall.min(self.opts.timeout);
        let (status, content_range, content_length) =
            match next_msg(&rx, self.opts.timeout, self.progress) {
                Ok(Msg::Head(s, cr, len)) => (s, cr, len),
                Ok(Msg::CallFailed(m, next)) => return Err(attempt(network(url, m), next)),
                Ok(_) | Err(Waited::Gone) => {
                    return Err(attempt(network(url, "connection lost"), Next::Retry))
                }
                Err(Waited::Stalled) => {
                    return Err(attempt(
                        network(
                            url,
                            format!("no response in {} s", self.opts.timeout.as_secs_f32()),
                        ),
                        Next::Retry,
                    ))
                }
                Err(Waited::Cancelled) => return Err(attempt(FetchError::Cancelled, Next::Fatal)),
            };
        let http = |next| {
            attempt(
                FetchError::Http {
                    url: url.to_string(),
                    status,
                },
                next,
            )
        };
        let start = match status {
            200 => 0,
            206 => {
                let cr = content_range.as_deref().and_then(parse_content_range);
                match cr {
                    Some((_, Some(total))) if total != job.size => {
                        part.discard();
                        return Err(attempt(self.size_mismatch(job, url, total), Next::Retry));
                    }
                    Some((s, _)) if s == offset => offset,
                    _ => {
                        part.discard();
                        return Err(attempt(
                            network(
                                url,
                                format!(
                                    "asked for bytes from {offset}, got a partial response with Content-Range {content_range:?}"
                                ),
                            ),
                            Next::RetryNow,
                        ));
                    }
                }
            }
            // the .part is at least as long as the server's file: it cannot be a prefix
            416 if offset > 0 => {
                part.discard();
                return Err(http(Next::RetryNow));
            }
            404 | 410 => return Err(http(Next::OtherMirror)),
            408 | 429 | 500..=599 => return Err(http(Next::Retry)),
            _ => return Err(http(Next::OtherMirror)),
        };
        if let Some(len) = content_length {
            if start + len != job.size {
                part.discard();
                return Err(attempt(
                    self.size_mismatch(job, url, start + len),
                    Next::Retry,
                ));
            }
        }
        Ok((
            Box::new(ChanBody {
                rx,
                bufs: self.bufs,
                chunk: Vec::new(),
                len: 0,
                stall,
                progress: self.progress,
                done: false,
            }),
            start,
        ))
    }

    /// Compares the hash; a wrong file is removed (and retried).
    fn verify(
        &self,
        job: &Job,
        url: &str,
        file: File,
        part: &mut Part,
        resumed: bool,
    ) -> Result<File, Attempt> {
        let got = hex::encode(part.hasher.clone().finalize());
        if got != job.sha {
            drop(file);
            part.discard();
            let next = if resumed && !part.fresh_retry_used {
                // perhaps only the old prefix was bad: once more from scratch, right away
                part.fresh_retry_used = true;
                Next::RetryNow
            } else {
                Next::Retry
            };
            return Err(attempt(
                FetchError::HashMismatch {
                    name: job.name.to_string(),
                    url: url.to_string(),
                    expected: job.sha.to_string(),
                    got,
                },
                next,
            ));
        }
        Ok(file)
    }

    fn size_mismatch(&self, job: &Job, url: &str, got: u64) -> FetchError {
        FetchError::SizeMismatch {
            name: job.name.to_string(),
            url: url.to_string(),
            expected: job.size,
            got,
        }
    }
}

/// Opens a `file://` source at `offset`.
/// Puts a verified download in the store: its data on stable storage first, then the name
/// that means "verified" (`<sha>.deb`). Runs on the publishing thread, so the connection
/// that fetched it is already on its next file (issue 12: a synchronous `fdatasync` per
/// file cost a third of a cold 677-file build's wall time).
pub(crate) fn publish(cas: &Cas, sha: &str, v: Verified) -> Result<(), Failed> {
    let fail = |path: &Path, e: io::Error| {
        if is_disk_full(&e) {
            let _ = std::fs::remove_file(&v.part);
        }
        Failed {
            err: disk_error(path, e),
            fatal: true,
        }
    };
    v.file.sync_data().map_err(|e| fail(&v.part, e))?;
    drop(v.file);
    let dest = cas.path(sha);
    std::fs::rename(&v.part, &dest).map_err(|e| fail(&dest, e))
}

/// Asks the kernel to start writing `file` back (Linux); a hint, errors ignored (the
/// `fdatasync` in [`publish`] is what guarantees).
fn start_writeback(file: &File) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: a plain syscall on a descriptor the caller owns; it reads no memory of ours.
        unsafe {
            libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = file;
}

fn open_local(job: &Job, url: &str, offset: u64) -> Result<(Box<dyn Body>, u64), Attempt> {
    let Some(path) = file_url_path(url) else {
        return Err(attempt(
            network(url, "unsupported file URL (use file:///absolute/path)"),
            Next::OtherMirror,
        ));
    };
    let io_err = |path: &Path, source| {
        attempt(
            FetchError::Io {
                path: path.to_path_buf(),
                source,
            },
            Next::OtherMirror,
        )
    };
    let mut f = File::open(&path).map_err(|e| io_err(&path, e))?;
    let len = f.metadata().map_err(|e| io_err(&path, e))?.len();
    if len != job.size {
        return Err(attempt(
            FetchError::SizeMismatch {
                name: job.name.to_string(),
                url: url.to_string(),
                expected: job.size,
                got: len,
            },
            Next::OtherMirror,
        ));
    }
    f.seek(SeekFrom::Start(offset))
        .map_err(|e| io_err(&path, e))?;
    Ok((
        Box::new(FileBody {
            f,
            buf: vec![0u8; BUF],
        }),
        offset,
    ))
}

/// A cache I/O error: disk full removes the `.part` and stops the batch; anything else too.
fn disk(part: &mut Part, e: io::Error) -> Attempt {
    let full = is_disk_full(&e);
    let err = disk_error(&part.path, e);
    if full {
        part.discard();
    }
    attempt(err, Next::Fatal)
}

pub(crate) fn is_disk_full(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

pub(crate) fn disk_error(path: &Path, e: io::Error) -> FetchError {
    if is_disk_full(&e) {
        FetchError::DiskFull {
            path: path.to_path_buf(),
        }
    } else {
        FetchError::Io {
            path: path.to_path_buf(),
            source: e,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let b = Duration::from_millis(100);
        assert_eq!(backoff(b, 1), Duration::from_millis(100));
        assert_eq!(backoff(b, 2), Duration::from_millis(200));
        assert_eq!(backoff(b, 4), Duration::from_millis(800));
        assert_eq!(backoff(b, 40), Duration::from_secs(30));
    }

    #[test]
    fn file_urls() {
        assert_eq!(
            file_url_path("file:///srv/m/a%2Bb_1.0_all.deb"),
            Some(PathBuf::from("/srv/m/a+b_1.0_all.deb"))
        );
        assert_eq!(
            file_url_path("file://localhost/x"),
            Some(PathBuf::from("/x"))
        );
        assert_eq!(file_url_path("file://host/x"), None);
        assert_eq!(file_url_path("file:///x%"), Some(PathBuf::from("/x%")));
        assert_eq!(file_url_path("file:///x%4"), Some(PathBuf::from("/x%4")));
        assert_eq!(file_url_path("http://x/y"), None);
    }

    #[test]
    fn content_range() {
        assert_eq!(parse_content_range("bytes 5-9/10"), Some((5, Some(10))));
        assert_eq!(parse_content_range("bytes 5-9/*"), Some((5, None)));
        assert_eq!(parse_content_range("bytes */10"), None);
        assert_eq!(parse_content_range("items 1-2/3"), None);
    }
}
