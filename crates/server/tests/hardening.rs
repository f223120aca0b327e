//! Issue 16 against a real listening server on 127.0.0.1: cross-site writes, DNS rebinding,
//! output caps, per-client limits, uploads parsed off the async threads and kept out of the
//! database, slow and half-open connections.

mod common;

use common::{Client, Running};
use opaas_testkit::Fault;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

struct Raw {
    status: u16,
    head: String,
    body: String,
}

/// One request written by hand (any Host, Origin, Content-Type), `Connection: close`.
fn raw(url: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Raw {
    let addr = url.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).expect("write");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Raw {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

fn total_jobs(c: &Client) -> u64 {
    c.get("/api/jobs").json()["total"].as_u64().expect("total")
}

const JOB: &str = r#"{"distro":"debian-12","packages":["hello"],"baseline":"none"}"#;

#[test]
fn cross_site_writes_are_refused() {
    let fx = common::fixture();
    let data = tempfile::tempdir().expect("data");
    let srv = Running::start(common::config(&fx, data.path()));
    let c = Client::new(&srv.url);
    let own = srv.url.clone();
    // a "simple" request (an HTML form or fetch without preflight) cannot create a job
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let r = raw(&srv.url, "POST", "/api/jobs", &[("Content-Type", ct)], JOB);
        assert_eq!(r.status, 415, "{ct}: {}", r.body);
        assert!(r.body.contains("unsupported_media_type"), "{}", r.body);
    }
    let r = raw(&srv.url, "POST", "/api/resolve", &[], JOB);
    assert_eq!(r.status, 415, "no Content-Type: {}", r.body);
    assert_eq!(total_jobs(&c), 0);
    // a foreign Origin: refused even with the right Content-Type
    let json_from = |o: &'static str| [("Content-Type", "application/json"), ("Origin", o)];
    for o in ["http://evil.example", "null", "http://127.0.0.1:1"] {
        let r = raw(&srv.url, "POST", "/api/jobs", &json_from(o), JOB);
        assert_eq!(r.status, 403, "{o}: {}", r.body);
        assert!(r.body.contains("forbidden_origin"));
    }
    let r = raw(
        &srv.url,
        "POST",
        "/api/jobs",
        &[
            ("Content-Type", "application/json"),
            ("Sec-Fetch-Site", "cross-site"),
        ],
        JOB,
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(total_jobs(&c), 0);
    // the service's own page may
    let r = raw(
        &srv.url,
        "POST",
        "/api/jobs",
        &[
            ("Content-Type", "application/json; charset=utf-8"),
            ("Origin", &own),
        ],
        JOB,
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let id = serde_json::from_str::<Value>(&r.body).expect("job")["id"]
        .as_str()
        .expect("id")
        .to_string();
    // body-less cancel and delete from a foreign page: refused, the job untouched
    let r = raw(
        &srv.url,
        "POST",
        &format!("/api/jobs/{id}/cancel"),
        &[("Origin", "http://evil.example")],
        "",
    );
    assert_eq!(r.status, 403, "{}", r.body);
    let r = raw(
        &srv.url,
        "DELETE",
        &format!("/api/jobs/{id}"),
        &[("Origin", "http://evil.example")],
        "",
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(c.get(&format!("/api/jobs/{id}")).status, 200);
    // reading is not a write: a GET with a foreign Origin is answered (CORS keeps the page out)
    let r = raw(
        &srv.url,
        "GET",
        "/api/jobs",
        &[("Origin", "http://evil.example")],
        "",
    );
    assert_eq!(r.status, 200);
    assert!(!r
        .head
        .to_ascii_lowercase()
        .contains("access-control-allow-origin"));
    // curl and scripts (no Origin) still cancel
    let r = raw(&srv.url, "POST", &format!("/api/jobs/{id}/cancel"), &[], "");
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn foreign_host_names_are_misdirected() {
    let fx = common::fixture();
    let data = tempfile::tempdir().expect("data");
    let mut cfg = common::config(&fx, data.path());
    cfg.hardening.allowed_hosts = vec!["build.lan".into()];
    cfg.hardening.public_url = Some("https://pkgs.example.org/".into());
    let srv = Running::start(cfg);
    let port = srv.url.rsplit(':').next().expect("port").to_string();
    for host in [
        "rebind.evil.example",
        "rebind.evil.example:80",
        "localhost.evil.example",
        "127.0.0.1.evil.example",
    ] {
        for path in ["/api/jobs", "/", "/healthz"] {
            let r = raw(&srv.url, "GET", path, &[("Host", host)], "");
            assert_eq!(r.status, 421, "{host} {path}: {}", r.body);
        }
        let r = raw(&srv.url, "DELETE", "/api/jobs/x", &[("Host", host)], "");
        assert_eq!(r.status, 421);
    }
    let long = "a".repeat(5000);
    let r = raw(&srv.url, "GET", "/api/jobs", &[("Host", &long)], "");
    assert_eq!(r.status, 421);
    assert!(
        r.body.len() < 600,
        "the host is not echoed whole: {}",
        r.body.len()
    );
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        "[::1]".to_string(),
        "build.lan".to_string(),
        "pkgs.example.org".to_string(),
        // behind NAT or a port mapping the server is reached at addresses it does not have
        "203.0.113.7:8000".to_string(),
    ] {
        let r = raw(&srv.url, "GET", "/api/jobs", &[("Host", &host)], "");
        assert_eq!(r.status, 200, "{host}: {}", r.body);
    }
    // the public URL's page may write through a proxy that keeps the Host
    let r = raw(
        &srv.url,
        "POST",
        "/api/jobs",
        &[
            ("Host", "pkgs.example.org"),
            ("Origin", "https://pkgs.example.org"),
            ("Content-Type", "application/json"),
        ],
        JOB,
    );
    assert_eq!(r.status, 202, "{}", r.body);
}

/// Installed packages that all depend on something missing: a resolve over them has a long
/// story to tell.
fn broken_status(n: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        s.push_str(&format!(
            "Package: broken{i}\nStatus: install ok installed\nVersion: 1.0\nArchitecture: amd64\nDepends: missing{i}\nConflicts: hello\n\n"
        ));
    }
    s
}

#[test]
fn outputs_are_capped() {
    let fx = common::fixture();
    let data = tempfile::tempdir().expect("data");
    let srv = Running::start(common::config(&fx, data.path()));
    let c = Client::new(&srv.url);
    // a 100 KB distro is not reflected
    let body = json!({"distro": "x".repeat(100_000), "packages": ["hello"]});
    for path in ["/api/resolve", "/api/jobs"] {
        let r = c.post(path, &body);
        assert_eq!(r.status, 400, "{}", r.text());
        assert!(r.body.len() < 2000, "{path}: {} bytes", r.body.len());
    }
    let r = c.get(&format!(
        "/api/packages?q=hello&distro={}",
        "y".repeat(20_000)
    ));
    assert_eq!(r.status, 400);
    assert!(r.body.len() < 2000, "{} bytes", r.body.len());
    let body = json!({"distro": "debian-12", "arch": "z".repeat(100_000), "packages": ["hello"]});
    let r = c.post("/api/resolve", &body);
    assert_eq!(r.status, 400);
    assert!(r.body.len() < 2000, "{} bytes", r.body.len());
    // a long explanation: capped in the answer, the stored error, the log and the end event
    let status = broken_status(20_000);
    let req = json!({"distro":"debian-12","packages":["hello"],"baseline":{"status": status}});
    let r = c.post("/api/resolve", &req);
    assert!(r.status >= 400, "{}", r.status);
    assert!(
        r.body.len() < 8 << 10,
        "preview error: {} bytes",
        r.body.len()
    );
    let mut ids = Vec::new();
    for _ in 0..3 {
        let r = c.post("/api/jobs", &req);
        assert_eq!(r.status, 202, "{}", r.text());
        ids.push(r.json()["id"].as_str().expect("id").to_string());
    }
    for id in &ids {
        let j = c.wait(id, Duration::from_secs(120));
        assert_eq!(j["state"], "failed", "{j}");
        let m = j["error"]["message"].as_str().expect("message");
        assert!(m.len() <= 4200, "stored error: {} bytes", m.len());
        // the explanation was long: it says how much was left out
        assert!(
            m.contains(" more lines") || m.contains(" more bytes"),
            "{m}"
        );
        let log = c.get(&format!("/api/jobs/{id}/log"));
        assert!(
            log.body.len() < 16 << 10,
            "job log: {} bytes",
            log.body.len()
        );
        let ev = c.events(id, "");
        let end = ev.iter().find(|(e, _)| e == "end").expect("end event");
        assert!(end.1.to_string().len() < 16 << 10);
    }
    let list = c.get("/api/jobs");
    assert!(
        list.body.len() < 64 << 10,
        "GET /api/jobs: {} bytes",
        list.body.len()
    );
}

#[test]
fn per_client_rate_and_queue_limits() {
    let fx = common::fixture();
    let data = tempfile::tempdir().expect("data");
    let mut cfg = common::config(&fx, data.path());
    cfg.hardening.rate_per_minute = 4;
    cfg.hardening.max_queued_per_client = 2;
    cfg.workers = 1;
    // builds take a while: submitted jobs stay unfinished
    fx.server
        .fail_always("/pool/", Fault::Delay(Duration::from_millis(1500)));
    let srv = Running::start(cfg);
    let c = Client::new(&srv.url);
    let body = json!({"distro":"debian-12","packages":["hello"],"baseline":"none"});
    let a = c.post("/api/jobs", &body);
    assert_eq!(a.status, 202, "{}", a.text());
    let b = c.post("/api/jobs", &body);
    assert_eq!(b.status, 202, "{}", b.text());
    // the queue limit
    let r = c.post("/api/jobs", &body);
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "rate_limited");
    assert!(r
        .header("retry-after")
        .is_some_and(|v| v.parse::<u64>().is_ok()));
    assert_eq!(total_jobs(&c), 2);
    // the rate limit (4 a minute: the fourth call spends the last token)
    let r = c.post("/api/resolve", &body);
    assert_eq!(r.status, 200, "{}", r.text());
    let r = c.post("/api/resolve", &body);
    assert_eq!(r.status, 429, "{}", r.text());
    let secs: u64 = r
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=15).contains(&secs), "{secs}");
    // reads are not limited
    for _ in 0..20 {
        assert_eq!(c.get("/api/jobs").status, 200);
    }
    // a finished job frees its queue slot (the rate still applies)
    let id = a.json()["id"].as_str().expect("id").to_string();
    assert_eq!(
        c.post_raw(&format!("/api/jobs/{id}/cancel"), b"").status,
        200
    );
}

