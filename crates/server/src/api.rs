//! The HTTP API of docs/API.md: routes, handlers, auth, timeouts, the event stream.

use crate::config::ServerConfig;
use crate::error::{from_engine, ApiError};
use crate::jobs::{self, Jobs};
use crate::metrics::Metrics;
use crate::model::{now_ms, rfc3339, valid_id, Job};
use crate::presets::Presets;
use crate::request::Limits;
use crate::store::Store;
use crate::universes::Universes;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch, Semaphore};

/// What every handler can reach.
pub struct Inner {
    pub cfg: Arc<ServerConfig>,
    pub db: Store,
    pub jobs: Arc<Jobs>,
    pub metrics: Arc<Metrics>,
    pub universes: Arc<Universes>,
    pub presets: Presets,
    /// Bounds concurrent previews and searches (each may load indices).
    pub previews: Semaphore,
    /// Per-client rate and queue limits (issue 16).
    pub limits: crate::guard::ClientLimits,
    /// Low-priority threads for parsing uploads and resolving previews.
    pub heavy: crate::uploads::Heavy,
    /// Turns true when the service stops (event streams close).
    pub shutdown: watch::Receiver<bool>,
    pub openapi: Value,
    /// What `/healthz` answers from (a probe of the database, twice a second).
    pub health: Arc<crate::health::Health>,
}

pub type AppState = Arc<Inner>;

/// The whole application: API, health, metrics, UI.
pub fn router(st: AppState) -> Router {
    let body_limit = st.cfg.max_body_bytes + st.cfg.max_body_bytes / 4 + (64 << 10);
    let timed = Router::new()
        .route("/api/distros", get(distros))
        .route("/api/presets", get(presets))
        .route("/api/packages", get(packages))
        .route("/api/resolve", post(resolve))
        .route("/api/jobs", get(list_jobs).post(create_job))
        .route("/api/jobs/{id}", get(get_job).delete(delete_job))
        .route("/api/jobs/{id}/cancel", post(cancel_job))
        .route("/api/jobs/{id}/log", get(job_log))
        .route("/api/jobs/{id}/manifest", get(job_manifest))
        .route("/api/jobs/{id}/sbom", get(job_sbom))
        .route("/api/openapi.json", get(openapi))
        .route("/api/collect-script", get(collect_script))
        .layer(middleware::from_fn_with_state(st.clone(), timeout));
    let streaming = Router::new()
        .route("/api/jobs/{id}/events", get(job_events))
        .route("/api/jobs/{id}/bundle", get(job_bundle));
    let api = Router::new()
        .merge(timed)
        .merge(streaming)
        .route("/api", any(api_not_found))
        .route("/api/", any(api_not_found))
        .route("/api/{*rest}", any(api_not_found))
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(
            st.clone(),
            crate::guard::limit,
        ))
        .layer(middleware::from_fn_with_state(st.clone(), auth))
        .layer(api_headers());
    // /metrics needs the token when one is set, unless the operator made it public
    let mut metrics_route = Router::new().route("/metrics", get(metrics));
    if !st.cfg.metrics_public {
        metrics_route = metrics_route.layer(middleware::from_fn_with_state(st.clone(), auth));
    }
    let mut r = Router::new()
        .merge(api)
        .merge(metrics_route)
        .route("/healthz", get(healthz))
        .fallback(crate::ui::serve);
    for (name, value) in SECURITY_HEADERS {
        r = r.layer(
            tower_http::set_header::SetResponseHeaderLayer::if_not_present(
                header::HeaderName::from_static(name),
                HeaderValue::from_static(value),
            ),
        );
    }
    r.layer(middleware::from_fn_with_state(
        st.clone(),
        crate::guard::check,
    ))
    .layer(access_log())
    .layer(middleware::from_fn_with_state(st.clone(), count_responses))
    .with_state(st)
}

/// `opaas_http_responses_total` by status class.
async fn count_responses(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let r = next.run(req).await;
    st.metrics.http_response(r.status().as_u16());
    r
}

/// Sent with every answer (docs/SECURITY.md): a strict CSP the embedded UI satisfies (its
/// scripts and styles are files of its own origin, no inline code; Vue sets styles through the
/// CSSOM), no framing (clickjacking), no referrer, no MIME sniffing.
pub const SECURITY_HEADERS: [(&str, &str); 3] = [
    (
        "content-security-policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'",
    ),
    ("referrer-policy", "no-referrer"),
    ("x-content-type-options", "nosniff"),
];

