//! API errors: `{"error": {"code", "message", "field", "index", "package", "suggestions"}}` with
//! the status codes of docs/API.md, built from the typed fields of the engine's errors (nothing
//! is read back out of a message).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use opaas_engine::{EngineError, Kind};

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// The request field (`distro`, `packages[2]`, `baseline`, …).
    pub field: Option<String>,
    /// The entry of the request's `packages` list the error is about (0-based).
    pub index: Option<u32>,
    /// The package the error is about (boxed: keeps `Result<_, ApiError>` under clippy's
    /// large-`Err` size).
    pub package: Option<Box<str>>,
    pub suggestions: Vec<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            index: None,
            package: None,
            suggestions: Vec::new(),
        }
    }
    pub fn field(mut self, f: impl Into<String>) -> ApiError {
        self.field = Some(f.into());
        self
    }
    /// The error is about entry `i` of `packages`: sets `index` and the field `packages[i]`.
    pub fn index(mut self, i: usize) -> ApiError {
        self.index = u32::try_from(i).ok();
        self.field = Some(format!("packages[{i}]"));
        self
    }
    pub fn package(mut self, p: impl Into<String>) -> ApiError {
        self.package = Some(p.into().into_boxed_str());
        self
    }
    pub fn suggestions(mut self, s: Vec<String>) -> ApiError {
        self.suggestions = s;
        self
    }
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
    pub fn no_job(id: &str) -> ApiError {
        let shown: String = id.chars().take(64).collect();
        ApiError::not_found(format!("no job '{shown}'"))
    }

    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({"error": {
            "code": self.code,
            "message": self.message,
            "field": self.field,
            "index": self.index,
            "package": self.package,
            "suggestions": self.suggestions,
        }})
    }
}

impl IntoResponse for ApiError {
    fn into_response(mut self) -> Response {
        // never echo unbounded input or a huge explanation (issue 16)
        self.message = crate::caps::message(&self.message);
        self.suggestions.truncate(crate::caps::MAX_SUGGESTIONS);
        if let Some(f) = self.field.as_mut() {
            *f = f.chars().take(crate::caps::MAX_FIELD_CHARS).collect();
        }
        if self.status.is_server_error() {
            tracing::warn!(code = self.code, status = %self.status, "{}", self.message);
        }
        let mut r = (self.status, axum::Json(self.body())).into_response();
        r.headers_mut().insert(
            axum::http::header::CACHE_CONTROL,
            axum::http::HeaderValue::from_static("no-store"),
        );
        r
    }
}

impl From<crate::db::DbError> for ApiError {
    fn from(e: crate::db::DbError) -> Self {
        if e.is_unreachable() {
            // a shared database that is away (restarting): the client may try again
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "internal",
                format!("{e}; try again in a moment"),
            );
        }
        ApiError::internal(e.to_string())
    }
}

/// The API code and status of an engine error kind (and its field).
pub fn engine_code(e: &EngineError) -> (StatusCode, &'static str) {
    match e.kind {
        Kind::BadInput => match e.field {
            Some("distro") => (StatusCode::BAD_REQUEST, "unknown_distro"),
            Some("arch") => (StatusCode::BAD_REQUEST, "unknown_arch"),
            Some("baseline") => (StatusCode::BAD_REQUEST, "bad_status_file"),
            // an upgrade job's collected files (issue 10)
            Some("collected") | Some("from") => (StatusCode::BAD_REQUEST, "bad_collected_file"),
            // the name parsed (we check syntax first): an unknown version, suite or arch of it
            Some("packages") => (StatusCode::BAD_REQUEST, "unknown_package"),
            // the service's own mirror configuration does not cover this target
            Some("mirror") => (StatusCode::BAD_GATEWAY, "no_mirror"),
            Some("config") => (StatusCode::BAD_GATEWAY, "mirror_unreachable"),
            _ => (StatusCode::BAD_REQUEST, "bad_request"),
        },
        Kind::UnknownPackage => (StatusCode::BAD_REQUEST, "unknown_package"),
        Kind::Unsatisfiable => (StatusCode::UNPROCESSABLE_ENTITY, "unsatisfiable"),
        Kind::Trust => (StatusCode::BAD_GATEWAY, "trust_failure"),
        Kind::Network | Kind::NotCached => (StatusCode::BAD_GATEWAY, "mirror_unreachable"),
        Kind::DiskFull => (StatusCode::INSUFFICIENT_STORAGE, "disk_full"),
        Kind::Cancelled => (StatusCode::CONFLICT, "cancelled"),
        Kind::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    }
}

