//! The job table in SQLite (`<data_dir>/jobs.sqlite`): migrations from `migrations/*.sql`,
//! applied in order at start, and every query the service makes.
//!
//! One connection behind a mutex: queries are a few microseconds to a millisecond, the WAL
//! journal keeps commits cheap, and async callers go through [`Db::run`] (a blocking task) so
//! that a slow disk never stalls the runtime. State changes are guarded in SQL (`WHERE state
//! IN (…)`), so a cancel, a finishing worker and a restart recovery cannot overwrite each other.

use crate::jobrow::{counts_by_state, job_from_row, JobRow};
use crate::model::{now_ms, Job, JobError, JobRequest, Progress, State};
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

/// The migrations, in order. A migration is applied once, in a transaction, and recorded in
/// `schema_migrations`.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/0001_jobs.sql")),
    (2, include_str!("../migrations/0002_job_error_entry.sql")),
    (
        3,
        include_str!("../migrations/0003_jobs_by_bundle_file.sql"),
    ),
    (4, include_str!("../migrations/0004_upgrade_jobs.sql")),
];

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("database task failed: {0}")]
    Task(String),
    #[error("the database did not answer within {0:?}")]
    Timeout(std::time::Duration),
    #[error("database: {0}")]
    Pg(#[from] postgres::Error),
    #[error("database: {0}")]
    Config(String),
    #[error("database: {0}")]
    Unreachable(String),
}

impl DbError {
    /// The database cannot be reached now (a shared database restarting, the network): worth
    /// trying again, not a fault of the request or of the service.
    pub fn is_unreachable(&self) -> bool {
        crate::pg::is_connection(self)
    }
}

#[derive(Clone)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
    /// A second, read-only connection for `/healthz` and `/metrics`: in WAL mode a reader never
    /// waits for the writer, so these answer while workers and submissions hold `conn`.
    reader: Arc<Mutex<Connection>>,
}

/// A job as a worker needs it.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub job: Job,
    pub status_text: Option<String>,
    pub attempts: i64,
}

/// A finished bundle.
#[derive(Debug, Clone)]
pub struct DoneInfo {
    pub file_name: String,
    pub size: u64,
    pub sha256: String,
    pub package_count: u64,
    pub expires_at: i64,
    pub downloaded_bytes: u64,
    pub downloads: u64,
    pub cache_hits: u64,
}

const COLS: &str = "id, state, distro, arch, packages, recommends, baseline, format, created_at, \
    started_at, finished_at, progress, error_code, error_message, bundle_file, bundle_size, \
    bundle_sha256, bundle_packages, expires_at, bundle_expired, error_index, error_package, \
    mode, security_only, hosts, plan";

const RUNNING: &str = "('resolving', 'downloading', 'packing')";
const NOT_TERMINAL: &str = "('queued', 'resolving', 'downloading', 'packing')";

impl JobRow for Row<'_> {
    type Error = rusqlite::Error;
    fn text(&self, i: usize) -> rusqlite::Result<String> {
        self.get(i)
    }
    fn opt_text(&self, i: usize) -> rusqlite::Result<Option<String>> {
        self.get(i)
    }
    fn int(&self, i: usize) -> rusqlite::Result<i64> {
        self.get(i)
    }
    fn opt_int(&self, i: usize) -> rusqlite::Result<Option<i64>> {
        self.get(i)
    }
    fn flag(&self, i: usize) -> rusqlite::Result<bool> {
        Ok(self.get::<_, i64>(i)? != 0)
    }
}

