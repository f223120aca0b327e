//! A small blocking HTTP(S) client for index files: keep-alive agent, timeouts, retries with
//! backoff on connection errors and 5xx, `file://` URLs for local mirrors.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{url}: not found (HTTP 404)")]
    NotFound { url: String },
    #[error("{url}: HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: cannot connect or read ({message}); is the mirror up and reachable?")]
    Network { url: String, message: String },
    #[error("{url}: {source}")]
    Io { url: String, source: std::io::Error },
}

impl HttpError {
    fn retryable(&self) -> bool {
        match self {
            HttpError::Network { .. } => true,
            HttpError::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

/// A shared HTTP agent (connection pool).
#[derive(Clone)]
pub struct Http {
    agent: ureq::Agent,
    retries: u32,
    /// Retries go on past `retries` until this long after the first failure (or, for a
    /// transfer that resumes, after its last progress).
    patience: Duration,
}

impl Default for Http {
    fn default() -> Self {
        Self::new()
    }
}

impl Http {
    pub fn new() -> Self {
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(15)))
            .timeout_recv_response(Some(Duration::from_secs(30)))
            .timeout_recv_body(Some(Duration::from_secs(300)))
            // a connection that stops delivering is dropped and the transfer resumed
            .timeout_per_read(Some(Duration::from_secs(15)))
            .http_status_as_error(false)
            .user_agent(concat!("opaas/", env!("CARGO_PKG_VERSION")))
            .max_idle_connections_per_host(8)
            .build();
        Http {
            agent: agent(config),
            retries: 3,
            patience: Duration::ZERO,
        }
    }

    /// Keeps retrying transient failures for `patience` (besides the fixed retries): a busy
    /// mirror that fails several requests in a row is waited out instead of failing the
    /// update.
    pub fn with_patience(mut self, patience: Duration) -> Self {
        self.patience = patience;
        self
    }

    /// The wait before retry `n` (1-based): 400 ms doubling, at most 2 s.
    fn backoff(n: u32) -> Duration {
        Duration::from_millis(200 * (1u64 << n.min(4))).min(Duration::from_secs(2))
    }

    /// Runs `f` and retries transient failures with exponential backoff.
    fn retry<T>(&self, mut f: impl FnMut() -> Result<T, HttpError>) -> Result<T, HttpError> {
        let mut attempt = 0;
        let start = std::time::Instant::now();
        loop {
            match f() {
                Err(e)
                    if e.retryable()
                        && (attempt < self.retries || start.elapsed() < self.patience) =>
                {
                    attempt += 1;
                    std::thread::sleep(Self::backoff(attempt));
                }
                other => return other,
            }
        }
    }

    pub fn get_bytes(&self, url: &str) -> Result<Vec<u8>, HttpError> {
        self.retry(|| {
            let mut v = Vec::new();
            self.get_once(url, &mut v)?;
            Ok(v)
        })
    }

    /// Streams `url` into `file` (truncated first, and again before each retry).
    pub fn get_to_file(&self, url: &str, file: &mut std::fs::File) -> Result<u64, HttpError> {
        self.get_to_file_sized(url, file, None)
    }

    /// Downloads `url` into `file` (from its start). A transfer that breaks off (reset,
    /// stalled, or — when `expected` is given — a body that ends short) is resumed with
    /// `Range` from the bytes already written; an attempt that added bytes does not count
    /// against the retries, so a bad but moving mirror is followed to the end.
    pub fn get_to_file_sized(
        &self,
        url: &str,
        file: &mut std::fs::File,
        expected: Option<u64>,
    ) -> Result<u64, HttpError> {
        use std::io::Seek;
        let io = |source| HttpError::Io {
            url: url.to_string(),
            source,
        };
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        let mut have = 0u64;
        // progress is bytes beyond the most ever held (a restart from 0 must not look like it)
        let mut high = 0u64;
        let mut failures = 0;
        let mut since = std::time::Instant::now();
        let mut short_seen = None;
        loop {
            let r = if url.starts_with("file://") {
                file.set_len(0).map_err(io)?;
                file.rewind().map_err(io)?;
                have = 0;
                self.get_once(url, file)
            } else {
                self.get_from(url, file, &mut have)
            };
            // a body that ended short is retried; when that keeps happening, the short count
            // goes back so that the caller reports the size mismatch against the signed index
            let (e, short) = match r {
                Ok(n) => match expected {
                    Some(want) if n < want && !url.starts_with("file://") => (None, Some(n)),
                    _ => return Ok(n),
                },
                Err(e) if e.retryable() => (Some(e), None),
                Err(e) => return Err(e),
            };
            if have > high {
                high = have;
                failures = 0;
                since = std::time::Instant::now();
            }
            if let Some(n) = short {
                short_seen = Some(n);
            }
            if failures >= self.retries && since.elapsed() >= self.patience {
                return match (short_seen, e) {
                    (Some(n), _) => Ok(n),
                    (None, Some(e)) => Err(e),
                    (None, None) => Ok(have),
                };
            }
            failures += 1;
            std::thread::sleep(Self::backoff(failures));
        }
    }

    /// One GET appending to `file` from byte `*have` (a `Range` request when it is not 0);
    /// `*have` follows what is written, also when the transfer breaks off.
    fn get_from(
        &self,
        url: &str,
        file: &mut std::fs::File,
        have: &mut u64,
    ) -> Result<u64, HttpError> {
        use std::io::{Seek, Write};
        let io = |source| HttpError::Io {
            url: url.to_string(),
            source,
        };
        let mut req = self.agent.get(url);
        if *have > 0 {
            req = req.header("Range", &format!("bytes={have}-"));
        }
        let resp = req.call().map_err(|e| HttpError::Network {
            url: url.to_string(),
            message: e.to_string(),
        })?;
        let status = resp.status().as_u16();
        match status {
            200 => {
                // the whole file (a fresh request, or a server that ignores Range)
                *have = 0;
                file.set_len(0).map_err(io)?;
                file.rewind().map_err(io)?;
            }
            206 => {
                let start = resp
                    .headers()
                    .get("content-range")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().strip_prefix("bytes "))
                    .and_then(|v| v.split('-').next())
                    .and_then(|v| v.trim().parse::<u64>().ok());
                if start != Some(*have) {
                    *have = 0;
                    file.set_len(0).map_err(io)?;
                    return Err(HttpError::Network {
                        url: url.to_string(),
                        message: "a partial response from the wrong offset".into(),
                    });
                }
            }
            404 | 410 => {
                return Err(HttpError::NotFound {
                    url: url.to_string(),
                })
            }
            416 => {
                // the server's file is not longer than ours: start over
                *have = 0;
                file.set_len(0).map_err(io)?;
                return Err(HttpError::Network {
                    url: url.to_string(),
                    message: "HTTP 416 to a resumed request".into(),
                });
            }
            _ => {
                return Err(HttpError::Status {
                    url: url.to_string(),
                    status,
                })
            }
        }
        file.seek(std::io::SeekFrom::Start(*have)).map_err(io)?;
        let mut body = resp.into_body();
        let mut reader = body.as_reader();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = reader.read(&mut buf).map_err(|e| HttpError::Network {
                url: url.to_string(),
                message: e.to_string(),
            })?;
            if n == 0 {
                break;
            }
            file.write_all(&buf[..n]).map_err(io)?;
            *have += n as u64;
        }
        Ok(*have)
    }

    fn get_once(&self, url: &str, sink: &mut dyn std::io::Write) -> Result<u64, HttpError> {
        if let Some(path) = url.strip_prefix("file://") {
            let p = Path::new(path);
            let mut f = std::fs::File::open(p).map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    HttpError::NotFound {
                        url: url.to_string(),
                    }
                } else {
                    HttpError::Io {
                        url: url.to_string(),
                        source: e,
                    }
                }
            })?;
            return std::io::copy(&mut f, sink).map_err(|source| HttpError::Io {
                url: url.to_string(),
                source,
            });
        }
        let resp = self.agent.get(url).call().map_err(|e| HttpError::Network {
            url: url.to_string(),
            message: e.to_string(),
        })?;
        let status = resp.status().as_u16();
        if status == 404 || status == 410 {
            return Err(HttpError::NotFound {
                url: url.to_string(),
            });
        }
        if status != 200 {
            return Err(HttpError::Status {
                url: url.to_string(),
                status,
            });
        }
        let mut body = resp.into_body();
        let mut reader = body.as_reader();
        let mut buf = vec![0u8; 256 * 1024];
        let mut total = 0u64;
        loop {
            let n = reader.read(&mut buf).map_err(|e| HttpError::Network {
                url: url.to_string(),
                message: e.to_string(),
            })?;
            if n == 0 {
                break;
            }
            sink.write_all(&buf[..n]).map_err(|source| HttpError::Io {
                url: url.to_string(),
                source,
            })?;
            total += n as u64;
        }
        Ok(total)
    }
}

