//! The body of `POST /api/resolve` and `POST /api/jobs`, checked field by field before anything
//! is stored or resolved: every problem is a 4xx naming the field. Package requests go through
//! the resolver's own parser (Debian policy names, `pkg=VER`, `pkg/SUITE`, `pkg:ARCH`); nothing
//! here or later hands user input to a shell.

use crate::error::ApiError;
use crate::model::{BaselineKind, BundleFormat, JobMode, JobRequest};
use axum::http::StatusCode;
use opaas_engine::collect::{CollectError, Collected};
use opaas_repo::catalog;
use serde_json::Value;

/// Limits the checks enforce.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_packages: usize,
    pub max_status_bytes: usize,
}

const MAX_REQUEST_LEN: usize = 256;
const KNOWN: [&str; 10] = [
    "distro",
    "arch",
    "packages",
    "recommends",
    "baseline",
    "format",
    "mode",
    "collected",
    "security_only",
    "lock",
];

/// The most collected files one upgrade job takes (a fleet).
pub const MAX_HOSTS: usize = 50;

/// Parses a JSON body (bytes as received).
pub fn parse_body(body: &[u8], limits: Limits) -> Result<JobRequest, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "the body must be a JSON object: {\"distro\", \"arch\", \"packages\", …}",
        ));
    }
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))?;
    check(&v, limits)
}

/// Checks a parsed body.
pub fn check(v: &Value, limits: Limits) -> Result<JobRequest, ApiError> {
    let Some(obj) = v.as_object() else {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    };
    if let Some(k) = obj.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        let shown: String = k.chars().take(64).collect();
        return Err(ApiError::bad_request(format!(
            "unknown field '{shown}'; the fields are: {}",
            KNOWN.join(", ")
        ))
        .field(shown));
    }
    if obj.get("lock").is_some_and(|v| !v.is_null()) {
        return check_locked(obj, limits);
    }
    let mode = match obj.get("mode") {
        None | Some(Value::Null) => JobMode::Install,
        Some(Value::String(s)) => JobMode::parse(s).ok_or_else(|| {
            ApiError::bad_request("mode must be \"install\", \"upgrade\" or \"full-upgrade\"")
                .field("mode")
        })?,
        Some(_) => {
            return Err(ApiError::bad_request(
                "mode must be \"install\", \"upgrade\" or \"full-upgrade\"",
            )
            .field("mode"))
        }
    };
    if mode == JobMode::Locked {
        return Err(ApiError::bad_request(
            "mode \"locked\" needs \"lock\": the text of an opaas.lock (opaas lock)",
        )
        .field("lock"));
    }
    if mode != JobMode::Install {
        return check_upgrade(obj, mode, limits);
    }
    for k in ["collected", "security_only"] {
        if obj.get(k).is_some_and(|v| !v.is_null()) {
            return Err(ApiError::bad_request(format!(
                "{k} applies to \"mode\": \"upgrade\" or \"full-upgrade\""
            ))
            .field(k));
        }
    }
    // distro
    let all_ids = || catalog::distros().iter().map(|d| d.id.clone()).collect();
    let distro_s = match obj.get("distro") {
        Some(Value::String(s)) => s.as_str(),
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "unknown_distro",
                "distro must be a string such as \"debian-12\"",
            )
            .field("distro")
            .suggestions(all_ids()))
        }
        None => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "unknown_distro",
                "distro is required",
            )
            .field("distro")
            .suggestions(all_ids()))
        }
    };
    // an unknown value is not echoed whole (issue 16)
    let too_long = |s: &str| s.len() > crate::caps::MAX_FIELD_CHARS;
    if too_long(distro_s) {
        return Err(
            ApiError::new(StatusCode::BAD_REQUEST, "unknown_distro", "no such distro")
                .field("distro")
                .suggestions(all_ids()),
        );
    }
    let distro = catalog::find(distro_s).map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, "unknown_distro", e.to_string())
            .field("distro")
            .suggestions(all_ids())
    })?;
    // arch
    let arches = || {
        distro
            .all_architectures()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let arch = match obj.get("arch") {
        None | Some(Value::Null) => "amd64".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "unknown_arch",
                "arch must be a string such as \"amd64\"",
            )
            .field("arch")
            .suggestions(arches()))
        }
    };
    if too_long(&arch) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "unknown_arch",
            "no such architecture",
        )
        .field("arch")
        .suggestions(arches()));
    }
    distro.check_arch(&arch).map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, "unknown_arch", e.to_string())
            .field("arch")
            .suggestions(arches())
    })?;
    // packages
    let list = match obj.get("packages") {
        Some(Value::Array(a)) if !a.is_empty() => a,
        Some(Value::Array(_)) => {
            return Err(
                ApiError::bad_request("packages must be a non-empty list").field("packages")
            )
        }
        _ => {
            return Err(ApiError::bad_request(
                "packages is required: a list of package requests (pkg, pkg=VERSION, pkg/SUITE, pkg:ARCH)",
            )
            .field("packages"))
        }
    };
    let packages = package_entries(list, limits, distro)?;
    // recommends
    let recommends = match obj.get("recommends") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(
                ApiError::bad_request("recommends must be true or false").field("recommends")
            )
        }
    };
    // baseline
    let baseline_err = || {
        ApiError::bad_request(
            "baseline must be \"minimal\", \"none\" or {\"status\": \"<text of /var/lib/dpkg/status>\"}",
        )
        .field("baseline")
    };
    let (baseline, status_text) = match obj.get("baseline") {
        None | Some(Value::Null) => (BaselineKind::Minimal, None),
        Some(Value::String(s)) if s == "minimal" => (BaselineKind::Minimal, None),
        Some(Value::String(s)) if s == "none" => (BaselineKind::None, None),
        Some(Value::Object(o)) => {
            if o.keys().any(|k| k != "status") {
                return Err(baseline_err());
            }
            let Some(Value::String(text)) = o.get("status") else {
                return Err(baseline_err());
            };
            check_status(text, &arch, limits)?;
            (BaselineKind::Status, Some(text.clone()))
        }
        Some(_) => return Err(baseline_err()),
    };
    // format
    let format = format_of(obj)?;
    Ok(JobRequest {
        distro: distro.id.clone(),
        arch,
        packages,
        recommends,
        baseline,
        status_text,
        format,
        mode,
        security_only: false,
        hosts: Vec::new(),
        plan: None,
    })
}

