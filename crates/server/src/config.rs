//! The service's configuration (filled by `opaas serve`'s flags) and the parsers of its size
//! and duration values.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Everything `opaas serve` can be told.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// `jobs.sqlite`, `bundles/`, `cache/`, `logs/`, `jobs/<id>.log`, `tmp/`.
    pub data_dir: PathBuf,
    /// Builds running at the same time.
    pub workers: usize,
    /// How to reach repositories (mirrors, keyrings, config file). `cache_dir` is always
    /// replaced by `<data_dir>/cache`.
    pub settings: opaas_engine::Settings,
    /// Package requests per job or preview.
    pub max_packages: usize,
    /// Largest request body (an uploaded dpkg status file is the only large thing in one).
    pub max_body_bytes: usize,
    /// A finished bundle is kept this long, then its tarball is removed (the job stays).
    pub bundle_ttl: Duration,
    /// Size cap of the .deb cache (`<data_dir>/cache/debs-v1`); `None`: unbounded.
    pub cache_max_bytes: Option<u64>,
    /// New jobs are refused (507) while the data directory's file system has less free space.
    pub min_free_bytes: u64,
    /// When set, every `/api` call needs `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// `/metrics` without the token even when one is set (`--metrics-public`).
    pub metrics_public: bool,
    /// Longest time for an ordinary API call (not the event stream or a bundle download).
    pub request_timeout: Duration,
    /// How often the janitor runs (expiry, cache cap, orphans, log pruning).
    pub janitor_interval: Duration,
    /// Daily service log files kept in `<data_dir>/logs`.
    pub log_keep: usize,
    /// Indices older than this are refreshed (`update`) before a build uses them.
    pub index_max_age: Duration,
    /// Parallel downloads inside one build.
    pub download_jobs: usize,
    /// A running build gets this long to stop at shutdown before it is left for recovery.
    pub shutdown_grace: Duration,
    /// Host/Origin checks, per-client limits, connection limits (issue 16).
    pub hardening: crate::guard::Hardening,
    /// The job database: None → SQLite in `<data_dir>/jobs.sqlite`; `postgres://…` → a
    /// PostgreSQL database several replicas share (`--database`, `OPAAS_DATABASE_URL`).
    pub database_url: Option<String>,
    /// Where bundles are kept: None → `<data_dir>/bundles`; `s3://bucket/prefix` → an
    /// S3-compatible bucket (`--storage`, `OPAAS_STORAGE`).
    pub storage_url: Option<String>,
    /// A shared store's job lease: a replica that has not renewed it for this long is taken
    /// to be dead and its job is taken over (`--lease`, `OPAAS_LEASE`).
    pub lease: Duration,
    /// S3: downloads answered by a redirect to a presigned URL instead of through the replica.
    pub presign_downloads: bool,
}

impl ServerConfig {
    /// The defaults of `opaas serve`, with the given data directory.
    pub fn new(data_dir: impl Into<PathBuf>) -> ServerConfig {
        ServerConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 8000)),
            data_dir: data_dir.into(),
            workers: 2,
            settings: opaas_engine::Settings::default(),
            max_packages: 200,
            max_body_bytes: 8 << 20,
            bundle_ttl: Duration::from_secs(7 * 86400),
            cache_max_bytes: None,
            min_free_bytes: 1 << 30,
            token: None,
            metrics_public: false,
            request_timeout: Duration::from_secs(120),
            janitor_interval: Duration::from_secs(300),
            log_keep: 14,
            index_max_age: Duration::from_secs(3600),
            download_jobs: 8,
            shutdown_grace: Duration::from_secs(10),
            hardening: crate::guard::Hardening::default(),
            database_url: None,
            storage_url: None,
            lease: Duration::from_secs(30),
            presign_downloads: false,
        }
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("jobs.sqlite")
    }
    pub fn bundles_dir(&self) -> PathBuf {
        self.data_dir.join("bundles")
    }
    pub fn cache_dir(&self) -> PathBuf {
        self.data_dir.join("cache")
    }
    pub fn logs_dir(&self) -> PathBuf {
        self.data_dir.join("logs")
    }
    pub fn job_logs_dir(&self) -> PathBuf {
        self.data_dir.join("jobs")
    }
    pub fn tmp_dir(&self) -> PathBuf {
        self.data_dir.join("tmp")
    }
    /// The engine settings with the service's cache directory.
    pub fn engine_settings(&self) -> opaas_engine::Settings {
        let mut s = self.settings.clone();
        s.cache_dir = Some(self.cache_dir());
        s.offline = false;
        s.jobs = self.download_jobs.max(1);
        s
    }
    /// Creates the data directory's layout.
    pub fn create_dirs(&self) -> std::io::Result<()> {
        for d in [
            self.data_dir.clone(),
            self.bundles_dir(),
            self.cache_dir(),
            self.logs_dir(),
            self.job_logs_dir(),
            self.tmp_dir(),
        ] {
            std::fs::create_dir_all(&d)
                .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", d.display())))?;
        }
        Ok(())
    }
}

