//! The job queue: a bounded pool of workers that take queued jobs from the database (oldest
//! first) and run the engine's synchronous pipeline on blocking threads; live state per job
//! (a snapshot, a broadcast of events, the cancel flag, the job's log file); cancellation,
//! deletion and crash recovery.
//!
//! Invariants:
//! * every job that is not terminal has a [`Live`] entry (created on submit and on recovery),
//!   removed only after its terminal state is in the database and its `end` event was sent;
//! * a job reaches a terminal state once: the worker that finishes it and the cancel/delete
//!   handlers take the job's `finished` lock, and the SQL updates are guarded by state;
//! * the build's temporary directory (`<data>/tmp/<id>`) is removed whatever the outcome.

use crate::config::ServerConfig;
use crate::db::{self, Claimed, DoneInfo};
use crate::error::engine_code;
use crate::files::{remove_any, safe_file_name, touch_debs};
use crate::metrics::Metrics;
use crate::model::{now_ms, Job, JobError, Progress, State};
use crate::store::Store;
use opaas_engine::{BuildProgress, EngineError, Kind, Phase};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, watch, Notify};

/// A job is started at most this many times (a crash during the last one fails it).
pub const MAX_ATTEMPTS: i64 = 2;

/// Why a finished build could not be published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("{path}: {source}", path = path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot move {from} to {to}: {source}", from = from.display(), to = to.display())]
    Move {
        from: PathBuf,
        to: PathBuf,
        source: std::io::Error,
    },
    #[error("unexpected bundle file name '{0}'")]
    FileName(String),
    #[error(transparent)]
    Store(#[from] crate::bundles::BundleError),
}

/// How many of a running job's earlier log lines a late subscriber gets first.
pub const REPLAY_LINES: usize = 1000;

/// What subscribers of a job's event stream receive.
#[derive(Debug, Clone)]
pub enum Event {
    State(Job),
    Progress(Progress),
    Log { line: String, n: u64 },
    End(Job),
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The live side of a job that is not finished.
pub struct Live {
    pub id: String,
    tx: broadcast::Sender<Event>,
    snapshot: Mutex<Job>,
    /// The build should stop (user cancel, delete or shutdown).
    cancel: AtomicBool,
    /// The stop is a shutdown: the job goes back to the queue.
    shutdown: AtomicBool,
    /// Set once the job's terminal state is decided (held while deciding).
    finished: Mutex<bool>,
    /// The job's log file (opened per line: queued jobs hold no descriptor); the lock keeps
    /// lines in order.
    log: Mutex<PathBuf>,
    lines: AtomicU64,
    last_emit: Mutex<Instant>,
    last_persist: Mutex<Instant>,
    /// A shared store (several replicas) that keeps the log lines too.
    remote: Option<Store>,
    /// Another replica took the job over (this one's lease expired): stop, write nothing.
    lost: AtomicBool,
}

impl Live {
    fn new(job: Job, log_path: &Path, remote: Option<Store>) -> Live {
        let stored = remote
            .as_ref()
            .and_then(|r| r.log_len(&job.id).ok().flatten());
        let lines = stored.unwrap_or_else(|| {
            std::fs::read(log_path)
                .map(|b| b.iter().filter(|&&c| c == b'\n').count() as u64)
                .unwrap_or(0)
        });
        let (tx, _) = broadcast::channel(128);
        let long_ago = Instant::now()
            .checked_sub(Duration::from_secs(10))
            .unwrap_or_else(Instant::now);
        Live {
            id: job.id.clone(),
            tx,
            snapshot: Mutex::new(job),
            cancel: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
            finished: Mutex::new(false),
            log: Mutex::new(log_path.to_path_buf()),
            lines: AtomicU64::new(lines),
            last_emit: Mutex::new(long_ago),
            last_persist: Mutex::new(long_ago),
            remote,
            lost: AtomicBool::new(false),
        }
    }

    pub fn snapshot(&self) -> Job {
        lock(&self.snapshot).clone()
    }