// ---------------------------------------------------------------- middleware

/// Constant-time comparison (`subtle`: the token must not leak through timing).
fn same(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}

fn query_param(uri: &Uri, key: &str) -> Option<String> {
    let q = uri.query()?;
    let map: HashMap<String, String> = axum::extract::Query::try_from_uri(uri)
        .map(|axum::extract::Query(m)| m)
        .unwrap_or_else(|_| {
            // a malformed query still lets us look for the key
            q.split('&')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        });
    map.get(key).cloned()
}

async fn auth(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let Some(token) = st.cfg.token.as_deref() else {
        return next.run(req).await;
    };
    let header_ok = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| same(t.trim().as_bytes(), token.as_bytes()));
    let path = req.uri().path();
    let query_allowed = path.starts_with("/api/jobs/")
        && (path.ends_with("/events") || path.ends_with("/bundle") || path.ends_with("/sbom"));
    let query_ok = query_allowed
        && query_param(req.uri(), "token").is_some_and(|t| same(t.as_bytes(), token.as_bytes()));
    if header_ok || query_ok {
        return next.run(req).await;
    }
    let mut r = ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "a valid token is required (Authorization: Bearer <token>)",
    )
    .into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"opaas\""),
    );
    r
}

async fn timeout(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let limit = st.cfg.request_timeout;
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => {
            let mut r = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "internal",
                format!(
                    "the request took longer than {} s; try again",
                    limit.as_secs()
                ),
            )
            .into_response();
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            r
        }
    }
}

/// API answers are never cached by browsers or proxies unless a handler says otherwise.
fn api_headers() -> tower_http::set_header::SetResponseHeaderLayer<HeaderValue> {
    tower_http::set_header::SetResponseHeaderLayer::if_not_present(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    )
}

/// The access log: tower-http's trace layer with the two functions below.
type AccessLog = tower_http::trace::TraceLayer<
    tower_http::classify::SharedClassifier<tower_http::classify::ServerErrorsAsFailures>,
    fn(&Request) -> tracing::Span,
    (),
    fn(&Response, Duration, &tracing::Span),
    (),
    (),
    (),
>;

/// One line per request, at `info` for changes and `debug` for reads; the path only, so a
/// `?token=` never reaches the log.
fn access_log() -> AccessLog {
    tower_http::trace::TraceLayer::new_for_http()
        .make_span_with(request_span as fn(&Request) -> tracing::Span)
        .on_request(())
        .on_response(log_response as fn(&Response, Duration, &tracing::Span))
        .on_body_chunk(())
        .on_eos(())
        .on_failure(())
}

fn request_span(req: &Request) -> tracing::Span {
    let (method, path) = (req.method(), req.uri().path());
    if method == Method::GET || method == Method::HEAD {
        tracing::debug_span!("request", %method, %path)
    } else {
        tracing::info_span!("request", %method, %path)
    }
}

/// At the level of the request's span (a disabled span: `debug`, filtered out with it).
fn log_response(r: &Response, latency: Duration, span: &tracing::Span) {
    let status = r.status().as_u16();
    let ms = latency.as_secs_f64() * 1000.0;
    if span
        .metadata()
        .is_some_and(|m| *m.level() == tracing::Level::INFO)
    {
        tracing::info!(status, ms, "request");
    } else {
        tracing::debug!(status, ms, "request");
    }
}

async fn api_not_found(method: Method, uri: Uri) -> ApiError {
    let p: String = uri.path().chars().take(200).collect();
    ApiError::not_found(format!("no API endpoint {method} {p}"))
}

// ---------------------------------------------------------------- helpers

/// The `{id}` of a job path; an id that does not even decode is a 404 like any unknown one.
struct JobId(String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for JobId {
    type Rejection = ApiError;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(id)) => Ok(JobId(id)),
            Err(_) => Err(ApiError::not_found("no such job")),
        }
    }
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    let p: String = uri.path().chars().take(200).collect();
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "bad_request",
        format!("{method} is not allowed on {p}"),
    )
}