/// The message of an engine error for the user. A target this server has no mirror for is
/// the administrator's business: the user reads "this server has no mirror for …; ask the
/// administrator", the flags and settings that would fix it go to the server's log.
pub fn public_message(e: &EngineError) -> String {
    if e.kind != Kind::BadInput || e.field != Some("mirror") {
        return e.message.clone();
    }
    tracing::warn!(target: "opaas::mirror", "{}", e.message);
    let target = e
        .message
        .split_once(" configured for ")
        .and_then(|(_, rest)| rest.split_once(". Set one of"))
        .map(|(t, _)| t);
    match target {
        Some(t) => format!("this server has no mirror for {t}; ask the administrator"),
        None => {
            "this server's mirror configuration cannot serve this target; ask the administrator"
                .to_string()
        }
    }
}

/// An engine error as an API error: its typed entry index, package and suggestions become the
/// body's `index` (with `field` `packages[i]`), `package` and `suggestions`.
pub fn from_engine(e: EngineError) -> ApiError {
    let (status, code) = engine_code(&e);
    let message = public_message(&e);
    let field = match (e.index, e.field) {
        (Some(i), None | Some("packages")) => Some(format!("packages[{i}]")),
        (_, f) => f.map(str::to_string),
    };
    ApiError {
        status,
        code,
        message,
        field,
        index: e.index,
        package: e.package.map(String::into_boxed_str),
        suggestions: e.suggestions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_name_the_entry() {
        let mut e = EngineError::new(
            Kind::UnknownPackage,
            "unknown package 'helo' for debian-12 amd64; did you mean: hello?",
        )
        .field("packages")
        .index(1)
        .package("helo");
        e.suggestions = vec!["hello".into()];
        let a = from_engine(e);
        assert_eq!(a.status, StatusCode::BAD_REQUEST);
        assert_eq!(a.code, "unknown_package");
        assert_eq!(a.field.as_deref(), Some("packages[1]"));
        assert_eq!(a.index, Some(1));
        assert_eq!(a.package.as_deref(), Some("helo"));
        assert_eq!(a.suggestions, vec!["hello".to_string()]);
        let body = a.body();
        assert_eq!(body["error"]["index"], 1);
        assert_eq!(body["error"]["field"], "packages[1]");
        assert_eq!(body["error"]["package"], "helo");
        // an index without a field still names the entry; other fields stay as they are
        let i = from_engine(EngineError::new(Kind::Unsatisfiable, "x").index(0));
        assert_eq!(
            (i.field.as_deref(), i.index, i.status),
            (
                Some("packages[0]"),
                Some(0),
                StatusCode::UNPROCESSABLE_ENTITY
            )
        );
        let b = from_engine(EngineError::new(Kind::BadInput, "bad").field("baseline"));
        assert_eq!((b.field.as_deref(), b.index), (Some("baseline"), None));
        assert_eq!(b.body()["error"]["index"], serde_json::Value::Null);
        let n = from_engine(EngineError::new(Kind::Network, "down"));
        assert_eq!(
            (n.status, n.code),
            (StatusCode::BAD_GATEWAY, "mirror_unreachable")
        );
        // no mirror: the user is sent to the administrator, the flags stay in the log
        let m = from_engine(
            EngineError::new(
                Kind::BadInput,
                "no ubuntu-ports archive mirror configured for ubuntu-24.04 arm64. Set one of: --mirror, OPAAS_MIRROR_UBUNTU_PORTS",
            )
            .field("mirror"),
        );
        assert_eq!((m.status, m.code), (StatusCode::BAD_GATEWAY, "no_mirror"));
        assert_eq!(
            m.message,
            "this server has no mirror for ubuntu-24.04 arm64; ask the administrator"
        );
        let d = from_engine(EngineError::new(Kind::DiskFull, "full"));
        assert_eq!(d.status, StatusCode::INSUFFICIENT_STORAGE);
    }
}