/// `1073741824`, `512K`, `100M`, `1G`, `2T`, `1.5G`, `10GiB`, `10GB`: parsed by `bytesize`,
/// with every unit read as a binary multiple (as documented for the flags: `1G` = 2^30 bytes).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let num_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(num_end);
    let iec = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => "B",
        "k" | "kb" | "kib" => "KiB",
        "m" | "mb" | "mib" => "MiB",
        "g" | "gb" | "gib" => "GiB",
        "t" | "tb" | "tib" => "TiB",
        _ => return Err(format!("'{s}': unknown size unit (use K, M, G or T)")),
    };
    if num.is_empty() {
        return Err(format!("'{s}' is not a size (e.g. 1073741824, 512M, 10G)"));
    }
    format!("{num} {iec}")
        .parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|_| format!("'{s}' is not a size (e.g. 1073741824, 512M, 10G)"))
}

/// A humantime duration (`90s`, `15m`, `12h`, `7d`, `1w`, `1h 30m`); a bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| format!("'{s}' is out of range"));
    }
    // humantime's months and years are averages (30.44 and 365.25 days): not for retention
    if t.split(|c: char| !c.is_ascii_alphabetic())
        .any(|u| matches!(u, "y" | "year" | "years" | "M" | "month" | "months"))
    {
        return Err(format!(
            "'{s}': use s, m, h, d or w (months and years have no fixed length)"
        ));
    }
    humantime::parse_duration(t)
        .map_err(|e| format!("'{s}' is not a duration (e.g. 90s, 15m, 12h, 7d): {e}"))
}

/// Why no token could be read from a token file.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("cannot read the token file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the token file {path} is empty")]
    Empty { path: PathBuf },
    /// `--token`/`OPAAS_TOKEN` was given but holds only white space: starting would leave the API
    /// open while the operator believes it is protected.
    #[error("the token given with --token / OPAAS_TOKEN is empty or only white space; set a real token, or unset it to run without one")]
    Blank,
}

/// The token from `--token`/`OPAAS_TOKEN`, else from a file (first line, trimmed).
pub fn load_token(given: Option<&str>, file: Option<&Path>) -> Result<Option<String>, TokenError> {
    if let Some(t) = given.map(str::trim) {
        if t.is_empty() {
            return Err(TokenError::Blank);
        }
        return Ok(Some(t.to_string()));
    }
    if let Some(f) = file {
        let text = std::fs::read_to_string(f).map_err(|source| TokenError::Read {
            path: f.to_path_buf(),
            source,
        })?;
        let t = text.lines().next().unwrap_or("").trim().to_string();
        if t.is_empty() {
            return Err(TokenError::Empty {
                path: f.to_path_buf(),
            });
        }
        return Ok(Some(t));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("512 MiB"), Ok(512 << 20));
        assert_eq!(parse_size("1.5k"), Ok(1536));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("1Q").is_err());
        assert!(parse_size("G").is_err());
        assert_eq!(parse_size("10GB"), Ok(10 << 30));
    }

    #[test]
    fn blank_tokens_are_refused() {
        assert!(matches!(
            load_token(Some("   "), None),
            Err(TokenError::Blank)
        ));
        assert!(matches!(load_token(Some(""), None), Err(TokenError::Blank)));
        assert_eq!(
            load_token(Some(" s3cret \n"), None)
                .ok()
                .flatten()
                .as_deref(),
            Some("s3cret")
        );
        assert_eq!(load_token(None, None).ok().flatten(), None);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86400)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert!(parse_duration("soon").is_err());
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1w"), Ok(Duration::from_secs(7 * 86400)));
        assert_eq!(parse_duration("2days"), Ok(Duration::from_secs(2 * 86400)));
        assert!(parse_duration("1y").is_err());
        assert!(parse_duration("1M").is_err());
        assert!(parse_duration("1q").is_err());
        assert!(parse_duration("").is_err());
    }
}