fn query(uri: &Uri) -> Result<HashMap<String, String>, ApiError> {
    if uri.query().is_none() {
        return Ok(HashMap::new());
    }
    axum::extract::Query::<HashMap<String, String>>::try_from_uri(uri)
        .map(|axum::extract::Query(m)| m)
        .map_err(|e| ApiError::bad_request(format!("bad query string: {e}")))
}

fn number(
    q: &HashMap<String, String>,
    key: &str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ApiError> {
    match q.get(key) {
        None => Ok(default),
        Some(s) if s.is_empty() => Ok(default),
        Some(s) => s
            .parse::<u64>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(format!("{key} must be a whole number from {min} to {max}"))
                    .field(key)
            }),
    }
}

pub(crate) fn limits(cfg: &ServerConfig) -> Limits {
    Limits {
        max_packages: cfg.max_packages,
        max_status_bytes: cfg.max_body_bytes,
    }
}

pub(crate) fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "bad_status_file",
                "the request body is too large (an uploaded status file may be at most the configured size)",
            )
            .field("baseline")
        } else {
            ApiError::bad_request(format!("cannot read the request body: {e}"))
        }
    })
}

async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> R + Send + 'static,
) -> Result<R, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("a task failed: {e}")))
}

fn distro_id(given: Option<&String>) -> Result<&'static opaas_repo::catalog::Distro, ApiError> {
    let all = || {
        opaas_repo::catalog::distros()
            .iter()
            .map(|d| d.id.clone())
            .collect()
    };
    let Some(g) = given.filter(|g| !g.is_empty()) else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "unknown_distro",
            "distro is required",
        )
        .field("distro")
        .suggestions(all()));
    };
    if g.len() > crate::caps::MAX_FIELD_CHARS {
        // never echo unbounded input (issue 16)
        return Err(
            ApiError::new(StatusCode::BAD_REQUEST, "unknown_distro", "no such distro")
                .field("distro")
                .suggestions(all()),
        );
    }
    opaas_repo::catalog::find(g).map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, "unknown_distro", e.to_string())
            .field("distro")
            .suggestions(all())
    })
}

/// The freshest view of a job: the live snapshot while it runs, else the database.
async fn load_job(st: &AppState, id: &str) -> Result<Job, ApiError> {
    if !valid_id(id) {
        return Err(ApiError::no_job(id));
    }
    if let Some(l) = st.jobs.live(id) {
        return Ok(l.snapshot());
    }
    let id2 = id.to_string();
    st.db
        .run(move |s| s.get(&id2))
        .await?
        .ok_or_else(|| ApiError::no_job(id))
}

// ---------------------------------------------------------------- catalog

/// The catalog, and for each architecture whether this server can serve it (a configured
/// mirror, and the last refresh of its indices worked): `available`, and `unavailable`
/// (`no_mirror`, `mirror_failing`) when not.
async fn distros(State(st): State<AppState>) -> Result<Json<Value>, ApiError> {
    let settings = st.cfg.engine_settings();
    let jobs = Arc::clone(&st.jobs);
    let list = blocking(move || {
        let arch = |d: &opaas_repo::catalog::Distro, a: &str, ports: bool| {
            let s = jobs.targets.status(&settings, &d.id, a);
            json!({"name": a, "ports": ports, "available": s.available, "unavailable": s.unavailable})
        };
        let list: Vec<Value> = opaas_repo::catalog::distros()
            .iter()
            .map(|d| {
                let mut arches: Vec<Value> =
                    d.architectures.iter().map(|a| arch(d, a, false)).collect();
                arches.extend(d.ports_architectures.iter().map(|a| arch(d, a, true)));
                json!({
                    "id": d.id, "name": d.name, "codename": d.codename, "family": d.family.key(),
                    "support": d.support, "lifecycle": d.lifecycle, "architectures": arches,
                })
            })
            .collect();
        Value::Array(list)
    })
    .await?;
    Ok(Json(list))
}

async fn presets(State(st): State<AppState>, uri: Uri) -> Result<Json<Value>, ApiError> {
    let q = query(&uri)?;
    let distro = match q.get("distro").filter(|d| !d.is_empty()) {
        Some(_) => Some(distro_id(q.get("distro"))?.id.as_str()),
        None => None,
    };
    Ok(Json(json!(st.presets.for_distro(distro))))
}

