//! The API's documents (docs/API.md): `Job` and its parts.

use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A job's life: queued → resolving → downloading → packing → done | failed | cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Queued,
    Resolving,
    Downloading,
    Packing,
    Done,
    Failed,
    Cancelled,
}

impl State {
    pub const ALL: [State; 7] = [
        State::Queued,
        State::Resolving,
        State::Downloading,
        State::Packing,
        State::Done,
        State::Failed,
        State::Cancelled,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            State::Queued => "queued",
            State::Resolving => "resolving",
            State::Downloading => "downloading",
            State::Packing => "packing",
            State::Done => "done",
            State::Failed => "failed",
            State::Cancelled => "cancelled",
        }
    }
    pub fn parse(s: &str) -> Option<State> {
        State::ALL.into_iter().find(|x| x.as_str() == s)
    }
    /// Done, failed or cancelled.
    pub fn is_terminal(self) -> bool {
        matches!(self, State::Done | State::Failed | State::Cancelled)
    }
    /// Resolving, downloading or packing.
    pub fn is_running(self) -> bool {
        matches!(self, State::Resolving | State::Downloading | State::Packing)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub phase: String,
    pub packages_done: u64,
    pub packages_total: u64,
    pub bytes_done: u64,
    pub bytes_total: u64,
}

impl Progress {
    pub fn queued() -> Progress {
        Progress {
            phase: "queued".into(),
            packages_done: 0,
            packages_total: 0,
            bytes_done: 0,
            bytes_total: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobError {
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BundleInfo {
    pub file_name: String,
    pub size: u64,
    pub sha256: String,
    pub package_count: u64,
    pub expires_at: String,
    /// The tarball was removed after `expires_at` (the job and its manifest stay).
    pub expired: bool,
}

/// A job as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Job {
    pub id: String,
    pub state: State,
    pub distro: String,
    pub arch: String,
    pub packages: Vec<String>,
    pub recommends: bool,
    /// `minimal`, `none`, or `status` (an uploaded dpkg status file, not repeated here).
    pub baseline: String,
    pub format: String,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub progress: Progress,
    pub error: Option<JobError>,
    pub bundle: Option<BundleInfo>,
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// RFC 3339 UTC, second precision.
pub fn rfc3339(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    opaas_repo::release::format_rfc3339(t)
}

/// A new job id: 128 random bits from the OS in hex. Should the OS have no randomness to give
/// (never seen on Linux), the clock, the process and a counter, hashed, still give unique ids.
pub fn new_id() -> String {
    let mut b = [0u8; 16];
    if getrandom::getrandom(&mut b).is_err() {
        use sha2::Digest;
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let h = sha2::Sha256::new()
            .chain_update(nanos.to_le_bytes())
            .chain_update(std::process::id().to_le_bytes())
            .chain_update(n.to_le_bytes())
            .finalize();
        b.copy_from_slice(&h[..16]);
    }
    hex::encode(b)
}

/// Whether `s` can be a job id (32 lowercase hex digits); anything else is a 404 without a
/// database look-up, and never becomes part of a path.
pub fn valid_id(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_times() {
        let id = new_id();
        assert!(valid_id(&id), "{id}");
        assert!(!valid_id("../etc/passwd"));
        assert!(!valid_id(&id.to_uppercase()));
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(State::parse("packing"), Some(State::Packing));
        assert!(State::Cancelled.is_terminal() && !State::Queued.is_terminal());
    }
}
