//! Uploaded dpkg status files (issue 16): parsed on the blocking pool under the same concurrency
//! limit as resolves (so the async threads keep answering `/healthz` and `/metrics`), and
//! stored outside the job row: `<data>/uploads/<sha256>.zst`, compressed and shared by every job
//! with the same upload. The row keeps `upload:sha256:<hex>`; rows written before keep the text
//! itself (still read). A periodic pass removes uploads no unfinished job refers to and vacuums
//! the database when deletions left it mostly empty.

use crate::api::AppState;
use crate::config::ServerConfig;
use crate::error::ApiError;
use crate::model::JobRequest;
use crate::store::{JobStore, Store};
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::{watch, SemaphorePermit};

/// What a job row keeps instead of the text.
pub const MARKER: &str = "upload:sha256:";
/// Bodies above this size are read only once a parse slot is free (their bytes wait in the
/// socket, not in memory).
const BIG_BODY: u64 = 256 << 10;
/// A body must arrive within this time once its slot is taken.
const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// Unreferenced uploads younger than this are kept (a submit stores the file, then the row).
const GRACE: Duration = Duration::from_secs(600);

pub fn dir(cfg: &ServerConfig) -> PathBuf {
    cfg.data_dir.join("uploads")
}

/// A small pool of low-priority threads (nice 10) for the CPU-heavy part of requests: parsing
/// uploads and resolving previews. The async threads and the blocking pool (database, files)
/// keep the CPU they need, so `/healthz` and `/metrics` answer at once however many uploads
/// are parsed. `big` bounds the large bodies read and worked on at once (memory).
pub struct Heavy {
    tx: std::sync::Mutex<std::sync::mpsc::Sender<Task>>,
    pub big: tokio::sync::Semaphore,
}

type Task = Box<dyn FnOnce() + Send>;

impl Heavy {
    /// `threads` workers (the previews' slot count), `big` large bodies at once.
    pub fn new(threads: usize, big: usize) -> Heavy {
        let (tx, rx) = std::sync::mpsc::channel::<Task>();
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = std::sync::Arc::clone(&rx);
            let spawned = std::thread::Builder::new()
                .name(format!("opaas-heavy-{i}"))
                .spawn(move || {
                    // Linux: the nice value of this thread only
                    let _ = rustix::process::setpriority_process(None, 10);
                    loop {
                        let task = {
                            let rx = rx.lock().unwrap_or_else(|e| e.into_inner());
                            match rx.recv() {
                                Ok(t) => t,
                                Err(_) => return, // the service is gone
                            }
                        };
                        task();
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!("cannot start a worker thread: {e}");
            }
        }
        Heavy {
            tx: std::sync::Mutex::new(tx),
            big: tokio::sync::Semaphore::new(big.max(1)),
        }
    }

    /// Runs `f` on the pool and waits for it.
    pub async fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, ApiError> {
        let (otx, orx) = tokio::sync::oneshot::channel();
        let task: Task = Box::new(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            let _ = otx.send(r);
        });
        let sent = self
            .tx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(task)
            .is_ok();
        if !sent {
            return Err(ApiError::internal("no worker thread is running"));
        }
        match orx.await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(_)) => Err(ApiError::internal("a task failed (panic)")),
            Err(_) => Err(ApiError::internal("a task was dropped")),
        }
    }
}

/// A checked request body, the number of installed packages its status file lists, and the
/// slot (of `previews`, shared with resolves and searches) the caller keeps while it works.
pub struct Intake<'a> {
    pub valid: JobRequest,
    pub status_lines: Option<usize>,
    pub permit: SemaphorePermit<'a>,
    /// Held while a large body is worked on.
    pub big: Option<SemaphorePermit<'a>>,
}