/// A bad collected file (`collected[i]`): 413 when too large, else 400.
fn bad_collected(i: usize, e: &CollectError) -> ApiError {
    let status = match e {
        CollectError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        _ => StatusCode::BAD_REQUEST,
    };
    ApiError::new(
        status,
        "bad_collected_file",
        format!("collected file {}: {e}", i + 1),
    )
    .index(i)
    .field(format!("collected[{i}]"))
}

/// An upgrade job: `{"mode": "upgrade"|"full-upgrade", "collected": ["<file the collect script
/// wrote>", …], "security_only", "packages" (optional), "recommends", "format"}`. The distro
/// and architecture are the collected files' (all alike); given, they must match.
fn check_upgrade(
    obj: &serde_json::Map<String, Value>,
    mode: JobMode,
    limits: Limits,
) -> Result<JobRequest, ApiError> {
    let list = match obj.get("collected") {
        Some(Value::Array(a)) if !a.is_empty() => a,
        _ => {
            return Err(ApiError::bad_request(
                "collected is required in upgrade modes: a list of the files the collect script wrote (GET /api/collect-script), one per host",
            )
            .field("collected"))
        }
    };
    if list.len() > MAX_HOSTS {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_collected_file",
            format!(
                "at most {MAX_HOSTS} collected files per job (got {})",
                list.len()
            ),
        )
        .field("collected"));
    }
    let mut texts = Vec::with_capacity(list.len());
    let mut hosts: Vec<(String, Collected)> = Vec::with_capacity(list.len());
    for (i, v) in list.iter().enumerate() {
        let Some(t) = v.as_str() else {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_collected_file",
                "each collected file must be a string (the file's text)",
            )
            .index(i)
            .field(format!("collected[{i}]")));
        };
        if t.len() > limits.max_status_bytes {
            return Err(bad_collected(
                i,
                &CollectError::TooLarge {
                    size: t.len(),
                    limit: limits.max_status_bytes,
                },
            ));
        }
        let c = Collected::parse(t.as_bytes()).map_err(|e| bad_collected(i, &e))?;
        hosts.push((format!("collected file {}", i + 1), c));
        texts.push(t.to_string());
    }
    opaas_engine::plan::check_fleet(&hosts).map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_collected_file", e.message).field("collected")
    })?;
    let first = &hosts[0].1;
    for (k, want) in [("distro", &first.distro), ("arch", &first.arch)] {
        match obj.get(k) {
            None | Some(Value::Null) => {}
            Some(Value::String(s))
                if k == "distro" && catalog::find(s).is_ok_and(|d| &d.id == want) => {}
            Some(Value::String(s)) if s == want => {}
            Some(_) => {
                return Err(ApiError::bad_request(format!(
                    "{k} does not match the collected files ({want}); leave it out in upgrade modes"
                ))
                .field(k))
            }
        }
    }
    let packages = match obj.get("packages") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => {
            let distro = catalog::find(&first.distro).map_err(|e| {
                ApiError::new(StatusCode::BAD_REQUEST, "bad_collected_file", e.to_string())
                    .field("collected")
            })?;
            package_entries(a, limits, distro)?
        }
        Some(_) => return Err(ApiError::bad_request("packages must be a list").field("packages")),
    };
    let flag = |k: &'static str, default: bool| match obj.get(k) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(ApiError::bad_request(format!("{k} must be true or false")).field(k)),
    };
    let recommends = flag("recommends", true)?;
    let security_only = flag("security_only", false)?;
    let format = format_of(obj)?;
    if obj.get("baseline").is_some_and(|v| !v.is_null()) {
        return Err(ApiError::bad_request(
            "baseline does not apply in upgrade modes: the collected files are the baseline",
        )
        .field("baseline"));
    }
    Ok(JobRequest {
        distro: first.distro.clone(),
        arch: first.arch.clone(),
        packages,
        recommends,
        baseline: BaselineKind::Status,
        status_text: Some(serde_json::to_string(&texts).unwrap_or_default()),
        format,
        mode,
        security_only,
        hosts: hosts.iter().map(|(_, c)| c.hostname.clone()).collect(),
        plan: None,
    })
}