    /// The build should stop (cancel, delete or shutdown).
    pub fn stopping(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// Subscribes, then reads the snapshot: every change after the snapshot is delivered.
    pub fn subscribe(&self) -> (broadcast::Receiver<Event>, Job) {
        let rx = self.tx.subscribe();
        (rx, self.snapshot())
    }

    /// Like [`Live::subscribe`], with the log lines written so far (at most the last
    /// [`REPLAY_LINES`], numbered from 1 like `Event::Log`): a client that connects late still
    /// sees "queued" and "started". Taken under the log lock, which [`Live::log`] holds while
    /// it writes and sends a line, so each line comes exactly once: replayed or received.
    /// Reads the log file: call it off the async runtime.
    pub fn subscribe_with_log(&self) -> (broadcast::Receiver<Event>, Job, Vec<(u64, String)>) {
        let path = lock(&self.log);
        let rx = self.tx.subscribe();
        if let Some(Ok(Some(all))) = self.remote.as_ref().map(|r| r.log_since(&self.id, 0)) {
            let skip = all.len().saturating_sub(REPLAY_LINES);
            let lines = all.into_iter().skip(skip).collect();
            let job = self.snapshot();
            drop(path);
            return (rx, job, lines);
        }
        let text = std::fs::read(&*path).unwrap_or_default();
        let text = String::from_utf8_lossy(&text);
        let all: Vec<&str> = text.lines().collect();
        let skip = all.len().saturating_sub(REPLAY_LINES);
        let lines = all
            .iter()
            .enumerate()
            .skip(skip)
            .map(|(i, l)| (i as u64 + 1, (*l).to_string()))
            .collect();
        let job = self.snapshot();
        drop(path);
        (rx, job, lines)
    }

    fn send(&self, e: Event) {
        let _ = self.tx.send(e);
    }

    fn set(&self, job: Job) {
        *lock(&self.snapshot) = job.clone();
        self.send(Event::State(job));
    }

    fn end(&self, job: Job) {
        *lock(&self.snapshot) = job.clone();
        self.send(Event::End(job));
    }

    /// Appends a line to the job's log and sends it to subscribers.
    pub fn log(&self, line: &str) {
        for l in line.lines() {
            // written and sent under the lock: see `subscribe_with_log`
            let path = lock(&self.log);
            if !append_log(&path, l) {
                tracing::warn!(job = %self.id, path = %path.display(), "cannot write the job log");
            }
            let n = self.lines.fetch_add(1, Ordering::Relaxed) + 1;
            if let Some(r) = &self.remote {
                if let Err(e) = r.append_log(&self.id, Some(n), l) {
                    tracing::debug!(job = %self.id, "cannot store a log line: {e}");
                }
            }
            self.send(Event::Log {
                line: l.to_string(),
                n,
            });
        }
    }
}

/// What the service keeps about jobs while it runs.
pub struct Jobs {
    cfg: Arc<ServerConfig>,
    pub db: Store,
    /// Where finished bundles are kept.
    pub bundles: crate::bundles::Bundles,
    metrics: Arc<Metrics>,
    live: Mutex<HashMap<String, Arc<Live>>>,
    wake: Notify,
    /// Builds hold it shared; cache eviction takes it exclusively (so no .deb a build resolved
    /// disappears before it is packed). tokio's lock is fair: eviction does not starve.
    pub build_lock: Arc<tokio::sync::RwLock<()>>,
    running: AtomicUsize,
    stopping: AtomicBool,
    /// Bundle file names being built now (identical jobs wait and share: [`crate::reuse`]).
    pub inflight: crate::reuse::Inflight,
    /// What the server can build per (distro, arch): GET /api/distros.
    pub targets: crate::targets::Targets,
}

impl Jobs {
    pub fn new(
        cfg: Arc<ServerConfig>,
        db: Store,
        bundles: crate::bundles::Bundles,
        metrics: Arc<Metrics>,
    ) -> Arc<Jobs> {
        Arc::new(Jobs {
            cfg,
            db,
            bundles,
            metrics,
            live: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            build_lock: Arc::new(tokio::sync::RwLock::new(())),
            running: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
            inflight: crate::reuse::Inflight::default(),
            targets: crate::targets::Targets::default(),
        })
    }

    pub fn log_path(&self, id: &str) -> PathBuf {
        self.cfg.job_logs_dir().join(format!("{id}.log"))
    }
    pub fn bundle_dir(&self, id: &str) -> PathBuf {
        self.cfg.bundles_dir().join(id)
    }
    pub fn running(&self) -> usize {
        self.running.load(Ordering::Relaxed)
    }

    pub fn live(&self, id: &str) -> Option<Arc<Live>> {
        lock(&self.live).get(id).cloned()
    }