#[test]
fn uploads_are_parsed_off_the_async_threads_and_kept_out_of_the_database() {
    let fx = common::fixture();
    let data = tempfile::tempdir().expect("data");
    let mut cfg = common::config(&fx, data.path());
    cfg.max_body_bytes = 16 << 20;
    let srv = Running::start(cfg);
    let c = Client::new(&srv.url);
    // an 8 MB status file of installed packages (satisfiable: hello is not among them)
    let mut status = String::new();
    let mut i = 0;
    while status.len() < 8 << 20 {
        status.push_str(&format!(
            "Package: pkg{i}\nStatus: install ok installed\nVersion: 1.0-{i}\nArchitecture: amd64\nDescription: filler package number {i} with a long description line\n\n"
        ));
        i += 1;
    }
    let body = serde_json::to_vec(
        &json!({"distro":"debian-12","packages":["hello"],"baseline":{"status": status}}),
    )
    .expect("json");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let probe = {
        let stop = std::sync::Arc::clone(&stop);
        let url = srv.url.clone();
        std::thread::spawn(move || {
            let c = Client::new(&url);
            let mut worst = Duration::ZERO;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let t0 = Instant::now();
                assert_eq!(c.get("/healthz").status, 200);
                worst = worst.max(t0.elapsed());
                std::thread::sleep(Duration::from_millis(20));
            }
            worst
        })
    };
    let uploads: Vec<_> = (0..8)
        .map(|k| {
            let url = srv.url.clone();
            let body = body.clone();
            std::thread::spawn(move || {
                let c = Client::new(&url);
                let path = if k % 2 == 0 {
                    "/api/jobs"
                } else {
                    "/api/resolve"
                };
                let r = c.post_raw(path, &body);
                assert!(r.status == 202 || r.status == 200, "{}", r.text());
                r
            })
        })
        .collect();
    let answers: Vec<_> = uploads
        .into_iter()
        .map(|t| t.join().expect("upload"))
        .collect();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let worst = probe.join().expect("probe");
    eprintln!("worst /healthz during 8 concurrent 8 MB uploads: {worst:?}");
    assert!(
        worst < Duration::from_millis(1000),
        "/healthz took {worst:?}"
    );
    // four jobs with the same upload: one compressed file, a small database
    let ids: Vec<String> = answers
        .iter()
        .filter(|a| a.status == 202)
        .map(|a| a.json()["id"].as_str().expect("id").to_string())
        .collect();
    assert_eq!(ids.len(), 4);
    let files = common::files_under(&data.path().join("uploads"));
    assert_eq!(files.len(), 1, "{files:?}");
    let up = std::fs::metadata(data.path().join("uploads").join(&files[0])).expect("upload");
    assert!(up.len() < 2 << 20, "compressed upload: {} bytes", up.len());
    let db_size = |p: &std::path::Path| {
        ["jobs.sqlite", "jobs.sqlite-wal"]
            .iter()
            .filter_map(|f| std::fs::metadata(p.join(f)).ok())
            .map(|m| m.len())
            .sum::<u64>()
    };
    assert!(
        db_size(data.path()) < 2 << 20,
        "database: {} bytes",
        db_size(data.path())
    );
    for id in &ids {
        let j = c.wait(id, Duration::from_secs(120));
        assert_eq!(j["state"], "done", "{j}");
    }
}

