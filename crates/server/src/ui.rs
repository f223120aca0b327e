//! The web UI (`web/dist`, built by `npm run build` in `web/` and committed), embedded in the
//! binary. The UI routes on the client (`/#/jobs/{id}`); `/jobs/{id}` and `/history` get
//! `index.html` too (the UI turns them into their `#` address), and any other unknown path gets
//! `index.html` with status 404 (the UI shows its not-found page; the API it calls does not depend
//! on the page's path). Hashed assets (`assets/name-<hash>.js`) are cached for a year; everything
//! else is revalidated.
//!
//! Scripts and stylesheets have gzip and brotli copies made at build time (`x.js.br`,
//! `x.js.gz`): a browser that accepts one gets it (`Content-Encoding`, `Vary: Accept-Encoding`).
//!
//! Release builds embed the files; debug builds read them from `web/dist` at run time. A
//! checkout without `web/dist` still builds (`allow_missing`) and serves a short page that
//! says so.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

#[derive(rust_embed::RustEmbed)]
#[folder = "../../web/dist"]
#[allow_missing = true]
struct Assets;

const MISSING: &str = "<!doctype html><html><head><meta charset=\"utf-8\"><title>OPaaS</title></head>\
<body><h1>OPaaS</h1><p>The web UI was not built into this binary (web/dist was missing when it was compiled). \
The API is at <a href=\"api/openapi.json\">/api/openapi.json</a>.</p></body></html>\n";

/// Whether a file name carries a content hash (`index-3f2a9c1b.js`, `logo.Bx8k2LmQ.svg`).
fn is_hashed(path: &str) -> bool {
    let path = path
        .strip_suffix(".gz")
        .or_else(|| path.strip_suffix(".br"))
        .unwrap_or(path);
    let name = path.rsplit('/').next().unwrap_or(path);
    let stem = match name.rsplit_once('.') {
        Some((s, _)) => s,
        None => return false,
    };
    // Vite: `name-HASH` with 8 characters of [A-Za-z0-9_-] (a '-' may be one of them)
    let b = stem.as_bytes();
    b.len() > 9
        && matches!(b[b.len() - 9], b'-' | b'.')
        && b[b.len() - 8..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')
}

/// Whether `Accept-Encoding` allows `coding` (listed, and not with `q=0`).
fn accepts(headers: &HeaderMap, coding: &str) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let name = parts.next().unwrap_or("");
            let zero = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            name.eq_ignore_ascii_case(coding) && !zero
        })
}

fn file_response(path: &str, method: &Method) -> Option<Response> {
    encoded_response(path, method, &HeaderMap::new())
}

/// The file at `path`, or its precompressed copy when the request accepts it.
fn encoded_response(path: &str, method: &Method, req: &HeaderMap) -> Option<Response> {
    let f = Assets::get(path)?;
    // the type of the file itself (not of its compressed copy)
    let mime = f.metadata.mimetype().to_string();
    let mime = mime.as_str();
    let has_copies = Assets::get(&format!("{path}.gz")).is_some();
    let (f, encoding) = ["br", "gzip"]
        .into_iter()
        .filter(|c| accepts(req, c))
        .find_map(|c| {
            let ext = if c == "gzip" { "gz" } else { c };
            Assets::get(&format!("{path}.{ext}")).map(|e| (e, Some(c)))
        })
        .unwrap_or((f, None));

    let mime = if mime.starts_with("text/") || mime == "application/javascript" {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_string()
    };
    let cache = if path.starts_with("assets/") && is_hashed(path) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        Body::from(f.data.into_owned())
    };
    let mut r = Response::new(body);
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&mime) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Some(c) = encoding {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(c));
    }
    if has_copies {
        h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", hex::encode(f.metadata.sha256_hash())))
    {
        h.insert(header::ETAG, v);
    }
    Some(r)
}

