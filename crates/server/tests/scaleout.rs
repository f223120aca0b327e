//! Scale-out (issue 15): three `opaas serve` processes on one PostgreSQL and one bucket of an
//! S3-compatible store, all real: a throw-away PostgreSQL cluster of Debian's `postgresql`
//! (scripts/scaleout/pg.sh) and Garage (scripts/scaleout/garage.sh), on 127.0.0.1.
//!
//! One test, in phases that share the engines and replicas (starting them is the slow part):
//! 1. 60 jobs submitted round-robin: each runs exactly once (its log has one start, and the
//!    replicas' build counters add up to 60); every bundle downloads from another replica than
//!    the one it was submitted to, with its SHA-256; a Range request;
//! 2. `kill -9` of the replica running a slow job: another replica takes it over after the
//!    lease and finishes it; the event stream followed on a third replica tells the whole story;
//!    cancel and delete from a replica that does not run the job;
//! 3. the database restarted mid-run and the bucket stopped for `OPAAS_SCALEOUT_OUTAGE_S`
//!    (default 30) seconds: nothing is lost, everything finishes once they are back, `/healthz`
//!    says why it is unhealthy meanwhile.
//!
//! Needs the `opaas` binary (built by `cargo build -p opaas`, found in the target directory),
//! PostgreSQL's server binaries and `garage` (`.ci/run` installs both). Skips, saying so, only
//! with `OPAAS_SKIP_SCALEOUT=1`.

mod common;

use common::Client;
use opaas_testkit::{Fault, Package};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const LEASE_S: u64 = 3;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn script(name: &str) -> PathBuf {
    root().join("scripts/scaleout").join(name)
}

/// Runs a harness script; its stdout.
fn run(script_name: &str, args: &[&str]) -> String {
    let out = Command::new("bash")
        .arg(script(script_name))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run a harness script");
    assert!(
        out.status.success(),
        "{script_name} {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A free TCP port on 127.0.0.1 with `n - 1` free ports after it.
fn free_ports(n: u16) -> u16 {
    for _ in 0..200 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let p = l.local_addr().expect("addr").port();
        drop(l);
        if p > 60000 {
            continue;
        }
        if (1..n).all(|i| std::net::TcpListener::bind(("127.0.0.1", p + i)).is_ok()) {
            return p;
        }
    }
    panic!("no free ports");
}

/// The `opaas` binary, built if needed.
fn opaas_bin() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "-q", "-p", "opaas"]).current_dir(root());
    // without the variables cargo sets for a test (they change fingerprints: a full rebuild)
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if (k.starts_with("CARGO_") && k != "CARGO_HOME" && k != "CARGO_TARGET_DIR")
            || k == "OUT_DIR"
            || k.starts_with("RUST")
        {
            cmd.env_remove(&k);
        }
    }
    let st = cmd.status().expect("cargo build -p opaas");
    assert!(st.success(), "cargo build -p opaas failed");
    // this test runs from <target>/debug/deps/
    let exe = std::env::current_exe().expect("exe");
    let debug = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf();
    let bin = debug.join("opaas");
    assert!(bin.exists(), "{} is missing", bin.display());
    bin
}

/// PostgreSQL and Garage, stopped on drop.
struct Engines {
    dir: tempfile::TempDir,
    /// `OPAAS_SCALEOUT_NO_GARAGE=1` (debugging only): a shared directory instead of the bucket.
    shared_dir: Option<PathBuf>,
    pg_port: u16,
    pg_url: String,
    s3_port: u16,
    aws: Vec<(String, String)>,
}