/// A DNS cache in front of ureq's resolver.
///
/// ureq resolves the host for every new connection. Mirrors behind a resolver that drops some
/// queries (glibc then waits its full 5 s timeout) turned a 76-file download into 11 s; apt and
/// curl cache the answer, and so do we: one lookup per host per minute, shared by every
/// connection of the agent.
#[derive(Debug, Default)]
pub struct CachingResolver {
    inner: ureq::unversioned::resolver::DefaultResolver,
    cache: std::sync::Mutex<
        std::collections::HashMap<
            String,
            (
                std::time::Instant,
                ureq::unversioned::resolver::ResolvedSocketAddrs,
            ),
        >,
    >,
}

impl ureq::unversioned::resolver::Resolver for CachingResolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: ureq::unversioned::transport::NextTimeout,
    ) -> Result<ureq::unversioned::resolver::ResolvedSocketAddrs, ureq::Error> {
        let key = format!(
            "{}://{}",
            uri.scheme_str().unwrap_or(""),
            uri.authority().map_or("", |a| a.as_str())
        );
        if let Ok(c) = self.cache.lock() {
            if let Some((at, addrs)) = c.get(&key) {
                if at.elapsed() < Duration::from_secs(60) {
                    return Ok(addrs.clone());
                }
            }
        }
        let addrs = self.inner.resolve(uri, config, timeout)?;
        if let Ok(mut c) = self.cache.lock() {
            c.insert(key, (std::time::Instant::now(), addrs.clone()));
        }
        Ok(addrs)
    }
}

/// An agent with the caching resolver.
pub fn agent(config: ureq::config::Config) -> ureq::Agent {
    ureq::Agent::with_parts(
        config,
        ureq::unversioned::transport::DefaultConnector::default(),
        CachingResolver::default(),
    )
}