/// Whether `path` (without the leading `/`) is an address of a UI page: the root, `index.html`,
/// `jobs/{id}`, `history` or `patch`.
fn is_page(path: &str) -> bool {
    let p = path.strip_suffix('/').unwrap_or(path);
    if p.is_empty() || p == "index.html" || p == "history" || p == "patch" {
        return true;
    }
    match p.strip_prefix("jobs/") {
        Some(id) => !id.is_empty() && !id.contains('/'),
        None => false,
    }
}

/// `index.html` for the page at `path`. Below the root (`jobs/{id}`, `foo/bar`) its relative
/// addresses `="./…"` become `="../…"` (one `../` per level), so that they (`assets/…`, and with
/// them the API root the script derives from its own URL) point at the UI's root whatever the
/// page's path, also behind a proxy that mounts the service under a prefix. (Not a `<base>`:
/// the content security policy has `base-uri 'none'`.)
fn page_response(path: &str, method: &Method) -> Option<Response> {
    let depth = path.matches('/').count();
    let mut r = file_response("index.html", method)?;
    if depth == 0 || method == Method::HEAD {
        return Some(r);
    }
    let f = Assets::get("index.html")?;
    let html = String::from_utf8_lossy(&f.data);
    let html = html.replace("=\"./", &format!("=\"{}", "../".repeat(depth)));
    r.headers_mut().remove(header::ETAG);
    *r.body_mut() = Body::from(html);
    Some(r)
}

/// The fallback handler for every path that is not the API.
pub async fn serve(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let path = uri.path().trim_start_matches('/');
    if !path.is_empty() && !path.split('/').any(|c| c == "..") {
        if let Some(r) = encoded_response(path, &method, &headers) {
            return r;
        }
        // the UI refers to its assets relatively (`./assets/…`): a page opened under a deeper
        // path asks for `<path>/assets/…`
        if let Some(i) = path.rfind("assets/") {
            if let Some(r) = encoded_response(&path[i..], &method, &headers) {
                return r;
            }
            // a missing asset is a 404 (an HTML page instead would break the script loader)
            return (StatusCode::NOT_FOUND, "not found\n").into_response();
        }
    }
    if let Some(mut r) = page_response(path, &method) {
        if !is_page(path) {
            *r.status_mut() = StatusCode::NOT_FOUND;
        }
        return r;
    }
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        MISSING,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn hashed_names() {
        assert!(super::is_hashed("assets/index-3f2a9c1b.js"));
        assert!(super::is_hashed("assets/index-BqkI_x0Z.css"));
        assert!(super::is_hashed("assets/index-BqkI_x0Z.css.br"));
        assert!(super::is_hashed("assets/index-DoUhxj-N.js"));
        assert!(!super::is_hashed("assets/favicon.svg"));
        assert!(!super::is_hashed("index.html"));
    }

    #[test]
    fn accept_encoding() {
        use axum::http::{header, HeaderMap, HeaderValue};
        let h = |v: &'static str| {
            let mut m = HeaderMap::new();
            m.insert(header::ACCEPT_ENCODING, HeaderValue::from_static(v));
            m
        };
        assert!(super::accepts(&h("gzip, deflate, br, zstd"), "br"));
        assert!(super::accepts(&h("gzip;q=0.5"), "gzip"));
        assert!(!super::accepts(&h("gzip, br;q=0"), "br"));
        assert!(!super::accepts(&h("identity"), "gzip"));
        assert!(!super::accepts(&HeaderMap::new(), "gzip"));
    }

    #[test]
    fn pages() {
        for p in [
            "",
            "index.html",
            "history",
            "history/",
            "patch",
            "jobs/abc",
            "jobs/abc/",
        ] {
            assert!(super::is_page(p), "{p}");
        }
        for p in [
            "foo", "foo/bar", "jobs", "jobs/", "jobs/a/b", "historyx", "patchx", "api2",
        ] {
            assert!(!super::is_page(p), "{p}");
        }
    }
}
