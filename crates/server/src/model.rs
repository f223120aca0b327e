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

/// What the target already has, as a job records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BaselineKind {
    /// What a minbase image of the release has (the default).
    Minimal,
    /// Nothing: the full closure.
    None,
    /// An uploaded dpkg status file (kept with the job, not shown).
    Status,
}

impl BaselineKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BaselineKind::Minimal => "minimal",
            BaselineKind::None => "none",
            BaselineKind::Status => "status",
        }
    }
    pub fn parse(s: &str) -> Option<BaselineKind> {
        [
            BaselineKind::Minimal,
            BaselineKind::None,
            BaselineKind::Status,
        ]
        .into_iter()
        .find(|b| b.as_str() == s)
    }
    /// The engine's baseline; `status_text` is the uploaded file of a `Status` baseline (without
    /// it, the default).
    pub fn engine(self, status_text: Option<&str>) -> opaas_engine::Baseline {
        match (self, status_text) {
            (BaselineKind::None, _) => opaas_engine::Baseline::None,
            (BaselineKind::Status, Some(t)) => opaas_engine::Baseline::StatusText(t.to_string()),
            _ => opaas_engine::Baseline::Minimal,
        }
    }
}

/// What a job does: install packages (the default), or upgrade collected hosts (issue 10:
/// patch bundles) as `apt-get upgrade` or `apt-get dist-upgrade`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobMode {
    Install,
    Upgrade,
    FullUpgrade,
    /// `opaas build --locked`: the lockfile's exact packages, nothing resolved.
    Locked,
}

impl JobMode {
    pub fn as_str(self) -> &'static str {
        match self {
            JobMode::Install => "install",
            JobMode::Upgrade => "upgrade",
            JobMode::FullUpgrade => "full-upgrade",
            JobMode::Locked => "locked",
        }
    }
    pub fn parse(s: &str) -> Option<JobMode> {
        [
            JobMode::Install,
            JobMode::Upgrade,
            JobMode::FullUpgrade,
            JobMode::Locked,
        ]
        .into_iter()
        .find(|m| m.as_str() == s)
    }
    pub fn engine(self) -> Option<opaas_resolve::UpgradeMode> {
        match self {
            JobMode::Install | JobMode::Locked => None,
            JobMode::Upgrade => Some(opaas_resolve::UpgradeMode::Upgrade),
            JobMode::FullUpgrade => Some(opaas_resolve::UpgradeMode::FullUpgrade),
        }
    }
}

/// The bundle's archive format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BundleFormat {
    #[serde(rename = "tar.gz")]
    TarGz,
    #[serde(rename = "tar.zst")]
    TarZst,
}

impl BundleFormat {
    pub fn as_str(self) -> &'static str {
        self.bundle().ext()
    }
    pub fn parse(s: &str) -> Option<BundleFormat> {
        match s {
            "tar.gz" => Some(BundleFormat::TarGz),
            "tar.zst" => Some(BundleFormat::TarZst),
            _ => None,
        }
    }
    pub fn bundle(self) -> opaas_bundle::Format {
        match self {
            BundleFormat::TarGz => opaas_bundle::Format::TarGz,
            BundleFormat::TarZst => opaas_bundle::Format::TarZst,
        }
    }
}

/// A checked job request (`POST /api/resolve`, `POST /api/jobs`): what the handlers resolve and
/// what the database stores for a new job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRequest {
    /// The catalog id (a codename given is turned into the id).
    pub distro: String,
    pub arch: String,
    pub packages: Vec<String>,
    pub recommends: bool,
    pub baseline: BaselineKind,
    /// The uploaded dpkg status file of a `Status` baseline; in upgrade modes, the collected
    /// files as a JSON list of strings.
    pub status_text: Option<String>,
    pub format: BundleFormat,
    pub mode: JobMode,
    /// Upgrade modes: only versions from the security pocket(s).
    pub security_only: bool,
    /// Upgrade modes: the collected hosts, in the order given.
    pub hosts: Vec<String>,
    /// Upgrade modes: each host's plan (`opaas_engine::plan::UpgradePlan`), once computed.
    pub plan: Option<serde_json::Value>,
}

impl JobRequest {
    pub fn engine_request(&self) -> opaas_engine::Request {
        opaas_engine::Request {
            distro: self.distro.clone(),
            arch: self.arch.clone(),
            packages: self.packages.clone(),
            recommends: self.recommends,
            baseline: self.baseline.engine(self.status_text.as_deref()),
            upgrade: self.mode.engine(),
            phased: Default::default(),
            security_only: self.security_only,
            host: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub phase: String,
    pub packages_done: u64,
    pub packages_total: u64,
    pub bytes_done: u64,
    pub bytes_total: u64,
    /// While packing: bytes of `.deb` files written into the bundle, and in all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packed_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pack_total_bytes: Option<u64>,
    /// While resolving: package list files fetched (or found current), and their bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_files: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_bytes: Option<u64>,
}

impl Progress {
    pub fn queued() -> Progress {
        Progress {
            phase: "queued".into(),
            packages_done: 0,
            packages_total: 0,
            bytes_done: 0,
            bytes_total: 0,
            packed_bytes: None,
            pack_total_bytes: None,
            index_files: None,
            index_bytes: None,
        }
    }
}

/// Why a job failed: the API's error code and message and, as in error bodies, the request
/// entry (`index` into `packages`) and the package it is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobError {
    pub code: String,
    pub message: String,
    pub index: Option<u32>,
    pub package: Option<String>,
}

impl JobError {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> JobError {
        JobError {
            code: code.into(),
            message: message.into(),
            index: None,
            package: None,
        }
    }
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
    pub baseline: BaselineKind,
    pub format: BundleFormat,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub progress: Progress,
    pub error: Option<JobError>,
    pub bundle: Option<BundleInfo>,
    /// `install`, or `upgrade` / `full-upgrade` of collected hosts (a patch bundle).
    pub mode: JobMode,
    pub security_only: bool,
    /// Upgrade jobs: the hosts the bundle is for.
    pub hosts: Vec<String>,
    /// Upgrade jobs: `{"hosts": [plan, …]}`, each host's plan (security first); omitted in
    /// job lists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<serde_json::Value>,
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
        for b in ["minimal", "none", "status"] {
            let k = BaselineKind::parse(b).expect(b);
            assert_eq!(k.as_str(), b);
            assert_eq!(serde_json::to_value(k).expect("json"), b);
        }
        assert_eq!(BaselineKind::parse("full"), None);
        for f in ["tar.gz", "tar.zst"] {
            let k = BundleFormat::parse(f).expect(f);
            assert_eq!((k.as_str(), k.bundle().ext()), (f, f));
            assert_eq!(serde_json::to_value(k).expect("json"), f);
        }
        assert_eq!(BundleFormat::parse("zip"), None);
    }
}
