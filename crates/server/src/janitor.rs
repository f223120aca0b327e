//! Retention, run periodically (and once at start):
//! * bundles past their TTL: the tarball is removed, the job and its manifest stay (the bundle
//!   endpoint answers 410);
//! * the .deb cache over `--cache-max-bytes`: least recently used files go first (by the later
//!   of atime and mtime; a finished build touches the files it used); interrupted `.part`
//!   downloads older than a day go too. Eviction holds the build lock exclusively, so no build
//!   loses a file between its download and its packing;
//! * orphans: bundle directories and job logs whose job is gone;
//! * service logs: only the newest `--log-keep` daily files stay;
//! * free disk space, for `/metrics` (submissions check it themselves).

use crate::config::ServerConfig;
use crate::db;
use crate::files::remove_any;
use crate::metrics::Metrics;
use crate::model::now_ms;
use crate::store::Store;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

/// Free bytes for an unprivileged user on the file system holding `path`.
pub fn disk_free(path: &Path) -> io::Result<u64> {
    let s = rustix::fs::statvfs(path).map_err(io::Error::from)?;
    Ok(s.f_bavail.saturating_mul(s.f_frsize))
}

/// What one eviction pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Eviction {
    pub files: u64,
    pub bytes: u64,
    /// The cache's size afterwards.
    pub total: u64,
}

/// Brings `<cache_dir>/debs-v1` under `max` bytes, least recently used first. Must not run
/// while a build runs (the caller holds the build lock exclusively).
pub fn evict_cache(cache_dir: &Path, max: Option<u64>) -> io::Result<Eviction> {
    let root = opaas_fetch::Cas::new(cache_dir).root().to_path_buf();
    let mut debs: Vec<(SystemTime, u64, std::path::PathBuf)> = Vec::new();
    let mut total = 0u64;
    let mut out = Eviction::default();
    let shards = match std::fs::read_dir(&root) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    let day_ago = SystemTime::now()
        .checked_sub(Duration::from_secs(86400))
        .unwrap_or(SystemTime::UNIX_EPOCH);
    for shard in shards.flatten() {
        if !shard.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let Ok(files) = std::fs::read_dir(shard.path()) else {
            continue;
        };
        for f in files.flatten() {
            let Ok(m) = f.metadata() else { continue };
            if !m.is_file() {
                continue;
            }
            let p = f.path();
            let used = m
                .modified()
                .unwrap_or(SystemTime::UNIX_EPOCH)
                .max(m.accessed().unwrap_or(SystemTime::UNIX_EPOCH));
            match p.extension().and_then(|e| e.to_str()) {
                Some("deb") => {
                    total += m.len();
                    debs.push((used, m.len(), p));
                }
                Some("part") if used < day_ago => {
                    if std::fs::remove_file(&p).is_ok() {
                        out.files += 1;
                        out.bytes += m.len();
                    }
                }
                _ => total += m.len(),
            }
        }
    }
    if let Some(max) = max {
        if total > max {
            debs.sort();
            for (_, size, p) in debs {
                if total <= max {
                    break;
                }
                match std::fs::remove_file(&p) {
                    Ok(()) => {
                        total -= size;
                        out.files += 1;
                        out.bytes += size;
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => total -= size,
                    Err(e) => tracing::warn!(path = %p.display(), "cannot evict: {e}"),
                }
            }
        }
    }
    out.total = total;
    Ok(out)
}

/// Keeps the newest `keep` service log files (`opaas.YYYY-MM-DD.log`) in `dir`; returns how
/// many were removed.
pub fn prune_logs(dir: &Path, keep: usize) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut logs: Vec<String> = rd
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with("opaas.") && n.ends_with(".log"))
        .collect();
    logs.sort();
    let excess = logs.len().saturating_sub(keep.max(1));
    let mut removed = 0;
    for n in logs.into_iter().take(excess) {
        if std::fs::remove_file(dir.join(&n)).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Everything the janitor needs.
pub struct Janitor {
    pub cfg: Arc<ServerConfig>,
    pub db: Store,
    pub bundles: crate::bundles::Bundles,
    pub metrics: Arc<Metrics>,
    pub build_lock: Arc<tokio::sync::RwLock<()>>,
}

fn older_than(m: &std::fs::Metadata, age: Duration) -> bool {
    m.modified()
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|e| e > age)
}

impl Janitor {
    /// One pass of everything.
    pub async fn run_once(&self) {
        if let Err(e) = self.expire().await {
            tracing::warn!("janitor: bundle expiry failed: {e}");
        }
        self.evict().await;
        let cfg = Arc::clone(&self.cfg);
        let db = self.db.clone();
        let bundles = Arc::clone(&self.bundles);
        let metrics = Arc::clone(&self.metrics);
        let _ = tokio::task::spawn_blocking(move || {
            if let Err(e) = sweep_orphans(&cfg, &db, &*bundles) {
                tracing::warn!("janitor: orphan sweep failed: {e}");
            }
            let n = prune_logs(&cfg.logs_dir(), cfg.log_keep);
            if n > 0 {
                tracing::info!(removed = n, "janitor: pruned old service logs");
            }
            if let Ok(free) = disk_free(&cfg.data_dir) {
                metrics
                    .disk_free_bytes
                    .store(free, std::sync::atomic::Ordering::Relaxed);
            }
        })
        .await;
    }

