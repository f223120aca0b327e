//! `GET /metrics`: Prometheus text format. Job counts by state come from the database at scrape
//! time; the counters and the duration histogram count since this process started.

use crate::model::State;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Upper bounds (seconds) of the job duration histogram.
const BUCKETS: [f64; 12] = [
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
pub struct Metrics {
    /// Per outcome (done, failed, cancelled).
    durations: Mutex<Vec<(String, Histogram)>>,
    pub downloaded_bytes: AtomicU64,
    pub downloads: AtomicU64,
    pub cache_hits: AtomicU64,
    pub bundles_written_bytes: AtomicU64,
    /// Jobs that shared an identical finished bundle instead of packing one.
    pub bundles_reused: AtomicU64,
    pub jobs_submitted: AtomicU64,
    pub jobs_rejected: AtomicU64,
    pub jobs_recovered: AtomicU64,
    pub bundles_expired: AtomicU64,
    pub cache_evicted_files: AtomicU64,
    pub cache_evicted_bytes: AtomicU64,
    /// Mirror failures: index refreshes and builds that could not reach or trust a mirror, or
    /// found none configured.
    pub mirror_errors: AtomicU64,
    /// HTTP answers by status class (1xx … 5xx).
    pub http_responses: [AtomicU64; 5],
    /// The .deb cache: measured by the janitor, plus what builds downloaded since.
    pub cache_bytes: AtomicU64,
    /// Refreshed by the janitor.
    pub disk_free_bytes: AtomicU64,
}

impl Metrics {
    pub fn observe_job(&self, outcome: State, seconds: f64) {
        let mut d = self.durations.lock().unwrap_or_else(|e| e.into_inner());
        let label = outcome.as_str().to_string();
        let h = match d.iter().position(|(l, _)| *l == label) {
            Some(i) => &mut d[i].1,
            None => {
                d.push((label, Histogram::default()));
                let last = d.len() - 1;
                &mut d[last].1
            }
        };
        for (i, b) in BUCKETS.iter().enumerate() {
            if seconds <= *b {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += seconds;
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts one HTTP answer with status `code`.
    pub fn http_response(&self, code: u16) {
        if let Some(c) = self
            .http_responses
            .get(usize::from(code / 100).wrapping_sub(1))
        {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The exposition text; `by_state` from the database.
    pub fn render(&self, by_state: &[(State, u64)], workers: usize, running: usize) -> String {
        let mut s = String::new();
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let _ = writeln!(
            s,
            "# HELP opaas_build_info The running version.\n# TYPE opaas_build_info gauge\nopaas_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        let _ = writeln!(
            s,
            "# HELP opaas_jobs Jobs in the database by state.\n# TYPE opaas_jobs gauge"
        );
        for (st, n) in by_state {
            let _ = writeln!(s, "opaas_jobs{{state=\"{}\"}} {n}", st.as_str());
        }
        let _ = writeln!(
            s,
            "# HELP opaas_workers Build workers.\n# TYPE opaas_workers gauge\nopaas_workers {workers}\n# HELP opaas_workers_busy Workers running a build.\n# TYPE opaas_workers_busy gauge\nopaas_workers_busy {running}"
        );
        let _ = writeln!(
            s,
            "# HELP opaas_job_duration_seconds Time from a job's start to its end, by outcome.\n# TYPE opaas_job_duration_seconds histogram"
        );
        {
            let d = self.durations.lock().unwrap_or_else(|e| e.into_inner());
            for (label, h) in d.iter() {
                for (i, b) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        s,
                        "opaas_job_duration_seconds_bucket{{outcome=\"{label}\",le=\"{b}\"}} {}",
                        h.counts[i]
                    );
                }
                let _ = writeln!(
                    s,
                    "opaas_job_duration_seconds_bucket{{outcome=\"{label}\",le=\"+Inf\"}} {}\nopaas_job_duration_seconds_sum{{outcome=\"{label}\"}} {}\nopaas_job_duration_seconds_count{{outcome=\"{label}\"}} {}",
                    h.count, h.sum, h.count
                );
            }
        }
        let counters: [(&str, &str, &AtomicU64); 11] = [
            (
                "opaas_downloaded_bytes_total",
                "Bytes of .debs downloaded from mirrors.",
                &self.downloaded_bytes,
            ),
            (
                "opaas_downloads_total",
                ".deb files downloaded from mirrors.",
                &self.downloads,
            ),
            (
                "opaas_cache_hits_total",
                ".deb files found in the shared cache.",
                &self.cache_hits,
            ),
            (
                "opaas_bundle_bytes_total",
                "Bytes of bundles written.",
                &self.bundles_written_bytes,
            ),
            (
                "opaas_bundles_reused_total",
                "Jobs that shared the file of an identical finished bundle (nothing downloaded or packed).",
                &self.bundles_reused,
            ),
            (
                "opaas_jobs_submitted_total",
                "Jobs accepted.",
                &self.jobs_submitted,
            ),
            (
                "opaas_jobs_rejected_total",
                "Job submissions refused (bad input, disk space).",
                &self.jobs_rejected,
            ),
            (
                "opaas_jobs_recovered_total",
                "Jobs found running at start (re-queued or failed).",
                &self.jobs_recovered,
            ),
            (
                "opaas_bundles_expired_total",
                "Bundle tarballs removed after their TTL.",
                &self.bundles_expired,
            ),
            (
                "opaas_cache_evicted_files_total",
                ".deb files evicted from the cache (size cap).",
                &self.cache_evicted_files,
            ),
            (
                "opaas_cache_evicted_bytes_total",
                "Bytes evicted from the cache (size cap).",
                &self.cache_evicted_bytes,
            ),
        ];
        for (name, help, c) in counters {
            let _ = writeln!(
                s,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                g(c)
            );
        }
        let _ = writeln!(
            s,
            "# HELP opaas_mirror_errors_total Index refreshes and builds that could not reach or trust a mirror, or found none configured.\n# TYPE opaas_mirror_errors_total counter\nopaas_mirror_errors_total {}",
            g(&self.mirror_errors)
        );
        let _ = writeln!(
            s,
            "# HELP opaas_http_responses_total HTTP answers by status class.\n# TYPE opaas_http_responses_total counter"
        );
        for (i, c) in self.http_responses.iter().enumerate() {
            let _ = writeln!(
                s,
                "opaas_http_responses_total{{class=\"{}xx\"}} {}",
                i + 1,
                g(c)
            );
        }
        let _ = writeln!(
            s,
            "# HELP opaas_cache_bytes Size of the .deb cache (measured at the last janitor run, plus what builds downloaded since).\n# TYPE opaas_cache_bytes gauge\nopaas_cache_bytes {}\n# HELP opaas_disk_free_bytes Free space of the data directory's file system.\n# TYPE opaas_disk_free_bytes gauge\nopaas_disk_free_bytes {}",
            g(&self.cache_bytes),
            g(&self.disk_free_bytes)
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition() {
        let m = Metrics::default();
        m.observe_job(State::Done, 3.0);
        m.observe_job(State::Done, 100.0);
        Metrics::add(&m.downloaded_bytes, 42);
        m.http_response(200);
        m.http_response(204);
        m.http_response(502);
        m.http_response(999);
        Metrics::add(&m.mirror_errors, 3);
        let t = m.render(&[(State::Done, 2), (State::Queued, 0)], 2, 1);
        assert!(t.contains("opaas_jobs{state=\"done\"} 2"), "{t}");
        assert!(t.contains("opaas_job_duration_seconds_bucket{outcome=\"done\",le=\"5\"} 1"));
        assert!(t.contains("opaas_job_duration_seconds_count{outcome=\"done\"} 2"));
        assert!(t.contains("opaas_downloaded_bytes_total 42"));
        assert!(
            t.contains("opaas_http_responses_total{class=\"2xx\"} 2"),
            "{t}"
        );
        assert!(
            t.contains("opaas_http_responses_total{class=\"5xx\"} 1"),
            "{t}"
        );
        assert!(t.contains("opaas_mirror_errors_total 3"), "{t}");
        for line in t.lines().filter(|l| !l.starts_with('#')) {
            let mut parts = line.rsplitn(2, ' ');
            let v = parts.next().unwrap_or("");
            assert!(v.parse::<f64>().is_ok(), "bad sample line {line}");
        }
    }
}
