//! `opaas-fetch`: the parallel, verified, content-addressed `.deb` downloader.
//!
//! The resolver says which `.deb`s a bundle needs, each with the size and SHA256 its signed
//! `Packages` index gives; [`fetch_all`] makes them present in a content-addressed store
//! ([`Cas`]) and returns their paths in the order asked.
//!
//! # Design
//!
//! * **Content-addressed store.** A file lives at `<cache>/debs-v1/<sha[0..2]>/<sha>.deb`. A
//!   file only gets that name by a rename after its size and SHA256 were checked (and its data
//!   synced, by the publishing thread below), so "present with the right size" means "verified": a second run stats the files
//!   and downloads nothing. Files are immutable, so bundles may hard-link or copy them while
//!   other downloads run. (The directory is not synced after the rename: a power loss may
//!   lose a fresh file, which is then downloaded again, but never leaves a wrong one.)
//! * **Streaming verification, atomic publication.** Bytes go to `<sha>.part` in the same
//!   directory and through SHA256 as they arrive; too many bytes abort at once. At the end the
//!   size and hash are compared and the `.part` is renamed. A crash can only ever leave a
//!   `.part` behind, never a wrong `.deb`.
//! * **Resume.** A `.part` (from an interrupted attempt, or a run that crashed) has its prefix
//!   hashed and the download continues with `Range: bytes=N-`. A `200` instead of `206` restarts
//!   from byte 0; a `416` (the file is not longer than our prefix) discards the prefix. If a
//!   resumed file fails verification, the `.part` is deleted and the file fetched once more
//!   from scratch at once (the old prefix may have been the bad part).
//! * **Retries and failover.** Every item has its URLs in mirror order. Timeouts, resets,
//!   connections dropped mid-body, 5xx, 408 and 429, and wrong bytes (hash or size) are retried
//!   on the same URL with exponential backoff ([`Options::backoff`] × 2ⁿ, at most 30 s),
//!   [`Options::retries`] times in a row and for at least [`Options::patience`]; an attempt
//!   that added bytes to the `.part` (a connection reset or stalled mid-body) does not count
//!   and restarts that deadline, so a bad but moving mirror is followed to the end. A 404/410 or another 4xx moves to the next URL at once, as
//!   does a spent retry budget.
//! * **Stalls and cancel.** The body is read on a helper thread; the worker waits for it in
//!   short slices, so a connection that delivers nothing for [`Options::stall`] is dropped
//!   (and the file resumed on a new one), and [`Progress::cancelled`] stops the call within a
//!   fraction of a second: no new file is started and running transfers are abandoned (their
//!   `.part` stays for the next run).
//! * **Per-host limit.** At most [`Options::per_host`] connections to one host at a time, over
//!   all workers (mirrors throttle or reset clients that open many). The `.part` is kept across mirrors (same hash, same bytes).
//!   When every URL failed, the error is [`FetchError::AllMirrorsFailed`] naming each URL
//!   tried (with a single URL, that URL's own error, which names it).
//! * **Bounded parallelism.** [`Options::jobs`] worker threads take files from a shared queue
//!   and share one `ureq` agent, whose keep-alive pool keeps connections to each mirror open
//!   across files. One file's failure does not stop the others (the store still fills, so a
//!   rerun has less to do); disk full or an unwritable store stops the batch.
//! * **Deduplication.** Items with the same hash in one call are fetched once (their URL lists
//!   merged). Across calls — threads or processes sharing the cache — a download holds an
//!   exclusive lock on its hash's byte of the store's `.locks` file (an open-file-description
//!   lock; see `lock.rs`) and checks the store again once it has the lock, so a file being
//!   downloaded by someone else is waited for, not fetched twice. A worker that finds a lock
//!   taken first works on other files and comes back to it.
//! * **Publication off the connection.** A verified `.part` goes to one publishing thread
//!   (with its lock), which waits for its data to be on disk (`fdatasync`; writeback was started
//!   when it completed) and renames it, so a connection starts its next file at once; the queue
//!   is bounded, so the disk is never far behind.
//! * **Disk full.** `ENOSPC` (or a quota) while writing becomes [`FetchError::DiskFull`]; the
//!   `.part` is removed so the space is given back.
//! * **Local mirrors.** `file:///path` URLs are read directly (with the same verification).
//!
//! HTTP goes through `ureq` (blocking, rustls), as in `opaas-repo`'s index client: the library
//! is threaded rather than async, and the service will call it from blocking tasks.
//!
//! ```no_run
//! use opaas_fetch::{fetch_all, Cas, Item, NoProgress, Options};
//! let cas = Cas::new("/var/cache/opaas");
//! let items = vec![Item {
//!     name: "hello_2.10-3_amd64.deb".into(),
//!     urls: vec!["http://mirror.example/debian/pool/main/h/hello/hello_2.10-3_amd64.deb".into()],
//!     sha256: "0000000000000000000000000000000000000000000000000000000000000000".into(),
//!     size: 53_000,
//! }];
//! let got = fetch_all(&cas, &items, &Options::default(), &NoProgress)?;
//! println!("{}", got.paths[0].display());
//! # Ok::<_, opaas_fetch::FetchError>(())
//! ```

