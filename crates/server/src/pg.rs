//! The job store on PostgreSQL (`--database postgres://…`): several `opaas serve` replicas
//! share one database.
//!
//! * Claims: `FOR UPDATE SKIP LOCKED` on the oldest queued job, in the same statement that
//!   marks it running, owned by this replica, with a lease (database clock) of
//!   [`crate::ServerConfig::lease`]. Every write a worker makes about its job is guarded by
//!   `owner = <this replica>`, so a replica that lost its lease can never overwrite the
//!   replica that took the job over.
//! * Heartbeat: the worker renews the lease every third of it ([`JobStore::heartbeat`]); it
//!   also learns there that the job was cancelled or deleted by another replica.
//! * Takeover: any replica re-queues (once) or fails jobs whose lease expired
//!   ([`JobStore::take_over`]) — but only after it has itself been connected without a break
//!   for two leases, so that a database restart (every lease expired meanwhile) gives the
//!   owners time to renew first.
//! * Logs: each job's lines are also kept in `job_log`, so a replica that does not run the job
//!   streams them to its browsers.
//!
//! The client is the synchronous `postgres` crate (the service calls its store from blocking
//! threads); a small pool of connections, re-opened after an error. While the database does
//! not answer, calls fail fast (at most one connection attempt per second), and the writes
//! that record a job's outcome are retried until it answers again.

use crate::db::{Claimed, DbError, DoneInfo};
use crate::jobrow::{counts_by_state, job_from_row, JobRow};
use crate::model::{now_ms, Job, JobError, JobRequest, Progress, State};
use crate::store::{JobStore, Lease};
use postgres::{Client, NoTls, Row};
use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/postgres/0001_jobs.sql")),
    (
        2,
        include_str!("../migrations/postgres/0002_upgrade_jobs.sql"),
    ),
];

const COLS: &str = "id, state, distro, arch, packages, recommends, baseline, format, created_at, \
    started_at, finished_at, progress, error_code, error_message, bundle_file, bundle_size, \
    bundle_sha256, bundle_packages, expires_at, bundle_expired, error_index, error_package, \
    mode, security_only, hosts, plan";
/// How many columns `COLS` names (what a query selects after them starts here).
const COLS_N: usize = 26;
const RUNNING: &str = "('resolving', 'downloading', 'packing')";
const NOT_TERMINAL: &str = "('queued', 'resolving', 'downloading', 'packing')";
/// The database's clock in Unix milliseconds: leases do not depend on the replicas' clocks.
const DB_NOW: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

/// How long the writes that record a job's outcome wait for the database to come back.
const OUTCOME_RETRY: Duration = Duration::from_secs(600);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

