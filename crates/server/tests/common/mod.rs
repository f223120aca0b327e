//! Shared by the server's tests: signed fixture archives on 127.0.0.1 (opaas-testkit), a
//! service configured for them, a real listening server on a background runtime, and a small
//! blocking HTTP client.
#![allow(dead_code)]

use opaas_server::ServerConfig;
use opaas_testkit::{FixtureRepo, Package, Server, Suite};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct Fixture {
    pub repo: FixtureRepo,
    pub server: Server,
    pub keyring: PathBuf,
}

/// Packages shared by many requests (the load test asks for overlapping sets).
pub const TOOLS: [&str; 6] = ["tool-a", "tool-b", "tool-c", "tool-d", "tool-e", "tool-f"];

/// `opaas_testkit::fixtures::debian12_hello`, plus tools over shared libraries.
pub fn debian12_suites() -> Vec<Suite> {
    let mut suites = opaas_testkit::fixtures::debian12_hello();
    let mut release = suites
        .remove(0)
        .package(
            "main",
            Package::new("libshared1", "1.0", "amd64").with_deb(),
        )
        .package(
            "main",
            Package::new("libshared2", "2.0", "amd64").with_deb(),
        )
        .package(
            "main",
            Package::new("mail-agent", "1.0", "amd64")
                .provides("mail-transport-agent")
                .with_deb(),
        );
    for (i, t) in TOOLS.iter().enumerate() {
        let deps = if i % 2 == 0 {
            "libshared1"
        } else {
            "libshared1, libshared2"
        };
        release = release.package(
            "main",
            Package::new(t, "1.0", "amd64")
                .depends(deps)
                .field("Description", &format!("tool number {i}"))
                .deb_file(&format!("/usr/bin/{t}"), t.as_bytes()),
        );
    }
    suites.insert(0, release);
    suites
}

/// Every suite of every distro of the catalog, with all its components and architectures
/// (small indices: `hello` and `hello-doc`), so that any valid distro/arch an API fuzzer picks
/// resolves against the fixture. Debian 12 gets the full set above.
pub fn all_distro_suites() -> Vec<Suite> {
    let mut out = debian12_suites();
    for d in opaas_repo::catalog::distros() {
        if d.id == "debian-12" {
            continue;
        }
        let comps: Vec<&str> = d.components.iter().map(String::as_str).collect();
        let arches: Vec<&str> = d.all_architectures().collect();
        for (i, p) in d.pockets.iter().enumerate() {
            let mut s = Suite::new(&p.suite)
                .components(&comps)
                .architectures(&arches);
            if i == 0 {
                // pool paths are shared by every suite: one version per distro
                let v = format!("1.0+{}", d.codename);
                s = s
                    .package("main", Package::new("hello", &v, "amd64").with_deb())
                    .package("main", Package::new("hello-doc", &v, "all").with_deb());
            }
            out.push(s);
        }
    }
    out
}

/// Publishes `suites` and serves them.
pub fn fixture_with(suites: &[Suite]) -> Fixture {
    let repo = FixtureRepo::temp().expect("repo");
    repo.publish_all(suites).expect("publish");
    let server = Server::start(repo.root()).expect("server");
    let keyring = repo.keyring_path().to_path_buf();
    Fixture {
        repo,
        server,
        keyring,
    }
}

pub fn fixture() -> Fixture {
    fixture_with(&debian12_suites())
}

/// A service configuration pointed at the fixture, with test-friendly limits.
pub fn config(fx: &Fixture, data_dir: &Path) -> ServerConfig {
    let mut c = ServerConfig::new(data_dir);
    c.listen = "127.0.0.1:0".parse().expect("addr");
    c.settings.mirror = Some(fx.server.url());
    c.settings.security_mirror = Some(fx.server.url());
    c.settings.keyrings = vec![fx.keyring.clone()];
    // no host config file may leak into the tests
    let cfgfile = data_dir.join("test-config.toml");
    std::fs::create_dir_all(data_dir).expect("data dir");
    std::fs::write(&cfgfile, "").expect("config file");
    c.settings.config_file = Some(cfgfile);
    c.min_free_bytes = 0;
    c.janitor_interval = Duration::from_secs(3600);
    c.index_max_age = Duration::from_secs(86400);
    c.shutdown_grace = Duration::from_secs(5);
    // the per-client limits have their own tests (hardening.rs); the others submit freely
    c.hardening.rate_per_minute = 0;
    c.hardening.max_queued_per_client = 0;
    c
}