impl Engines {
    fn start() -> Engines {
        let dir = tempfile::Builder::new()
            .prefix("opaas-scaleout")
            .tempdir()
            .expect("tmp");
        let pg_port = free_ports(1);
        let pg_url = run(
            "pg.sh",
            &["start", &Self::pg_dir(dir.path()), &pg_port.to_string()],
        )
        .trim()
        .to_string();
        let s3_port = free_ports(3);
        if std::env::var("OPAAS_SCALEOUT_NO_GARAGE").is_ok_and(|v| v == "1") {
            eprintln!("# OPAAS_SCALEOUT_NO_GARAGE=1: bundles in a shared directory, NOT in Garage (debugging only)");
            let shared = dir.path().join("shared-bundles");
            return Engines {
                dir,
                shared_dir: Some(shared),
                pg_port,
                pg_url,
                s3_port,
                aws: Vec::new(),
            };
        }
        let vars = run(
            "garage.sh",
            &["start", &Self::garage_dir(dir.path()), &s3_port.to_string()],
        );
        let aws = vars
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>();
        assert!(aws.len() >= 4, "garage.sh printed {vars}");
        Engines {
            dir,
            shared_dir: None,
            pg_port,
            pg_url,
            s3_port,
            aws,
        }
    }
    fn pg_dir(d: &Path) -> String {
        d.join("pg").display().to_string()
    }
    fn garage_dir(d: &Path) -> String {
        d.join("garage").display().to_string()
    }
    fn pg(&self, cmd: &str) {
        let port = self.pg_port.to_string();
        let dir = Self::pg_dir(self.dir.path());
        let mut args = vec![cmd, dir.as_str()];
        if cmd == "start" {
            args.push(&port);
        }
        run("pg.sh", &args);
    }
    fn garage(&self, cmd: &str) {
        let port = self.s3_port.to_string();
        let dir = Self::garage_dir(self.dir.path());
        let mut args = vec![cmd, dir.as_str()];
        if cmd == "start" {
            args.push(&port);
        }
        run("garage.sh", &args);
    }
}

impl Drop for Engines {
    fn drop(&mut self) {
        let d = self.dir.path();
        let _ = Command::new("bash")
            .arg(script("pg.sh"))
            .args(["kill", &Self::pg_dir(d)])
            .status();
        if self.shared_dir.is_none() {
            let _ = Command::new("bash")
                .arg(script("garage.sh"))
                .args(["stop", &Self::garage_dir(d)])
                .status();
        }
    }
}

/// One `opaas serve` process.
struct Replica {
    child: Child,
    url: String,
    data: tempfile::TempDir,
}