#[test]
fn half_open_connections_are_closed_and_the_server_keeps_serving() {
    let fx = common::fixture();
    let data = tempfile::tempdir().expect("data");
    let mut cfg = common::config(&fx, data.path());
    cfg.hardening.header_timeout = Duration::from_secs(2);
    cfg.hardening.max_connections = 100;
    let srv = Running::start(cfg);
    let addr = srv.url.trim_start_matches("http://").to_string();
    let t0 = Instant::now();
    let mut conns: Vec<TcpStream> = (0..300)
        .map(|i| {
            let mut s = TcpStream::connect(&addr).expect("connect");
            // idle, half a request line, or headers that never end
            match i % 3 {
                0 => {}
                1 => s.write_all(b"GET /api/jobs HT").expect("write"),
                _ => s
                    .write_all(b"GET /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: a")
                    .expect("write"),
            }
            s.set_read_timeout(Some(Duration::from_secs(30)))
                .expect("timeout");
            s
        })
        .collect();
    // the byte-by-byte sender: still not a whole head after the timeout
    let mut slow = TcpStream::connect(&addr).expect("connect");
    slow.write_all(b"GET /api/jobs HTTP/1.1\r\n")
        .expect("write");
    let mut slow_closed = false;
    for _ in 0..40 {
        std::thread::sleep(Duration::from_millis(200));
        if slow.write_all(b"X").is_err() {
            slow_closed = true;
            break;
        }
    }
    // every one is closed by the server (read: EOF or reset) well within 30 s
    for (i, s) in conns.iter_mut().enumerate() {
        let mut buf = [0u8; 512];
        match s.read(&mut buf) {
            Ok(0) | Err(_) => {}
            Ok(n) => {
                // a 408/400 answer before the close is fine; then EOF
                let t = String::from_utf8_lossy(&buf[..n]).into_owned();
                assert!(t.starts_with("HTTP/1.1 4"), "connection {i}: {t}");
                let mut rest = Vec::new();
                let _ = s.read_to_end(&mut rest);
            }
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "connection {i} still open after {:?}",
            t0.elapsed()
        );
    }
    let took = t0.elapsed();
    eprintln!("300 half-open connections closed within {took:?}");
    assert!(slow_closed, "the byte-by-byte client was not cut off");
    // and the server still answers
    let c = Client::new(&srv.url);
    assert_eq!(c.get("/healthz").status, 200);
    assert_eq!(c.get("/api/jobs").status, 200);
}

