//! Request guards against abuse from browsers and greedy clients (issue 16):
//!
//! * **Host allow-list** (DNS rebinding): a request is served only when its `Host` is a loopback
//!   name, an IP literal or a name given with `--public-url` / `--allowed-hosts`; else 421. Any
//!   IP literal is accepted: rebinding needs a DNS name (a page at `http://<ip>` is the server
//!   itself), and behind NAT or a container port mapping the server cannot know every address
//!   it is reached at.
//! * **Cross-site writes**: a state-changing request (`POST`, `PUT`, `PATCH`, `DELETE`) whose
//!   `Origin` is not the server's own (same authority as `Host`, or the public URL's origin), or
//!   that a browser marks `Sec-Fetch-Site: cross-site`, is refused (403); one that carries a body
//!   must say `Content-Type: application/json` (415), which no plain HTML form or "simple"
//!   cross-site request can.
//! * **Per-client limits** on the expensive calls (`POST /api/jobs`, `POST /api/resolve`): a
//!   token bucket of `--rate-limit` calls a minute and at most `--max-queued-per-client`
//!   unfinished jobs per client address; both answer 429 with `Retry-After`.
//!
//! The client is the connection's peer address ([`Peer`], set by [`crate::conn`]); requests
//! without one (in-process tests) are not rate limited.

use crate::api::AppState;
use crate::error::ApiError;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The hardening settings of `opaas serve` (defaults: [`Hardening::default`]).
#[derive(Debug, Clone)]
pub struct Hardening {
    /// The URL users reach the service at (e.g. behind a reverse proxy): its host is allowed
    /// and its origin may make state-changing calls.
    pub public_url: Option<String>,
    /// More host names the service answers to (`example.org`, `.example.org` for every
    /// subdomain, `*` for any: turns the Host check off).
    pub allowed_hosts: Vec<String>,
    /// Expensive calls (`POST /api/jobs`, `POST /api/resolve`) per client and minute; 0: no limit.
    pub rate_per_minute: u32,
    /// Unfinished (queued or running) jobs per client; 0: no limit.
    pub max_queued_per_client: usize,
    /// A connection that has not sent a whole request head within this time (including an
    /// idle keep-alive connection) is closed.
    pub header_timeout: Duration,
    /// Open connections at most; more wait in the listen backlog.
    pub max_connections: usize,
}

impl Default for Hardening {
    fn default() -> Self {
        Hardening {
            public_url: None,
            allowed_hosts: Vec::new(),
            rate_per_minute: 30,
            max_queued_per_client: 10,
            header_timeout: Duration::from_secs(10),
            max_connections: 512,
        }
    }
}

/// The connection a request came on (inserted by [`crate::conn`]).
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    pub remote: SocketAddr,
    pub local: SocketAddr,
}

/// `scheme://host[:port]` of a URL, lower case (None: not an http(s) URL).
pub fn origin_of(url: &str) -> Option<String> {
    let url = url.trim();
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    if authority.is_empty() {
        return None;
    }
    Some(format!("{scheme}://{}", authority.to_ascii_lowercase()))
}

/// The host of an authority (`name`, `name:port`, `1.2.3.4:80`, `[::1]:80`), lower case,
/// without a trailing dot.
pub fn host_of(authority: &str) -> String {
    let a = authority.trim();
    let host = if let Some(rest) = a.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        match a.rsplit_once(':') {
            Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => a,
        }
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// Whether `host` (as [`host_of`] gives it) is one the service answers to.
pub fn host_allowed(h: &Hardening, host: &str) -> bool {
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    if host.parse::<IpAddr>().is_ok() {
        // an address the client connected to (the server itself, its NAT or port mapping)
        return true;
    }
    let public = h
        .public_url
        .as_deref()
        .and_then(origin_of)
        .map(|o| host_of(o.split_once("://").map_or("", |(_, a)| a)));
    if public.as_deref() == Some(host) {
        return true;
    }
    h.allowed_hosts.iter().any(|a| {
        let a = a.trim().trim_end_matches('.').to_ascii_lowercase();
        a == "*"
            || a == host
            || (a.starts_with('.') && host.ends_with(&a))
            || a.strip_prefix("*.")
                .is_some_and(|s| host.ends_with(&format!(".{s}")))
    })
}

fn state_changing(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn has_body(h: &HeaderMap) -> bool {
    h.contains_key(header::TRANSFER_ENCODING)
        || h.get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0")
}

fn is_json(h: &HeaderMap) -> bool {
    h.get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .is_some_and(|m| m == "application/json")
}

/// Whether a state-changing request comes from a foreign web page.
fn foreign(h: &Hardening, headers: &HeaderMap, host: Option<&str>) -> bool {
    if headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("cross-site"))
    {
        return true;
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return false; // not a browser (curl, scripts): nothing to forge
    };
    let Some(origin) = origin.to_str().ok().and_then(origin_of) else {
        return true; // "null" (sandboxed frames, file: pages) or garbage
    };
    let authority = origin.split_once("://").map_or("", |(_, a)| a);
    let same_host = host.is_some_and(|hh| hh.trim().eq_ignore_ascii_case(authority));
    let public = h.public_url.as_deref().and_then(origin_of);
    !(same_host || public.as_deref() == Some(origin.as_str()))
}

fn refuse(status: StatusCode, code: &'static str, message: String) -> Response {
    ApiError::new(status, code, message).into_response()
}

/// The Host, Origin and Content-Type checks (outermost layer: before auth and routing).
pub async fn check(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let h = &st.cfg.hardening;
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.to_string()));
    if let Some(hv) = host.as_deref() {
        let name = host_of(hv);
        if !host_allowed(h, &name) {
            let shown: String = name.chars().take(64).collect();
            return refuse(
                StatusCode::MISDIRECTED_REQUEST,
                "misdirected_request",
                format!(
                    "this service does not answer to the host name '{shown}'; use its address or a name given with --public-url/--allowed-hosts"
                ),
            );
        }
    }
    if state_changing(req.method()) {
        if foreign(h, req.headers(), host.as_deref()) {
            return refuse(
                StatusCode::FORBIDDEN,
                "forbidden_origin",
                "cross-site requests may not change anything (the Origin is not this service)"
                    .into(),
            );
        }
        if req.uri().path().starts_with("/api")
            && has_body(req.headers())
            && !is_json(req.headers())
        {
            return refuse(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the request body must be JSON (Content-Type: application/json)".into(),
            );
        }
    }
    next.run(req).await
}