mod cas;
mod download;
mod error;
mod lock;

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

pub use cas::Cas;
pub use error::FetchError;

use download::{Downloader, Failed, Job};

/// One file to download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// For messages, e.g. `nginx_1.22.1-9_amd64.deb`.
    pub name: String,
    /// Where to get it, in mirror failover order (`http://`, `https://` or `file:///`).
    pub urls: Vec<String>,
    /// Its SHA256 in hex, as the signed index gives it.
    pub sha256: String,
    /// Its size in bytes, as the signed index gives it.
    pub size: u64,
}

/// How to download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Files downloaded at the same time (worker threads). Default 8; 0 counts as 1.
    pub jobs: usize,
    /// Retries of a transient failure on one URL before moving to the next. Default 4.
    pub retries: u32,
    /// Connect timeout, and the longest wait for a response or for more body bytes.
    /// Default 30 s. (Not a limit on a whole download: a slow but moving body is fine.)
    pub timeout: Duration,
    /// The first retry's delay; each further one doubles it (at most 30 s). Default 100 ms.
    pub backoff: Duration,
    /// A connection that delivers no byte for this long (waiting for the response or within
    /// the body) is dropped and the download resumed on a new one. Default 15 s; at most
    /// `timeout` is used.
    pub stall: Duration,
    /// Connections to one host (scheme, name and port) at the same time. Default 4; 0 counts
    /// as 1.
    pub per_host: usize,
    /// Retries on one URL go on past `retries` until this long after its last progress (or
    /// first attempt): a deadline for a mirror that fails many requests in a row but does
    /// answer. Default 10 s; zero means the count alone decides.
    pub patience: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            jobs: 8,
            retries: 4,
            timeout: Duration::from_secs(30),
            backoff: Duration::from_millis(100),
            stall: Duration::from_secs(15),
            per_host: 4,
            patience: Duration::from_secs(10),
        }
    }
}

/// Progress reports, called from the worker threads (hence `Sync`). All methods default to
/// doing nothing.
pub trait Progress: Sync {
    /// Before anything: `files` distinct files (cached or not) and the `bytes` that are not
    /// in the store yet.
    fn start(&self, _files: usize, _bytes: u64) {}
    /// `n` more bytes are on disk: received, or found in a `.part` being resumed, or — for a
    /// file another process downloaded meanwhile — its whole size. Retries after bad data
    /// count again, so the sum can exceed the announced total.
    fn bytes(&self, _n: u64) {}
    /// A file is in the store; `cached`: it was there already (or another process put it).
    fn file_done(&self, _name: &str, _cached: bool) {}
    /// Something worth telling (a retry, a mirror failover, a wait for another download).
    fn message(&self, _msg: &str) {}
    /// Polled several times a second while downloading; true stops the call with
    /// [`FetchError::Cancelled`] within about a quarter of a second.
    fn cancelled(&self) -> bool {
        false
    }
}

/// Reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;
impl Progress for NoProgress {}

/// The result of [`fetch_all`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fetched {
    /// The verified file of each item, in the order of the items (duplicates included).
    pub paths: Vec<PathBuf>,
    /// Bytes received in this call (including bytes thrown away by retries; not the prefix of
    /// a resumed `.part`).
    pub downloaded_bytes: u64,
    /// Distinct files that were already in the store (or that another process downloaded
    /// while we waited for its lock).
    pub cache_hits: usize,
    /// Distinct files downloaded by this call. `cache_hits + downloads` is the number of
    /// distinct hashes among the items.
    pub downloads: usize,
}

/// A downloader with its HTTP agent, for several [`Fetcher::fetch_all`] calls that should
/// share connections.
#[derive(Debug, Clone)]
pub struct Fetcher {
    agent: ureq::Agent,
    opts: Options,
    hosts: std::sync::Arc<download::HostLimit>,
    bufs: std::sync::Arc<download::BufPool>,
}

/// Downloads `items` into `cas` with a fresh [`Fetcher`]; see the crate documentation.
pub fn fetch_all(
    cas: &Cas,
    items: &[Item],
    opts: &Options,
    progress: &dyn Progress,
) -> Result<Fetched, FetchError> {
    Fetcher::new(opts.clone()).fetch_all(cas, items, progress)
}

/// One distinct file (first item's name, merged URL lists).
struct Unique {
    name: String,
    sha: String,
    size: u64,
    urls: Vec<String>,
}

enum Outcome {
    /// Another call put it in the store while we waited for its lock.
    Hit,
    Downloaded(u64),
}

type Slot = Option<Result<Outcome, Failed>>;

/// A verified download on its way to the publishing thread, with the lock of its hash (held
/// until the file has its name in the store).
type Publish = (usize, download::Verified, lock::Lock);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // a panicking worker takes the batch down through the scope anyway; never panic twice
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Validates the items and groups them by hash: the distinct files, and each item's file.
fn group(items: &[Item]) -> Result<(Vec<Unique>, Vec<usize>), FetchError> {
    let mut uniq: Vec<Unique> = Vec::new();
    let mut by_sha: HashMap<String, usize> = HashMap::new();
    let mut slots = Vec::with_capacity(items.len());
    for it in items {
        let invalid = |reason: String| FetchError::InvalidItem {
            name: it.name.clone(),
            reason,
        };
        if !cas::is_sha256(&it.sha256) {
            return Err(invalid(format!(
                "SHA256 must be 64 hex digits, got {:?}",
                it.sha256
            )));
        }
        if it.urls.is_empty() {
            return Err(invalid("no URL to download from".into()));
        }
        let sha = it.sha256.to_ascii_lowercase();
        match by_sha.get(&sha) {
            Some(&i) => {
                let u = &mut uniq[i];
                if u.size != it.size {
                    return Err(invalid(format!(
                        "listed with size {} and, as {}, with size {}",
                        it.size, u.name, u.size
                    )));
                }
                for url in &it.urls {
                    if !u.urls.contains(url) {
                        u.urls.push(url.clone());
                    }
                }
                slots.push(i);
            }
            None => {
                by_sha.insert(sha.clone(), uniq.len());
                slots.push(uniq.len());
                uniq.push(Unique {
                    name: it.name.clone(),
                    sha,
                    size: it.size,
                    urls: it.urls.clone(),
                });
            }
        }
    }
    Ok((uniq, slots))
}