/// A locked job: `{"lock": "<text of an opaas.lock>", "format"}` (and `"mode": "locked"`,
/// optional): `opaas build --locked` as a job. The lockfile names the target, the request and
/// every package; nothing else may be given.
fn check_locked(
    obj: &serde_json::Map<String, Value>,
    limits: Limits,
) -> Result<JobRequest, ApiError> {
    let bad_lock = |m: String| ApiError::new(StatusCode::BAD_REQUEST, "bad_lock", m).field("lock");
    let Some(text) = obj.get("lock").and_then(Value::as_str) else {
        return Err(bad_lock(
            "lock must be a string: the text of an opaas.lock (opaas lock)".into(),
        ));
    };
    if text.len() > limits.max_status_bytes {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "bad_lock",
            format!(
                "the lockfile has {} bytes; at most {} are accepted",
                text.len(),
                limits.max_status_bytes
            ),
        )
        .field("lock"));
    }
    match obj.get("mode") {
        None | Some(Value::Null) => {}
        Some(Value::String(m)) if m == "locked" || m == "install" => {}
        Some(_) => {
            return Err(
                ApiError::bad_request("a lockfile builds with \"mode\": \"locked\"").field("mode"),
            )
        }
    }
    for k in [
        "distro",
        "arch",
        "packages",
        "recommends",
        "baseline",
        "collected",
        "security_only",
    ] {
        if obj.get(k).is_some_and(|v| !v.is_null()) {
            return Err(ApiError::bad_request(format!(
                "{k} comes from the lockfile; leave it out when \"lock\" is given"
            ))
            .field(k));
        }
    }
    let lock = opaas_engine::parse_lock(text).map_err(|e| bad_lock(e.message))?;
    let distro = catalog::find(&lock.target.distro).map_err(|e| {
        bad_lock(format!(
            "the lockfile's target: {e}; write it again with this opaas"
        ))
    })?;
    if !distro.all_architectures().any(|a| a == lock.target.arch) {
        return Err(bad_lock(format!(
            "the lockfile's architecture '{}' is not one of {}'s",
            lock.target.arch, distro.id
        )));
    }
    if lock.packages.is_empty() {
        return Err(bad_lock("the lockfile lists no package".into()));
    }
    let format = format_of(obj)?;
    Ok(JobRequest {
        distro: distro.id.clone(),
        arch: lock.target.arch.clone(),
        packages: lock.request.packages.clone(),
        recommends: lock.options.recommends,
        baseline: match lock.options.baseline.as_str() {
            "minimal" => BaselineKind::Minimal,
            "none" => BaselineKind::None,
            _ => BaselineKind::Status,
        },
        status_text: Some(text.to_string()),
        format,
        mode: JobMode::Locked,
        security_only: false,
        hosts: Vec::new(),
        plan: None,
    })
}