/// Reads and checks the body of `POST /api/resolve` or `POST /api/jobs` (`count`: also count
/// the installed packages of an uploaded status file, for the job's log).
pub async fn intake(st: &AppState, req: Request, count: bool) -> Result<Intake<'_>, ApiError> {
    let busy = || ApiError::internal("shutting down");
    let len = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let big = len.is_none_or(|n| n > BIG_BODY);
    let big = if big {
        Some(st.heavy.big.acquire().await.map_err(|_| busy())?)
    } else {
        None
    };
    let (body, permit) = if big.is_some() {
        let permit = st.previews.acquire().await.map_err(|_| busy())?;
        let body = tokio::time::timeout(BODY_TIMEOUT, Bytes::from_request(req, &()))
            .await
            .map_err(|_| {
                ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "bad_request",
                    format!(
                        "the request body did not arrive within {} s",
                        BODY_TIMEOUT.as_secs()
                    ),
                )
            })?;
        (crate::api::body_bytes(body)?, permit)
    } else {
        let body = crate::api::body_bytes(Bytes::from_request(req, &()).await)?;
        (body, st.previews.acquire().await.map_err(|_| busy())?)
    };
    let limits = crate::api::limits(&st.cfg);
    let (valid, status_lines) = st
        .heavy
        .run(move || {
            let v = crate::request::parse_body(&body, limits)?;
            drop(body);
            let n = v.status_text.as_deref().filter(|_| count).map(|t| {
                opaas_resolve::Baseline::from_status(t, &v.arch)
                    .packages
                    .len()
            });
            Ok::<_, ApiError>((v, n))
        })
        .await??;
    Ok(Intake {
        valid,
        status_lines,
        permit,
        big,
    })
}

/// Stores a status file (once per content) and returns what the job row keeps.
pub fn store(cfg: &ServerConfig, text: &str) -> std::io::Result<String> {
    let sha = hex::encode(Sha256::digest(text.as_bytes()));
    let d = dir(cfg);
    std::fs::create_dir_all(&d)?;
    let path = d.join(format!("{sha}.zst"));
    if path.exists() {
        // fresh again: the sweep leaves it alone while the row is written
        let f = std::fs::File::options().append(true).open(&path)?;
        f.set_modified(std::time::SystemTime::now())?;
    } else {
        let packed = zstd::encode_all(text.as_bytes(), 3)?;
        let tmp = d.join(format!(".{sha}.{}.tmp", std::process::id()));
        std::fs::write(&tmp, packed)?;
        std::fs::rename(&tmp, &path)?;
    }
    Ok(format!("{MARKER}{sha}"))
}

/// The status text a job row refers to.
pub fn load(cfg: &ServerConfig, stored: &str) -> Result<String, String> {
    let Some(sha) = stored.strip_prefix(MARKER) else {
        return Ok(stored.to_string()); // a row from before: the text itself
    };
    if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("bad upload reference '{stored}'"));
    }
    let path = dir(cfg).join(format!("{sha}.zst"));
    let packed = std::fs::read(&path)
        .map_err(|e| format!("the uploaded status file {} is gone: {e}", path.display()))?;
    let raw = zstd::decode_all(&packed[..]).map_err(|e| format!("{}: {e}", path.display()))?;
    String::from_utf8(raw).map_err(|e| format!("{}: {e}", path.display()))
}

/// Removes uploads no job row refers to (older than `grace`) and vacuums a database that is
/// mostly free pages. Returns (files removed, vacuumed).
pub fn sweep(cfg: &ServerConfig, db: &dyn JobStore, grace: Duration) -> (usize, bool) {
    let referenced: std::collections::HashSet<String> = db
        .referenced_uploads()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|s| s.strip_prefix(MARKER).map(str::to_string))
        .collect();
    let mut removed = 0;
    if let Ok(rd) = std::fs::read_dir(dir(cfg)) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let sha = name.trim_end_matches(".zst").trim_start_matches('.');
            let sha = sha.split('.').next().unwrap_or("");
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age >= grace);
            if old && !referenced.contains(sha) && std::fs::remove_file(e.path()).is_ok() {
                removed += 1;
            }
        }
    }
    let vacuumed = db.vacuum_if_sparse().unwrap_or(false);
    (removed, vacuumed)
}