    fn live_for(&self, job: &Job) -> Arc<Live> {
        let mut m = lock(&self.live);
        m.entry(job.id.clone())
            .or_insert_with(|| {
                let remote = self.db.shared().then(|| self.db.clone());
                Arc::new(Live::new(job.clone(), &self.log_path(&job.id), remote))
            })
            .clone()
    }

    fn forget(&self, id: &str) {
        lock(&self.live).remove(id);
    }

    /// Stores a new queued job with its live entry (created under the database lock, so that
    /// no worker can take the job before the entry exists), logs its first line and wakes a
    /// worker.
    pub fn submit_blocking(
        &self,
        id: &str,
        new: &crate::model::JobRequest,
        status_lines: Option<usize>,
    ) -> Result<Job, db::DbError> {
        let first = if !new.hosts.is_empty() {
            format!(
                "queued: apt-get {} of {} collected host(s) ({}) on {} {}{}{} (format: {})",
                if new.mode == crate::model::JobMode::FullUpgrade {
                    "dist-upgrade"
                } else {
                    "upgrade"
                },
                new.hosts.len(),
                new.hosts.join(" "),
                new.distro,
                new.arch,
                if new.security_only {
                    ", security updates only"
                } else {
                    ""
                },
                if new.packages.is_empty() {
                    String::new()
                } else {
                    format!(", also installing {}", new.packages.join(" "))
                },
                new.format.as_str()
            )
        } else {
            format!(
                "queued: {} for {} {} (recommends: {}, baseline: {}{}, format: {})",
                new.packages.join(" "),
                new.distro,
                new.arch,
                if new.recommends { "yes" } else { "no" },
                new.baseline.as_str(),
                status_lines
                    .map(|n| format!(" with {n} installed packages"))
                    .unwrap_or_default(),
                new.format.as_str()
            )
        };
        if self.db.shared() {
            // several replicas: the job gets its live entry on the replica that claims it; the
            // first log line is stored with the job
            let job = self.db.insert(id, new, &first, &mut |_| {})?;
            append_log(&self.log_path(id), &first);
            Metrics::add(&self.metrics.jobs_submitted, 1);
            self.wake.notify_one();
            return Ok(job);
        }
        let mut live = None;
        let job = self
            .db
            .insert(id, new, &first, &mut |job| live = Some(self.live_for(job)))?;
        let live = live.unwrap_or_else(|| self.live_for(&job));
        live.log(&first);
        Metrics::add(&self.metrics.jobs_submitted, 1);
        self.wake.notify_one();
        Ok(job)
    }

    /// At start: jobs a crash left running are queued again once, or failed; every queued job
    /// gets its live entry. Also empties the temporary directory.
    pub fn recover(&self) -> Result<(), db::DbError> {
        let tmp = self.cfg.tmp_dir();
        if let Ok(rd) = std::fs::read_dir(&tmp) {
            for e in rd.flatten() {
                let _ = remove_any(&e.path());
            }
        }
        let (requeued, failed) = self.db.recover(MAX_ATTEMPTS)?;
        for id in &requeued {
            append_log(
                &self.log_path(id),
                "the service stopped while this job was running; it is queued again",
            );
            tracing::warn!(job = %id, "re-queued a job left running by a previous process");
        }
        for id in &failed {
            append_log(
                &self.log_path(id),
                "E: the service stopped while this job was running, again; it is not retried",
            );
            tracing::warn!(job = %id, "failed a job that was interrupted twice");
        }
        Metrics::add(
            &self.metrics.jobs_recovered,
            (requeued.len() + failed.len()) as u64,
        );
        if self.db.shared() {
            // queued jobs get their live entry on the replica that claims them
            return Ok(());
        }
        for id in self.db.queued_ids()? {
            if let Some(job) = self.db.get(&id)? {
                self.live_for(&job);
            }
        }
        Ok(())
    }

    /// Starts `n` workers; they stop when `stop` turns true.
    pub fn start_workers(
        self: &Arc<Self>,
        n: usize,
        stop: watch::Receiver<bool>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let mut all: Vec<_> = (0..n.max(1))
            .map(|i| {
                let jobs = Arc::clone(self);
                let stop = stop.clone();
                tokio::spawn(async move { jobs.worker(i, stop).await })
            })
            .collect();
        if self.db.shared() {
            let jobs = Arc::clone(self);
            all.push(tokio::spawn(async move { jobs.reaper(stop).await }));
        }
        all
    }