    /// Removes the tarballs of bundles past their TTL.
    pub async fn expire(&self) -> Result<usize, db::DbError> {
        let now = now_ms();
        let due = self.db.run(move |s| s.expired_bundles(now)).await?;
        let n = due.len();
        for (id, file) in due {
            if crate::files::safe_file_name(&file).is_some() {
                let (bundles, id2, file2) = (Arc::clone(&self.bundles), id.clone(), file.clone());
                let removed =
                    tokio::task::spawn_blocking(move || bundles.remove_file(&id2, &file2))
                        .await
                        .unwrap_or_else(|e| Err(crate::bundles::BundleError::Store(e.to_string())));
                if let Err(e) = removed {
                    tracing::warn!(job = %id, "cannot remove the expired bundle: {e}");
                    continue;
                }
            }
            let id2 = id.clone();
            self.db.run(move |s| s.mark_expired(&id2)).await?;
            Metrics::add(&self.metrics.bundles_expired, 1);
            tracing::info!(job = %id, file = %file, "bundle expired and removed");
        }
        Ok(n)
    }

    /// Applies the cache cap (waits for running builds to finish; new ones wait for it).
    pub async fn evict(&self) -> Eviction {
        let _g = self.build_lock.write().await;
        let dir = self.cfg.cache_dir();
        let max = self.cfg.cache_max_bytes;
        let r = tokio::task::spawn_blocking(move || evict_cache(&dir, max)).await;
        match r {
            Ok(Ok(ev)) => {
                self.metrics
                    .cache_bytes
                    .store(ev.total, std::sync::atomic::Ordering::Relaxed);
                if ev.files > 0 {
                    Metrics::add(&self.metrics.cache_evicted_files, ev.files);
                    Metrics::add(&self.metrics.cache_evicted_bytes, ev.bytes);
                    tracing::info!(
                        files = ev.files,
                        bytes = ev.bytes,
                        total = ev.total,
                        "janitor: evicted from the .deb cache"
                    );
                }
                ev
            }
            Ok(Err(e)) => {
                tracing::warn!("janitor: cache eviction failed: {e}");
                Eviction::default()
            }
            Err(e) => {
                tracing::warn!("janitor: cache eviction task failed: {e}");
                Eviction::default()
            }
        }
    }

    /// Runs every `janitor_interval` until `stop`.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            self.run_once().await;
            tokio::select! {
                _ = tokio::time::sleep(self.cfg.janitor_interval) => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                break;
            }
        }
    }
}

/// Bundle directories and job logs without a job (older than ten minutes, so that a job
/// being submitted right now is not touched).
fn sweep_orphans(
    cfg: &ServerConfig,
    db: &Store,
    bundles: &dyn crate::bundles::BundleStore,
) -> Result<(), db::DbError> {
    let ids = db.all_ids()?;
    let grace = Duration::from_secs(600);
    if let Ok(entries) = bundles.entries() {
        for (id, modified) in entries {
            let old = modified.elapsed().is_ok_and(|e| e > grace);
            if !ids.contains(&id) && old {
                let _ = bundles.remove(&id);
            }
        }
    }
    if let Ok(rd) = std::fs::read_dir(cfg.job_logs_dir()) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let id = name.strip_suffix(".log").unwrap_or(&name);
            if !ids.contains(id) && e.metadata().is_ok_and(|m| older_than(&m, grace)) {
                let _ = remove_any(&e.path());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(root: &Path, sha: &str, size: usize, age_s: u64) -> std::path::PathBuf {
        let cas = opaas_fetch::Cas::new(root);
        let p = cas.path(sha);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, vec![0u8; size]).expect("write");
        let t = SystemTime::now() - Duration::from_secs(age_s);
        let f = std::fs::File::options().write(true).open(&p).expect("open");
        f.set_times(std::fs::FileTimes::new().set_accessed(t).set_modified(t))
            .expect("times");
        p
    }

    #[test]
    fn evicts_least_recently_used_first() {
        let d = tempfile::tempdir().expect("tmp");
        let old = put(d.path(), &"a".repeat(64), 1000, 3000);
        let mid = put(d.path(), &"b".repeat(64), 1000, 2000);
        let new = put(d.path(), &"c".repeat(64), 1000, 10);
        // nothing over the cap: nothing removed
        let ev = evict_cache(d.path(), Some(5000)).expect("evict");
        assert_eq!((ev.files, ev.total), (0, 3000));
        // touching the oldest makes it the newest
        let used = opaas_engine::PackageInfo {
            arch: "amd64".into(),
            filename: "a.deb".into(),
            installed_size_kb: 1,
            name: "a".into(),
            pocket: "bookworm/main".into(),
            sha256: "a".repeat(64),
            size: 1000,
            upgrade_from: None,
            version: "1".into(),
            why: "requested".into(),
        };
        let odd = opaas_engine::PackageInfo {
            sha256: "../../etc".into(),
            ..used.clone()
        };
        assert_eq!(crate::files::touch_debs(d.path(), &[used, odd]), 1);
        let ev = evict_cache(d.path(), Some(1500)).expect("evict");
        assert_eq!((ev.files, ev.bytes, ev.total), (2, 2000, 1000));
        assert!(old.exists(), "the touched file stays");
        assert!(!mid.exists() && !new.exists());
        assert_eq!(evict_cache(d.path(), None).expect("no cap").total, 1000);
    }

    #[test]
    fn prunes_old_logs() {
        let d = tempfile::tempdir().expect("tmp");
        for day in 1..=20 {
            std::fs::write(d.path().join(format!("opaas.2026-01-{day:02}.log")), b"x")
                .expect("write");
        }
        std::fs::write(d.path().join("other.txt"), b"x").expect("write");
        assert_eq!(prune_logs(d.path(), 14), 6);
        assert!(!d.path().join("opaas.2026-01-06.log").exists());
        assert!(d.path().join("opaas.2026-01-07.log").exists());
        assert!(d.path().join("other.txt").exists());
        assert!(disk_free(d.path()).expect("statvfs") > 0);
    }
}