/// Runs [`sweep`] at start and every janitor interval until `stop`.
pub async fn upkeep(cfg: std::sync::Arc<ServerConfig>, db: Store, mut stop: watch::Receiver<bool>) {
    loop {
        let (c, d) = (std::sync::Arc::clone(&cfg), db.clone());
        if let Ok((removed, vacuumed)) =
            tokio::task::spawn_blocking(move || sweep(&c, &*d, GRACE)).await
        {
            if removed > 0 || vacuumed {
                tracing::info!(removed, vacuumed, "uploads swept");
            }
        }
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(cfg.janitor_interval) => {}
        }
        if *stop.borrow() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;

    fn job(status_text: Option<String>) -> crate::model::JobRequest {
        crate::model::JobRequest {
            distro: "debian-12".into(),
            arch: "amd64".into(),
            packages: vec!["hello".into()],
            recommends: true,
            baseline: crate::model::BaselineKind::Status,
            status_text,
            format: crate::model::BundleFormat::TarGz,
            mode: crate::model::JobMode::Install,
            security_only: false,
            hosts: Vec::new(),
            plan: None,
        }
    }

    #[test]
    fn uploads_are_shared_swept_and_the_database_vacuumed() {
        let tmp = tempfile::tempdir().expect("tmp");
        let cfg = ServerConfig::new(tmp.path());
        cfg.create_dirs().expect("dirs");
        let db = Db::open(&cfg.db_path()).expect("db");
        let text = "Package: bash\nStatus: install ok installed\nVersion: 5\n\n".repeat(20_000);
        let r1 = store(&cfg, &text).expect("store");
        let r2 = store(&cfg, &text).expect("store again");
        assert_eq!(r1, r2);
        assert!(r1.starts_with(MARKER));
        assert_eq!(std::fs::read_dir(dir(&cfg)).expect("dir").count(), 1);
        assert_eq!(load(&cfg, &r1).expect("load"), text);
        assert_eq!(load(&cfg, "Package: x\n").expect("old row"), "Package: x\n");
        assert!(load(&cfg, &format!("{MARKER}../../etc")).is_err());
        db.with(|c| crate::db::insert(c, "j1", &job(Some(r1.clone()))))
            .expect("insert");
        // referenced: kept
        assert_eq!(sweep(&cfg, &db, Duration::ZERO).0, 0);
        assert!(load(&cfg, &r1).is_ok());
        // the job is finished: its upload goes
        db.with(|c| c.execute("UPDATE jobs SET status_text = NULL", []))
            .expect("update");
        assert_eq!(sweep(&cfg, &db, Duration::ZERO).0, 1);
        assert!(load(&cfg, &r1).is_err());
        // rows of before (the text inline), deleted: the file shrinks again
        for i in 0..40 {
            db.with(|c| crate::db::insert(c, &format!("k{i}"), &job(Some(text.clone()))))
                .expect("insert");
        }
        let big = std::fs::metadata(cfg.db_path()).expect("db").len()
            + std::fs::metadata(tmp.path().join("jobs.sqlite-wal"))
                .map(|m| m.len())
                .unwrap_or(0);
        db.with(|c| c.execute("DELETE FROM jobs", []))
            .expect("delete");
        let (_, vacuumed) = sweep(&cfg, &db, Duration::ZERO);
        assert!(vacuumed);
        db.with(|c| c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)"))
            .expect("checkpoint");
        let small = std::fs::metadata(cfg.db_path()).expect("db").len();
        assert!(small * 10 < big, "{small} of {big} bytes");
        assert!(
            !sweep(&cfg, &db, Duration::ZERO).1,
            "nothing left to vacuum"
        );
    }
}