impl Replica {
    fn start(bin: &Path, fx: &common::Fixture, e: &Engines, prefix: &str) -> Replica {
        Self::start_with(bin, fx, e, prefix, &[])
    }
    fn start_with(
        bin: &Path,
        fx: &common::Fixture,
        e: &Engines,
        prefix: &str,
        extra: &[&str],
    ) -> Replica {
        let data = tempfile::tempdir().expect("data");
        let cfgfile = data.path().join("test-config.toml");
        std::fs::write(&cfgfile, "").expect("config");
        let mirror = fx.server.url();
        let mut cmd = Command::new(bin);
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data.path().join("d"))
            .args([
                "--mirror",
                &mirror,
                "--security-mirror",
                &mirror,
                "--keyring",
            ])
            .arg(&fx.keyring)
            .arg("--config")
            .arg(&cfgfile)
            .args([
                "--min-free-bytes",
                "0",
                "--workers",
                "2",
                "--rate-limit",
                "0",
                "--max-queued-per-client",
                "0",
                "--database",
                &e.pg_url,
                "--storage",
                &match &e.shared_dir {
                    Some(d) => d.display().to_string(),
                    None => format!("s3://opaas/{prefix}"),
                },
                "--lease",
                &format!("{LEASE_S}s"),
            ])
            .args(extra)
            .env("OPAAS_LOG", "info")
            .env("OPAAS_STORAGE_RETRY", "120s")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(data.path().join("serve.err")).expect("err"));
        for (k, v) in &e.aws {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("opaas serve");
        let out = child.stdout.take().expect("stdout");
        let mut line = String::new();
        let _ = BufReader::new(out).read_line(&mut line);
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| {
                let err =
                    std::fs::read_to_string(data.path().join("serve.err")).unwrap_or_default();
                panic!("opaas serve did not start: {line}\n{err}")
            })
            .to_string();
        Replica { child, url, data }
    }
    fn client(&self) -> Client {
        Client::new(&self.url)
    }
    fn stderr(&self) -> String {
        std::fs::read_to_string(self.data.path().join("serve.err")).unwrap_or_default()
    }
    /// Whether this replica ever started job `id` (its own copy of the job's log).
    fn ran(&self, id: &str) -> bool {
        std::fs::read_to_string(self.data.path().join(format!("d/jobs/{id}.log")))
            .is_ok_and(|t| t.contains("started (attempt"))
    }
    fn kill9(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }
    /// A counter of this replica's /metrics.
    fn metric(&self, name: &str) -> u64 {
        let t = self.client().get("/metrics").text();
        t.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
            .unwrap_or(0.0) as u64
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Submits a job; a 503 (the database is restarting) is tried again, as a client would.
fn submit(c: &Client, body: Value) -> String {
    let t0 = Instant::now();
    loop {
        let r = c.post("/api/jobs", &body);
        if r.status == 503 && t0.elapsed() < Duration::from_secs(30) {
            eprintln!("# 503, trying again: {}", r.text());
            std::thread::sleep(Duration::from_millis(500));
            continue;
        }
        assert_eq!(r.status, 202, "{}", r.text());
        return r.json()["id"].as_str().expect("id").to_string();
    }
}

fn sha256(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

fn wait_all(cs: &[&Client], ids: &[String], limit: Duration) -> Vec<Value> {
    ids.iter()
        .enumerate()
        .map(|(i, id)| cs[i % cs.len()].wait(id, limit))
        .collect()
}

fn starts(log: &str) -> usize {
    log.lines()
        .filter(|l| l.starts_with("started (attempt"))
        .count()
}

#[test]
fn three_replicas_on_postgres_and_garage() {
    if std::env::var("OPAAS_SKIP_SCALEOUT").is_ok_and(|v| v == "1") {
        eprintln!(
            "skipped: OPAAS_SKIP_SCALEOUT=1 (the scale-out test needs PostgreSQL and Garage)"
        );
        return;
    }
    let t_all = Instant::now();
    let bin = opaas_bin();
    let mut suites = common::debian12_suites();
    let release = suites
        .remove(0)
        .package(
            "main",
            Package::new("slow-app", "1.0", "amd64")
                .depends("libshared1")
                .deb_file("/usr/bin/slow-app", b"slow"),
        )
        .package(
            "main",
            Package::new("slow-app2", "1.0", "amd64").deb_file("/usr/bin/slow-app2", b"slow2"),
        );
    // 12 MiB that do not compress: its bundle goes up to the bucket as a multipart upload
    let blob: Vec<u8> = {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        (0..12 << 20)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    };
    let release = release.package(
        "main",
        Package::new("big-blob", "1.0", "amd64").deb_file("/usr/share/big-blob/data", &blob),
    );
    let release = (0..4).fold(release, |r, i| {
        let name = format!("slow-b{i}");
        r.package(
            "main",
            Package::new(&name, "1.0", "amd64").deb_file(&format!("/usr/bin/{name}"), b"b"),
        )
    });
    suites.insert(0, release);
    let fx = common::fixture_with(&suites);
    // the slow jobs' .debs take 8 s to answer: long enough to kill a replica meanwhile
    fx.server
        .fail_always("slow-", Fault::Delay(Duration::from_secs(8)));
    let t0 = Instant::now();
    let e = Engines::start();
    eprintln!("# engines up in {:.1} s", t0.elapsed().as_secs_f64());
    let prefix = format!("run-{}", std::process::id());
    let t0 = Instant::now();
    let mut reps: Vec<Replica> = (0..3)
        .map(|_| Replica::start(&bin, &fx, &e, &prefix))
        .collect();
    eprintln!("# 3 replicas up in {:.1} s", t0.elapsed().as_secs_f64());
    let cs: Vec<Client> = reps.iter().map(Replica::client).collect();
    for c in &cs {
        let h = c.get("/healthz");
        assert_eq!(h.status, 200, "{}", h.text());
    }

    // ------------------------------------------------ 1. sixty jobs, round-robin
    let t0 = Instant::now();
    let tools = common::TOOLS;
    let ids: Vec<String> = (0..60)
        .map(|i| {
            let pkgs = if i % 7 == 0 {
                vec!["hello".to_string()]
            } else {
                vec![tools[i % tools.len()].to_string()]
            };
            let format = if i % 2 == 0 { "tar.gz" } else { "tar.zst" };
            submit(
                &cs[i % 3],
                json!({"distro":"debian-12","arch":"amd64","packages":pkgs,"baseline":"none","format":format}),
            )
        })
        .collect();
    let all3: Vec<&Client> = cs.iter().collect();
    let jobs = wait_all(&all3, &ids, Duration::from_secs(240));
    let secs = t0.elapsed().as_secs_f64();
    for j in &jobs {
        assert_eq!(j["state"], "done", "{j}");
    }
    eprintln!("# 60 jobs done on 3 replicas in {secs:.1} s");
    // exactly once: one start in each job's log (kept in the database), and one build per job
    // in the replicas' counters
    for id in &ids {
        let log = cs[1].get(&format!("/api/jobs/{id}/log")).text();
        assert_eq!(starts(&log), 1, "job {id}:\n{log}");
        assert!(log.starts_with("queued: "), "{log}");
        let runners = reps.iter().filter(|r| r.ran(id)).count();
        assert_eq!(runners, 1, "job {id} ran on {runners} replicas");
    }
    let builds: Vec<u64> = reps
        .iter()
        .map(|r| r.metric("opaas_job_duration_seconds_count{outcome=\"done\"}"))
        .collect();
    eprintln!("# builds per replica: {builds:?}");
    assert_eq!(builds.iter().sum::<u64>(), 60, "{builds:?}");
    assert!(
        builds.iter().filter(|&&n| n > 0).count() >= 2,
        "the work was not shared: {builds:?}"
    );
    // every bundle from another replica than the one it was submitted to
    let t0 = Instant::now();
    let mut bytes = 0;
    for (i, (id, j)) in ids.iter().zip(&jobs).enumerate() {
        let d = cs[(i + 1) % 3].get(&format!("/api/jobs/{id}/bundle"));
        assert_eq!(d.status, 200, "{}", d.text());
        assert_eq!(
            d.body.len() as u64,
            j["bundle"]["size"].as_u64().expect("size")
        );
        assert_eq!(
            sha256(&d.body),
            j["bundle"]["sha256"].as_str().expect("sha")
        );
        bytes += d.body.len();
        if i == 0 {
            let r = cs[2].get_with(
                &format!("/api/jobs/{id}/bundle"),
                &[("Range", "bytes=10-29")],
            );
            assert_eq!(r.status, 206);
            assert_eq!(r.body, d.body[10..30].to_vec());
            let m = cs[2].get(&format!("/api/jobs/{id}/manifest"));
            assert_eq!(m.status, 200, "{}", m.text());
        }
    }
    eprintln!(
        "# 60 bundles ({bytes} bytes) downloaded across replicas, SHA-256 checked, in {:.1} s",
        t0.elapsed().as_secs_f64()
    );

    // an uploaded dpkg status file: whichever replica runs the job reads it (it is in the row)
    let status =
        "Package: libshared1\nStatus: install ok installed\nVersion: 1.0\nArchitecture: amd64\n";
    let with_status: Vec<String> = (0..3)
        .map(|i| {
            submit(
                &cs[i],
                json!({"distro":"debian-12","arch":"amd64","packages":["tool-a"],"baseline":{"status":status}}),
            )
        })
        .collect();
    for (i, id) in with_status.iter().enumerate() {
        let j = cs[(i + 2) % 3].wait(id, Duration::from_secs(60));
        assert_eq!(j["state"], "done", "{j}");
        // tool-a alone: libshared1 is installed already
        assert_eq!(j["bundle"]["package_count"], 1, "{j}");
    }

    // a bundle larger than one part (8 MiB): multipart upload, then whole and ranged downloads
    // through another replica
    let big = submit(
        &cs[0],
        json!({"distro":"debian-12","arch":"amd64","packages":["big-blob"],"baseline":"none"}),
    );
    let j = cs[1].wait(&big, Duration::from_secs(120));
    assert_eq!(j["state"], "done", "{j}");
    let size = j["bundle"]["size"].as_u64().expect("size");
    assert!(size > 8 << 20, "{size}");
    let d = cs[2].get(&format!("/api/jobs/{big}/bundle"));
    assert_eq!(d.status, 200);
    assert_eq!(
        sha256(&d.body),
        j["bundle"]["sha256"].as_str().expect("sha")
    );
    let r = cs[1].get_with(
        &format!("/api/jobs/{big}/bundle"),
        &[("Range", "bytes=9000000-9000999")],
    );
    assert_eq!(r.status, 206);
    assert_eq!(r.body, d.body[9_000_000..9_001_000].to_vec());
    eprintln!("# a {size}-byte bundle (more than one 8 MiB part) stored, whole and ranged downloads checked");

    // a fourth replica answers downloads with a redirect to a presigned URL of the bucket
    if e.shared_dir.is_none() {
        let presigning = Replica::start_with(&bin, &fx, &e, &prefix, &["--presign-downloads"]);
        let agent = ureq::Agent::config_builder()
            .max_redirects(0)
            .http_status_as_error(false)
            .build()
            .new_agent();
        let r = agent
            .get(format!("{}/api/jobs/{big}/bundle", presigning.url))
            .call()
            .expect("GET");
        assert_eq!(r.status().as_u16(), 307);
        let location = r
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        assert!(
            location.contains("X-Amz-Signature=") && location.contains(&format!(":{}/", e.s3_port)),
            "{location}"
        );
        let pc = presigning.client();
        let d = pc.get(&format!("/api/jobs/{big}/bundle"));
        assert_eq!(d.status, 200, "{}", d.text());
        assert_eq!(
            sha256(&d.body),
            j["bundle"]["sha256"].as_str().expect("sha")
        );
        eprintln!("# the presigned redirect of a fourth replica downloads the same bytes");
    }

    // ------------------------------------------------ 2. kill -9 of the running replica
    let slow = submit(
        &cs[0],
        json!({"distro":"debian-12","arch":"amd64","packages":["slow-app"],"baseline":"none"}),
    );
    let t0 = Instant::now();
    let runner = loop {
        if let Some(i) = (0..3).find(|&i| reps[i].ran(&slow)) {
            break i;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the slow job did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let watcher = (runner + 1) % 3;
    let survivor = (runner + 2) % 3;
    let stream = {
        let url = reps[watcher].url.clone();
        let id = slow.clone();
        std::thread::spawn(move || Client::new(&url).events(&id, ""))
    };
    std::thread::sleep(Duration::from_secs(2));
    reps[runner].kill9();
    let killed = Instant::now();
    eprintln!("# killed replica {runner} (kill -9) while it ran the slow job");
    let j = cs[survivor].wait(&slow, Duration::from_secs(90));
    assert_eq!(j["state"], "done", "{j}");
    let took = killed.elapsed().as_secs_f64();
    eprintln!("# the slow job was taken over and finished {took:.1} s after the kill (lease {LEASE_S} s, the .deb takes 8 s)");
    let events = stream.join().expect("stream");
    let lines: Vec<&str> = events
        .iter()
        .filter(|(e, _)| e == "log")
        .filter_map(|(_, v)| v["line"].as_str())
        .collect();
    let story = lines.join("\n");
    assert!(story.starts_with("queued: slow-app"), "{story}");
    assert_eq!(starts(&story), 2, "{story}");
    assert!(story.contains("started (attempt 1 of 2)"), "{story}");
    assert!(
        story.contains("stopped answering; it is queued again"),
        "{story}"
    );
    assert!(story.contains("started (attempt 2 of 2)"), "{story}");
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("done: ")).count(),
        1,
        "{story}"
    );
    let (last, end) = events.last().expect("events");
    assert_eq!((last.as_str(), &end["state"]), ("end", &json!("done")));
    let ns: Vec<u64> = events
        .iter()
        .filter(|(e, _)| e == "log")
        .filter_map(|(_, v)| v["n"].as_u64())
        .collect();
    assert!(
        ns.windows(2).all(|w| w[1] == w[0] + 1),
        "line numbers {ns:?}"
    );
    let d = cs[watcher].get(&format!("/api/jobs/{slow}/bundle"));
    assert_eq!(
        sha256(&d.body),
        j["bundle"]["sha256"].as_str().expect("sha")
    );
    // cancel and delete from a replica that does not run the job
    let c2 = submit(
        &cs[watcher],
        json!({"distro":"debian-12","arch":"amd64","packages":["slow-app2"],"baseline":"none"}),
    );
    let t0 = Instant::now();
    let ran_on = loop {
        if let Some(i) = [watcher, survivor].into_iter().find(|&i| reps[i].ran(&c2)) {
            break i;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the job did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let other = if ran_on == watcher { survivor } else { watcher };
    let r = cs[other].post(&format!("/api/jobs/{c2}/cancel"), &json!({}));
    assert_eq!(r.status, 200, "{}", r.text());
    let j = cs[ran_on].wait(&c2, Duration::from_secs(30));
    assert_eq!(j["state"], "cancelled", "{j}");
    let r = cs[other].delete(&format!("/api/jobs/{c2}"));
    assert!(r.status == 204 || r.status == 200, "{}", r.text());
    assert_eq!(cs[ran_on].get(&format!("/api/jobs/{c2}")).status, 404);

    // ------------------------------------------------ 3. database restart, bucket outage
    let live: Vec<&Client> = [watcher, survivor].iter().map(|&i| &cs[i]).collect();
    let outage: u64 = std::env::var("OPAAS_SCALEOUT_OUTAGE_S")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    // four of them download a slow .deb: they are running when the database goes away
    let batch: Vec<String> = (0..10)
        .map(|i| {
            let first = if i < 4 {
                format!("slow-b{i}")
            } else {
                tools[i % 6].to_string()
            };
            submit(
                live[i % 2],
                json!({"distro":"debian-12","arch":"amd64","packages":[first, "hello"],"baseline":"none","format":"tar.zst"}),
            )
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    let running = batch[..4]
        .iter()
        .filter(|id| {
            let s = live[0].get(&format!("/api/jobs/{id}")).json()["state"].clone();
            s == "downloading" || s == "resolving" || s == "packing"
        })
        .count();
    assert!(running >= 2, "only {running} of the slow jobs are running");
    let t0 = Instant::now();
    e.pg("stop");
    std::thread::sleep(Duration::from_secs(3));
    let h = live[0].get("/healthz");
    assert_eq!(h.status, 503, "healthy without its database: {}", h.text());
    e.pg("start");
    eprintln!(
        "# PostgreSQL stopped and started again ({:.1} s) while {running} jobs ran",
        t0.elapsed().as_secs_f64()
    );
    // and the bucket away while jobs finish
    let more: Vec<String> = (0..6)
        .map(|i| {
            submit(
                live[i % 2],
                json!({"distro":"debian-12","arch":"amd64","packages":[tools[(i + 3) % 6], "hello-doc"],"baseline":"none"}),
            )
        })
        .collect();
    let t0 = Instant::now();
    if e.shared_dir.is_none() {
        e.garage("stop");
        std::thread::sleep(Duration::from_secs(5));
        let h = live[1].get("/healthz");
        assert_eq!(h.status, 503, "healthy without its bucket: {}", h.text());
        assert!(h.text().contains("bundle storage"), "{}", h.text());
        let during: Vec<Value> = more
            .iter()
            .map(|id| live[0].get(&format!("/api/jobs/{id}")).json())
            .collect();
        assert!(
            during.iter().all(|j| j["state"] != "done"),
            "a job was done without its bucket"
        );
        std::thread::sleep(Duration::from_secs(outage.saturating_sub(5)));
        e.garage("start");
        eprintln!(
            "# Garage stopped for {:.1} s and started again",
            t0.elapsed().as_secs_f64()
        );
    }
    let all: Vec<String> = batch.iter().chain(&more).cloned().collect();
    let t0 = Instant::now();
    let done = wait_all(&live, &all, Duration::from_secs(180));
    for (id, j) in all.iter().zip(&done) {
        assert_eq!(j["state"], "done", "job {id}: {j}");
        let log = live[0].get(&format!("/api/jobs/{id}/log")).text();
        assert_eq!(
            log.lines().filter(|l| l.starts_with("done: ")).count(),
            1,
            "{log}"
        );
        // the outages re-ran nothing: the owners kept their leases
        assert_eq!(starts(&log), 1, "{log}");
        let d = live[1].get(&format!("/api/jobs/{id}/bundle"));
        assert_eq!(
            sha256(&d.body),
            j["bundle"]["sha256"].as_str().expect("sha")
        );
    }
    eprintln!(
        "# the 16 jobs of the outages all done {:.1} s after the bucket came back",
        t0.elapsed().as_secs_f64()
    );
    assert_eq!(live[0].get("/healthz").status, 200);
    let mut buf = String::new();
    for r in &reps {
        buf.push_str(&r.stderr());
    }
    assert!(!buf.contains("panicked"), "a replica panicked:\n{buf}");
    eprintln!(
        "# scale-out test: {:.1} s in all",
        t_all.elapsed().as_secs_f64()
    );
}