async fn packages(State(st): State<AppState>, uri: Uri) -> Result<Json<Value>, ApiError> {
    let q = query(&uri)?;
    let distro = distro_id(q.get("distro"))?;
    let arch = q
        .get("arch")
        .filter(|a| !a.is_empty())
        .cloned()
        .unwrap_or_else(|| "amd64".into());
    distro.check_arch(&arch).map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, "unknown_arch", e.to_string())
            .field("arch")
            .suggestions(distro.all_architectures().map(str::to_string).collect())
    })?;
    let term = q.get("q").map(|s| s.trim().to_string()).unwrap_or_default();
    if term.chars().count() > 100 {
        return Err(ApiError::bad_request("q is at most 100 characters").field("q"));
    }
    let limit = number(&q, "limit", 20, 1, 100)? as usize;
    if term.is_empty() {
        return Ok(Json(json!({"items": [], "suggestions": []})));
    }
    let _permit = st
        .previews
        .acquire()
        .await
        .map_err(|_| ApiError::internal("shutting down"))?;
    let unis = Arc::clone(&st.universes);
    let id = distro.id.clone();
    let out = blocking(move || -> Result<Value, opaas_engine::EngineError> {
        let Some(u) = unis.get(&id, &arch, true)? else {
            return Ok(json!({"items": [], "suggestions": []}));
        };
        let hits = opaas_engine::search(&u, &term, limit);
        let lower = term.to_ascii_lowercase();
        let exact = hits.iter().any(|h| h.name == lower);
        let suggestions: Vec<String> = if exact {
            Vec::new()
        } else {
            opaas_resolve::suggest::suggestions(&u, &lower)
                .into_iter()
                .filter(|s| *s != lower)
                .collect()
        };
        Ok(json!({"items": hits, "suggestions": suggestions}))
    })
    .await?
    .map_err(from_engine)?;
    Ok(Json(out))
}

// ---------------------------------------------------------------- preview

async fn resolve(State(st): State<AppState>, req: Request) -> Result<Json<Value>, ApiError> {
    // parsed on the low-priority pool, under the preview slot it keeps for the resolve
    let crate::uploads::Intake {
        valid: v,
        permit: _permit,
        big: _big,
        ..
    } = crate::uploads::intake(&st, req, false).await?;
    let settings = st.cfg.engine_settings();
    if v.mode == crate::model::JobMode::Locked {
        return Err(ApiError::bad_request(
            "a lockfile is not resolved: it lists its packages; POST /api/jobs builds it",
        )
        .field("lock"));
    }
    if v.mode != crate::model::JobMode::Install {
        let out = st
            .heavy
            .run(move || upgrade_preview(&settings, &v))
            .await?
            .map_err(from_engine)?;
        return Ok(Json(out));
    }
    let req = v.engine_request();
    drop(v);
    let out = st.heavy.run(move || -> Result<Value, opaas_engine::EngineError> {
        let r = opaas_engine::resolve(&settings, &req)?;
        let items = r.packages();
        let total: u64 = items.iter().map(|p| p.size).sum();
        Ok(json!({
            "distro": r.session.distro.id, "arch": req.arch,
            "count": items.len(), "total_size": total, "packages": items, "remove": r.result.remove,
        }))
    })
    .await?
    .map_err(from_engine)?;
    Ok(Json(out))
}

/// The plans of an upgrade request (issue 10): each collected host's `apt-get upgrade` (or
/// `dist-upgrade`), security updates first, and the bundle they make together.
fn upgrade_preview(
    settings: &opaas_engine::Settings,
    v: &crate::model::JobRequest,
) -> Result<Value, opaas_engine::EngineError> {
    let hosts =
        crate::request::collected_of(v.status_text.as_deref().unwrap_or("[]")).map_err(|m| {
            opaas_engine::EngineError::new(opaas_engine::Kind::BadInput, m).field("collected")
        })?;
    let planned = opaas_engine::plan::plan_fleet(
        settings,
        &v.engine_request(),
        &hosts,
        &opaas_engine::NoBuildProgress,
    )
    .map_err(|mut e| {
        if e.field == Some("from") {
            e.field = Some("collected");
        }
        e
    })?;
    let mut files = std::collections::BTreeMap::new();
    for (r, _) in &planned {
        for p in r.packages() {
            files.insert(p.filename.clone(), p.size);
        }
    }
    let plans: Vec<_> = planned.into_iter().map(|(_, p)| p).collect();
    Ok(json!({
        "mode": v.mode, "distro": v.distro, "arch": v.arch, "security_only": v.security_only,
        "count": files.len(), "total_size": files.values().sum::<u64>(), "hosts": plans,
    }))
}

