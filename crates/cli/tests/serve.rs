//! `opaas serve` as a child process against a fixture archive on 127.0.0.1: killed with
//! SIGKILL mid-job and started again, a job finishes (re-queued once) or fails with a reason
//! (interrupted twice) — never stuck; SIGTERM stops it cleanly. Hermetic.

use opaas_testkit::{Fault, FixtureRepo, Package, Server, Suite};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Fx {
    _repo: FixtureRepo,
    server: Server,
    keyring: PathBuf,
}

fn fixture() -> Fx {
    let repo = FixtureRepo::temp().expect("repo");
    let release = Suite::new("bookworm")
        .package(
            "main",
            Package::new("hello", "1.0", "amd64")
                .depends("libhello1 (>= 1.0)")
                .deb_file("/usr/bin/hello", b"#!/bin/sh\necho hello\n"),
        )
        .package("main", Package::new("libhello1", "1.0", "amd64").with_deb())
        .package("main", Package::new("hello-doc", "1.0", "all").with_deb());
    repo.publish_all(&[
        release,
        Suite::new("bookworm-updates"),
        Suite::new("bookworm-security"),
    ])
    .expect("publish");
    let server = Server::start(repo.root()).expect("server");
    let keyring = repo.keyring_path().to_path_buf();
    Fx {
        _repo: repo,
        server,
        keyring,
    }
}

struct Serve {
    child: Child,
    base: String,
}

impl Serve {
    fn start(fx: &Fx, data: &Path) -> Serve {
        Serve::start_with(fx, data, &[], "warn")
    }

