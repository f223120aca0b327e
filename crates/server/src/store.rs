//! The job store behind a trait: SQLite ([`crate::db::Db`], embedded, the default) or
//! PostgreSQL ([`crate::pg::Pg`], several replicas on one database).
//!
//! The trait is synchronous: the service's callers are workers and handlers that already run
//! database work on blocking threads (`spawn_blocking`), and both backends are blocking
//! clients (rusqlite; the `postgres` crate). [`Store`] is the shared handle with the async
//! helpers the handlers use.
//!
//! A backend that is `shared` (PostgreSQL) is used by several replicas at once: a claimed job
//! holds a lease that its worker renews ([`JobStore::heartbeat`]); a job whose lease expired is
//! taken over ([`JobStore::take_over`]); the job's log lines are kept in the store too, so a
//! replica that does not run a job can still tell its whole story ([`JobStore::log_since`]).

use crate::db::{Claimed, DbError, DoneInfo};
use crate::model::{Job, JobError, JobRequest, Progress, State};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// What a worker's heartbeat found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lease {
    /// Still this replica's job, running.
    Held,
    /// Cancelled or deleted (by any replica): stop the build.
    Stopped,
    /// Another replica took it over (this one's lease expired): stop without writing.
    Lost,
}

/// Every query the service makes on its jobs.
pub trait JobStore: Send + Sync + 'static {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// Several replicas share this store (leases, logs and events in the store).
    fn shared(&self) -> bool {
        false
    }
    /// Stores a new queued job; `then` runs before any worker can see it (SQLite: under the
    /// database lock).
    /// `first_line` is the job's first log line (a shared store keeps it with the job; others
    /// leave it to the caller's log file).
    fn insert(
        &self,
        id: &str,
        j: &JobRequest,
        first_line: &str,
        then: &mut dyn FnMut(&Job),
    ) -> Result<Job, DbError>;
    fn get(&self, id: &str) -> Result<Option<Job>, DbError>;
    /// A page of jobs, newest first, and the total.
    fn list(&self, offset: u64, limit: u64) -> Result<(Vec<Job>, u64), DbError>;
    /// Takes the oldest queued job (resolving, one more attempt; shared: with a lease).
    fn claim_next(&self) -> Result<Option<Claimed>, DbError>;
    /// Renews a running job's lease (shared stores; others always hold it).
    fn heartbeat(&self, _id: &str) -> Result<Lease, DbError> {
        Ok(Lease::Held)
    }
    fn set_running(&self, id: &str, state: State, progress: &Progress) -> Result<bool, DbError>;
    fn finish_done(&self, id: &str, d: &DoneInfo, progress: &Progress) -> Result<bool, DbError>;
    fn finish_failed(
        &self,
        id: &str,
        error: &JobError,
        progress: Option<&Progress>,
    ) -> Result<bool, DbError>;
    fn cancel(&self, id: &str, only_queued: bool) -> Result<bool, DbError>;
    fn requeue_interrupted(&self, id: &str) -> Result<bool, DbError>;
    fn delete(&self, id: &str) -> Result<bool, DbError>;
    /// At start: jobs this process (or a crashed one) left running. (requeued, failed)
    fn recover(&self, max_attempts: i64) -> Result<(Vec<String>, Vec<String>), DbError>;
    /// Periodically (shared stores): jobs whose lease expired. (requeued, failed)
    fn take_over(&self, _max_attempts: i64) -> Result<(Vec<String>, Vec<String>), DbError> {
        Ok((Vec::new(), Vec::new()))
    }
    fn queued_ids(&self) -> Result<Vec<String>, DbError>;
    fn expired_bundles(&self, now: i64) -> Result<Vec<(String, String)>, DbError>;
    fn mark_expired(&self, id: &str) -> Result<(), DbError>;
    fn published_with(&self, file_name: &str, except: &str) -> Result<Vec<String>, DbError>;
    fn bundle_of(&self, id: &str) -> Result<Option<(String, bool, i64)>, DbError>;
    fn all_ids(&self) -> Result<HashSet<String>, DbError>;
    fn count_by_state(&self) -> Result<Vec<(State, u64)>, DbError>;
    /// [`JobStore::count_by_state`] on this thread when that cannot wait (None: not now).
    fn try_count_by_state_here(&self) -> Option<Result<Vec<(State, u64)>, DbError>> {
        None
    }
    /// A cheap read that proves the store answers (`/healthz`).
    fn ping(&self) -> Result<(), DbError>;
    /// `status_text` values of jobs that refer to an uploaded file.
    fn referenced_uploads(&self) -> Result<HashSet<String>, DbError>;
    /// Compacts a mostly empty database (SQLite); whether it did.
    fn vacuum_if_sparse(&self) -> Result<bool, DbError> {
        Ok(false)
    }
    /// Keeps log line `n` (from 1; None: the next) of a job (shared stores).
    fn append_log(&self, _id: &str, _n: Option<u64>, _line: &str) -> Result<(), DbError> {
        Ok(())
    }
    /// How many log lines of a job the store keeps (shared stores; None: a local file).
    fn log_len(&self, _id: &str) -> Result<Option<u64>, DbError> {
        Ok(None)
    }
    /// A job's log lines after line `after` (shared stores; None: the log is a local file).
    fn log_since(&self, _id: &str, _after: u64) -> Result<Option<Vec<(u64, String)>>, DbError> {
        Ok(None)
    }
}

/// The service's handle on its job store.
#[derive(Clone)]
pub struct Store(pub Arc<dyn JobStore>);

impl std::ops::Deref for Store {
    type Target = dyn JobStore;
    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

impl Store {
    pub fn new(s: impl JobStore) -> Store {
        Store(Arc::new(s))
    }

    /// Runs `f` on a blocking thread (for async handlers).
    pub async fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn JobStore) -> Result<R, DbError> + Send + 'static,
    ) -> Result<R, DbError> {
        let s = self.clone();
        tokio::task::spawn_blocking(move || f(&*s.0))
            .await
            .map_err(|e| DbError::Task(e.to_string()))?
    }

    /// Like [`Store::run`], an error when it takes longer than `limit`.
    pub async fn read<R: Send + 'static>(
        &self,
        limit: Duration,
        f: impl FnOnce(&dyn JobStore) -> Result<R, DbError> + Send + 'static,
    ) -> Result<R, DbError> {
        match tokio::time::timeout(limit, self.run(f)).await {
            Ok(r) => r,
            Err(_) => Err(DbError::Timeout(limit)),
        }
    }
}

/// Opens the store `url` names: empty → SQLite at `sqlite_path`; `postgres://…` or
/// `postgresql://…` → PostgreSQL. Blocking.
pub fn open(
    url: Option<&str>,
    sqlite_path: &std::path::Path,
    lease: Duration,
) -> Result<Store, DbError> {
    match url.map(str::trim).filter(|u| !u.is_empty()) {
        None => Ok(Store::new(crate::db::Db::open(sqlite_path)?)),
        Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
            Ok(Store::new(crate::pg::Pg::open(u, lease)?))
        }
        Some(u) if u.starts_with("sqlite:") => {
            let p = u
                .trim_start_matches("sqlite://")
                .trim_start_matches("sqlite:");
            Ok(Store::new(crate::db::Db::open(std::path::Path::new(p))?))
        }
        Some(_) => Err(DbError::Config(
            "--database: use postgres://user:password@host/db (or leave it unset for SQLite)"
                .into(),
        )),
    }
}