fn row_job(r: &Row) -> rusqlite::Result<Job> {
    job_from_row(r)
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

impl Db {
    /// Opens (creating) the database and applies the migrations it lacks.
    pub fn open(path: &Path) -> Result<Db, DbError> {
        let mut c = Connection::open(path)?;
        c.busy_timeout(std::time::Duration::from_secs(10))?;
        c.pragma_update(None, "journal_mode", "WAL")?;
        c.pragma_update(None, "synchronous", "NORMAL")?;
        c.pragma_update(None, "foreign_keys", "ON")?;
        migrate(&mut c)?;
        let r = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        r.busy_timeout(std::time::Duration::from_secs(1))?;
        Ok(Db {
            conn: Arc::new(Mutex::new(c)),
            reader: Arc::new(Mutex::new(r)),
        })
    }

    /// Runs a read-only `f` on the reader connection on this thread, if no one else uses it
    /// (None otherwise). For small reads (a few pages the OS has cached) from async handlers
    /// that must answer at once (`/metrics`): in WAL mode a reader takes no lock a writer
    /// holds, so this never waits for the writer.
    pub fn try_read_here<R>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<R>,
    ) -> Option<Result<R, DbError>> {
        let c = match self.reader.try_lock() {
            Ok(c) => c,
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        Some(f(&c).map_err(DbError::from))
    }

    /// Runs a read-only `f` on the reader connection on a blocking thread; an error when it
    /// takes longer than `limit` (a stuck disk is an unhealthy service).
    pub async fn read<R: Send + 'static>(
        &self,
        limit: std::time::Duration,
        f: impl FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
    ) -> Result<R, DbError> {
        let reader = Arc::clone(&self.reader);
        let task = tokio::task::spawn_blocking(move || {
            let c = reader.lock().unwrap_or_else(|e| e.into_inner());
            f(&c).map_err(DbError::from)
        });
        match tokio::time::timeout(limit, task).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => Err(DbError::Task(e.to_string())),
            Err(_) => Err(DbError::Timeout(limit)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // a panic while holding the lock cannot leave a half-done transaction behind (SQLite
        // rolls back on drop), so the connection stays usable
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on this thread (for blocking contexts: workers, the janitor).
    pub fn with<R>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<R>,
    ) -> Result<R, DbError> {
        Ok(f(&mut self.lock())?)
    }

    /// Runs `f` on a blocking thread (for async handlers).
    pub async fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<R> + Send + 'static,
    ) -> Result<R, DbError> {
        let db = self.clone();
        tokio::task::spawn_blocking(move || db.with(f))
            .await
            .map_err(|e| DbError::Task(e.to_string()))?
    }
}

fn migrate(c: &mut Connection) -> Result<(), DbError> {
    c.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    )?;
    for (version, sql) in MIGRATIONS {
        let done: Option<i64> = c
            .query_row(
                "SELECT version FROM schema_migrations WHERE version = ?1",
                [version],
                |r| r.get(0),
            )
            .optional()?;
        if done.is_some() {
            continue;
        }
        let tx = c.transaction()?;
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
            params![version, now_ms()],
        )?;
        tx.commit()?;
        tracing::info!(version, "applied database migration");
    }
    Ok(())
}

