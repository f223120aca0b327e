//! The API in-process (tower `oneshot` on the router, workers on the test's runtime) against a
//! fixture archive on 127.0.0.1: bad input, catalog, preview, retention, graceful restart; one
//! focused test each, every one on its own service and data directory (`started`).

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use opaas_server::Service;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tower::ServiceExt;

struct App {
    svc: Service,
    router: axum::Router,
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {} {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// An API error with this status and code; returns the error object.
    fn error(&self, status: u16, code: &str) -> Value {
        assert_eq!(self.status.as_u16(), status, "{}", self.text());
        let e = self.json()["error"].clone();
        assert_eq!(e["code"], code, "{e}");
        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(e["suggestions"].is_array());
        e
    }
}

impl App {
    async fn start(cfg: opaas_server::ServerConfig) -> App {
        let svc = Service::start(cfg).await.expect("start");
        let router = svc.router();
        App { svc, router }
    }

    async fn call(&self, method: Method, uri: &str, body: Option<Vec<u8>>) -> Reply {
        self.call_with(method, uri, body, &[]).await
    }
    async fn call_with(
        &self,
        method: Method,
        uri: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut b = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        if body.is_some() {
            b = b.header("content-type", "application/json");
        }
        let req = b
            .body(body.map(Body::from).unwrap_or_else(Body::empty))
            .expect("request");
        let resp = self.router.clone().oneshot(req).await.expect("infallible");
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .expect("body")
            .to_vec();
        Reply {
            status,
            headers,
            body,
        }
    }
    async fn get(&self, uri: &str) -> Reply {
        self.call(Method::GET, uri, None).await
    }
    async fn post(&self, uri: &str, v: &Value) -> Reply {
        self.call(
            Method::POST,
            uri,
            Some(serde_json::to_vec(v).expect("json")),
        )
        .await
    }
    async fn wait(&self, id: &str) -> Value {
        let t0 = Instant::now();
        loop {
            let j = self.get(&format!("/api/jobs/{id}")).await.json();
            if ["done", "failed", "cancelled"].contains(&j["state"].as_str().unwrap_or("")) {
                return j;
            }
            assert!(t0.elapsed() < Duration::from_secs(120), "stuck: {j}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn files(dir: &std::path::Path) -> Vec<String> {
    common::files_under(dir)
}

/// A service on a fresh data directory over the fixture archive; `edit` adjusts its config.
async fn started(
    edit: impl FnOnce(&mut opaas_server::ServerConfig),
) -> (common::Fixture, tempfile::TempDir, App) {
    let fx = common::fixture();
    let data = tempfile::tempdir().expect("data");
    let mut cfg = common::config(&fx, data.path());
    edit(&mut cfg);
    let app = App::start(cfg).await;
    (fx, data, app)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_submissions_are_4xx_named_and_nothing_is_stored() {
    let (_fx, data, app) = started(|cfg| {
        cfg.max_packages = 5;
        cfg.max_body_bytes = 64 << 10;
    })
    .await;
    // warm the indices (a search loads them), so that unknown names are refused at submit
    let s = app
        .get("/api/packages?distro=debian-12&arch=amd64&q=hello")
        .await;
    assert_eq!(s.status, 200, "{}", s.text());
    let cases: Vec<(Vec<u8>, u16, &str, Option<&str>)> = vec![
        (b"".to_vec(), 400, "bad_request", None),
        (b"{not json".to_vec(), 400, "bad_request", None),
        (b"[1,2]".to_vec(), 400, "bad_request", None),
        (
            br#"{"distro":"windows-11","packages":["hello"]}"#.to_vec(),
            400,
            "unknown_distro",
            Some("distro"),
        ),
        (
            br#"{"packages":["hello"]}"#.to_vec(),
            400,
            "unknown_distro",
            Some("distro"),
        ),
        (
            br#"{"distro":"debian-12","arch":"sparc","packages":["hello"]}"#.to_vec(),
            400,
            "unknown_arch",
            Some("arch"),
        ),
        (
            br#"{"distro":"debian-12","packages":[]}"#.to_vec(),
            400,
            "bad_request",
            Some("packages"),
        ),
        (
            br#"{"distro":"debian-12","packages":"hello"}"#.to_vec(),
            400,
            "bad_request",
            Some("packages"),
        ),
        (
            br#"{"distro":"debian-12","packages":["a1","a2","a3","a4","a5","a6"]}"#.to_vec(),
            400,
            "too_many_packages",
            Some("packages"),
        ),
        (
            br#"{"distro":"debian-12","packages":["hello","$(reboot)"]}"#.to_vec(),
            400,
            "invalid_package_name",
            Some("packages[1]"),
        ),
        (
            br#"{"distro":"debian-12","packages":["hello; rm -rf /"]}"#.to_vec(),
            400,
            "invalid_package_name",
            Some("packages[0]"),
        ),
        (
            br#"{"distro":"debian-12","packages":["../../etc/passwd"]}"#.to_vec(),
            400,
            "invalid_package_name",
            Some("packages[0]"),
        ),
        (
            br#"{"distro":"debian-12","packages":["hello","helo"]}"#.to_vec(),
            400,
            "unknown_package",
            Some("packages[1]"),
        ),
        (
            br#"{"distro":"debian-12","packages":["hello"],"recommends":1}"#.to_vec(),
            400,
            "bad_request",
            Some("recommends"),
        ),
        (
            br#"{"distro":"debian-12","packages":["hello"],"baseline":"everything"}"#.to_vec(),
            400,
            "bad_request",
            Some("baseline"),
        ),
        (
            br#"{"distro":"debian-12","packages":["hello"],"baseline":{"status":"Package: x\n"}}"#
                .to_vec(),
            400,
            "bad_status_file",
            Some("baseline"),
        ),
        (
            br#"{"distro":"debian-12","packages":["hello"],"format":"zip"}"#.to_vec(),
            400,
            "bad_request",
            Some("format"),
        ),
        (
            br#"{"distro":"debian-12","packages":["hello"],"extra":true}"#.to_vec(),
            400,
            "bad_request",
            Some("extra"),
        ),
    ];
    for (body, status, code, field) in &cases {
        let r = app
            .call(Method::POST, "/api/jobs", Some(body.clone()))
            .await;
        let e = r.error(*status, code);
        assert_eq!(
            e["field"].as_str(),
            *field,
            "{}: {e}",
            String::from_utf8_lossy(body)
        );
        // an entry of the list is named by its index too (`packages[i]` ⇔ `index: i`)
        let index = field
            .and_then(|f| f.strip_prefix("packages["))
            .and_then(|f| f.strip_suffix(']'))
            .map(|i| json!(i.parse::<u64>().expect("index")));
        assert_eq!(
            e["index"],
            index.unwrap_or(Value::Null),
            "{}: {e}",
            String::from_utf8_lossy(body)
        );
    }
    // every kind of bad entry names it by index; the package too once its name is known
    for (packages, code, index, package) in [
        (json!(["hello", 7]), "invalid_package_name", 1, None),
        (
            json!(["hello", "x".repeat(300)]),
            "invalid_package_name",
            1,
            None,
        ),
        (
            json!(["Bad Name", "hello"]),
            "invalid_package_name",
            0,
            None,
        ),
        (
            json!(["hello", "hello=!1"]),
            "invalid_package_name",
            1,
            None,
        ),
        (json!(["hello", "jq:sparc"]), "unknown_arch", 1, Some("jq")),
        (
            json!(["hello", "hello", "helo"]),
            "unknown_package",
            2,
            Some("helo"),
        ),
    ] {
        let e = app
            .post(
                "/api/jobs",
                &json!({"distro": "debian-12", "packages": packages}),
            )
            .await
            .error(400, code);
        assert_eq!(e["index"], index, "{packages}: {e}");
        assert_eq!(e["field"], format!("packages[{index}]"), "{packages}: {e}");
        assert_eq!(e["package"].as_str(), package, "{packages}: {e}");
    }
    // the did-you-mean list
    let r = app
        .post(
            "/api/jobs",
            &json!({"distro":"debian-12","packages":["helo"]}),
        )
        .await;
    let e = r.error(400, "unknown_package");
    assert!(e["suggestions"]
        .as_array()
        .expect("list")
        .contains(&json!("hello")));
    // an oversized status upload: 413, named
    let big = json!({"distro":"debian-12","packages":["hello"],"baseline":{"status":"x".repeat(200 << 10)}});
    let r = app.post("/api/jobs", &big).await;
    let e = r.error(413, "bad_status_file");
    assert_eq!(e["field"], "baseline");
    // the same checks on the preview
    let r = app
        .post(
            "/api/resolve",
            &json!({"distro":"debian-12","packages":["Bad Name"]}),
        )
        .await;
    r.error(400, "invalid_package_name");
    // nothing stored
    let list = app.get("/api/jobs").await.json();
    assert_eq!(list["total"], 0, "{list}");
    assert!(files(&data.path().join("jobs")).is_empty());
    assert!(files(&data.path().join("bundles")).is_empty());
    assert!(files(&data.path().join("tmp")).is_empty());
    app.svc.shutdown().await;
}

/// Issue 13 item 12: the support status is data the UI words in each language.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distros_carry_a_structured_lifecycle() {
    let (_fx, _data, app) = started(|_| {}).await;
    let d = app.get("/api/distros").await.json();
    let by_id = |id: &str| {
        d.as_array()
            .expect("list")
            .iter()
            .find(|x| x["id"] == id)
            .cloned()
            .expect("distro")
    };
    let bookworm = by_id("debian-12");
    assert_eq!(bookworm["lifecycle"]["release"], "oldstable", "{bookworm}");
    assert_eq!(bookworm["lifecycle"]["until"], "2028-06", "{bookworm}");
    assert_eq!(bookworm["lifecycle"]["ended"], false, "{bookworm}");
    let bullseye = by_id("debian-11");
    assert_eq!(bullseye["lifecycle"]["ended"], true, "{bullseye}");
    let trixie = by_id("debian-13");
    assert_eq!(trixie["lifecycle"]["release"], "stable", "{trixie}");
    assert!(trixie["lifecycle"]["until"].is_null(), "{trixie}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_ids_paths_methods_and_bad_paging_are_4xx() {
    let (_fx, _data, app) = started(|_| {}).await;
    // unknown ids, well-formed or not
    for uri in [
        "/api/jobs/0123456789abcdef0123456789abcdef",
        "/api/jobs/nope",
        "/api/jobs/..%2F..%2Fetc",
        "/api/jobs/0123456789abcdef0123456789abcdef/log",
        "/api/jobs/0123456789abcdef0123456789abcdef/events",
        "/api/jobs/0123456789abcdef0123456789abcdef/bundle",
        "/api/jobs/0123456789abcdef0123456789abcdef/manifest",
    ] {
        app.get(uri).await.error(404, "not_found");
    }
    app.call(
        Method::POST,
        "/api/jobs/0123456789abcdef0123456789abcdef/cancel",
        None,
    )
    .await
    .error(404, "not_found");
    app.call(
        Method::DELETE,
        "/api/jobs/0123456789abcdef0123456789abcdef",
        None,
    )
    .await
    .error(404, "not_found");
    app.get("/api/nothing-here").await.error(404, "not_found");
    app.get("/api/jobs/%FF%FE").await.error(404, "not_found");
    app.call(Method::PUT, "/api/jobs", None)
        .await
        .error(405, "bad_request");
    // bad paging
    app.get("/api/jobs?page=0").await.error(400, "bad_request");
    app.get("/api/jobs?per_page=100000")
        .await
        .error(400, "bad_request");
    app.get("/api/packages?distro=debian-12&limit=abc")
        .await
        .error(400, "bad_request");
    app.get("/api/packages?arch=amd64&q=x")
        .await
        .error(400, "unknown_distro");
    app.get("/api/presets?distro=plan9")
        .await
        .error(400, "unknown_distro");
    app.svc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_fails_in_its_run_keeps_the_engines_error_code() {
    let (_fx, data, app) = started(|_| {}).await;
    // a job that fails during its run keeps the engine's error code
    let r = app
        .post(
            "/api/jobs",
            &json!({"distro":"debian-12","packages":["broken"],"baseline":"none"}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let id = r.json()["id"].as_str().expect("id").to_string();
    let j = app.wait(&id).await;
    assert_eq!(j["state"], "failed");
    assert_eq!(j["error"]["code"], "unsatisfiable", "{j}");
    // the entry and package fields are part of a job's error too (null when not known)
    let err = j["error"].as_object().expect("error");
    assert!(
        err.contains_key("index") && err.contains_key("package"),
        "{j}"
    );
    assert!(j["bundle"].is_null());
    app.get(&format!("/api/jobs/{id}/bundle"))
        .await
        .error(404, "not_found");
    app.get(&format!("/api/jobs/{id}/manifest"))
        .await
        .error(404, "not_found");
    let log = app.get(&format!("/api/jobs/{id}/log")).await.text();
    assert!(log.contains("E: ") && log.contains("libmissing"), "{log}");
    assert!(files(&data.path().join("bundles")).is_empty());
    assert!(files(&data.path().join("tmp")).is_empty());
    app.svc.shutdown().await;
}

/// A server with mirrors for Debian and Ubuntu's main archive only (no ports mirror): the
/// distros API marks Ubuntu's ports architectures, and a request for one tells the user to ask
/// the administrator without the settings (issue #13, item 2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targets_without_a_mirror_are_marked_and_refused_for_the_user() {
    let (fx, _data, app) = started(|cfg| {
        let url = cfg.settings.mirror.take().expect("mirror");
        cfg.settings.security_mirror = None;
        let file = cfg.settings.config_file.clone().expect("config file");
        std::fs::write(
            &file,
            format!("[mirrors]\ndebian = \"{url}\"\ndebian_security = \"{url}\"\nubuntu = \"{url}\"\nubuntu_security = \"{url}\"\n"),
        )
        .expect("config");
    })
    .await;
    let _ = &fx;
    // the host's APT sources or the environment may hold a ports mirror: then there is nothing to see
    let probe = opaas_engine::Settings {
        config_file: Some(_data.path().join("test-config.toml")),
        ..Default::default()
    };
    if opaas_engine::mirrors_for(&probe, "ubuntu-24.04", "arm64").is_ok() {
        println!(
            "SKIP: this host configures an Ubuntu ports mirror (APT sources or OPAAS_MIRROR_*)"
        );
        return;
    }
    let d = app.get("/api/distros").await.json();
    let noble = d
        .as_array()
        .expect("list")
        .iter()
        .find(|x| x["id"] == "ubuntu-24.04")
        .expect("noble")
        .clone();
    let arch = |n: &str| {
        noble["architectures"]
            .as_array()
            .expect("arches")
            .iter()
            .find(|a| a["name"] == n)
            .cloned()
            .expect("arch")
    };
    assert_eq!(arch("amd64")["available"], true, "{noble}");
    assert_eq!(arch("arm64")["available"], false, "{noble}");
    assert_eq!(arch("arm64")["unavailable"], "no_mirror", "{noble}");
    let r = app
        .post(
            "/api/resolve",
            &json!({"distro":"ubuntu-24.04","arch":"arm64","packages":["hello"]}),
        )
        .await;
    assert_eq!(r.status, 502, "{}", r.text());
    let e = r.json();
    assert_eq!(e["error"]["code"], "no_mirror", "{e}");
    let msg = e["error"]["message"].as_str().expect("message");
    assert!(msg.contains("ask the administrator"), "{msg}");
    assert!(
        !msg.contains("--mirror") && !msg.contains("OPAAS_"),
        "{msg}"
    );
    app.svc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_distros_and_presets() {
    let (_fx, _data, app) = started(|_| {}).await;
    let d = app.get("/api/distros").await.json();
    let d12 = d
        .as_array()
        .expect("list")
        .iter()
        .find(|x| x["id"] == "debian-12")
        .expect("debian-12")
        .clone();
    assert_eq!(d12["codename"], "bookworm");
    assert_eq!(d12["family"], "debian");
    assert!(d12["architectures"]
        .as_array()
        .expect("arches")
        .contains(&json!({"name":"arm64","ports":false,"available":true,"unavailable":null})));
    let noble = d
        .as_array()
        .expect("list")
        .iter()
        .find(|x| x["id"] == "ubuntu-24.04")
        .expect("noble")
        .clone();
    assert!(noble["architectures"]
        .as_array()
        .expect("arches")
        .contains(&json!({"name":"arm64","ports":true,"available":true,"unavailable":null})));
    // presets
    let p = app.get("/api/presets?distro=ubuntu-24.04").await.json();
    let docker = p
        .as_array()
        .expect("list")
        .iter()
        .find(|x| x["id"] == "docker")
        .expect("docker")
        .clone();
    assert!(docker["packages"]
        .as_array()
        .expect("pkgs")
        .contains(&json!("docker-compose-v2")));
    assert!(docker["name"]["zh-CN"].as_str().is_some());
    assert!(
        app.get("/api/presets")
            .await
            .json()
            .as_array()
            .expect("all")
            .len()
            >= 12
    );
    app.svc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn package_search_ranks_names_and_suggests() {
    let (_fx, _data, app) = started(|_| {}).await;
    // search: name hits first, then suggestions when nothing matches exactly
    let s = app
        .get("/api/packages?distro=bookworm&arch=amd64&q=hel&limit=5")
        .await
        .json();
    let names: Vec<&str> = s["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["name"].as_str())
        .collect();
    assert_eq!(names.first(), Some(&"hello"), "{s}");
    assert_eq!(s["items"][0]["version"], "1.0+deb12u1");
    assert_eq!(s["items"][0]["summary"], "greets the world");
    let s = app
        .get("/api/packages?distro=debian-12&q=helo")
        .await
        .json();
    assert!(
        s["suggestions"]
            .as_array()
            .expect("suggestions")
            .contains(&json!("hello")),
        "{s}"
    );
    let s = app
        .get("/api/packages?distro=debian-12&q=hello")
        .await
        .json();
    assert_eq!(s["suggestions"], json!([]));
    let s = app
        .get("/api/packages?distro=debian-12&q=mail-transport-agent")
        .await
        .json();
    assert!(
        s["suggestions"]
            .as_array()
            .expect("providers")
            .contains(&json!("mail-agent")),
        "{s}"
    );
    assert_eq!(
        app.get("/api/packages?distro=debian-12&q=").await.json(),
        json!({"items": [], "suggestions": []})
    );
    app.svc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_resolves_and_reports_apts_errors() {
    let (_fx, _data, app) = started(|_| {}).await;
    // preview
    let r = app
        .post(
            "/api/resolve",
            &json!({"distro":"debian-12","arch":"amd64","packages":["hello"],"baseline":"none"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["count"], 3);
    let names: Vec<&str> = v["packages"]
        .as_array()
        .expect("pkgs")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(names, ["hello", "hello-doc", "libhello1"]);
    assert_eq!(v["packages"][0]["why"], "requested");
    assert_eq!(v["packages"][0]["pocket"], "bookworm-security/main");
    // the engine's package view: the real Architecture, the .deb's name, lowercase sha256
    assert_eq!(v["packages"][0]["arch"], "amd64");
    assert_eq!(v["packages"][1]["arch"], "all");
    assert!(v["packages"][1]["filename"]
        .as_str()
        .is_some_and(|f| f.starts_with("hello-doc_") && !f.contains('/')));
    let sha = v["packages"][0]["sha256"].as_str().expect("sha");
    assert!(sha.len() == 64 && sha == sha.to_ascii_lowercase(), "{sha}");
    assert!(v["total_size"].as_u64().expect("size") > 0);
    let r = app
        .post("/api/resolve", &json!({"distro":"debian-12","packages":["hello"],"recommends":false,"baseline":"none"}))
        .await;
    assert_eq!(r.json()["count"], 2);
    // apt's errors: unknown (with suggestions), unsatisfiable, conflict
    let e = app
        .post(
            "/api/resolve",
            &json!({"distro":"debian-12","packages":["hello","helo"]}),
        )
        .await
        .error(400, "unknown_package");
    assert_eq!(e["field"], "packages[1]");
    assert_eq!(e["index"], 1);
    assert_eq!(e["package"], "helo");
    assert!(e["suggestions"]
        .as_array()
        .expect("s")
        .contains(&json!("hello")));
    app.post(
        "/api/resolve",
        &json!({"distro":"debian-12","packages":["broken"]}),
    )
    .await
    .error(422, "unsatisfiable");
    app.post(
        "/api/resolve",
        &json!({"distro":"debian-12","packages":["hello","clash"],"baseline":"none"}),
    )
    .await
    .error(422, "unsatisfiable");
    // a status-file baseline: what is installed is not downloaded
    let status = "Package: libhello1\nStatus: install ok installed\nVersion: 1.1\nArchitecture: amd64\n\nPackage: hello-doc\nStatus: install ok installed\nVersion: 1.0\nArchitecture: all\n";
    let v = app
        .post(
            "/api/resolve",
            &json!({"distro":"debian-12","packages":["hello"],"baseline":{"status": status}}),
        )
        .await
        .json();
    assert_eq!(v["count"], 1, "{v}");
    app.svc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_metrics_and_the_openapi_document() {
    let (_fx, _data, app) = started(|_| {}).await;
    // service endpoints
    assert_eq!(app.get("/healthz").await.json(), json!({"status":"ok"}));
    let m = app.get("/metrics").await;
    assert!(
        m.text().contains("opaas_jobs{state=\"queued\"} 0"),
        "{}",
        m.text()
    );
    let o = app.get("/api/openapi.json").await.json();
    assert_eq!(o["openapi"], "3.0.3");
    for p in [
        "/api/distros",
        "/api/presets",
        "/api/packages",
        "/api/resolve",
        "/api/jobs",
        "/api/jobs/{id}",
        "/api/jobs/{id}/events",
        "/api/jobs/{id}/log",
        "/api/jobs/{id}/manifest",
        "/api/jobs/{id}/bundle",
        "/api/jobs/{id}/cancel",
        "/api/collect-script",
        "/healthz",
        "/metrics",
    ] {
        assert!(o["paths"][p].is_object(), "openapi lacks {p}");
    }
    app.svc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_and_its_assets_with_their_cache_headers() {
    let (_fx, _data, app) = started(|_| {}).await;
    // the UI: index.html for its pages
    for uri in ["/", "/jobs/123", "/history"] {
        let r = app.get(uri).await;
        assert_eq!(r.status, 200);
        let ct = r.headers["content-type"].to_str().expect("ct").to_string();
        assert!(ct.starts_with("text/html"), "{uri}: {ct}");
        assert!(r.text().to_ascii_lowercase().contains("<html"), "{uri}");
    }
    // below the root the page's relative addresses are based at the root
    let r = app.get("/jobs/123").await;
    assert!(r.text().contains("src=\"../assets/"), "{}", r.text());
    assert!(!r.text().contains("=\"./"), "{}", r.text());
    let r = app.get("/a/b/c").await;
    assert!(r.text().contains("src=\"../../assets/"), "{}", r.text());
    assert!(app.get("/").await.text().contains("src=\"./assets/"));
    // any other path: the UI's page with 404 (it shows its not-found page)
    for uri in ["/foo/bar", "/jobs", "/jobs/1/2", "/favicon.ico"] {
        let r = app.get(uri).await;
        assert_eq!(r.status, 404, "{uri}");
        let ct = r.headers["content-type"].to_str().expect("ct").to_string();
        assert!(ct.starts_with("text/html"), "{uri}: {ct}");
    }
    let r = app.get("/assets/does-not-exist-12345678.js").await;
    assert_eq!(r.status, 404);
    // built assets (when web/dist has them): their type, and a year of caching for hashed names
    let assets = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web/dist/assets");
    for f in common::files_under(&assets) {
        assert_eq!(
            app.get(&format!("/jobs/assets/{f}")).await.status,
            200,
            "{f}"
        );
        let r = app.get(&format!("/assets/{f}")).await;
        assert_eq!(r.status, 200, "{f}");
        let ct = r.headers["content-type"].to_str().expect("ct").to_string();
        let want = match f.rsplit('.').next() {
            Some("js") => "javascript",
            Some("css") => "text/css",
            Some("svg") => "image/svg+xml",
            _ => "",
        };
        assert!(ct.contains(want), "{f}: {ct}");
        let cc = r.headers["cache-control"].to_str().expect("cc").to_string();
        if f.contains('-') {
            assert!(cc.contains("immutable"), "{f}: {cc}");
        }
    }
    // scripts and stylesheets: the precompressed copy the browser accepts (issue #13, item 15)
    for f in common::files_under(&assets) {
        if !(f.ends_with(".js") || f.ends_with(".css")) {
            continue;
        }
        let plain = std::fs::read(assets.join(&f)).expect("asset");
        for (accept, want, ext) in [
            ("gzip, deflate, br, zstd", Some("br"), ".br"),
            ("gzip, deflate", Some("gzip"), ".gz"),
            ("br;q=0, gzip", Some("gzip"), ".gz"),
            ("identity", None, ""),
        ] {
            let r = app
                .call_with(
                    Method::GET,
                    &format!("/assets/{f}"),
                    None,
                    &[("accept-encoding", accept)],
                )
                .await;
            assert_eq!(r.status, 200, "{f} {accept}");
            let enc = r
                .headers
                .get("content-encoding")
                .map(|v| v.to_str().expect("enc"));
            assert_eq!(enc, want, "{f} {accept}");
            let body = if ext.is_empty() {
                plain.clone()
            } else {
                std::fs::read(assets.join(format!("{f}{ext}"))).expect("copy")
            };
            assert!(r.body == body, "{f} {accept}: the body is the {ext:?} file");
            assert_eq!(r.headers["vary"], "accept-encoding", "{f}");
            let ct = r.headers["content-type"].to_str().expect("ct");
            assert!(
                ct.contains("javascript") || ct.contains("text/css"),
                "{f}: {ct}"
            );
        }
    }
    let index = app.get("/").await;
    assert_eq!(index.headers["cache-control"], "no-cache");
    app.svc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_expires_bundles_and_caps_the_cache() {
    let fx = common::fixture();
    let data = tempfile::tempdir().expect("data");
    let mut cfg = common::config(&fx, data.path());
    cfg.bundle_ttl = Duration::from_secs(1);
    cfg.cache_max_bytes = Some(1);
    let app = App::start(cfg).await;
    let r = app
        .post(
            "/api/jobs",
            &json!({"distro":"debian-12","packages":["hello"],"baseline":"none"}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let id = r.json()["id"].as_str().expect("id").to_string();
    let j = app.wait(&id).await;
    assert_eq!(j["state"], "done", "{j}");
    let file = j["bundle"]["file_name"].as_str().expect("file").to_string();
    let path = data.path().join("bundles").join(&id).join(&file);
    assert!(path.exists());
    // temporary build directories are gone
    assert!(files(&data.path().join("tmp")).is_empty());
    let cache = data.path().join("cache");
    let debs = || {
        files(&cache.join("debs-v1"))
            .into_iter()
            .filter(|f| f.ends_with(".deb"))
            .count()
    };
    assert_eq!(debs(), 3);
    // expiry: the tarball goes, the job and its manifest stay, the download is 410
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let janitor = app.svc.janitor();
    assert_eq!(janitor.expire().await.expect("expire"), 1);
    assert!(!path.exists());
    let j = app.get(&format!("/api/jobs/{id}")).await.json();
    assert_eq!(j["state"], "done");
    assert_eq!(j["bundle"]["expired"], true);
    app.get(&format!("/api/jobs/{id}/bundle"))
        .await
        .error(410, "gone");
    assert_eq!(
        app.get(&format!("/api/jobs/{id}/manifest")).await.status,
        200
    );
    // the cache cap: everything over 1 byte goes, least recently used first
    let ev = janitor.evict().await;
    assert_eq!(ev.files, 3, "{ev:?}");
    assert_eq!(debs(), 0);
    // the next build downloads again and still works
    let before = fx.server.requests("/pool/");
    let r = app
        .post(
            "/api/jobs",
            &json!({"distro":"debian-12","packages":["libhello1"],"baseline":"none"}),
        )
        .await;
    let id2 = r.json()["id"].as_str().expect("id").to_string();
    assert_eq!(app.wait(&id2).await["state"], "done");
    assert_eq!(fx.server.requests("/pool/"), before + 1);
    // delete removes the job, its bundle directory and its log
    let r = app
        .call(Method::DELETE, &format!("/api/jobs/{id}"), None)
        .await;
    assert_eq!(r.status, 204);
    assert!(!data.path().join("bundles").join(&id).exists());
    assert!(!data.path().join("jobs").join(format!("{id}.log")).exists());
    app.get(&format!("/api/jobs/{id}"))
        .await
        .error(404, "not_found");
    let m = app.get("/metrics").await.text();
    assert!(m.contains("opaas_bundles_expired_total 1"), "{m}");
    assert!(m.contains("opaas_cache_evicted_files_total 3"), "{m}");
    app.svc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_space_floor_refuses_jobs() {
    let fx = common::fixture();
    let data = tempfile::tempdir().expect("data");
    let mut cfg = common::config(&fx, data.path());
    cfg.min_free_bytes = u64::MAX;
    let app = App::start(cfg).await;
    let e = app
        .post(
            "/api/jobs",
            &json!({"distro":"debian-12","packages":["hello"]}),
        )
        .await
        .error(507, "disk_full");
    assert!(e["message"].as_str().expect("m").contains("free"), "{e}");
    assert_eq!(app.get("/api/jobs").await.json()["total"], 0);
    app.svc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_requeues_and_the_next_start_finishes() {
    let fx = common::fixture();
    // every .deb takes a while: the shutdown lands mid-download
    fx.server.fail_always(
        "/pool/",
        opaas_testkit::Fault::Delay(Duration::from_millis(700)),
    );
    let data = tempfile::tempdir().expect("data");
    let mut cfg = common::config(&fx, data.path());
    cfg.workers = 1;
    cfg.download_jobs = 1;
    let app = App::start(cfg.clone()).await;
    let r = app
        .post(
            "/api/jobs",
            &json!({"distro":"debian-12","packages":["tool-b","tool-c"],"baseline":"none"}),
        )
        .await;
    let id = r.json()["id"].as_str().expect("id").to_string();
    let t0 = Instant::now();
    loop {
        let j = app.get(&format!("/api/jobs/{id}")).await.json();
        if j["state"] == "downloading" {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(60), "{j}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.svc.shutdown().await;
    fx.server.clear_faults();
    let app = App::start(cfg).await;
    let j = app.wait(&id).await;
    assert_eq!(j["state"], "done", "{j}");
    let log = app.get(&format!("/api/jobs/{id}/log")).await.text();
    assert!(log.contains("interrupted by a shutdown"), "{log}");
    assert!(
        log.contains("attempt 1 of 2"),
        "a graceful stop does not use up an attempt: {log}"
    );
    app.svc.shutdown().await;
}

/// Every bundle tarball under `<data>/bundles` as (job, file, inode, link count).
fn bundle_files(data: &std::path::Path) -> Vec<(String, String, u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    for f in files(&data.join("bundles")) {
        // the job's own metadata beside its bundle file
        if f.ends_with("manifest.json") || f.ends_with("sbom.cdx.json") {
            continue;
        }
        let m = std::fs::metadata(data.join("bundles").join(&f)).expect("stat");
        let (job, name) = f.split_once('/').expect("job/file");
        out.push((job.to_string(), name.to_string(), m.ino(), m.nlink()));
    }
    out
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

async fn submit(app: &App, v: &Value) -> String {
    let r = app.post("/api/jobs", v).await;
    assert_eq!(r.status, 202, "{}", r.text());
    r.json()["id"].as_str().expect("id").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_jobs_share_one_bundle_file_until_the_last_is_gone() {
    let (fx, data, app) = started(|_| {}).await;
    let req = json!({"distro":"debian-12","packages":["tool-a","tool-b"],"baseline":"none"});
    let a = submit(&app, &req).await;
    let ja = app.wait(&a).await;
    assert_eq!(ja["state"], "done", "{ja}");
    let pool = fx.server.requests("/pool/");
    let b = submit(&app, &req).await;
    let jb = app.wait(&b).await;
    assert_eq!(jb["state"], "done", "{jb}");
    // its own record, the same bundle, nothing fetched or packed
    assert_ne!(a, b);
    assert_eq!(jb["bundle"]["file_name"], ja["bundle"]["file_name"]);
    assert_eq!(jb["bundle"]["sha256"], ja["bundle"]["sha256"]);
    assert_eq!(
        fx.server.requests("/pool/"),
        pool,
        "the second job downloaded"
    );
    let file = ja["bundle"]["file_name"]
        .as_str()
        .expect("file")
        .to_string();
    let log = app.get(&format!("/api/jobs/{b}/log")).await.text();
    assert!(
        log.contains(&format!("job {a} has the same bundle: sharing {file}")),
        "{log}"
    );
    assert!(log.contains(&format!("reusing {file}, verified")), "{log}");
    assert!(!log.contains("wrote "), "the second job packed: {log}");
    let log_a = app.get(&format!("/api/jobs/{a}/log")).await.text();
    assert!(log_a.contains(&format!("wrote {file}")), "{log_a}");
    // one file on disk, two names for it
    let on_disk = bundle_files(data.path());
    assert_eq!(on_disk.len(), 2, "{on_disk:?}");
    assert_eq!(on_disk[0].2, on_disk[1].2, "not the same file: {on_disk:?}");
    assert!(on_disk.iter().all(|f| f.3 == 2), "{on_disk:?}");
    // both downloadable, byte for byte the recorded digest
    let sha = ja["bundle"]["sha256"].as_str().expect("sha").to_string();
    for id in [&a, &b] {
        let r = app.get(&format!("/api/jobs/{id}/bundle")).await;
        assert_eq!(r.status, 200);
        assert_eq!(sha256_hex(&r.body), sha, "job {id}");
    }
    let m = app.get("/metrics").await.text();
    assert!(m.contains("opaas_bundles_reused_total 1"), "{m}");
    // deleting the first keeps the second's download
    let r = app
        .call(Method::DELETE, &format!("/api/jobs/{a}"), None)
        .await;
    assert_eq!(r.status, 204);
    let on_disk = bundle_files(data.path());
    assert_eq!(on_disk.len(), 1, "{on_disk:?}");
    assert_eq!((on_disk[0].0.as_str(), on_disk[0].3), (b.as_str(), 1));
    let r = app.get(&format!("/api/jobs/{b}/bundle")).await;
    assert_eq!(r.status, 200);
    assert_eq!(sha256_hex(&r.body), sha);
    // a third identical job shares the survivor's file
    let c = submit(&app, &req).await;
    assert_eq!(app.wait(&c).await["state"], "done");
    let log = app.get(&format!("/api/jobs/{c}/log")).await.text();
    assert!(
        log.contains(&format!("job {b} has the same bundle")),
        "{log}"
    );
    // retention counts references: the expired job's name goes, the other stays
    let conn = rusqlite::Connection::open(data.path().join("jobs.sqlite")).expect("db");
    conn.execute("UPDATE jobs SET expires_at = 1 WHERE id = ?1", [&b])
        .expect("expire b");
    drop(conn);
    assert_eq!(app.svc.janitor().expire().await.expect("expire"), 1);
    app.get(&format!("/api/jobs/{b}/bundle"))
        .await
        .error(410, "gone");
    let r = app.get(&format!("/api/jobs/{c}/bundle")).await;
    assert_eq!(r.status, 200);
    assert_eq!(sha256_hex(&r.body), sha);
    // deleting the last removes the file
    for id in [&b, &c] {
        let r = app
            .call(Method::DELETE, &format!("/api/jobs/{id}"), None)
            .await;
        assert_eq!(r.status, 204);
    }
    assert!(bundle_files(data.path()).is_empty());
    app.svc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_identical_jobs_packs_one_bundle_file() {
    let fx = common::fixture();
    // slow downloads (1 s per .deb; only the first job downloads): the jobs the other workers
    // take at once reach the bundle's name while the first one is still building
    fx.server.fail_always(
        "/pool/",
        opaas_testkit::Fault::Delay(Duration::from_secs(1)),
    );
    let data = tempfile::tempdir().expect("data");
    let mut cfg = common::config(&fx, data.path());
    cfg.workers = 3;
    let app = App::start(cfg).await;
    let req = json!({"distro":"debian-12","packages":["tool-c","tool-d"],"baseline":"none"});
    const N: usize = 12;
    let mut ids = Vec::new();
    for _ in 0..N {
        ids.push(submit(&app, &req).await);
    }
    let mut waited = 0;
    let mut packed = 0;
    let mut sha = None;
    for id in &ids {
        let j = app.wait(id).await;
        assert_eq!(j["state"], "done", "{j}");
        let s = j["bundle"]["sha256"].as_str().expect("sha").to_string();
        assert_eq!(sha.get_or_insert_with(|| s.clone()), &s);
        let log = app.get(&format!("/api/jobs/{id}/log")).await.text();
        if log.contains("is building the same bundle: waiting for it") {
            waited += 1;
        }
        if log.contains("wrote offline_pkg_") {
            packed += 1;
        } else {
            assert!(log.contains(", verified"), "{log}");
        }
    }
    assert_eq!(packed, 1, "packed {packed} times");
    assert!(waited >= 1, "no job waited for the running identical build");
    // each .deb of the closure (tool-c, tool-d, libshared1, libshared2) fetched once
    assert_eq!(fx.server.requests("/pool/"), 4);
    let on_disk = bundle_files(data.path());
    assert_eq!(on_disk.len(), N);
    let inodes: std::collections::BTreeSet<u64> = on_disk.iter().map(|f| f.2).collect();
    assert_eq!(inodes.len(), 1, "{on_disk:?}");
    assert_eq!(on_disk[0].3, N as u64);
    let m = app.get("/metrics").await.text();
    assert!(
        m.contains(&format!("opaas_bundles_reused_total {}", N - 1)),
        "{m}"
    );
    app.svc.shutdown().await;
}

fn stanza(name: &str, version: &str, arch: &str) -> String {
    format!("Package: {name}\nStatus: install ok installed\nArchitecture: {arch}\nVersion: {version}\n\n")
}

/// What the collect script writes, for a host with `status`.
fn collected(host: &str, version_id: &str, arch: &str, status: &str) -> String {
    format!(
        "OPaaS-Collect: 1\nHostname: {host}\nCollected: 2026-12-02T10:00:00Z\nOS-ID: debian\nOS-Version-ID: {version_id}\nOS-Codename: bookworm\nArchitecture: {arch}\nForeign-Architectures: \nHolds: \nStatus-Lines: {}\n\n### /var/lib/dpkg/status\n{status}### /var/lib/apt/extended_states\n### end\n",
        status.lines().count()
    )
}

/// Patch bundles through the API (issue 10): the plan of each collected host (security first)
/// from the preview and in the job record, a fleet job that builds one bundle for two hosts,
/// and every bad collected file a 4xx naming it, nothing stored, the service healthy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_jobs_plan_each_host_and_refuse_bad_collected_files() {
    let (_fx, data, app) = started(|cfg| cfg.max_body_bytes = 4 << 20).await;
    let web01 = collected(
        "web01",
        "12",
        "amd64",
        &(stanza("hello", "1.0", "amd64")
            + &stanza("libhello1", "1.0", "amd64")
            + &stanza("hello-doc", "1.0", "all")),
    );
    let db01 = collected("db01", "12", "amd64", &stanza("libhello1", "1.0", "amd64"));
    // the collect script the UI shows
    let cs = app.get("/api/collect-script").await;
    assert_eq!(cs.status, 200);
    assert!(
        cs.text().starts_with("#!/bin/sh\n# OPaaS collect script"),
        "{}",
        cs.text()
    );
    // the preview: each host's plan, security first
    let r = app
        .post(
            "/api/resolve",
            &json!({"mode":"upgrade","collected":[web01, db01]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let p = r.json();
    assert_eq!(
        (p["distro"].as_str(), p["count"].as_u64()),
        (Some("debian-12"), Some(2))
    );
    assert_eq!(p["hosts"][0]["host"], "web01");
    assert_eq!(p["hosts"][0]["plan"][0]["kind"], "security");
    assert_eq!(p["hosts"][0]["plan"][0]["name"], "hello");
    assert_eq!(p["hosts"][0]["plan"][0]["from"], "1.0");
    assert_eq!(p["hosts"][0]["plan"][1]["name"], "libhello1");
    assert_eq!(p["hosts"][1]["plan"].as_array().map(Vec::len), Some(1));
    // security only: hello's security update needs libhello1 1.1 (not a security version)
    let r = app
        .post(
            "/api/resolve",
            &json!({"mode":"upgrade","security_only":true,"collected":[web01]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["hosts"][0]["plan"].as_array().map(Vec::len),
        Some(0)
    );
    assert_eq!(r.json()["hosts"][0]["kept_back"][0]["name"], "hello");
    // the fleet job: its plan in the record, one bundle for both hosts
    let r = app
        .post(
            "/api/jobs",
            &json!({"mode":"upgrade","collected":[web01, db01]}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let j = r.json();
    assert_eq!(j["mode"], "upgrade");
    assert_eq!(j["hosts"], json!(["web01", "db01"]));
    assert_eq!(j["plan"]["hosts"][0]["plan"][0]["name"], "hello");
    let id = j["id"].as_str().expect("id").to_string();
    let done = app.wait(&id).await;
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["bundle"]["package_count"], 2);
    assert_eq!(done["plan"]["hosts"][1]["host"], "db01");
    let log = app.get(&format!("/api/jobs/{id}/log")).await.text();
    assert!(
        log.contains(
            "queued: apt-get upgrade of 2 collected host(s) (web01 db01) on debian-12 amd64"
        ),
        "{log}"
    );
    let m = app.get(&format!("/api/jobs/{id}/manifest")).await.json();
    assert_eq!(m["hosts"][0]["host"], "web01", "{m}");
    assert_eq!(m["hosts"][1]["files"].as_array().map(Vec::len), Some(1));
    // one host, security only: its own bundle (no plan table), hello kept back
    let r = app
        .post(
            "/api/jobs",
            &json!({"mode":"upgrade","security_only":true,"collected":[db01]}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let one = r.json()["id"].as_str().expect("id").to_string();
    let d1 = app.wait(&one).await;
    assert_eq!(d1["state"], "done", "{d1}");
    assert_eq!(d1["security_only"], true);
    let m1 = app.get(&format!("/api/jobs/{one}/manifest")).await.json();
    assert_eq!(
        (m1["mode"].as_str(), m1["host"].as_str()),
        (Some("upgrade"), Some("db01")),
        "{m1}"
    );
    assert!(m1.get("hosts").is_none(), "{m1}");
    // the list shows the hosts, not the plans
    let list = app.get("/api/jobs").await.json();
    assert_eq!(list["items"][1]["hosts"], json!(["web01", "db01"]));
    assert_eq!(list["items"][0]["hosts"], json!(["db01"]));
    assert!(list["items"][1].get("plan").is_none(), "{list}");
    // bad collected files: 4xx naming the problem, no job stored
    let before = app.get("/api/jobs").await.json()["total"].clone();
    let cut = &web01[..web01.len() - 30];
    let gone = collected("old01", "12", "amd64", &stanza("gone-tool", "1.0", "amd64"));
    let cases: Vec<(Value, u16, &str)> = vec![
        (
            json!({"mode":"upgrade","collected":[cut]}),
            400,
            "cut short",
        ),
        (
            json!({"mode":"upgrade","collected":[web01.replace("hello-doc", "hello\u{0}doc")]}),
            400,
            "is not text",
        ),
        (
            json!({"mode":"upgrade","collected":[web01.replace("amd64\nForeign", "sparc\nForeign")]}),
            400,
            "debian-12 sparc",
        ),
        (
            json!({"mode":"upgrade","collected":[web01.replace("OS-Version-ID: 12", "OS-Version-ID: 10")]}),
            400,
            "runs debian-10",
        ),
        (
            json!({"mode":"upgrade","collected":[gone]}),
            400,
            "none of the 1 packages installed on old01 exists in the debian-12 amd64 archive",
        ),
        (
            json!({"mode":"upgrade","collected":[web01, web01]}),
            400,
            "both collected on host 'web01'",
        ),
        (
            json!({"mode":"upgrade","collected":[web01, db01.replace("amd64\nForeign", "arm64\nForeign")]}),
            400,
            "db01 is debian-12 arm64, but",
        ),
        (
            json!({"mode":"upgrade","collected":[]}),
            400,
            "collected is required",
        ),
        (
            json!({"mode":"sideways","collected":[web01]}),
            400,
            "mode must be",
        ),
        (
            json!({"distro":"debian-12","packages":["hello"],"collected":[web01]}),
            400,
            "collected applies to",
        ),
    ];
    for (body, status, needle) in cases {
        for path in ["/api/resolve", "/api/jobs"] {
            let r = app.post(path, &body).await;
            assert_eq!(r.status, status, "{path} {needle}: {}", r.text());
            let e = r.json()["error"].clone();
            assert!(
                e["message"].as_str().unwrap_or("").contains(needle),
                "{path}: expected '{needle}': {e}"
            );
            assert!(
                e["field"]
                    .as_str()
                    .is_some_and(|f| f.starts_with("collected") || f == "mode"),
                "{path} {needle}: {e}"
            );
        }
    }
    // a 100 MB body: refused by the body limit before it is read whole
    let big = vec![b'a'; 100 << 20];
    let r = app.call(Method::POST, "/api/jobs", Some(big)).await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(app.get("/api/jobs").await.json()["total"], before);
    assert_eq!(app.get("/healthz").await.status, 200);
    drop(data);
}

/// `POST /api/jobs` with `{"lock": …}` is `opaas build --locked` as a job: the lockfile of a
/// finished job's request builds the same packages (the manifest adds the lock's digest), and
/// the same lockfile again the byte-identical bundle; a bad lockfile is a 400 naming `lock`,
/// and nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lockfile_job_rebuilds_the_same_bundle() {
    let (fx, data, app) = started(|_| {}).await;
    let a = submit(
        &app,
        &json!({"distro":"debian-12","packages":["tool-a"],"baseline":"none"}),
    )
    .await;
    let ja = app.wait(&a).await;
    assert_eq!(ja["state"], "done", "{ja}");
    // the lockfile `opaas lock` writes for the same request, with the service's settings
    let settings = common::config(&fx, data.path()).engine_settings();
    let req = opaas_engine::Request {
        distro: "debian-12".into(),
        arch: "amd64".into(),
        packages: vec!["tool-a".into()],
        recommends: true,
        baseline: opaas_engine::Baseline::None,
        upgrade: None,
        phased: Default::default(),
        security_only: false,
        host: None,
    };
    let text = tokio::task::spawn_blocking(move || {
        opaas_engine::lock(&settings, &req, &opaas_engine::NoBuildProgress)
    })
    .await
    .expect("join")
    .expect("lock");
    let b = submit(&app, &json!({ "lock": text, "format": "tar.gz" })).await;
    let jb = app.wait(&b).await;
    assert_eq!(jb["state"], "done", "{jb}");
    assert_eq!(jb["mode"], "locked", "{jb}");
    assert_eq!(jb["distro"], "debian-12");
    assert_eq!(jb["packages"], json!(["tool-a"]));
    assert_eq!(jb["bundle"]["package_count"], ja["bundle"]["package_count"]);
    let r = app.get(&format!("/api/jobs/{b}/bundle")).await;
    assert_eq!(r.status, 200);
    let sha_b = sha256_hex(&r.body);
    assert_eq!(jb["bundle"]["sha256"], sha_b.as_str());
    let log = app.get(&format!("/api/jobs/{b}/log")).await.text();
    assert!(log.contains("wrote "), "{log}");
    // the same lockfile again: byte for byte the same bundle
    let c = submit(&app, &json!({ "lock": text })).await;
    let jc = app.wait(&c).await;
    assert_eq!(jc["state"], "done", "{jc}");
    assert_eq!(jc["bundle"]["sha256"], sha_b.as_str(), "{jc}");
    // bad lockfiles and mixed bodies: 400 naming the field, no job stored
    let before = app.get("/api/jobs").await.json()["total"].clone();
    let e = app
        .post("/api/jobs", &json!({"lock": "version = 99\n"}))
        .await
        .error(400, "bad_lock");
    assert_eq!(e["field"], "lock", "{e}");
    let e = app
        .post("/api/jobs", &json!({"lock": 7}))
        .await
        .error(400, "bad_lock");
    assert_eq!(e["field"], "lock", "{e}");
    let e = app
        .post("/api/jobs", &json!({"lock": text, "distro": "debian-11"}))
        .await
        .error(400, "bad_request");
    assert_eq!(e["field"], "distro", "{e}");
    let e = app
        .post("/api/jobs", &json!({"mode": "locked"}))
        .await
        .error(400, "bad_request");
    assert_eq!(e["field"], "lock", "{e}");
    let e = app
        .post("/api/resolve", &json!({ "lock": text }))
        .await
        .error(400, "bad_request");
    assert_eq!(e["field"], "lock", "{e}");
    assert_eq!(app.get("/api/jobs").await.json()["total"], before);
    app.svc.shutdown().await;
}