    /// With extra flags and an `OPAAS_LOG` filter; stderr goes to `<data>/stderr.txt`.
    fn start_with(fx: &Fx, data: &Path, extra: &[&str], log: &str) -> Serve {
        let cfg = data.join("empty-config.toml");
        std::fs::create_dir_all(data).expect("data dir");
        std::fs::write(&cfg, "").expect("config");
        let url = fx.server.url();
        let mut child = Command::new(env!("CARGO_BIN_EXE_opaas"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--workers",
                "1",
                "-j",
                "1",
            ])
            .args([
                "--min-free-bytes",
                "0",
                "--mirror",
                &url,
                "--security-mirror",
                &url,
            ])
            .arg("--data-dir")
            .arg(data)
            .arg("--keyring")
            .arg(&fx.keyring)
            .arg("--config")
            .arg(&cfg)
            .args(extra)
            .env_remove("OPAAS_TOKEN")
            .env_remove("NO_COLOR")
            .env("OPAAS_LOG", log)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(data.join("stderr.txt")).expect("stderr file"))
            .spawn()
            .expect("opaas serve starts");
        let out = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(out).read_line(&mut line).expect("read");
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        Serve { child, base }
    }

    fn kill9(mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A one-shot HTTP/1.1 request (Connection: close); returns (status, body).
fn http(base: &str, method: &str, path: &str, body: Option<&Value>) -> (u16, String) {
    let hostport = base.trim_start_matches("http://");
    let mut s = TcpStream::connect(hostport).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{payload}",
        payload.len()
    )
    .expect("write");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn job(base: &str, id: &str) -> Value {
    let (st, b) = http(base, "GET", &format!("/api/jobs/{id}"), None);
    assert_eq!(st, 200, "{b}");
    serde_json::from_str(&b).expect("json")
}

fn wait_state(base: &str, id: &str, want: &[&str], limit: Duration) -> Value {
    let t0 = Instant::now();
    loop {
        let j = job(base, id);
        if want.contains(&j["state"].as_str().unwrap_or("")) {
            return j;
        }
        assert!(t0.elapsed() < limit, "job never reached {want:?}: {j}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn submit(base: &str, packages: &[&str]) -> String {
    let (st, b) = http(
        base,
        "POST",
        "/api/jobs",
        Some(&json!({"distro":"debian-12","packages":packages,"baseline":"none"})),
    );
    assert_eq!(st, 202, "{b}");
    let v: Value = serde_json::from_str(&b).expect("json");
    v["id"].as_str().expect("id").to_string()
}

#[test]
fn killed_mid_job_the_job_finishes_after_restart() {
    let fx = fixture();
    fx.server
        .fail_always("/pool/", Fault::Delay(Duration::from_secs(2)));
    let data = tempfile::tempdir().expect("data");
    let s = Serve::start(&fx, data.path());
    let id = submit(&s.base, &["hello"]);
    wait_state(&s.base, &id, &["downloading"], Duration::from_secs(60));
    s.kill9();
    fx.server.clear_faults();
    let s = Serve::start(&fx, data.path());
    let j = wait_state(
        &s.base,
        &id,
        &["done", "failed", "cancelled"],
        Duration::from_secs(120),
    );
    assert_eq!(j["state"], "done", "{j}");
    let (_, log) = http(&s.base, "GET", &format!("/api/jobs/{id}/log"), None);
    assert!(log.contains("queued again"), "{log}");
    assert!(log.contains("attempt 2 of 2"), "{log}");
    let (st, _) = http(&s.base, "GET", &format!("/api/jobs/{id}/bundle"), None);
    assert_eq!(st, 200);
    // no temporary build directory is left behind
    let tmp: Vec<_> = std::fs::read_dir(data.path().join("tmp"))
        .expect("tmp")
        .collect();
    assert!(tmp.is_empty(), "{tmp:?}");
}

#[test]
fn killed_twice_the_job_fails_with_a_reason() {
    let fx = fixture();
    fx.server
        .fail_always("/pool/", Fault::Delay(Duration::from_secs(3)));
    let data = tempfile::tempdir().expect("data");
    let s = Serve::start(&fx, data.path());
    let id = submit(&s.base, &["hello"]);
    wait_state(&s.base, &id, &["downloading"], Duration::from_secs(60));
    s.kill9();
    let s = Serve::start(&fx, data.path());
    wait_state(&s.base, &id, &["downloading"], Duration::from_secs(60));
    s.kill9();
    fx.server.clear_faults();
    let s = Serve::start(&fx, data.path());
    let j = job(&s.base, &id);
    assert_eq!(j["state"], "failed", "{j}");
    assert_eq!(j["error"]["code"], "internal");
    assert!(
        j["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("stopped while this job was running")),
        "{j}"
    );
    // the service works on
    let id2 = submit(&s.base, &["libhello1"]);
    let j2 = wait_state(
        &s.base,
        &id2,
        &["done", "failed", "cancelled"],
        Duration::from_secs(120),
    );
    assert_eq!(j2["state"], "done", "{j2}");
}

fn sigterm(s: &mut Serve) {
    let pid = s.child.id().to_string();
    let k = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(k.success());
    let t0 = Instant::now();
    loop {
        if let Some(status) = s.child.try_wait().expect("wait") {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "opaas serve did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Neither the daily log file nor a redirected stderr holds colour codes; `--max-index-age`
/// takes a humantime duration, and the old `--index-max-age` still works.
#[test]
fn logs_without_a_terminal_have_no_colour_codes() {
    let fx = fixture();
    for flags in [["--max-index-age", "1h"], ["--index-max-age", "90"]] {
        let data = tempfile::tempdir().expect("data");
        let mut s = Serve::start_with(&fx, data.path(), &flags, "info");
        let id = submit(&s.base, &["hello"]);
        let j = wait_state(&s.base, &id, &["done", "failed"], Duration::from_secs(60));
        assert_eq!(j["state"], "done", "{j}");
        sigterm(&mut s);
        let stderr = std::fs::read_to_string(data.path().join("stderr.txt")).expect("stderr");
        assert!(stderr.contains("INFO"), "{stderr}");
        assert!(
            !stderr.contains('\u{1b}'),
            "colour codes on stderr: {stderr:?}"
        );
        let mut logs = 0;
        for e in std::fs::read_dir(data.path().join("logs"))
            .expect("logs")
            .flatten()
        {
            let text = std::fs::read_to_string(e.path()).expect("log");
            assert!(text.contains("INFO"), "{text}");
            assert!(
                !text.contains('\u{1b}'),
                "colour codes in the log file: {text:?}"
            );
            logs += 1;
        }
        assert_eq!(logs, 1);
    }
    // one spelling at a time
    let both = Command::new(env!("CARGO_BIN_EXE_opaas"))
        .args(["serve", "--max-index-age", "1h", "--index-max-age", "90"])
        .output()
        .expect("opaas runs");
    assert_eq!(both.status.code(), Some(2), "{both:?}");
    let help = Command::new(env!("CARGO_BIN_EXE_opaas"))
        .args(["serve", "--help"])
        .output()
        .expect("opaas runs");
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("--max-index-age"), "{help}");
    assert!(!help.contains("--index-max-age"), "{help}");
}

#[test]
fn sigterm_stops_cleanly() {
    let fx = fixture();
    let data = tempfile::tempdir().expect("data");
    let mut s = Serve::start(&fx, data.path());
    let (st, b) = http(&s.base, "GET", "/healthz", None);
    assert_eq!((st, b.as_str()), (200, "{\"status\":\"ok\"}"));
    sigterm(&mut s);
    // its daily log file is there
    let logs: Vec<String> = std::fs::read_dir(data.path().join("logs"))
        .expect("logs")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        logs.iter()
            .any(|n| n.starts_with("opaas.") && n.ends_with(".log")),
        "{logs:?}"
    );
}