impl Fetcher {
    /// A fetcher with one keep-alive agent configured from `opts`.
    pub fn new(opts: Options) -> Fetcher {
        let jobs = opts.jobs.max(1);
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(opts.timeout))
            .timeout_recv_response(Some(opts.timeout))
            .timeout_per_read(Some(opts.timeout))
            .http_status_as_error(false)
            .user_agent(concat!("opaas/", env!("CARGO_PKG_VERSION")))
            .max_idle_connections_per_host(jobs)
            .max_idle_connections(jobs.max(10))
            .build();
        Fetcher {
            agent: opaas_repo::http::agent(config),
            hosts: std::sync::Arc::new(download::HostLimit::new(opts.per_host)),
            bufs: std::sync::Arc::default(),
            opts,
        }
    }

    pub fn options(&self) -> &Options {
        &self.opts
    }

    /// Makes every item present in `cas` and returns their paths (see the crate docs).
    ///
    /// On failure the first error is returned (disk full and other store errors before
    /// download errors, then in item order); every failure is also reported through
    /// [`Progress::message`] as it happens. Files that did arrive stay in the store.
    pub fn fetch_all(
        &self,
        cas: &Cas,
        items: &[Item],
        progress: &dyn Progress,
    ) -> Result<Fetched, FetchError> {
        let (uniq, slots) = group(items)?;
        let cached: Vec<bool> = uniq.iter().map(|u| cas.contains(&u.sha, u.size)).collect();
        let todo_bytes = uniq
            .iter()
            .zip(&cached)
            .filter(|(_, c)| !**c)
            .map(|(u, _)| u.size)
            .sum();
        progress.start(uniq.len(), todo_bytes);
        for (u, _) in uniq.iter().zip(&cached).filter(|(_, c)| **c) {
            progress.file_done(&u.name, true);
        }

        // (index into uniq, already put back once because its lock was taken)
        let queue: Mutex<VecDeque<(usize, bool)>> = Mutex::new(
            (0..uniq.len())
                .filter(|&i| !cached[i])
                .map(|i| (i, false))
                .collect(),
        );
        let results: Mutex<Vec<Slot>> = Mutex::new((0..uniq.len()).map(|_| None).collect());
        let cancel = AtomicBool::new(false);
        let workers = self.opts.jobs.max(1).min(lock(&queue).len());
        if workers > 0 {
            // the store's directory once, not before every file's lock
            std::fs::create_dir_all(cas.root()).map_err(|e| download::disk_error(cas.root(), e))?;
        }
        let dl = Downloader {
            agent: &self.agent,
            opts: &self.opts,
            cas,
            progress,
            hosts: &self.hosts,
            bufs: &self.bufs,
        };
        // verified files go to one publishing thread (sync, rename, release the lock), so a
        // connection never waits for the disk; a bounded queue, so the disk is never far
        // behind the network and a build holds at most 2 × 16 descriptors for it (the service
        // runs several builds in one process)
        let (to_publish, published) = std::sync::mpsc::sync_channel::<Publish>(16);
        std::thread::scope(|s| {
            let (uniq, results, cancel, dl) = (&uniq, &results, &cancel, &dl);
            s.spawn(move || {
                for first in published.iter() {
                    // a batch: what queued up while the last fdatasync waited; their writeback
                    // is under way, so one journal commit mostly covers them all
                    let batch: Vec<Publish> =
                        std::iter::once(first).chain(published.try_iter()).collect();
                    for (i, v, held) in batch {
                        let u = &uniq[i];
                        let received = v.received;
                        let r = download::publish(cas, &u.sha, v).map(|()| received);
                        drop(held);
                        self.record(dl, u, i, r.map(Outcome::Downloaded), results, cancel);
                    }
                }
            });
            for _ in 0..workers {
                let tx = to_publish.clone();
                let queue = &queue;
                s.spawn(move || self.worker(dl, uniq, queue, results, cancel, tx));
            }
            // the publisher ends once the last worker has dropped its sender
            drop(to_publish);
        });

        let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
        let mut out = Fetched {
            paths: Vec::with_capacity(items.len()),
            cache_hits: cached.iter().filter(|c| **c).count(),
            ..Fetched::default()
        };
        let mut first_err: Option<Failed> = None;
        for slot in results.iter_mut() {
            match slot.take() {
                Some(Ok(Outcome::Hit)) => out.cache_hits += 1,
                Some(Ok(Outcome::Downloaded(n))) => {
                    out.downloads += 1;
                    out.downloaded_bytes += n;
                }
                Some(Err(f)) => match &first_err {
                    Some(e) if e.fatal || !f.fatal => {}
                    _ => first_err = Some(f),
                },
                // not started: the batch was cancelled by a fatal error recorded elsewhere
                None => {}
            }
        }
        if progress.cancelled() {
            return Err(FetchError::Cancelled);
        }
        if let Some(f) = first_err {
            return Err(f.err);
        }
        out.paths = slots.iter().map(|&i| cas.path(&uniq[i].sha)).collect();
        Ok(out)
    }

    fn worker(
        &self,
        dl: &Downloader,
        uniq: &[Unique],
        queue: &Mutex<VecDeque<(usize, bool)>>,
        results: &Mutex<Vec<Slot>>,
        cancel: &AtomicBool,
        publish: std::sync::mpsc::SyncSender<Publish>,
    ) {
        while !cancel.load(Ordering::SeqCst) && !dl.progress.cancelled() {
            let Some((i, put_back)) = lock(queue).pop_front() else {
                break;
            };
            let u = &uniq[i];
            let root = dl.cas.root();
            let held = lock::acquire(root, &u.sha, false);
            let held = match held {
                Ok(Some(l)) => Ok(l),
                Ok(None) => {
                    // someone else is downloading it: do other files first, then wait
                    if !put_back {
                        let mut q = lock(queue);
                        if !q.is_empty() {
                            q.push_back((i, true));
                            continue;
                        }
                    }
                    dl.progress.message(&format!(
                        "{}: waiting for another download of the same file",
                        u.name
                    ));
                    lock::acquire_wait(root, &u.sha)
                }
                Err(e) => Err(e),
            };
            let result = match held {
                Err(e) => Err(Failed {
                    err: download::disk_error(&lock::lock_file(root), e),
                    fatal: true,
                }),
                Ok(held) => {
                    if dl.cas.contains(&u.sha, u.size) {
                        dl.progress.bytes(u.size);
                        Ok(Outcome::Hit)
                    } else {
                        let job = Job {
                            name: &u.name,
                            sha: &u.sha,
                            size: u.size,
                            urls: &u.urls,
                        };
                        match dl.run(&job) {
                            Ok(v) => match publish.send((i, v, held)) {
                                // the publisher records it
                                Ok(()) => continue,
                                Err(std::sync::mpsc::SendError((_, v, held))) => {
                                    let received = v.received;
                                    let r = download::publish(dl.cas, &u.sha, v);
                                    drop(held);
                                    r.map(|()| Outcome::Downloaded(received))
                                }
                            },
                            Err(f) => Err(f),
                        }
                    }
                }
            };
            self.record(dl, u, i, result, results, cancel);
        }
    }

    /// Reports a file's outcome and keeps it for the caller.
    fn record(
        &self,
        dl: &Downloader,
        u: &Unique,
        i: usize,
        result: Result<Outcome, Failed>,
        results: &Mutex<Vec<Slot>>,
        cancel: &AtomicBool,
    ) {
        match &result {
            Ok(o) => dl.progress.file_done(&u.name, matches!(o, Outcome::Hit)),
            Err(f) => {
                if f.fatal {
                    cancel.store(true, Ordering::SeqCst);
                }
                dl.progress.message(&format!("failed: {}", f.err));
            }
        }
        if let Some(slot) = lock(results).get_mut(i) {
            *slot = Some(result);
        }
    }
}
