//! `serve`: the HTTP service (crates/server). Only flags here; everything else is in
//! `opaas_server`.

use anyhow::Result;
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

fn size(s: &str) -> Result<u64, String> {
    opaas_server::parse_size(s)
}
fn duration(s: &str) -> Result<Duration, String> {
    opaas_server::parse_duration(s)
}

#[derive(Args, Clone, Debug)]
pub struct ServeArgs {
    /// Address to listen on
    #[arg(long, default_value = "0.0.0.0:8000", env = "OPAAS_LISTEN")]
    pub listen: SocketAddr,
    /// Data directory: jobs.sqlite, bundles/, cache/, logs/, jobs/
    #[arg(long, default_value = "./data", env = "OPAAS_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Builds running at the same time
    #[arg(long, default_value_t = 2, env = "OPAAS_WORKERS")]
    pub workers: usize,
    /// Parallel downloads inside one build
    #[arg(long, short = 'j', default_value_t = 8)]
    pub jobs: usize,
    #[command(flatten)]
    pub m: crate::common::MirrorArgs,
    /// API token: every /api call then needs `Authorization: Bearer <token>`
    #[arg(long, env = "OPAAS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Serve /metrics without the token even when one is set (default: it needs the token then)
    #[arg(long, env = "OPAAS_METRICS_PUBLIC")]
    pub metrics_public: bool,
    /// Read the API token from this file (first line)
    #[arg(long, env = "OPAAS_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Most package requests in one job or preview
    #[arg(long, default_value_t = 200)]
    pub max_packages: usize,
    /// Largest uploaded dpkg status file (e.g. 8M)
    #[arg(long, default_value = "8M", value_parser = size)]
    pub max_upload: u64,
    /// How long finished bundles are kept (e.g. 7d, 12h)
    #[arg(long, default_value = "7d", value_parser = duration, env = "OPAAS_BUNDLE_TTL")]
    pub bundle_ttl: Duration,
    /// Size cap of the shared .deb cache, least recently used evicted first (e.g. 20G);
    /// default: no cap
    #[arg(long, value_parser = size, env = "OPAAS_CACHE_MAX_BYTES")]
    pub cache_max_bytes: Option<u64>,
    /// Refuse new jobs while the data directory has less free space (e.g. 1G)
    #[arg(long, default_value = "1G", value_parser = size, env = "OPAAS_MIN_FREE_BYTES")]
    pub min_free_bytes: u64,
    /// Longest time for an API call (not event streams or downloads)
    #[arg(long, default_value = "120s", value_parser = duration)]
    pub request_timeout: Duration,
    /// How often retention runs (bundle expiry, cache cap, log pruning)
    #[arg(long, default_value = "5m", value_parser = duration)]
    pub janitor_interval: Duration,
    #[command(flatten)]
    pub age: crate::common::IndexAge,
    /// The old spelling of --max-index-age (a bare number is seconds here)
    #[arg(long, hide = true, value_parser = duration, conflicts_with = "max_index_age")]
    pub index_max_age: Option<Duration>,
    /// Daily service log files kept in <data-dir>/logs
    #[arg(long, default_value_t = 14)]
    pub log_keep: usize,
    /// The URL users reach the service at (e.g. behind a reverse proxy): its host name is
    /// accepted and its origin may submit and cancel jobs
    #[arg(long, env = "OPAAS_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// More host names the service answers to, comma-separated (`.example.org`: every
    /// subdomain; `*`: any, no DNS-rebinding protection). Loopback names and IP
    /// addresses are always accepted; other Host headers get 421
    #[arg(long, env = "OPAAS_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,
    /// Job submissions and previews per client address and minute (429 beyond; 0: no limit)
    #[arg(long, default_value_t = 30, env = "OPAAS_RATE_LIMIT")]
    pub rate_limit: u32,
    /// Unfinished (queued or running) jobs per client address (429 beyond; 0: no limit)
    #[arg(long, default_value_t = 10, env = "OPAAS_MAX_QUEUED_PER_CLIENT")]
    pub max_queued_per_client: usize,
    /// Close a connection that has not sent a whole request head within this time (also idle
    /// keep-alive connections)
    #[arg(long, default_value = "10s", value_parser = duration)]
    pub header_timeout: Duration,
    /// Open connections at most (more wait in the listen backlog)
    #[arg(long, default_value_t = 512)]
    pub max_connections: usize,
    /// Job database shared by several replicas: postgres://user:password@host:port/db
    /// (default: SQLite in <data-dir>/jobs.sqlite)
    #[arg(long, env = "OPAAS_DATABASE_URL", hide_env_values = true)]
    pub database: Option<String>,
    /// Bundle storage shared by several replicas: s3://bucket/prefix, with the endpoint,
    /// region and credentials from the AWS variables (AWS_ENDPOINT_URL, AWS_REGION,
    /// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY); default: <data-dir>/bundles
    #[arg(long, env = "OPAAS_STORAGE")]
    pub storage: Option<String>,
    /// With --database: a replica that has not renewed a job's lease for this long is taken to
    /// be dead, and another replica takes the job over
    #[arg(long, default_value = "30s", value_parser = duration, env = "OPAAS_LEASE")]
    pub lease: Duration,
    /// With an s3:// --storage: answer downloads with a redirect to a presigned URL (the
    /// clients must reach the bucket) instead of streaming them through the replica
    #[arg(long, env = "OPAAS_PRESIGN_DOWNLOADS")]
    pub presign_downloads: bool,
}

pub fn serve(a: &ServeArgs) -> Result<ExitCode> {
    let mut cfg = opaas_server::ServerConfig::new(&a.data_dir);
    cfg.listen = a.listen;
    cfg.workers = a.workers.max(1);
    cfg.download_jobs = a.jobs.max(1);
    cfg.settings = a.m.settings();
    cfg.token = opaas_server::load_token(a.token.as_deref(), a.token_file.as_deref())?;
    cfg.metrics_public = a.metrics_public;
    cfg.max_packages = a.max_packages.max(1);
    cfg.max_body_bytes = usize::try_from(a.max_upload).unwrap_or(usize::MAX);
    cfg.bundle_ttl = a.bundle_ttl;
    cfg.cache_max_bytes = a.cache_max_bytes;
    cfg.min_free_bytes = a.min_free_bytes;
    cfg.request_timeout = a.request_timeout;
    cfg.janitor_interval = a.janitor_interval.max(Duration::from_secs(1));
    cfg.index_max_age = a.index_max_age.unwrap_or(a.age.max_index_age);
    cfg.log_keep = a.log_keep.max(1);
    cfg.database_url = a.database.clone().filter(|u| !u.trim().is_empty());
    cfg.storage_url = a.storage.clone().filter(|u| !u.trim().is_empty());
    cfg.lease = a.lease.max(Duration::from_secs(1));
    cfg.presign_downloads = a.presign_downloads;
    cfg.hardening = opaas_server::guard::Hardening {
        public_url: a.public_url.clone().filter(|u| !u.trim().is_empty()),
        allowed_hosts: a.allowed_hosts.clone(),
        rate_per_minute: a.rate_limit,
        max_queued_per_client: a.max_queued_per_client,
        header_timeout: a.header_timeout.max(Duration::from_secs(1)),
        max_connections: a.max_connections.max(1),
    };
    if let Some(u) = &cfg.hardening.public_url {
        if opaas_server::guard::origin_of(u).is_none() {
            anyhow::bail!("--public-url {u:?} is not an http:// or https:// URL");
        }
    }
    opaas_server::run(cfg)?;
    Ok(ExitCode::SUCCESS)
}