/// Stores a new queued job `id` for a checked request.
pub fn insert(c: &Connection, id: &str, j: &JobRequest) -> rusqlite::Result<Job> {
    c.execute(
        "INSERT INTO jobs (id, state, distro, arch, packages, recommends, baseline, status_text, format, created_at, progress, mode, security_only, hosts, plan)
         VALUES (?1, 'queued', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        params![
            id,
            j.distro,
            j.arch,
            json(&j.packages),
            j.recommends as i64,
            j.baseline.as_str(),
            j.status_text,
            j.format.as_str(),
            now_ms(),
            json(&Progress::queued()),
            j.mode.as_str(),
            j.security_only as i64,
            (!j.hosts.is_empty()).then(|| json(&j.hosts)),
            j.plan.as_ref().map(json),
        ],
    )?;
    get(c, id).map(|o| o.ok_or(rusqlite::Error::QueryReturnedNoRows))?
}

pub fn get(c: &Connection, id: &str) -> rusqlite::Result<Option<Job>> {
    c.query_row(
        &format!("SELECT {COLS} FROM jobs WHERE id = ?1"),
        [id],
        row_job,
    )
    .optional()
}

/// A page of jobs, newest first, and the total.
pub fn list(c: &Connection, offset: u64, limit: u64) -> rusqlite::Result<(Vec<Job>, u64)> {
    let total: i64 = c.query_row("SELECT count(*) FROM jobs", [], |r| r.get(0))?;
    let mut st = c.prepare_cached(&format!(
        "SELECT {COLS} FROM jobs ORDER BY seq DESC LIMIT ?1 OFFSET ?2"
    ))?;
    let items = st
        .query_map(
            params![
                limit.min(i64::MAX as u64) as i64,
                offset.min(i64::MAX as u64) as i64
            ],
            row_job,
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((items, total as u64))
}

/// Takes the oldest queued job: resolving, started now, one more attempt.
pub fn claim_next(c: &mut Connection) -> rusqlite::Result<Option<Claimed>> {
    let tx = c.transaction()?;
    let id: Option<String> = tx
        .query_row(
            "SELECT id FROM jobs WHERE state = 'queued' ORDER BY seq LIMIT 1",
            [],
            |r| r.get(0),
        )
        .optional()?;
    let Some(id) = id else {
        return Ok(None);
    };
    let mut p = Progress::queued();
    p.phase = "resolving".into();
    tx.execute(
        "UPDATE jobs SET state = 'resolving', started_at = coalesce(started_at, ?2), attempts = attempts + 1,
                progress = ?3, error_code = NULL, error_message = NULL
         WHERE id = ?1 AND state = 'queued'",
        params![id, now_ms(), json(&p)],
    )?;
    let (status_text, attempts): (Option<String>, i64) = tx.query_row(
        "SELECT status_text, attempts FROM jobs WHERE id = ?1",
        [&id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let job = get(&tx, &id)?.ok_or(rusqlite::Error::QueryReturnedNoRows)?;
    tx.commit()?;
    Ok(Some(Claimed {
        job,
        status_text,
        attempts,
    }))
}

/// A running job's phase and progress; false when it is no longer running (cancelled).
pub fn set_running(
    c: &Connection,
    id: &str,
    state: State,
    progress: &Progress,
) -> rusqlite::Result<bool> {
    Ok(c.execute(
        &format!("UPDATE jobs SET state = ?2, progress = ?3 WHERE id = ?1 AND state IN {RUNNING}"),
        params![id, state.as_str(), json(progress)],
    )? > 0)
}

pub fn finish_done(
    c: &Connection,
    id: &str,
    d: &DoneInfo,
    progress: &Progress,
) -> rusqlite::Result<bool> {
    Ok(c.execute(
        &format!(
            "UPDATE jobs SET state = 'done', finished_at = ?2, progress = ?3, bundle_file = ?4, bundle_size = ?5,
                    bundle_sha256 = ?6, bundle_packages = ?7, expires_at = ?8, downloaded_bytes = ?9,
                    downloads = ?10, cache_hits = ?11, status_text = NULL
             WHERE id = ?1 AND state IN {RUNNING}"
        ),
        params![
            id,
            now_ms(),
            json(progress),
            d.file_name,
            d.size as i64,
            d.sha256,
            d.package_count as i64,
            d.expires_at,
            d.downloaded_bytes as i64,
            d.downloads as i64,
            d.cache_hits as i64,
        ],
    )? > 0)
}

/// Failed (from any state but a terminal one).
pub fn finish_failed(
    c: &Connection,
    id: &str,
    error: &JobError,
    progress: Option<&Progress>,
) -> rusqlite::Result<bool> {
    Ok(c.execute(
        &format!(
            "UPDATE jobs SET state = 'failed', finished_at = ?2, error_code = ?3, error_message = ?4,
                    progress = coalesce(?5, progress), status_text = NULL, error_index = ?6,
                    error_package = ?7
             WHERE id = ?1 AND state IN {NOT_TERMINAL}"
        ),
        params![
            id,
            now_ms(),
            error.code,
            error.message,
            progress.map(json),
            error.index,
            error.package
        ],
    )? > 0)
}

/// Cancelled (from any state but a terminal one); `only_queued` for the submit-side fast path.
pub fn cancel(c: &Connection, id: &str, only_queued: bool) -> rusqlite::Result<bool> {
    let states = if only_queued {
        "('queued')"
    } else {
        NOT_TERMINAL
    };
    Ok(c.execute(
        &format!(
            "UPDATE jobs SET state = 'cancelled', finished_at = ?2, status_text = NULL
             WHERE id = ?1 AND state IN {states}"
        ),
        params![id, now_ms()],
    )? > 0)
}

/// Back to the queue without counting the attempt (a graceful shutdown interrupted it).
pub fn requeue_interrupted(c: &Connection, id: &str) -> rusqlite::Result<bool> {
    Ok(c.execute(
        &format!(
            "UPDATE jobs SET state = 'queued', attempts = max(attempts - 1, 0), progress = ?2
             WHERE id = ?1 AND state IN {RUNNING}"
        ),
        params![id, json(&Progress::queued())],
    )? > 0)
}

pub fn delete(c: &Connection, id: &str) -> rusqlite::Result<bool> {
    Ok(c.execute("DELETE FROM jobs WHERE id = ?1", [id])? > 0)
}

/// After a crash: jobs left running go back to the queue once; a job that was already
/// retried fails with a reason. Returns (requeued, failed) ids.
pub fn recover(
    c: &mut Connection,
    max_attempts: i64,
) -> rusqlite::Result<(Vec<String>, Vec<String>)> {
    let tx = c.transaction()?;
    let stuck: Vec<(String, i64)> = {
        let mut st = tx.prepare(&format!(
            "SELECT id, attempts FROM jobs WHERE state IN {RUNNING} ORDER BY seq"
        ))?;
        let rows = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows
    };
    let (mut requeued, mut failed) = (Vec::new(), Vec::new());
    for (id, attempts) in stuck {
        if attempts < max_attempts {
            tx.execute(
                "UPDATE jobs SET state = 'queued', progress = ?2 WHERE id = ?1",
                params![id, json(&Progress::queued())],
            )?;
            requeued.push(id);
        } else {
            tx.execute(
                "UPDATE jobs SET state = 'failed', finished_at = ?2, error_code = 'internal',
                        error_message = ?3, status_text = NULL
                 WHERE id = ?1",
                params![
                    id,
                    now_ms(),
                    format!(
                        "the service stopped while this job was running, {attempts} times; it is not retried again"
                    )
                ],
            )?;
            failed.push(id);
        }
    }
    tx.commit()?;
    Ok((requeued, failed))
}

/// Ids of queued jobs, oldest first.
pub fn queued_ids(c: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut st = c.prepare("SELECT id FROM jobs WHERE state = 'queued' ORDER BY seq")?;
    let rows = st
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(rows)
}

/// Done jobs whose bundle expired but is still on disk: (id, file name).
pub fn expired_bundles(c: &Connection, now: i64) -> rusqlite::Result<Vec<(String, String)>> {
    let mut st = c.prepare(
        "SELECT id, bundle_file FROM jobs
         WHERE bundle_expired = 0 AND expires_at IS NOT NULL AND expires_at <= ?1 AND bundle_file IS NOT NULL",
    )?;
    let rows = st
        .query_map([now], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

pub fn mark_expired(c: &Connection, id: &str) -> rusqlite::Result<()> {
    c.execute("UPDATE jobs SET bundle_expired = 1 WHERE id = ?1", [id])?;
    Ok(())
}

/// Finished jobs other than `except` whose bundle file `file_name` is still on disk, newest
/// first (the candidates an identical job shares its file with).
pub fn published_with(
    c: &Connection,
    file_name: &str,
    except: &str,
) -> rusqlite::Result<Vec<String>> {
    let mut st = c.prepare(
        "SELECT id FROM jobs
         WHERE bundle_file = ?1 AND bundle_expired = 0 AND state = 'done' AND id <> ?2
         ORDER BY seq DESC LIMIT 8",
    )?;
    let rows = st
        .query_map(params![file_name, except], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(rows)
}

/// Where a job's bundle is: (file name, expired, expires_at ms).
pub fn bundle_of(c: &Connection, id: &str) -> rusqlite::Result<Option<(String, bool, i64)>> {
    c.query_row(
        "SELECT bundle_file, bundle_expired, expires_at FROM jobs WHERE id = ?1 AND bundle_file IS NOT NULL",
        [id],
        |r| Ok((r.get(0)?, r.get::<_, i64>(1)? != 0, r.get::<_, Option<i64>>(2)?.unwrap_or(0))),
    )
    .optional()
}

/// Every job id (for the janitor's orphan sweep).
pub fn all_ids(c: &Connection) -> rusqlite::Result<std::collections::HashSet<String>> {
    let mut st = c.prepare("SELECT id FROM jobs")?;
    let rows = st
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<std::collections::HashSet<String>>>()?;
    Ok(rows)
}

/// Jobs per state (every state, zeros included).
pub fn count_by_state(c: &Connection) -> rusqlite::Result<Vec<(State, u64)>> {
    let mut st = c.prepare("SELECT state, count(*) FROM jobs GROUP BY state")?;
    let found: Vec<(String, i64)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(counts_by_state(&found))
}

/// The SQLite backend: the free functions above, on the main connection (reads for
/// `/healthz` and `/metrics` on the reader connection).
impl crate::store::JobStore for Db {
    fn backend(&self) -> &'static str {
        "sqlite"
    }
    fn insert(
        &self,
        id: &str,
        j: &JobRequest,
        _first_line: &str,
        then: &mut dyn FnMut(&Job),
    ) -> Result<Job, DbError> {
        self.with(|c| {
            let job = insert(c, id, j)?;
            then(&job);
            Ok(job)
        })
    }
    fn get(&self, id: &str) -> Result<Option<Job>, DbError> {
        self.with(|c| get(c, id))
    }
    fn list(&self, offset: u64, limit: u64) -> Result<(Vec<Job>, u64), DbError> {
        self.with(|c| list(c, offset, limit))
    }
    fn claim_next(&self) -> Result<Option<Claimed>, DbError> {
        self.with(claim_next)
    }
    fn set_running(&self, id: &str, state: State, progress: &Progress) -> Result<bool, DbError> {
        self.with(|c| set_running(c, id, state, progress))
    }
    fn finish_done(&self, id: &str, d: &DoneInfo, progress: &Progress) -> Result<bool, DbError> {
        self.with(|c| finish_done(c, id, d, progress))
    }
    fn finish_failed(
        &self,
        id: &str,
        error: &JobError,
        progress: Option<&Progress>,
    ) -> Result<bool, DbError> {
        self.with(|c| finish_failed(c, id, error, progress))
    }
    fn cancel(&self, id: &str, only_queued: bool) -> Result<bool, DbError> {
        self.with(|c| cancel(c, id, only_queued))
    }
    fn requeue_interrupted(&self, id: &str) -> Result<bool, DbError> {
        self.with(|c| requeue_interrupted(c, id))
    }
    fn delete(&self, id: &str) -> Result<bool, DbError> {
        self.with(|c| delete(c, id))
    }
    fn recover(&self, max_attempts: i64) -> Result<(Vec<String>, Vec<String>), DbError> {
        self.with(|c| recover(c, max_attempts))
    }
    fn queued_ids(&self) -> Result<Vec<String>, DbError> {
        self.with(|c| queued_ids(c))
    }
    fn expired_bundles(&self, now: i64) -> Result<Vec<(String, String)>, DbError> {
        self.with(|c| expired_bundles(c, now))
    }
    fn mark_expired(&self, id: &str) -> Result<(), DbError> {
        self.with(|c| mark_expired(c, id))
    }
    fn published_with(&self, file_name: &str, except: &str) -> Result<Vec<String>, DbError> {
        self.with(|c| published_with(c, file_name, except))
    }
    fn bundle_of(&self, id: &str) -> Result<Option<(String, bool, i64)>, DbError> {
        self.with(|c| bundle_of(c, id))
    }
    fn all_ids(&self) -> Result<std::collections::HashSet<String>, DbError> {
        self.with(|c| all_ids(c))
    }
    fn count_by_state(&self) -> Result<Vec<(State, u64)>, DbError> {
        // on the reader connection: never waits for the writer
        let c = self.reader.lock().unwrap_or_else(|e| e.into_inner());
        Ok(count_by_state(&c)?)
    }
    fn try_count_by_state_here(&self) -> Option<Result<Vec<(State, u64)>, DbError>> {
        self.try_read_here(count_by_state)
    }
    fn ping(&self) -> Result<(), DbError> {
        let c = self.reader.lock().unwrap_or_else(|e| e.into_inner());
        c.query_row("SELECT count(*) FROM schema_migrations", [], |r| {
            r.get::<_, i64>(0)
        })?;
        Ok(())
    }
    fn referenced_uploads(&self) -> Result<std::collections::HashSet<String>, DbError> {
        self.with(|c| {
            let mut st =
                c.prepare("SELECT status_text FROM jobs WHERE status_text LIKE 'upload:sha256:%'")?;
            let v = st
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<std::collections::HashSet<_>>>();
            v
        })
    }
    fn vacuum_if_sparse(&self) -> Result<bool, DbError> {
        self.with(|c| {
            let free: i64 = c.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
            let total: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0))?;
            let size: i64 = c.query_row("PRAGMA page_size", [], |r| r.get(0))?;
            if free * size >= 4 << 20 && free * 2 >= total {
                c.execute_batch("VACUUM")?;
                return Ok(true);
            }
            Ok(false)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{BaselineKind, BundleFormat, JobMode};

    fn new_job() -> JobRequest {
        JobRequest {
            distro: "debian-12".into(),
            arch: "amd64".into(),
            packages: vec!["hello".into()],
            recommends: true,
            baseline: BaselineKind::None,
            status_text: None,
            format: BundleFormat::TarZst,
            mode: JobMode::Install,
            security_only: false,
            hosts: Vec::new(),
            plan: None,
        }
    }

    /// `/healthz` and `/metrics` read on the reader connection: a writer holding the main
    /// connection (inside an open write transaction) does not delay them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_do_not_wait_for_the_writer() {
        let d = tempfile::tempdir().expect("tmp");
        let db = Db::open(&d.path().join("j.sqlite")).expect("open");
        let id = "c".repeat(32);
        db.with(|c| insert(c, &id, &new_job())).expect("insert");
        let (held_tx, held_rx) = std::sync::mpsc::channel();
        let writer = {
            let db = db.clone();
            std::thread::spawn(move || {
                db.with(|c| {
                    let tx = c.transaction()?;
                    tx.execute(
                        "UPDATE jobs SET state = 'failed' WHERE id = ?1",
                        [&"c".repeat(32)],
                    )?;
                    let _ = held_tx.send(());
                    std::thread::sleep(std::time::Duration::from_secs(2));
                    tx.commit()
                })
            })
        };
        held_rx.recv().expect("writer holds the lock");
        let t0 = std::time::Instant::now();
        let by_state = db
            .read(std::time::Duration::from_secs(1), count_by_state)
            .await
            .expect("read");
        assert!(
            t0.elapsed() < std::time::Duration::from_millis(500),
            "{:?}",
            t0.elapsed()
        );
        // the uncommitted change is not seen
        assert!(by_state.contains(&(State::Queued, 1)), "{by_state:?}");
        writer.join().expect("join").expect("write");
        let by_state = db
            .read(std::time::Duration::from_secs(1), count_by_state)
            .await
            .expect("read");
        assert!(by_state.contains(&(State::Failed, 1)), "{by_state:?}");
    }

    #[test]
    fn life_cycle_and_recovery() {
        let d = tempfile::tempdir().expect("tmp");
        let db = Db::open(&d.path().join("j.sqlite")).expect("open");
        let a = "a".repeat(32);
        let b = "b".repeat(32);
        let ja = db.with(|c| insert(c, &a, &new_job())).expect("insert a");
        assert_eq!(
            (ja.baseline, ja.format),
            (BaselineKind::None, BundleFormat::TarZst)
        );
        db.with(|c| insert(c, &b, &new_job())).expect("insert b");
        let (items, total) = db.with(|c| list(c, 0, 10)).expect("list");
        assert_eq!(total, 2);
        assert_eq!(items[0].id, b, "newest first");
        let cl = db.with(claim_next).expect("claim").expect("one");
        assert_eq!(cl.job.id, a);
        assert_eq!(cl.job.state, State::Resolving);
        assert_eq!(cl.attempts, 1);
        // crash: re-queued once
        let (rq, failed) = db.with(|c| recover(c, 2)).expect("recover");
        assert_eq!((rq.len(), failed.len()), (1, 0));
        let cl = db.with(claim_next).expect("claim").expect("again");
        assert_eq!((cl.job.id.as_str(), cl.attempts), (a.as_str(), 2));
        // crash again: failed with a reason
        let (rq, failed) = db.with(|c| recover(c, 2)).expect("recover");
        assert_eq!((rq.len(), failed.len()), (0, 1));
        let j = db.with(|c| get(c, &a)).expect("get").expect("a");
        assert_eq!(j.state, State::Failed);
        let e = j.error.expect("error");
        assert!(e.message.contains("not retried"));
        assert_eq!((e.index, e.package), (None, None));
        // a failure about one entry of the request keeps it
        let c2 = "c".repeat(32);
        db.with(|c| insert(c, &c2, &new_job())).expect("insert c");
        let err = JobError {
            code: "unknown_package".into(),
            message: "unknown package 'helo'".into(),
            index: Some(0),
            package: Some("helo".into()),
        };
        assert!(db
            .with(|c| finish_failed(c, &c2, &err, None))
            .expect("fail"));
        let j = db.with(|c| get(c, &c2)).expect("get").expect("c");
        assert_eq!(j.error, Some(err));
        assert!(db.with(|c| delete(c, &c2)).expect("delete"));
        // a terminal state is final
        assert!(!db.with(|c| cancel(c, &a, false)).expect("cancel"));
        assert!(db.with(|c| cancel(c, &b, true)).expect("cancel queued"));
        let counts = db.with(|c| count_by_state(c)).expect("counts");
        assert_eq!(counts.len(), 7);
        assert!(db.with(|c| delete(c, &a)).expect("delete"));
        assert!(db.with(|c| get(c, &a)).expect("get").is_none());
        // reopening applies no migration twice
        drop(db);
        let db = Db::open(&d.path().join("j.sqlite")).expect("reopen");
        assert_eq!(db.with(|c| list(c, 0, 10)).expect("list").1, 1);
    }
}