/// The entries of a `packages` list, each checked (at most `max_packages`, strings of at most
/// MAX_REQUEST_LEN characters in apt's request forms, architectures `distro` has); trimmed.
fn package_entries(
    list: &[Value],
    limits: Limits,
    distro: &catalog::Distro,
) -> Result<Vec<String>, ApiError> {
    let arches = || distro.all_architectures().map(str::to_string).collect();
    if list.len() > limits.max_packages {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "too_many_packages",
            format!(
                "at most {} packages per request (got {})",
                limits.max_packages,
                list.len()
            ),
        )
        .field("packages"));
    }
    let mut packages = Vec::with_capacity(list.len());
    for (i, p) in list.iter().enumerate() {
        let Some(s) = p.as_str() else {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_package_name",
                "each package request must be a string",
            )
            .index(i));
        };
        let s = s.trim();
        if s.len() > MAX_REQUEST_LEN {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_package_name",
                format!("a package request is at most {MAX_REQUEST_LEN} characters"),
            )
            .index(i));
        }
        let r = opaas_resolve::Request::parse(s).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_package_name",
                e.to_string(),
            )
            .index(i)
        })?;
        if let Some(a) = &r.arch {
            if a != "all" && a != "any" && a != "native" && distro.check_arch(a).is_err() {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "unknown_arch",
                    format!("{} has no architecture '{a}' (in '{s}')", distro.id),
                )
                .index(i)
                .package(r.name.clone())
                .suggestions(arches()));
            }
        }
        packages.push(s.to_string());
    }
    Ok(packages)
}

/// The body's `format` (default tar.gz).
fn format_of(obj: &serde_json::Map<String, Value>) -> Result<BundleFormat, ApiError> {
    match obj.get("format") {
        None | Some(Value::Null) => Some(BundleFormat::TarGz),
        Some(Value::String(s)) => BundleFormat::parse(s),
        Some(_) => None,
    }
    .ok_or_else(|| {
        ApiError::bad_request("format must be \"tar.gz\" or \"tar.zst\"").field("format")
    })
}

/// The collected files of an upgrade job's stored text (a JSON list), read again.
pub fn collected_of(stored: &str) -> Result<Vec<(String, Collected)>, String> {
    let texts: Vec<String> = serde_json::from_str(stored)
        .map_err(|e| format!("the job's collected files cannot be read: {e}"))?;
    texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            Collected::parse(t.as_bytes())
                .map(|c| (format!("collected file {}", i + 1), c))
                .map_err(|e| format!("collected file {}: {e}", i + 1))
        })
        .collect()
}