    /// Shared stores: takes over jobs whose replica stopped renewing its lease (re-queued once,
    /// then failed with a reason), every half lease.
    async fn reaper(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let period = (self.cfg.lease / 2).max(Duration::from_millis(500));
        loop {
            tokio::select! {
                _ = tokio::time::sleep(period) => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() || self.stopping.load(Ordering::Relaxed) {
                break;
            }
            match self.db.run(|s| s.take_over(MAX_ATTEMPTS)).await {
                Ok((requeued, failed)) => {
                    for id in &requeued {
                        tracing::warn!(job = %id, "took over a job whose replica stopped answering; re-queued");
                    }
                    for id in &failed {
                        tracing::warn!(job = %id, "failed a job whose replica stopped answering, again");
                    }
                    Metrics::add(
                        &self.metrics.jobs_recovered,
                        (requeued.len() + failed.len()) as u64,
                    );
                    if !requeued.is_empty() {
                        self.wake.notify_waiters();
                    }
                }
                Err(e) => tracing::debug!("lease takeover: {e}"),
            }
        }
    }

    /// Shared stores: renews the lease of a running job every third of it; stops the build
    /// when the job was cancelled or deleted elsewhere, or taken over.
    fn heartbeat(self: &Arc<Self>, live: &Arc<Live>) -> Option<tokio::task::JoinHandle<()>> {
        if !self.db.shared() {
            return None;
        }
        let period = (self.cfg.lease / 3).max(Duration::from_millis(200));
        let db = self.db.clone();
        let live = Arc::clone(live);
        Some(tokio::spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                let id = live.id.clone();
                match db.run(move |s| s.heartbeat(&id)).await {
                    Ok(crate::store::Lease::Held) => {}
                    Ok(crate::store::Lease::Stopped) => {
                        live.cancel.store(true, Ordering::Relaxed);
                    }
                    Ok(crate::store::Lease::Lost) => {
                        tracing::warn!(job = %live.id, "another replica took this job over; stopping it here");
                        live.lost.store(true, Ordering::Relaxed);
                        live.cancel.store(true, Ordering::Relaxed);
                        return;
                    }
                    // the database is away: the build goes on; its outcome waits for it
                    Err(e) => tracing::debug!(job = %live.id, "lease renewal: {e}"),
                }
            }
        }))
    }