/// Items 8–10: security headers on every answer, Range details, /metrics behind the token.
#[test]
fn headers_range_details_and_metrics_behind_the_token() {
    let fx = common::fixture();
    let data = tempfile::tempdir().expect("data");
    let srv = Running::start(common::config(&fx, data.path()));
    for path in ["/", "/api/jobs", "/healthz", "/metrics", "/api/nope"] {
        let r = raw(&srv.url, "GET", path, &[], "");
        let head = r.head.to_ascii_lowercase();
        for (name, value) in opaas_server::api::SECURITY_HEADERS {
            assert!(
                head.contains(&format!("{name}: {}", value.to_ascii_lowercase())),
                "{path}: no {name}: {}",
                r.head
            );
        }
        assert!(head.contains("frame-ancestors 'none'"), "{path}");
    }
    // a bundle to ask ranges of
    let c = Client::new(&srv.url);
    let r = c.post(
        "/api/jobs",
        &json!({"distro":"debian-12","arch":"amd64","packages":["hello"],"baseline":"none"}),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let id = r.json()["id"].as_str().expect("id").to_string();
    let j = c.wait(&id, Duration::from_secs(120));
    assert_eq!(j["state"], "done", "{j}");
    let size = j["bundle"]["size"].as_u64().expect("size");
    let path = format!("/api/jobs/{id}/bundle");
    let whole = c.get(&path);
    let modified = whole
        .header("last-modified")
        .expect("last-modified")
        .to_string();
    // If-Range that matches: the range; that does not: the whole file, 200
    let part = c.get_with(&path, &[("Range", "bytes=0-9"), ("If-Range", &modified)]);
    assert_eq!(part.status, 206);
    assert_eq!(part.body.len(), 10);
    let stale = c.get_with(
        &path,
        &[
            ("Range", "bytes=0-9"),
            ("If-Range", "Wed, 21 Oct 2015 07:28:00 GMT"),
        ],
    );
    assert_eq!(stale.status, 200);
    assert_eq!(stale.body.len() as u64, size);
    assert_eq!(stale.header("content-type"), Some("application/gzip"));
    // an unsatisfiable range is not dressed as a gzip file
    let r416 = c.get_with(&path, &[("Range", &format!("bytes={}-", size + 10))]);
    assert_eq!(r416.status, 416);
    assert_ne!(r416.header("content-type"), Some("application/gzip"));
    drop(srv);

    // with a token, /metrics needs it unless --metrics-public
    for public in [false, true] {
        let data = tempfile::tempdir().expect("data");
        let mut cfg = common::config(&fx, data.path());
        cfg.token = Some("s3cret".into());
        cfg.metrics_public = public;
        let srv = Running::start(cfg);
        let anon = raw(&srv.url, "GET", "/metrics", &[], "");
        assert_eq!(
            anon.status,
            if public { 200 } else { 401 },
            "public={public}"
        );
        let authed = raw(
            &srv.url,
            "GET",
            "/metrics",
            &[("Authorization", "Bearer s3cret")],
            "",
        );
        assert_eq!(authed.status, 200);
        assert_eq!(raw(&srv.url, "GET", "/healthz", &[], "").status, 200);
    }
}