/// An uploaded dpkg status file: bounded, text, with at least one installed package.
fn check_status(text: &str, arch: &str, limits: Limits) -> Result<(), ApiError> {
    let bad = |status: StatusCode, m: String| {
        ApiError::new(status, "bad_status_file", m).field("baseline")
    };
    if text.len() > limits.max_status_bytes {
        return Err(bad(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the status file is {} bytes; at most {} are accepted",
                text.len(),
                limits.max_status_bytes
            ),
        ));
    }
    if text.contains('\0') {
        return Err(bad(
            StatusCode::BAD_REQUEST,
            "the status file contains NUL bytes; upload /var/lib/dpkg/status as text".into(),
        ));
    }
    let b = opaas_resolve::Baseline::from_status(text, arch);
    if b.packages.is_empty() {
        return Err(bad(
            StatusCode::BAD_REQUEST,
            "the status file has no installed package (expected stanzas with 'Status: install ok installed')".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Limits = Limits {
        max_packages: 3,
        max_status_bytes: 1000,
    };

    fn err(body: &str) -> ApiError {
        match parse_body(body.as_bytes(), L) {
            Ok(v) => panic!("accepted {body}: {v:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn good_requests() {
        let v = parse_body(
            br#"{"distro":"bookworm","arch":"arm64","packages":["nginx"," htop=1.0 ","jq/bookworm-backports","gcc:amd64"]}"#,
            Limits {
                max_packages: 10,
                max_status_bytes: 10,
            },
        )
        .expect("ok");
        assert_eq!(v.distro, "debian-12");
        assert_eq!(v.packages[1], "htop=1.0");
        assert!(v.recommends);
        assert_eq!(
            (v.baseline, v.format),
            (BaselineKind::Minimal, BundleFormat::TarGz)
        );
        let status =
            "Package: bash\nStatus: install ok installed\nVersion: 5.2\nArchitecture: amd64\n";
        let body = serde_json::json!({"distro":"debian-12","packages":["jq"],"baseline":{"status":status},"recommends":false,"format":"tar.zst"});
        let v = check(&body, L).expect("status ok");
        assert_eq!(
            (v.baseline, v.format),
            (BaselineKind::Status, BundleFormat::TarZst)
        );
        assert!(!v.recommends);
        assert!(matches!(
            v.engine_request().baseline,
            opaas_engine::Baseline::StatusText(_)
        ));
    }

    #[test]
    fn bad_requests_name_the_field() {
        let e = err("");
        assert_eq!(e.code, "bad_request");
        let e = err("{nope");
        assert_eq!(e.code, "bad_request");
        let e = err("[1]");
        assert_eq!(e.code, "bad_request");
        let e = err(r#"{"distro":"windows-11","packages":["a1"]}"#);
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("unknown_distro", Some("distro"))
        );
        assert!(e.suggestions.contains(&"debian-12".to_string()));
        let e = err(r#"{"distro":"debian-12","arch":"sparc","packages":["a1"]}"#);
        assert_eq!((e.code, e.field.as_deref()), ("unknown_arch", Some("arch")));
        let e = err(r#"{"distro":"debian-12","packages":[]}"#);
        assert_eq!(e.field.as_deref(), Some("packages"));
        let e = err(r#"{"distro":"debian-12","packages":["a1","b1","c1","d1"]}"#);
        assert_eq!(e.code, "too_many_packages");
        let e = err(r#"{"distro":"debian-12","packages":["ok1","bad;rm -rf /"]}"#);
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("invalid_package_name", Some("packages[1]"))
        );
        let e = err(r#"{"distro":"debian-12","packages":["Nginx"]}"#);
        assert_eq!(e.code, "invalid_package_name");
        let e = err(r#"{"distro":"debian-12","packages":[7]}"#);
        assert_eq!(e.code, "invalid_package_name");
        let e = err(r#"{"distro":"debian-12","packages":["jq:sparc"]}"#);
        assert_eq!(e.code, "unknown_arch");
        let e = err(r#"{"distro":"debian-12","packages":["jq"],"recommends":"yes"}"#);
        assert_eq!(e.field.as_deref(), Some("recommends"));
        let e = err(r#"{"distro":"debian-12","packages":["jq"],"baseline":"full"}"#);
        assert_eq!(e.field.as_deref(), Some("baseline"));
        let e = err(r#"{"distro":"debian-12","packages":["jq"],"baseline":{"status":"garbage"}}"#);
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("bad_status_file", Some("baseline"))
        );
        let big = format!(
            r#"{{"distro":"debian-12","packages":["jq"],"baseline":{{"status":"{}"}}}}"#,
            "x".repeat(2000)
        );
        let e = err(&big);
        assert_eq!(
            (e.status, e.code),
            (StatusCode::PAYLOAD_TOO_LARGE, "bad_status_file")
        );
        let e = err(r#"{"distro":"debian-12","packages":["jq"],"format":"zip"}"#);
        assert_eq!(e.field.as_deref(), Some("format"));
        let e = err(r#"{"distro":"debian-12","packages":["jq"],"colour":"red"}"#);
        assert_eq!(e.field.as_deref(), Some("colour"));
    }
}