    async fn worker(self: Arc<Self>, index: usize, mut stop: watch::Receiver<bool>) {
        tracing::debug!(worker = index, "worker started");
        loop {
            if *stop.borrow() || self.stopping.load(Ordering::Relaxed) {
                break;
            }
            match self.db.run(|s| s.claim_next()).await {
                Ok(Some(c)) => Arc::clone(&self).run_job(c).await,
                Ok(None) => {
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                        _ = stop.changed() => {}
                    }
                }
                Err(e) => {
                    tracing::error!(worker = index, "cannot take a job: {e}");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
        }
        tracing::debug!(worker = index, "worker stopped");
    }

    /// Tells running builds to stop at their next check; they go back to the queue.
    pub fn begin_shutdown(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        for l in lock(&self.live).values() {
            l.shutdown.store(true, Ordering::Relaxed);
            l.cancel.store(true, Ordering::Relaxed);
        }
        self.wake.notify_waiters();
    }

    async fn run_job(self: Arc<Self>, c: Claimed) {
        let id = c.job.id.clone();
        let live = if self.db.shared() {
            // a shared store is a network round trip: off the async threads
            let (jobs, job) = (Arc::clone(&self), c.job.clone());
            match tokio::task::spawn_blocking(move || jobs.live_for(&job)).await {
                Ok(l) => l,
                Err(_) => self.live_for(&c.job),
            }
        } else {
            self.live_for(&c.job)
        };
        // cancelled or deleted between the claim and now: nothing to run
        let still = {
            let id2 = id.clone();
            self.db.run(move |s| s.get(&id2)).await
        };
        if !matches!(still, Ok(Some(ref j)) if j.state.is_running()) || *lock(&live.finished) {
            self.forget(&id);
            return;
        }
        if self.stopping.load(Ordering::Relaxed) {
            live.shutdown.store(true, Ordering::Relaxed);
            live.cancel.store(true, Ordering::Relaxed);
        }
        live.set(c.job.clone());
        let started = format!("started (attempt {} of {MAX_ATTEMPTS})", c.attempts);
        if self.db.shared() {
            let l = Arc::clone(&live);
            let _ = tokio::task::spawn_blocking(move || l.log(&started)).await;
        } else {
            live.log(&started);
        }
        self.running.fetch_add(1, Ordering::Relaxed);
        let beat = self.heartbeat(&live);
        let guard = Arc::clone(&self.build_lock).read_owned().await;
        let started = Instant::now();
        let jobs = Arc::clone(&self);
        let live2 = Arc::clone(&live);
        let outcome = tokio::task::spawn_blocking(move || {
            let _guard = guard;
            jobs.execute(&live2, &c)
        })
        .await;
        if let Some(b) = beat {
            b.abort();
        }
        self.running.fetch_sub(1, Ordering::Relaxed);
        let _ = remove_any(&self.cfg.tmp_dir().join(&id));
        let state = match outcome {
            Ok(s) => s,
            Err(e) => {
                // the build panicked: fail the job rather than leave it running
                let msg = format!("internal error: the build stopped unexpectedly ({e})");
                tracing::error!(job = %id, "{msg}");
                let db = self.db.clone();
                let l = Arc::clone(&live);
                let _ = tokio::task::spawn_blocking(move || {
                    finish_failed(&db, &l, &JobError::new("internal", msg));
                })
                .await;
                Some(State::Failed)
            }
        };
        if let Some(s) = state {
            self.metrics.observe_job(s, started.elapsed().as_secs_f64());
        }
        // a requeued job (shutdown) keeps its live entry only in the database
        self.forget(&id);
    }

    /// Runs on a blocking thread: the build and its outcome. Returns the terminal state it
    /// set, or None when the job was requeued or someone else finished it.
    fn execute(&self, live: &Arc<Live>, c: &Claimed) -> Option<State> {
        let job = &c.job;
        let status = match c
            .status_text
            .as_deref()
            .map(|t| crate::uploads::load(&self.cfg, t))
        {
            Some(Err(msg)) => {
                let mut finished = lock(&live.finished);
                if *finished {
                    return None; // cancelled or deleted meanwhile
                }
                *finished = true;
                drop(finished);
                finish_failed(&self.db, live, &JobError::new("internal", msg));
                return Some(State::Failed);
            }
            Some(Ok(t)) => Some(t),
            None => None,
        };
        let tmp = self.cfg.tmp_dir().join(&job.id);
        let mut settings = self.cfg.engine_settings();
        let upgrade = job.mode.engine();
        // an upgrade job: its collected files (a JSON list), read and checked again
        let hosts = match (upgrade, status.as_deref()) {
            (Some(_), Some(t)) => match crate::request::collected_of(t) {
                Ok(h) => h,
                Err(msg) => {
                    let mut finished = lock(&live.finished);
                    if *finished {
                        return None;
                    }
                    *finished = true;
                    drop(finished);
                    finish_failed(&self.db, live, &JobError::new("bad_collected_file", msg));
                    return Some(State::Failed);
                }
            },
            _ => Vec::new(),
        };
        if upgrade.is_some() {
            // upgrade bundles have the flat repository (see cmd_upgrade.rs)
            settings.unsigned = true;
        }
        let req = opaas_engine::Request {
            distro: job.distro.clone(),
            arch: job.arch.clone(),
            packages: job.packages.clone(),
            recommends: job.recommends,
            baseline: match hosts.first() {
                Some((_, c)) => opaas_engine::Baseline::Host {
                    status: c.status.clone(),
                    extended_states: c.extended_states.clone(),
                },
                None if job.mode == crate::model::JobMode::Locked => {
                    opaas_engine::Baseline::Minimal
                }
                None => job.baseline.engine(status.as_deref()),
            },
            upgrade,
            phased: Default::default(),
            security_only: job.security_only,
            host: hosts.first().map(|(_, c)| c.hostname.clone()),
        };
        let format = job.format.bundle();
        let progress = JobProgress {
            live: Arc::clone(live),
            db: self.db.clone(),
        };
        // releases the bundle name this job builds when execute returns (its outcome stored)
        let reuse = crate::reuse::JobReuse::new(self, live, &self.inflight);
        let result = std::fs::create_dir_all(&tmp)
            .map_err(|e| EngineError::new(Kind::Internal, format!("{}: {e}", tmp.display())))
            .and_then(|_| {
                if let Some(ok) =
                    refresh_indices(&settings, &req, self.cfg.index_max_age, &progress)
                {
                    self.targets.record_refresh(&req.distro, &req.arch, ok);
                    if !ok {
                        Metrics::add(&self.metrics.mirror_errors, 1);
                    }
                }
                if job.mode == crate::model::JobMode::Locked {
                    // `opaas build --locked`: the lockfile's packages, nothing resolved
                    let text = status.as_deref().unwrap_or_default();
                    opaas_engine::build_locked(&settings, text, &tmp, format, &progress)
                } else if hosts.len() > 1 {
                    opaas_engine::plan::build_fleet(
                        &settings, &req, &hosts, &tmp, format, &progress, &reuse,
                    )
                    .map(|(built, _)| built)
                } else {
                    opaas_engine::build_reusing(&settings, &req, &tmp, format, &progress, &reuse)
                }
            });
        match &result {
            Ok(_) => self.targets.record_refresh(&req.distro, &req.arch, true),
            Err(e) if matches!(e.kind, Kind::Network | Kind::Trust) => {
                self.targets.record_refresh(&req.distro, &req.arch, false);
                Metrics::add(&self.metrics.mirror_errors, 1);
            }
            Err(e) if engine_code(e).1 == "no_mirror" => {
                Metrics::add(&self.metrics.mirror_errors, 1);
            }
            Err(_) => {}
        }
        let mut finished = lock(&live.finished);
        if *finished || live.lost.load(Ordering::Relaxed) {
            // cancelled or deleted meanwhile, or taken over by another replica: whatever was
            // built goes away with tmp/
            *finished = true;
            return None;
        }
        if live.shutdown.load(Ordering::Relaxed)
            && matches!(&result, Err(e) if e.kind == Kind::Cancelled)
        {
            let _ = self.db.requeue_interrupted(&job.id);
            live.log("interrupted by a shutdown of the service; it runs again at the next start");
            *finished = true;
            return None;
        }
        match result {
            Ok(built) => match self.publish(live, job, &built) {
                Ok(done) => {
                    let stored = {
                        let p = Progress {
                            phase: "done".into(),
                            packages_done: built.package_count as u64,
                            packages_total: built.package_count as u64,
                            bytes_done: live.snapshot().progress.bytes_done,
                            bytes_total: live.snapshot().progress.bytes_total,
                            packed_bytes: None,
                            pack_total_bytes: None,
                            index_files: None,
                            index_bytes: None,
                        };
                        self.db.finish_done(&job.id, &done, &p)
                    };
                    if !matches!(stored, Ok(true)) {
                        let _ = self.bundles.remove(&job.id);
                        *finished = true;
                        return None;
                    }
                    Metrics::add(&self.metrics.downloaded_bytes, built.downloaded_bytes);
                    Metrics::add(&self.metrics.downloads, built.downloads as u64);
                    Metrics::add(&self.metrics.cache_hits, built.cache_hits as u64);
                    if built.reused {
                        Metrics::add(&self.metrics.bundles_reused, 1);
                    } else {
                        Metrics::add(&self.metrics.bundles_written_bytes, built.size);
                    }
                    // the cache grew by what was downloaded (the janitor measures it again)
                    Metrics::add(&self.metrics.cache_bytes, built.downloaded_bytes);
                    live.log(&format!(
                        "done: {} ({} bytes, {} packages; downloaded {} bytes in {} files, {} from the cache)",
                        built.file_name, built.size, built.package_count, built.downloaded_bytes, built.downloads, built.cache_hits
                    ));
                    *finished = true;
                    if let Ok(Some(j)) = self.db.get(&job.id) {
                        live.end(j);
                    }
                    Some(State::Done)
                }
                Err(e) => {
                    let _ = self.bundles.remove(&job.id);
                    *finished = true;
                    drop(finished);
                    finish_failed(&self.db, live, &JobError::new("internal", e.to_string()));
                    Some(State::Failed)
                }
            },
            Err(e) if e.kind == Kind::Cancelled => {
                let _ = self.db.cancel(&job.id, false);
                live.log("cancelled");
                *finished = true;
                if let Ok(Some(j)) = self.db.get(&job.id) {
                    live.end(j);
                }
                Some(State::Cancelled)
            }
            Err(e) => {
                let (_, code) = engine_code(&e);
                *finished = true;
                drop(finished);
                // the engine's message already lists its suggestions (suggest::hint)
                let error = JobError {
                    code: code.to_string(),
                    message: crate::error::public_message(&e),
                    index: e.index,
                    package: e.package,
                };
                finish_failed(&self.db, live, &error);
                Some(State::Failed)
            }
        }
    }

    /// Moves the tarball into `bundles/<id>/`, keeps its manifest and SBOM beside it (as the
    /// build returned them), and marks the cached .debs it used as recently used.
    fn publish(
        &self,
        live: &Live,
        job: &Job,
        built: &opaas_engine::Built,
    ) -> Result<DoneInfo, PublishError> {
        let file_name = safe_file_name(&built.file_name)
            .ok_or_else(|| PublishError::FileName(built.file_name.clone()))?;
        self.bundles
            .put_file(&job.id, &file_name, &built.path, &|l| live.log(l))?;
        self.bundles
            .put_bytes(&job.id, "manifest.json", &built.manifest_json)?;
        if !built.sbom_json.is_empty() {
            self.bundles
                .put_bytes(&job.id, "sbom.cdx.json", &built.sbom_json)?;
        }
        let touched = touch_debs(&self.cfg.cache_dir(), &built.manifest.packages);
        tracing::debug!(job = %job.id, touched, "marked cached .debs as used");
        live.log(&format!("sha256 {}", built.sha256));
        Ok(DoneInfo {
            file_name,
            size: built.size,
            sha256: built.sha256.clone(),
            package_count: built.package_count as u64,
            expires_at: now_ms()
                .saturating_add(self.cfg.bundle_ttl.as_millis().min(i64::MAX as u128) as i64),
            downloaded_bytes: built.downloaded_bytes,
            downloads: built.downloads as u64,
            cache_hits: built.cache_hits as u64,
        })
    }

    /// Cancels a job. Queued: at once. Running: the job is cancelled now (the worker discards
    /// its build when the engine next checks). Terminal: unchanged. None: no such job.
    pub fn cancel_blocking(&self, id: &str, why: &str) -> Result<Option<Job>, db::DbError> {
        if let Some(live) = self.live(id) {
            let mut finished = lock(&live.finished);
            if !*finished {
                live.cancel.store(true, Ordering::Relaxed);
                if self.db.cancel(id, false)? {
                    live.log(why);
                }
                *finished = true;
                if let Some(j) = self.db.get(id)? {
                    live.end(j);
                }
            }
            drop(finished);
            // a worker that holds the entry forgets it when its build returns
            if live.snapshot().state.is_terminal() {
                self.forget(id);
            }
        } else {
            // no live entry: finished already (the guard keeps it so), or a worker is between
            // taking it and starting it (it checks the state before it runs); with several
            // replicas, maybe running on another one (its heartbeat sees the cancel)
            if self.db.cancel(id, false)? && self.db.shared() {
                let _ = self.db.append_log(id, None, why);
            }
        }
        self.db.get(id)
    }

    /// Cancels if needed, then removes the job, its bundle and its log. False: no such job.
    pub fn delete_blocking(&self, id: &str) -> Result<bool, db::DbError> {
        self.cancel_blocking(id, "deleted")?;
        let existed = self.db.delete(id)?;
        let _ = self.bundles.remove(id);
        let _ = remove_any(&self.log_path(id));
        self.forget(id);
        Ok(existed)
    }
}

/// Fails a job (any non-terminal state) and tells subscribers.
fn finish_failed(db: &Store, live: &Live, error: &JobError) {
    // stored, logged and sent to every subscriber: bounded (issue 16)
    let capped = JobError {
        message: crate::caps::message(&error.message),
        ..error.clone()
    };
    let error = &capped;
    let p = live.snapshot().progress;
    let _ = db.finish_failed(&live.id, error, Some(&p));
    let mut first = true;
    for l in error.message.lines() {
        live.log(&format!("{}{l}", if first { "E: " } else { "   " }));
        first = false;
    }
    if let Ok(Some(j)) = db.get(&live.id) {
        live.end(j);
    }
}

/// Before a build: indices older than `max_age` are updated (a failure is logged, and the
/// build goes on with what is cached). Whether a refresh worked, when one was tried.
fn refresh_indices(
    settings: &opaas_engine::Settings,
    req: &opaas_engine::Request,
    max_age: Duration,
    progress: &JobProgress,
) -> Option<bool> {
    let live = &progress.live;
    let Ok(session) = opaas_engine::open(settings, &req.distro, &req.arch, &[]) else {
        return None; // the build reports the error
    };
    let stale = session.cache_age(max_age) == (true, true);
    if stale {
        live.log("refreshing the package indices");
    }
    if let Some(w) = session.refresh_if_stale_with(max_age, &opaas_engine::IndexProgress(progress))
    {
        live.log(&format!("W: {w}"));
        return Some(false);
    }
    stale.then_some(true)
}

/// The engine's progress, into the live state, the event stream and (at phase changes and at
/// most once a second) the database.
struct JobProgress {
    live: Arc<Live>,
    db: Store,
}

impl JobProgress {
    fn update(&self, f: impl FnOnce(&mut Job)) -> Job {
        let mut s = lock(&self.live.snapshot);
        f(&mut s);
        s.clone()
    }
    fn stopped(&self) -> bool {
        self.live.cancel.load(Ordering::Relaxed)
    }
    fn persist(&self, job: &Job) {
        *lock(&self.live.last_persist) = Instant::now();
        if let Ok(false) = self.db.set_running(&job.id, job.state, &job.progress) {
            // no longer running in the database (deleted or cancelled): stop the build
            self.live.cancel.store(true, Ordering::Relaxed);
        }
    }
    fn progressed(&self, job: Job, force: bool) {
        if self.stopped() {
            return;
        }
        let now = Instant::now();
        let emit = {
            let mut last = lock(&self.live.last_emit);
            if force || now.duration_since(*last) >= Duration::from_millis(200) {
                *last = now;
                true
            } else {
                false
            }
        };
        if emit {
            self.live.send(Event::Progress(job.progress.clone()));
        }
        let persist =
            force || now.duration_since(*lock(&self.live.last_persist)) >= Duration::from_secs(1);
        if persist {
            self.persist(&job);
        }
    }
}

impl BuildProgress for JobProgress {
    fn phase(&self, p: Phase) {
        if self.stopped() {
            return;
        }
        let state = match p {
            Phase::Resolving => State::Resolving,
            Phase::Downloading => State::Downloading,
            Phase::Packing => State::Packing,
        };
        let job = self.update(|j| {
            j.state = state;
            j.progress.phase = state.as_str().to_string();
        });
        self.persist(&job);
        self.live.send(Event::State(job.clone()));
        self.live.send(Event::Progress(job.progress));
    }
    fn log(&self, line: &str) {
        // after a cancel or delete the job's log is closed (a deleted job's file stays gone)
        if !self.stopped() {
            self.live.log(line);
        }
    }
    fn download_start(&self, files: usize, bytes: u64) {
        let job = self.update(|j| {
            j.progress.packages_total = files as u64;
            j.progress.bytes_total = bytes;
            j.progress.packages_done = 0;
            j.progress.bytes_done = 0;
        });
        self.progressed(job, true);
    }
    fn download(&self, files_done: usize, bytes_done: u64) {
        let job = self.update(|j| {
            j.progress.packages_done = files_done as u64;
            j.progress.bytes_done = bytes_done;
            // a resumed or retried file can count twice
            j.progress.bytes_total = j.progress.bytes_total.max(bytes_done);
        });
        let last = job.progress.packages_done == job.progress.packages_total;
        self.progressed(job, last);
    }
    fn index_file(&self, what: &str, bytes: u64, fetched: bool) {
        if fetched {
            self.log(&format!("Get: {what} ({bytes} bytes)"));
        }
        let job = self.update(|j| {
            j.progress.index_files = Some(j.progress.index_files.unwrap_or(0) + 1);
            j.progress.index_bytes = Some(j.progress.index_bytes.unwrap_or(0) + bytes);
        });
        self.progressed(job, false);
    }
    fn pack(&self, done: u64, total: u64) {
        let job = self.update(|j| {
            j.progress.packed_bytes = Some(done);
            j.progress.pack_total_bytes = Some(total);
        });
        self.progressed(job, done == total);
    }
    fn cancelled(&self) -> bool {
        self.stopped()
    }
}

/// Appends one line to a log file (creating it); false when that failed.
fn append_log(path: &Path, line: &str) -> bool {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| writeln!(f, "{line}"))
        .is_ok()
}