// ---------------------------------------------------------------- jobs

async fn create_job(State(st): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let r = submit(&st, req).await;
    if r.is_err() {
        Metrics::add(&st.metrics.jobs_rejected, 1);
    }
    r
}

async fn submit(st: &AppState, req: Request) -> Result<Response, ApiError> {
    // parsed on the low-priority pool under a preview slot, kept until the job is stored
    let crate::uploads::Intake {
        valid: v,
        status_lines,
        permit: _permit,
        big: _big,
    } = crate::uploads::intake(st, req, true).await?;
    // the disk must not fill silently
    let dir = st.cfg.data_dir.clone();
    let free = blocking(move || crate::janitor::disk_free(&dir)).await?;
    if let Ok(free) = free {
        if free < st.cfg.min_free_bytes {
            return Err(ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "disk_full",
                format!(
                    "only {free} bytes are free in {} (the minimum is {}); delete old jobs or free space, then try again",
                    st.cfg.data_dir.display(),
                    st.cfg.min_free_bytes
                ),
            ));
        }
    }
    // an upgrade job: the plans now (a file whose packages the archive does not have is a
    // 400 here, not a failed job later); they are the job's `plan`
    let mut v = v;
    if !matches!(
        v.mode,
        crate::model::JobMode::Install | crate::model::JobMode::Locked
    ) {
        let settings = st.cfg.engine_settings();
        let v2 = v.clone();
        let preview = st
            .heavy
            .run(move || upgrade_preview(&settings, &v2))
            .await?
            .map_err(from_engine)?;
        v.plan = Some(json!({ "hosts": preview["hosts"] }));
    }
    // unknown names are refused now when the indices are at hand (else the job finds out)
    {
        let unis = Arc::clone(&st.universes);
        let v2 = v.clone();
        blocking(move || -> Result<(), opaas_engine::EngineError> {
            let Some(u) = unis.get(&v2.distro, &v2.arch, false)? else {
                return Ok(());
            };
            let mut reqs = Vec::with_capacity(v2.packages.len());
            for (i, p) in v2.packages.iter().enumerate() {
                reqs.push(opaas_resolve::Request::parse(p).map_err(|e| {
                    opaas_engine::EngineError::new(opaas_engine::Kind::BadInput, e.to_string())
                        .field("packages")
                        .index(i)
                })?);
            }
            opaas_engine::check_names(&u, &v2.distro, &v2.arch, &reqs)
        })
        .await?
        .map_err(from_engine)?;
    }
    let id = crate::model::new_id();
    let jobs = Arc::clone(&st.jobs);
    let cfg = Arc::clone(&st.cfg);
    let shared = st.db.shared();
    let job = blocking(move || {
        let mut v = v;
        // the upload lives outside the row (compressed, shared by digest); with several
        // replicas (a shared database) inside it, so that whichever replica runs the job reads it
        if let Some(t) = v.status_text.take() {
            if shared {
                v.status_text = Some(t);
            } else {
                let r = crate::uploads::store(&cfg, &t).map_err(|e| {
                    ApiError::internal(format!("cannot store the uploaded status file: {e}"))
                })?;
                v.status_text = Some(r);
            }
        }
        jobs.submit_blocking(&id, &v, status_lines)
            .map_err(ApiError::from)
    })
    .await??;
    tracing::info!(job = %job.id, distro = %job.distro, arch = %job.arch, packages = ?job.packages, "job queued");
    let mut r = (StatusCode::ACCEPTED, Json(&job)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/api/jobs/{}", job.id)) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Ok(r)
}