// ---------------------------------------------------------------- per-client limits

struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Default)]
struct ClientState {
    bucket: Option<Bucket>,
    /// Jobs this client submitted that were unfinished when last looked at.
    jobs: Vec<String>,
    /// Submissions under way (counted against the queue limit until they answer).
    pending: usize,
}

/// Per-client rate buckets and unfinished jobs (in memory: a restart forgets them).
#[derive(Default)]
pub struct ClientLimits {
    clients: Mutex<HashMap<IpAddr, ClientState>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ClientLimits {
    /// Takes a token from `ip`'s bucket; Err(seconds until one is back).
    pub fn take(&self, ip: IpAddr, per_minute: u32, now: Instant) -> Result<(), u64> {
        if per_minute == 0 {
            return Ok(());
        }
        let rate = f64::from(per_minute) / 60.0;
        let cap = f64::from(per_minute);
        let mut m = lock(&self.clients);
        // forget idle clients now and then (their buckets are full again anyway)
        if m.len() > 10_000 {
            m.retain(|_, c| {
                c.pending > 0
                    || !c.jobs.is_empty()
                    || c.bucket
                        .as_ref()
                        .is_some_and(|b| now.duration_since(b.at).as_secs_f64() * rate < cap)
            });
        }
        let c = m.entry(ip).or_default();
        let b = c.bucket.get_or_insert(Bucket {
            tokens: cap,
            at: now,
        });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate).min(cap);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - b.tokens) / rate).ceil().max(1.0) as u64)
        }
    }

    /// Reserves a queue slot for `ip` (Err: the client has `max` unfinished jobs).
    /// `unfinished` tells whether a job id is still queued or running.
    pub fn reserve(
        &self,
        ip: IpAddr,
        max: usize,
        unfinished: impl Fn(&str) -> bool,
    ) -> Result<(), usize> {
        let mut m = lock(&self.clients);
        let c = m.entry(ip).or_default();
        c.jobs.retain(|id| unfinished(id));
        if max > 0 && c.jobs.len() + c.pending >= max {
            return Err(c.jobs.len() + c.pending);
        }
        c.pending += 1;
        Ok(())
    }

    /// Ends a reservation; `job` is the id of the job it created, if any.
    pub fn release(&self, ip: IpAddr, job: Option<String>) {
        let mut m = lock(&self.clients);
        let c = m.entry(ip).or_default();
        c.pending = c.pending.saturating_sub(1);
        if let Some(j) = job {
            c.jobs.push(j);
        }
    }
}