/// A real server on 127.0.0.1 on its own runtime; stopped (gracefully) on drop.
pub struct Running {
    pub url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    pub fn start(cfg: ServerConfig) -> Running {
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let l = tokio::net::TcpListener::bind(cfg.listen)
                    .await
                    .expect("bind");
                tx.send(l.local_addr().expect("addr")).expect("send addr");
                opaas_server::serve(cfg, l, async move {
                    let _ = stop_rx.await;
                })
                .await
                .expect("serve");
            });
        });
        let addr = rx.recv_timeout(Duration::from_secs(60)).expect("listening");
        Running {
            url: format!("http://{addr}"),
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.halt();
    }
}

/// A blocking client that returns every status (4xx/5xx are answers, not errors).
pub struct Client {
    agent: ureq::Agent,
    pub base: String,
    pub token: Option<String>,
}

pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {} {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Client {
    pub fn new(base: &str) -> Client {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .new_agent();
        Client {
            agent,
            base: base.trim_end_matches('/').to_string(),
            token: None,
        }
    }

    fn finish(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Answer {
        let mut r = r.expect("HTTP request");
        let status = r.status().as_u16();
        let headers = r
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let body = r
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_vec()
            .unwrap_or_default();
        Answer {
            status,
            headers,
            body,
        }
    }

    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        let mut rb = self.agent.get(format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            rb = rb.header("Authorization", &format!("Bearer {t}"));
        }
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        Self::finish(rb.call())
    }
    pub fn get(&self, path: &str) -> Answer {
        self.get_with(path, &[])
    }
    pub fn post(&self, path: &str, body: &Value) -> Answer {
        self.post_raw(path, &serde_json::to_vec(body).expect("json"))
    }
    pub fn post_raw(&self, path: &str, body: &[u8]) -> Answer {
        let mut rb = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Content-Type", "application/json");
        if let Some(t) = &self.token {
            rb = rb.header("Authorization", &format!("Bearer {t}"));
        }
        Self::finish(rb.send(body))
    }
    pub fn delete(&self, path: &str) -> Answer {
        let mut rb = self.agent.delete(format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            rb = rb.header("Authorization", &format!("Bearer {t}"));
        }
        Self::finish(rb.call())
    }

    /// Polls a job until it is terminal (or panics after `limit`).
    pub fn wait(&self, id: &str, limit: Duration) -> Value {
        let t0 = Instant::now();
        loop {
            let j = self.get(&format!("/api/jobs/{id}")).json();
            let s = j["state"].as_str().unwrap_or("").to_string();
            if ["done", "failed", "cancelled"].contains(&s.as_str()) {
                return j;
            }
            assert!(
                t0.elapsed() < limit,
                "job {id} still {s} after {limit:?}: {j}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The whole event stream of a job (until the server closes it), as (event, data) pairs.
    pub fn events(&self, id: &str, query: &str) -> Vec<(String, Value)> {
        let a = self.get(&format!("/api/jobs/{id}/events{query}"));
        assert_eq!(a.status, 200, "{}", a.text());
        parse_sse(&a.text())
    }
}

pub fn parse_sse(text: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let mut ev = String::new();
        let mut data = String::new();
        for line in block.lines() {
            if let Some(e) = line.strip_prefix("event:") {
                ev = e.trim().to_string();
            } else if let Some(d) = line.strip_prefix("data:") {
                data.push_str(d.strip_prefix(' ').unwrap_or(d));
            }
        }
        if !ev.is_empty() {
            out.push((ev, serde_json::from_str(&data).unwrap_or(Value::Null)));
        }
    }
    out
}

/// Every file under `dir` (recursively), as paths relative to it.
pub fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(base: &Path, d: &Path, out: &mut Vec<String>) {
        if let Ok(rd) = std::fs::read_dir(d) {
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(base, &p, out);
                } else if let Ok(r) = p.strip_prefix(base) {
                    out.push(r.display().to_string());
                }
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}