async fn list_jobs(State(st): State<AppState>, uri: Uri) -> Result<Json<Value>, ApiError> {
    let q = query(&uri)?;
    let page = number(&q, "page", 1, 1, 1_000_000)?;
    let per_page = number(&q, "per_page", 20, 1, 100)?;
    let offset = (page - 1).saturating_mul(per_page);
    let (mut items, total) = st.db.run(move |s| s.list(offset, per_page)).await?;
    // plans are long: a list shows the hosts, GET /api/jobs/{id} the plans
    for j in &mut items {
        j.plan = None;
    }
    for j in items.iter_mut() {
        if let Some(l) = st.jobs.live(&j.id) {
            *j = l.snapshot();
        }
    }
    Ok(Json(
        json!({"items": items, "total": total, "page": page, "per_page": per_page}),
    ))
}

async fn get_job(State(st): State<AppState>, JobId(id): JobId) -> Result<Json<Job>, ApiError> {
    Ok(Json(load_job(&st, &id).await?))
}

async fn cancel_job(State(st): State<AppState>, JobId(id): JobId) -> Result<Json<Job>, ApiError> {
    if !valid_id(&id) {
        return Err(ApiError::no_job(&id));
    }
    let jobs = Arc::clone(&st.jobs);
    let id2 = id.clone();
    let j = blocking(move || jobs.cancel_blocking(&id2, "cancelled by the user"))
        .await??
        .ok_or_else(|| ApiError::no_job(&id))?;
    tracing::info!(job = %id, state = j.state.as_str(), "cancel requested");
    Ok(Json(j))
}

async fn delete_job(State(st): State<AppState>, JobId(id): JobId) -> Result<StatusCode, ApiError> {
    if !valid_id(&id) {
        return Err(ApiError::no_job(&id));
    }
    let jobs = Arc::clone(&st.jobs);
    let id2 = id.clone();
    if blocking(move || jobs.delete_blocking(&id2)).await?? {
        tracing::info!(job = %id, "job deleted");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::no_job(&id))
    }
}

/// The collect script of patch bundles (issue 10): the admin runs it on the offline server
/// and uploads what it writes (`mode: upgrade`).
async fn collect_script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        opaas_engine::collect::COLLECT_SCRIPT,
    )
        .into_response()
}

async fn job_log(State(st): State<AppState>, JobId(id): JobId) -> Result<Response, ApiError> {
    load_job(&st, &id).await?;
    if st.db.shared() {
        // several replicas: the log is kept in the job store
        let id2 = id.clone();
        if let Some(lines) = st.db.run(move |s| s.log_since(&id2, 0)).await? {
            let mut text = String::new();
            for (_, l) in lines {
                text.push_str(&l);
                text.push('\n');
            }
            return Ok((
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                Body::from(text),
            )
                .into_response());
        }
    }
    let text = match tokio::fs::read(st.jobs.log_path(&id)).await {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(ApiError::internal(format!("cannot read the job log: {e}"))),
    };
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        Body::from(text),
    )
        .into_response())
}

async fn job_manifest(State(st): State<AppState>, JobId(id): JobId) -> Result<Response, ApiError> {
    done_job_file(&st, &id, "manifest.json", "manifest", "application/json").await
}

/// The bundle's CycloneDX 1.6 SBOM (`sbom.cdx.json`).
async fn job_sbom(State(st): State<AppState>, JobId(id): JobId) -> Result<Response, ApiError> {
    done_job_file(
        &st,
        &id,
        "sbom.cdx.json",
        "SBOM",
        "application/vnd.cyclonedx+json; version=1.6",
    )
    .await
}

/// A file the build of a done job left in `bundles/<id>/` (it stays after the tarball expires).
async fn done_job_file(
    st: &AppState,
    id: &str,
    name: &str,
    what: &str,
    content_type: &'static str,
) -> Result<Response, ApiError> {
    let job = load_job(st, id).await?;
    if job.state != crate::model::State::Done {
        return Err(ApiError::not_found(format!(
            "job {id} is {}: the {what} exists once the job is done",
            job.state.as_str()
        )));
    }
    let bundles = Arc::clone(&st.jobs.bundles);
    let (id2, name2) = (id.to_string(), name.to_string());
    let data = blocking(move || bundles.get_bytes(&id2, &name2))
        .await?
        .ok()
        .flatten()
        .ok_or_else(|| ApiError::not_found(format!("job {id} has no {what}")))?;
    Ok(([(header::CONTENT_TYPE, content_type)], Body::from(data)).into_response())
}