fn too_many(retry_after: u64, message: String) -> Response {
    let mut r = refuse(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message);
    if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// Rate and queue limits of `POST /api/jobs` and `POST /api/resolve` (inside auth: only
/// callers that passed it spend the budget).
pub async fn limit(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let submit = path == "/api/jobs";
    if req.method() != Method::POST || !(submit || path == "/api/resolve") {
        return next.run(req).await;
    }
    let Some(peer) = req.extensions().get::<Peer>().copied() else {
        return next.run(req).await;
    };
    let h = &st.cfg.hardening;
    let ip = peer.remote.ip().to_canonical();
    if let Err(secs) = st.limits.take(ip, h.rate_per_minute, Instant::now()) {
        return too_many(
            secs,
            format!(
                "too many requests from {ip}: at most {} job submissions and previews a minute; retry in {secs} s",
                h.rate_per_minute
            ),
        );
    }
    if !submit {
        return next.run(req).await;
    }
    let jobs = std::sync::Arc::clone(&st.jobs);
    if let Err(n) = st
        .limits
        .reserve(ip, h.max_queued_per_client, |id| jobs.live(id).is_some())
    {
        return too_many(
            30,
            format!(
                "{ip} has {n} unfinished jobs (at most {} at a time); wait for one to finish or cancel one",
                h.max_queued_per_client
            ),
        );
    }
    let r = next.run(req).await;
    let id = (r.status() == StatusCode::ACCEPTED)
        .then(|| r.headers().get(header::LOCATION))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .and_then(|l| l.rsplit('/').next())
        .map(str::to_string);
    st.limits.release(ip, id);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        let mut h = Hardening::default();
        let ok = |h: &Hardening, host: &str| host_allowed(h, &host_of(host));
        assert!(ok(&h, "localhost:8000"));
        assert!(ok(&h, "LOCALHOST."));
        assert!(ok(&h, "app.localhost"));
        assert!(ok(&h, "127.0.0.1:8000"));
        assert!(ok(&h, "127.9.9.9"));
        assert!(ok(&h, "[::1]:8000"));
        assert!(ok(&h, "192.168.1.5:8000"));
        assert!(ok(&h, "[fe80::1]:8000"));
        assert!(!ok(&h, "192.168.1.5.evil.example"));
        assert!(!ok(&h, "0x7f.1"));
        assert!(!ok(&h, "rebind.evil.example"));
        assert!(!ok(&h, "rebind.evil.example:8000"));
        assert!(!ok(&h, "localhost.evil.example"));
        h.public_url = Some("https://pkgs.example.org/opaas/".into());
        h.allowed_hosts = vec!["build.lan".into(), ".corp.example".into()];
        assert!(ok(&h, "pkgs.example.org"));
        assert!(ok(&h, "BUILD.lan:8000"));
        assert!(ok(&h, "a.corp.example"));
        assert!(!ok(&h, "corp.example.evil"));
        assert!(!ok(&h, "evil.example.org"));
        h.allowed_hosts = vec!["*".into()];
        assert!(ok(&h, "anything.example"));
    }

    #[test]
    fn origins() {
        let h = Hardening {
            public_url: Some("https://pkgs.example.org".into()),
            ..Hardening::default()
        };
        let hm = |o: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::ORIGIN, HeaderValue::from_str(o).expect("value"));
            m
        };
        assert!(!foreign(&h, &HeaderMap::new(), Some("127.0.0.1:8000")));
        assert!(!foreign(
            &h,
            &hm("http://127.0.0.1:8000"),
            Some("127.0.0.1:8000")
        ));
        assert!(!foreign(
            &h,
            &hm("https://pkgs.example.org"),
            Some("10.0.0.1:8000")
        ));
        assert!(foreign(
            &h,
            &hm("http://evil.example"),
            Some("127.0.0.1:8000")
        ));
        assert!(foreign(
            &h,
            &hm("http://127.0.0.1:8001"),
            Some("127.0.0.1:8000")
        ));
        assert!(foreign(&h, &hm("null"), Some("127.0.0.1:8000")));
        let mut m = HeaderMap::new();
        m.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(foreign(&h, &m, Some("127.0.0.1:8000")));
        assert_eq!(
            origin_of("HTTP://Example.org:80/x?y"),
            Some("http://example.org:80".into())
        );
        assert_eq!(origin_of("ftp://x"), None);
    }

    #[test]
    fn buckets_and_queues() {
        let l = ClientLimits::default();
        let ip: IpAddr = "10.0.0.1".parse().expect("ip");
        let other: IpAddr = "10.0.0.2".parse().expect("ip");
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.take(ip, 3, t0), Ok(()));
        }
        assert_eq!(l.take(ip, 3, t0), Err(20));
        assert_eq!(l.take(other, 3, t0), Ok(()));
        assert_eq!(l.take(ip, 3, t0 + Duration::from_secs(20)), Ok(()));
        assert!(l.take(ip, 0, t0).is_ok());
        // queue: two slots
        assert!(l.reserve(ip, 2, |_| true).is_ok());
        l.release(ip, Some("a".into()));
        assert!(l.reserve(ip, 2, |_| true).is_ok());
        assert_eq!(l.reserve(ip, 2, |_| true), Err(2)); // one job and one pending
        l.release(ip, None);
        assert!(l.reserve(ip, 2, |_| true).is_ok());
        l.release(ip, Some("b".into()));
        assert_eq!(l.reserve(ip, 2, |_| true), Err(2));
        // a job that finished frees its slot
        assert!(l.reserve(ip, 2, |id| id != "a").is_ok());
    }
}