impl JobRow for Row {
    type Error = postgres::Error;
    fn text(&self, i: usize) -> Result<String, postgres::Error> {
        self.try_get(i)
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>, postgres::Error> {
        self.try_get(i)
    }
    fn int(&self, i: usize) -> Result<i64, postgres::Error> {
        self.try_get(i)
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>, postgres::Error> {
        self.try_get(i)
    }
    fn flag(&self, i: usize) -> Result<bool, postgres::Error> {
        self.try_get(i)
    }
}

fn row_job(r: &Row) -> Result<Job, postgres::Error> {
    job_from_row(r)
}

/// Whether an error is about the connection (the database is away) rather than the query.
pub(crate) fn is_connection(e: &DbError) -> bool {
    match e {
        DbError::Pg(e) => {
            e.is_closed()
                || e.as_db_error().is_none_or(|d| {
                    // admin shutdown, crash shutdown, cannot connect now
                    matches!(d.code().code(), "57P01" | "57P02" | "57P03")
                })
        }
        DbError::Unreachable(_) => true,
        _ => false,
    }
}

/// The PostgreSQL job store of one replica.
pub struct Pg {
    config: postgres::Config,
    /// This replica (host, process and a random part): the owner of the jobs it claims.
    replica: String,
    lease: Duration,
    pool: Mutex<Vec<Client>>,
    /// Since when this replica has been connected without a break (None: not now), and when a
    /// connection last failed.
    link: Mutex<(Option<Instant>, Option<Instant>)>,
}

impl Pg {
    /// Connects, applies the migrations the database lacks (one replica at a time: an
    /// advisory lock), and returns the store.
    pub fn open(url: &str, lease: Duration) -> Result<Pg, DbError> {
        let mut config: postgres::Config = url
            .parse()
            .map_err(|e| DbError::Config(format!("--database: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(30));
        if config.get_application_name().is_none() {
            config.application_name("opaas");
        }
        let mut rnd = [0u8; 4];
        let _ = getrandom::getrandom(&mut rnd);
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "replica".into());
        let replica = format!("{host}:{}:{}", std::process::id(), hex::encode(rnd));
        let pg = Pg {
            config,
            replica,
            lease: lease.max(Duration::from_secs(1)),
            pool: Mutex::new(Vec::new()),
            link: Mutex::new((None, None)),
        };
        pg.with(migrate)?;
        tracing::info!(replica = %pg.replica, "job database: PostgreSQL");
        Ok(pg)
    }

    /// This replica's name in `jobs.owner`.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    fn lease_ms(&self) -> i64 {
        self.lease.as_millis().min(i64::MAX as u128) as i64
    }

    fn client(&self) -> Result<Client, DbError> {
        if let Some(c) = lock(&self.pool).pop() {
            if !c.is_closed() {
                return Ok(c);
            }
        }
        {
            // fail fast while the database is away: one attempt a second
            let l = lock(&self.link);
            if l.0.is_none()
                && l.1
                    .is_some_and(|t| t.elapsed() < Duration::from_millis(250))
            {
                return Err(DbError::Unreachable(
                    "the job database does not answer (retrying)".into(),
                ));
            }
        }
        match self.config.connect(NoTls) {
            Ok(c) => Ok(c),
            Err(e) => {
                let mut l = lock(&self.link);
                *l = (None, Some(Instant::now()));
                Err(DbError::Unreachable(e.to_string()))
            }
        }
    }

    /// Runs `f` on a pooled connection.
    fn with<R>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<R, postgres::Error>,
    ) -> Result<R, DbError> {
        let mut c = self.client()?;
        let r = f(&mut c).map_err(DbError::Pg);
        match &r {
            Err(e) if is_connection(e) || c.is_closed() => {
                *lock(&self.link) = (None, Some(Instant::now()));
            }
            _ => {
                {
                    let mut l = lock(&self.link);
                    if l.0.is_none() {
                        l.0 = Some(Instant::now());
                    }
                }
                let mut pool = lock(&self.pool);
                if pool.len() < 8 {
                    pool.push(c);
                }
            }
        }
        r
    }

    /// [`Pg::with`], retried while the database is away (for a job's outcome: losing it
    /// would leave the job running with nobody running it).
    fn with_retry<R>(
        &self,
        mut f: impl FnMut(&mut Client) -> Result<R, postgres::Error>,
    ) -> Result<R, DbError> {
        let t0 = Instant::now();
        let mut said = false;
        loop {
            match self.with(&mut f) {
                Err(e) if is_connection(&e) && t0.elapsed() < OUTCOME_RETRY => {
                    if !said {
                        tracing::warn!("the job database does not answer ({e}); retrying");
                        said = true;
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
                r => return r,
            }
        }
    }

    fn fetch(c: &mut Client, id: &str) -> Result<Option<Job>, postgres::Error> {
        match c.query_opt(&format!("SELECT {COLS} FROM jobs WHERE id = $1"), &[&id])? {
            Some(r) => Ok(Some(row_job(&r)?)),
            None => Ok(None),
        }
    }

    fn log_next(
        c: &mut impl postgres::GenericClient,
        id: &str,
        line: &str,
    ) -> Result<(), postgres::Error> {
        c.execute(
            "INSERT INTO job_log (job_id, n, line)
             SELECT $1, coalesce(max(n), 0) + 1, $2 FROM job_log WHERE job_id = $1
             ON CONFLICT DO NOTHING",
            &[&id, &line],
        )?;
        Ok(())
    }
}

fn migrate(c: &mut Client) -> Result<(), postgres::Error> {
    let mut tx = c.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock(7364201)", &[])?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
    )?;
    for (version, sql) in MIGRATIONS {
        let done = tx.query_opt(
            "SELECT version FROM schema_migrations WHERE version = $1",
            &[version],
        )?;
        if done.is_some() {
            continue;
        }
        tx.batch_execute(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
            &[version, &now_ms()],
        )?;
        tracing::info!(version, "applied database migration (PostgreSQL)");
    }
    tx.commit()
}

impl JobStore for Pg {
    fn backend(&self) -> &'static str {
        "postgres"
    }
    fn shared(&self) -> bool {
        true
    }
    fn insert(
        &self,
        id: &str,
        j: &JobRequest,
        first_line: &str,
        then: &mut dyn FnMut(&Job),
    ) -> Result<Job, DbError> {
        let job = self.with(|c| {
            let mut tx = c.transaction()?;
            tx.execute(
                "INSERT INTO jobs (id, state, distro, arch, packages, recommends, baseline, status_text, format, created_at, progress, mode, security_only, hosts, plan)
                 VALUES ($1, 'queued', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                &[
                    &id,
                    &j.distro,
                    &j.arch,
                    &json(&j.packages),
                    &j.recommends,
                    &j.baseline.as_str(),
                    &j.status_text,
                    &j.format.as_str(),
                    &now_ms(),
                    &json(&Progress::queued()),
                    &j.mode.as_str(),
                    &j.security_only,
                    &(!j.hosts.is_empty()).then(|| json(&j.hosts)),
                    &j.plan.as_ref().map(json),
                ],
            )?;
            let r = tx.query_one(&format!("SELECT {COLS} FROM jobs WHERE id = $1"), &[&id])?;
            let job = row_job(&r)?;
            Self::log_next(&mut tx, id, first_line)?;
            tx.commit()?;
            Ok(job)
        })?;
        then(&job);
        Ok(job)
    }
    fn get(&self, id: &str) -> Result<Option<Job>, DbError> {
        self.with(|c| Self::fetch(c, id))
    }
    fn list(&self, offset: u64, limit: u64) -> Result<(Vec<Job>, u64), DbError> {
        self.with(|c| {
            let total: i64 = c.query_one("SELECT count(*) FROM jobs", &[])?.try_get(0)?;
            let rows = c.query(
                &format!("SELECT {COLS} FROM jobs ORDER BY seq DESC LIMIT $1 OFFSET $2"),
                &[
                    &(limit.min(i64::MAX as u64) as i64),
                    &(offset.min(i64::MAX as u64) as i64),
                ],
            )?;
            let items = rows.iter().map(row_job).collect::<Result<Vec<_>, _>>()?;
            Ok((items, total as u64))
        })
    }
    fn claim_next(&self) -> Result<Option<Claimed>, DbError> {
        let mut p = Progress::queued();
        p.phase = "resolving".into();
        let p = json(&p);
        self.with(|c| {
            let r = c.query_opt(
                &format!(
                    "UPDATE jobs SET state = 'resolving', started_at = coalesce(started_at, $1),
                            attempts = attempts + 1, progress = $2, error_code = NULL,
                            error_message = NULL, owner = $3, lease_until = {DB_NOW} + $4
                     WHERE id = (SELECT id FROM jobs WHERE state = 'queued' ORDER BY seq
                                 LIMIT 1 FOR UPDATE SKIP LOCKED)
                       AND state = 'queued'
                     RETURNING {COLS}, status_text, attempts"
                ),
                &[&now_ms(), &p, &self.replica, &self.lease_ms()],
            )?;
            match r {
                None => Ok(None),
                Some(r) => Ok(Some(Claimed {
                    job: row_job(&r)?,
                    status_text: r.try_get(COLS_N)?,
                    attempts: r.try_get(COLS_N + 1)?,
                })),
            }
        })
    }
    fn heartbeat(&self, id: &str) -> Result<Lease, DbError> {
        self.with(|c| {
            let n = c.execute(
                &format!(
                    "UPDATE jobs SET lease_until = {DB_NOW} + $3
                     WHERE id = $1 AND owner = $2 AND state IN {RUNNING}"
                ),
                &[&id, &self.replica, &self.lease_ms()],
            )?;
            if n > 0 {
                return Ok(Lease::Held);
            }
            let r = c.query_opt("SELECT state, owner FROM jobs WHERE id = $1", &[&id])?;
            Ok(match r {
                None => Lease::Stopped,
                Some(r) => {
                    let state: String = r.try_get(0)?;
                    let owner: Option<String> = r.try_get(1)?;
                    if state == "cancelled" && owner.as_deref() == Some(&self.replica) {
                        Lease::Stopped
                    } else {
                        Lease::Lost
                    }
                }
            })
        })
    }
    fn set_running(&self, id: &str, state: State, progress: &Progress) -> Result<bool, DbError> {
        let p = json(progress);
        self.with(|c| {
            Ok(c.execute(
                &format!(
                    "UPDATE jobs SET state = $2, progress = $3, lease_until = {DB_NOW} + $5
                     WHERE id = $1 AND state IN {RUNNING} AND owner = $4"
                ),
                &[&id, &state.as_str(), &p, &self.replica, &self.lease_ms()],
            )? > 0)
        })
    }
    fn finish_done(&self, id: &str, d: &DoneInfo, progress: &Progress) -> Result<bool, DbError> {
        let p = json(progress);
        self.with_retry(|c| {
            Ok(c.execute(
                &format!(
                    "UPDATE jobs SET state = 'done', finished_at = $2, progress = $3, bundle_file = $4,
                            bundle_size = $5, bundle_sha256 = $6, bundle_packages = $7, expires_at = $8,
                            downloaded_bytes = $9, downloads = $10, cache_hits = $11, status_text = NULL,
                            lease_until = NULL
                     WHERE id = $1 AND state IN {RUNNING} AND owner = $12"
                ),
                &[
                    &id,
                    &now_ms(),
                    &p,
                    &d.file_name,
                    &(d.size as i64),
                    &d.sha256,
                    &(d.package_count as i64),
                    &d.expires_at,
                    &(d.downloaded_bytes as i64),
                    &(d.downloads as i64),
                    &(d.cache_hits as i64),
                    &self.replica,
                ],
            )? > 0)
        })
    }
    fn finish_failed(
        &self,
        id: &str,
        error: &JobError,
        progress: Option<&Progress>,
    ) -> Result<bool, DbError> {
        let p = progress.map(json);
        let index = error.index.map(i64::from);
        self.with_retry(|c| {
            Ok(c.execute(
                &format!(
                    "UPDATE jobs SET state = 'failed', finished_at = $2, error_code = $3, error_message = $4,
                            progress = coalesce($5, progress), status_text = NULL, error_index = $6,
                            error_package = $7, lease_until = NULL
                     WHERE id = $1 AND state IN {NOT_TERMINAL} AND (owner = $8 OR state = 'queued')"
                ),
                &[
                    &id,
                    &now_ms(),
                    &error.code,
                    &error.message,
                    &p,
                    &index,
                    &error.package,
                    &self.replica,
                ],
            )? > 0)
        })
    }
    fn cancel(&self, id: &str, only_queued: bool) -> Result<bool, DbError> {
        let states = if only_queued {
            "('queued')"
        } else {
            NOT_TERMINAL
        };
        self.with(|c| {
            Ok(c.execute(
                &format!(
                    "UPDATE jobs SET state = 'cancelled', finished_at = $2, status_text = NULL
                     WHERE id = $1 AND state IN {states}"
                ),
                &[&id, &now_ms()],
            )? > 0)
        })
    }
    fn requeue_interrupted(&self, id: &str) -> Result<bool, DbError> {
        let p = json(&Progress::queued());
        self.with_retry(|c| {
            Ok(c.execute(
                &format!(
                    "UPDATE jobs SET state = 'queued', attempts = greatest(attempts - 1, 0), progress = $2,
                            owner = NULL, lease_until = NULL
                     WHERE id = $1 AND state IN {RUNNING} AND owner = $3"
                ),
                &[&id, &p, &self.replica],
            )? > 0)
        })
    }
    fn delete(&self, id: &str) -> Result<bool, DbError> {
        self.with(|c| Ok(c.execute("DELETE FROM jobs WHERE id = $1", &[&id])? > 0))
    }
    fn recover(&self, _max_attempts: i64) -> Result<(Vec<String>, Vec<String>), DbError> {
        // other replicas may be running jobs: only expired leases are taken over, by
        // [`JobStore::take_over`] once this replica has been connected for two leases
        Ok((Vec::new(), Vec::new()))
    }
    fn take_over(&self, max_attempts: i64) -> Result<(Vec<String>, Vec<String>), DbError> {
        let steady = lock(&self.link)
            .0
            .is_some_and(|t| t.elapsed() >= self.lease * 2);
        if !steady {
            return Ok((Vec::new(), Vec::new()));
        }
        let queued = json(&Progress::queued());
        self.with(|c| {
            let mut tx = c.transaction()?;
            let stuck = tx.query(
                &format!(
                    "SELECT id, attempts, owner FROM jobs
                     WHERE state IN {RUNNING} AND (lease_until IS NULL OR lease_until < {DB_NOW})
                     ORDER BY seq FOR UPDATE SKIP LOCKED"
                ),
                &[],
            )?;
            let (mut requeued, mut failed) = (Vec::new(), Vec::new());
            for r in stuck {
                let id: String = r.try_get(0)?;
                let attempts: i64 = r.try_get(1)?;
                let owner: Option<String> = r.try_get(2)?;
                let owner = owner.unwrap_or_else(|| "?".into());
                if attempts < max_attempts {
                    tx.execute(
                        "UPDATE jobs SET state = 'queued', progress = $2, owner = NULL, lease_until = NULL
                         WHERE id = $1",
                        &[&id, &queued],
                    )?;
                    Self::log_next(
                        &mut tx,
                        &id,
                        &format!("the replica running this job ({owner}) stopped answering; it is queued again"),
                    )?;
                    requeued.push(id);
                } else {
                    let msg = format!(
                        "the replica running this job stopped answering (its lease expired), {attempts} times; it is not retried again"
                    );
                    tx.execute(
                        "UPDATE jobs SET state = 'failed', finished_at = $2, error_code = 'internal',
                                error_message = $3, status_text = NULL, lease_until = NULL
                         WHERE id = $1",
                        &[&id, &now_ms(), &msg],
                    )?;
                    Self::log_next(&mut tx, &id, &format!("E: {msg}"))?;
                    failed.push(id);
                }
            }
            tx.commit()?;
            Ok((requeued, failed))
        })
    }
    fn queued_ids(&self) -> Result<Vec<String>, DbError> {
        self.with(|c| {
            c.query(
                "SELECT id FROM jobs WHERE state = 'queued' ORDER BY seq",
                &[],
            )?
            .iter()
            .map(|r| r.try_get(0))
            .collect()
        })
    }
    fn expired_bundles(&self, now: i64) -> Result<Vec<(String, String)>, DbError> {
        self.with(|c| {
            c.query(
                "SELECT id, bundle_file FROM jobs
                 WHERE NOT bundle_expired AND expires_at IS NOT NULL AND expires_at <= $1 AND bundle_file IS NOT NULL",
                &[&now],
            )?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
        })
    }
    fn mark_expired(&self, id: &str) -> Result<(), DbError> {
        self.with(|c| {
            c.execute(
                "UPDATE jobs SET bundle_expired = true WHERE id = $1",
                &[&id],
            )?;
            Ok(())
        })
    }
    fn published_with(&self, file_name: &str, except: &str) -> Result<Vec<String>, DbError> {
        self.with(|c| {
            c.query(
                "SELECT id FROM jobs
                 WHERE bundle_file = $1 AND NOT bundle_expired AND state = 'done' AND id <> $2
                 ORDER BY seq DESC LIMIT 8",
                &[&file_name, &except],
            )?
            .iter()
            .map(|r| r.try_get(0))
            .collect()
        })
    }
    fn bundle_of(&self, id: &str) -> Result<Option<(String, bool, i64)>, DbError> {
        self.with(|c| {
            match c.query_opt(
                "SELECT bundle_file, bundle_expired, expires_at FROM jobs WHERE id = $1 AND bundle_file IS NOT NULL",
                &[&id],
            )? {
                None => Ok(None),
                Some(r) => Ok(Some((
                    r.try_get(0)?,
                    r.try_get(1)?,
                    r.try_get::<_, Option<i64>>(2)?.unwrap_or(0),
                ))),
            }
        })
    }
    fn all_ids(&self) -> Result<HashSet<String>, DbError> {
        self.with(|c| {
            c.query("SELECT id FROM jobs", &[])?
                .iter()
                .map(|r| r.try_get(0))
                .collect()
        })
    }
    fn count_by_state(&self) -> Result<Vec<(State, u64)>, DbError> {
        let found: Vec<(String, i64)> = self.with(|c| {
            c.query("SELECT state, count(*) FROM jobs GROUP BY state", &[])?
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect()
        })?;
        Ok(counts_by_state(&found))
    }
    fn ping(&self) -> Result<(), DbError> {
        self.with(|c| {
            c.query_one("SELECT count(*) FROM schema_migrations", &[])?;
            Ok(())
        })
    }
    fn referenced_uploads(&self) -> Result<HashSet<String>, DbError> {
        self.with(|c| {
            c.query(
                "SELECT status_text FROM jobs WHERE status_text LIKE 'upload:sha256:%'",
                &[],
            )?
            .iter()
            .map(|r| r.try_get(0))
            .collect()
        })
    }
    fn append_log(&self, id: &str, n: Option<u64>, line: &str) -> Result<(), DbError> {
        self.with(|c| {
            match n {
                Some(n) => {
                    c.execute(
                        "INSERT INTO job_log (job_id, n, line) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                        &[&id, &(n as i64), &line],
                    )?;
                }
                None => Self::log_next(c, id, line)?,
            }
            Ok(())
        })
    }
    fn log_len(&self, id: &str) -> Result<Option<u64>, DbError> {
        self.with(|c| {
            let n: Option<i64> = c
                .query_one("SELECT max(n) FROM job_log WHERE job_id = $1", &[&id])?
                .try_get(0)?;
            Ok(Some(n.unwrap_or(0) as u64))
        })
    }
    fn log_since(&self, id: &str, after: u64) -> Result<Option<Vec<(u64, String)>>, DbError> {
        self.with(|c| {
            let rows = c.query(
                "SELECT n, line FROM job_log WHERE job_id = $1 AND n > $2 ORDER BY n LIMIT 5000",
                &[&id, &(after.min(i64::MAX as u64) as i64)],
            )?;
            let v = rows
                .iter()
                .map(|r| Ok((r.try_get::<_, i64>(0)? as u64, r.try_get(1)?)))
                .collect::<Result<Vec<_>, postgres::Error>>()?;
            Ok(Some(v))
        })
    }
}

#[cfg(test)]
mod cols_tests {
    /// Queries read what they select after `COLS` by position: `COLS_N` must count `COLS`.
    #[test]
    fn cols_n_counts_the_columns() {
        assert_eq!(super::COLS.split(',').count(), super::COLS_N);
    }
}