async fn job_bundle(
    State(st): State<AppState>,
    JobId(id): JobId,
    req: Request,
) -> Result<Response, ApiError> {
    let job = load_job(&st, &id).await?;
    let id2 = id.clone();
    let info = st.db.run(move |s| s.bundle_of(&id2)).await?;
    let Some((file, expired, expires_at)) = info else {
        return Err(ApiError::not_found(format!(
            "job {id} is {}: the bundle exists once the job is done",
            job.state.as_str()
        )));
    };
    let gone = || {
        ApiError::new(
            StatusCode::GONE,
            "gone",
            format!(
                "the bundle of job {id} expired at {}; run the job again",
                rfc3339(expires_at)
            ),
        )
    };
    if expired || expires_at <= now_ms() {
        return Err(gone());
    }
    let name =
        crate::files::safe_file_name(&file).ok_or_else(|| ApiError::internal("bad bundle name"))?;
    let mime = if name.ends_with(".zst") {
        "application/zstd"
    } else {
        "application/gzip"
    };
    // the store answers Range and If-Range (local: a file; S3: proxied or a presigned redirect)
    let Some(mut resp) = st
        .jobs
        .bundles
        .serve(&id, &name, req)
        .await
        .map_err(|e| ApiError::internal(format!("cannot send the bundle: {e}")))?
    else {
        return Err(gone());
    };
    let status = resp.status();
    let h = resp.headers_mut();
    if matches!(status, StatusCode::OK | StatusCode::PARTIAL_CONTENT) && resp_ok(h) {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    } else if status == StatusCode::RANGE_NOT_SATISFIABLE {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    }
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    Ok(resp)
}

/// Whether a ServeFile answer carries the file (not an error page of its own).
fn resp_ok(h: &HeaderMap) -> bool {
    h.contains_key(header::CONTENT_LENGTH) || h.contains_key(header::CONTENT_RANGE)
}

// ---------------------------------------------------------------- events

fn sse_json<T: serde::Serialize>(name: &str, v: &T) -> SseEvent {
    SseEvent::default()
        .event(name)
        .data(serde_json::to_string(v).unwrap_or_else(|_| "null".into()))
}

async fn job_events(State(st): State<AppState>, JobId(id): JobId) -> Result<Response, ApiError> {
    if !valid_id(&id) {
        return Err(ApiError::no_job(&id));
    }
    let live = st.jobs.live(&id);
    let (rx, first, backlog) = match live {
        Some(l) => {
            let (rx, j, lines) = tokio::task::spawn_blocking(move || l.subscribe_with_log())
                .await
                .map_err(|e| ApiError::internal(format!("reading the job log: {e}")))?;
            (Some(rx), j, lines)
        }
        None => {
            let id2 = id.clone();
            let (j, lines) = st
                .db
                .run(move |s| {
                    let j = s.get(&id2)?;
                    // several replicas: the story so far, from the store
                    let lines = match &j {
                        Some(j) if !j.state.is_terminal() => {
                            s.log_since(&id2, 0)?.unwrap_or_default()
                        }
                        _ => Vec::new(),
                    };
                    Ok((j, lines))
                })
                .await?;
            let j = j.ok_or_else(|| ApiError::no_job(&id))?;
            (None, j, lines)
        }
    };
    let (tx, out) = mpsc::channel::<SseEvent>(64);
    tokio::spawn(forward(
        first,
        backlog,
        rx,
        tx,
        st.shutdown.clone(),
        st.db.clone(),
        id,
    ));
    let stream = futures_util::stream::unfold(out, |mut r| async move {
        r.recv().await.map(|e| (Ok::<_, Infallible>(e), r))
    });
    let mut resp = Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response();
    resp.headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(resp)
}

