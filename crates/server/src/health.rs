//! `/healthz` without waiting (issue 16: it answers within 100 ms under load). A probe reads
//! the job database on its reader connection every [`PERIOD`] (a blocking thread, at most
//! [`TIMEOUT`]); the endpoint answers at once, on the async thread, from the last result:
//! healthy while the last successful read is at most [`STALE`] old. So a 200 still means that
//! the runtime answers and the database was readable moments ago, and a database that stops
//! answering turns it into a 503 within [`STALE`].

use crate::store::Store;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::watch;

pub const PERIOD: Duration = Duration::from_millis(500);
pub const TIMEOUT: Duration = Duration::from_secs(1);
pub const STALE: Duration = Duration::from_secs(3);

#[derive(Default)]
pub struct Health {
    /// When the database last answered, and the last error since.
    state: Mutex<(Option<Instant>, Option<String>)>,
    /// A shared bundle store (a bucket) to check as well.
    pub bundles: Option<crate::bundles::Bundles>,
}

impl Health {
    /// A health state that also checks `bundles` (a shared bundle store).
    pub fn new(bundles: Option<crate::bundles::Bundles>) -> Health {
        Health {
            bundles,
            ..Default::default()
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Option<Instant>, Option<String>)> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads the database once and records the outcome.
    pub async fn probe(&self, db: &Store) {
        let r = db.read(TIMEOUT, |s| s.ping()).await;
        let r = match (r, &self.bundles) {
            // a bucket is checked too (the local directory is the data directory's)
            (Ok(()), Some(b)) => {
                let b = std::sync::Arc::clone(b);
                let t = tokio::task::spawn_blocking(move || b.ping());
                match tokio::time::timeout(TIMEOUT * 3, t).await {
                    Ok(Ok(Ok(()))) => Ok(()),
                    Ok(Ok(Err(e))) => Err(e.to_string()),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err("the bundle storage did not answer in time".to_string()),
                }
            }
            (r, _) => r.map_err(|e| e.to_string()),
        };
        let mut s = self.lock();
        match r {
            Ok(_) => *s = (Some(Instant::now()), None),
            Err(e) => s.1 = Some(e),
        }
    }

    /// Probes every [`PERIOD`] until `stop`.
    pub async fn run(&self, db: Store, mut stop: watch::Receiver<bool>) {
        loop {
            self.probe(&db).await;
            tokio::select! {
                _ = tokio::time::sleep(PERIOD) => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                break;
            }
        }
    }

    /// Ok, or why not (no successful read for more than [`STALE`], with the last error).
    pub fn status(&self) -> Result<(), String> {
        self.status_at(Instant::now())
    }

    fn status_at(&self, now: Instant) -> Result<(), String> {
        let s = self.lock();
        match s.0 {
            Some(t) if now.saturating_duration_since(t) <= STALE => Ok(()),
            Some(t) => Err(format!(
                "the job database{} has not answered for {:.1} s{}",
                if self.bundles.is_some() {
                    " or the bundle storage"
                } else {
                    ""
                },
                now.saturating_duration_since(t).as_secs_f64(),
                s.1.as_deref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            )),
            None => Err(format!(
                "the job database{} has not answered yet{}",
                if self.bundles.is_some() {
                    " or the bundle storage"
                } else {
                    ""
                },
                s.1.as_deref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn healthy_only_while_the_database_answered_recently() {
        let d = tempfile::tempdir().expect("tmp");
        let db = Store::new(crate::db::Db::open(&d.path().join("j.sqlite")).expect("open"));
        let h = Health::default();
        assert!(h.status().is_err(), "healthy before any probe");
        h.probe(&db).await;
        assert_eq!(h.status(), Ok(()));
        // no answer for longer than STALE: unhealthy, with the last error
        h.lock().1 = Some("database: disk I/O error".into());
        let later = Instant::now() + STALE + Duration::from_secs(1);
        let e = h.status_at(later).expect_err("stale");
        assert!(
            e.contains("has not answered for") && e.contains("disk I/O"),
            "{e}"
        );
    }
}