/// Feeds one subscriber: the current state first, then (a running job) the log lines written
/// before it connected, then the job's events until `end`.
async fn forward(
    first: Job,
    backlog: Vec<(u64, String)>,
    rx: Option<broadcast::Receiver<jobs::Event>>,
    tx: mpsc::Sender<SseEvent>,
    mut shutdown: watch::Receiver<bool>,
    db: Store,
    id: String,
) {
    let first_ev = sse_json("state", &first).retry(Duration::from_secs(2));
    if tx.send(first_ev).await.is_err() {
        return;
    }
    if first.state.is_terminal() {
        let _ = tx.send(sse_json("end", &first)).await;
        return;
    }
    let mut seen = backlog.last().map_or(0, |(n, _)| *n);
    for (n, line) in backlog {
        if tx
            .send(sse_json("log", &json!({"line": line, "n": n})))
            .await
            .is_err()
        {
            return;
        }
    }
    let from_db = |db: Store, id: String| async move { db.run(move |s| s.get(&id)).await };
    let Some(mut rx) = rx else {
        // not live (a race with the job's end, or the job runs on another replica): follow
        // the database, and the log lines a shared store keeps
        let mut last = first;
        loop {
            tokio::select! {
                _ = tx.closed() => return,
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            let (id2, after) = (id.clone(), seen);
            let got = db
                .run(move |s| Ok((s.get(&id2)?, s.log_since(&id2, after)?)))
                .await;
            let Ok((Some(j), lines)) = got else {
                return;
            };
            for (n, line) in lines.unwrap_or_default() {
                seen = n;
                if tx
                    .send(sse_json("log", &json!({"line": line, "n": n})))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            if j != last {
                if tx.send(sse_json("state", &j)).await.is_err() {
                    return;
                }
                last = j;
            }
            if last.state.is_terminal() {
                // the worker logs its last lines right after the terminal state
                if db.shared() {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    let (id2, after) = (id.clone(), seen);
                    if let Ok(Some(lines)) = db.run(move |s| s.log_since(&id2, after)).await {
                        for (n, line) in lines {
                            let ev = sse_json("log", &json!({"line": line, "n": n}));
                            if tx.send(ev).await.is_err() {
                                return;
                            }
                        }
                    }
                }
                let _ = tx.send(sse_json("end", &last)).await;
                return;
            }
        }
    };
    loop {
        let ev = tokio::select! {
            _ = tx.closed() => return,
            _ = shutdown.changed() => return,
            r = rx.recv() => r,
        };
        let out = match ev {
            Ok(jobs::Event::State(j)) => sse_json("state", &j),
            Ok(jobs::Event::Progress(p)) => sse_json("progress", &p),
            Ok(jobs::Event::Log { line, n }) => sse_json("log", &json!({"line": line, "n": n})),
            Ok(jobs::Event::End(j)) => {
                let _ = tx.send(sse_json("end", &j)).await;
                return;
            }
            Err(broadcast::error::RecvError::Lagged(_)) => {
                // too slow a reader: skip to the current state
                match from_db(db.clone(), id.clone()).await {
                    Ok(Some(j)) => sse_json("state", &j),
                    _ => return,
                }
            }
            Err(broadcast::error::RecvError::Closed) => {
                if let Ok(Some(j)) = from_db(db.clone(), id.clone()).await {
                    let _ = tx.send(sse_json("state", &j)).await;
                    if j.state.is_terminal() {
                        let _ = tx.send(sse_json("end", &j)).await;
                    }
                }
                return;
            }
        };
        if tx.send(out).await.is_err() {
            return;
        }
    }
}

// ---------------------------------------------------------------- service

async fn openapi(State(st): State<AppState>) -> Json<Value> {
    Json(st.openapi.clone())
}

/// Healthy: the job database answered the health probe (its reader connection, so a busy
/// writer does not matter) within the last 3 s. Answered at once from the probe's last result
/// (health.rs): no thread hand-off, so it stays fast on a loaded machine.
async fn healthz(State(st): State<AppState>) -> Response {
    match st.health.status() {
        Ok(()) => Json(json!({"status": "ok"})).into_response(),
        Err(message) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "error", "message": message})),
        )
            .into_response(),
    }
}

async fn metrics(State(st): State<AppState>) -> Result<Response, ApiError> {
    // on this thread when the reader is free (no hand-off: fast under load), else on the pool
    let by_state = match st.db.try_count_by_state_here() {
        Some(r) => r?,
        None => {
            st.db
                .read(std::time::Duration::from_secs(5), |s| s.count_by_state())
                .await?
        }
    };
    let text = st
        .metrics
        .render(&by_state, st.cfg.workers, st.jobs.running());
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}
