//! `opaas build` / `verify` / `resolve` end to end through the binary, against a signed fixture
//! archive served on 127.0.0.1 with real (tiny) .debs. Hermetic.

use opaas_testkit::{FixtureRepo, Package, Server, Suite};
use std::process::{Command, Output};

struct Fx {
    repo: FixtureRepo,
    server: Server,
    keyring: std::path::PathBuf,
    cache: tempfile::TempDir,
}

fn fixture() -> Fx {
    let repo = FixtureRepo::temp().expect("repo");
    repo.publish_all(&opaas_testkit::fixtures::debian12_hello())
        .expect("publish");
    let server = Server::start(repo.root()).expect("server");
    let keyring = repo.keyring_path().to_path_buf();
    Fx {
        repo,
        server,
        keyring,
        cache: tempfile::tempdir().expect("cache"),
    }
}

impl Fx {
    fn run(&self, args: &[&str]) -> Output {
        let url = self.server.url();
        let mut full: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        if !matches!(args.first(), Some(&"verify")) {
            full.extend(
                [
                    "-d",
                    "debian-12",
                    "--mirror",
                    &url,
                    "--security-mirror",
                    &url,
                ]
                .map(String::from),
            );
            full.push("--keyring".into());
            full.push(self.keyring.display().to_string());
        }
        Command::new(env!("CARGO_BIN_EXE_opaas"))
            .args(&full)
            .env("OPAAS_CACHE_DIR", self.cache.path())
            .env_remove("OPAAS_MIRROR_DEBIAN")
            .env_remove("OPAAS_SECURITY_MIRROR_DEBIAN")
            .output()
            .expect("opaas runs")
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn build_verify_rebuild_identical_and_cached() {
    let fx = fixture();
    let out = tempfile::tempdir().expect("out");
    let o = out.path().display().to_string();
    let b1 = fx.run(&["build", "-q", "--baseline", "none", "-o", &o, "hello"]);
    assert!(b1.status.success(), "build: {}", stderr(&b1));
    let path = stdout(&b1).trim().to_string();
    assert!(
        path.ends_with(".tar.gz") && path.contains("offline_pkg_debian-12_amd64_"),
        "{path}"
    );
    let bytes1 = std::fs::read(&path).expect("tarball");
    let pool_requests = fx.server.requests("/pool/");
    assert_eq!(
        pool_requests, 3,
        "hello, libhello1 and hello-doc downloaded once each"
    );
    // the bundle holds what resolve says
    let r = fx.run(&["resolve", "-q", "--baseline", "none", "hello"]);
    assert_eq!(
        stdout(&r),
        "hello=1.0+deb12u1\nhello-doc=1.0\nlibhello1=1.1\n"
    );
    let v = fx.run(&["verify", &path]);
    assert!(v.status.success(), "verify: {}{}", stdout(&v), stderr(&v));
    assert!(stdout(&v).contains("3 packages"), "{}", stdout(&v));
    // second build: nothing downloaded, byte-identical tarball
    std::fs::remove_file(&path).expect("rm");
    let b2 = fx.run(&["build", "-q", "--baseline", "none", "-o", &o, "hello"]);
    assert!(b2.status.success(), "{}", stderr(&b2));
    assert_eq!(
        fx.server.requests("/pool/"),
        pool_requests,
        "the rebuild downloaded something"
    );
    assert_eq!(
        std::fs::read(stdout(&b2).trim()).expect("tarball 2"),
        bytes1,
        "rebuild is not byte-identical"
    );
    // zstd
    let z = fx.run(&[
        "build",
        "-q",
        "--baseline",
        "none",
        "--format",
        "tar.zst",
        "-o",
        &o,
        "hello",
    ]);
    assert!(
        z.status.success() && stdout(&z).trim().ends_with(".tar.zst"),
        "{}",
        stderr(&z)
    );
    assert!(fx.run(&["verify", stdout(&z).trim()]).status.success());
}

#[test]
fn bad_requests_exit_with_their_codes() {
    let fx = fixture();
    let out = tempfile::tempdir().expect("out");
    let o = out.path().display().to_string();
    let unknown = fx.run(&["build", "-q", "--baseline", "none", "-o", &o, "helo"]);
    assert_eq!(unknown.status.code(), Some(3), "{}", stderr(&unknown));
    assert!(
        stderr(&unknown).contains("did you mean") && stderr(&unknown).contains("hello"),
        "{}",
        stderr(&unknown)
    );
    let unsat = fx.run(&["build", "-q", "--baseline", "none", "-o", &o, "broken"]);
    assert_eq!(unsat.status.code(), Some(7), "{}", stderr(&unsat));
    assert!(stderr(&unsat).contains("libmissing"), "{}", stderr(&unsat));
    let conflict = fx.run(&["resolve", "-q", "--baseline", "none", "hello", "clash"]);
    assert_eq!(conflict.status.code(), Some(7), "{}", stderr(&conflict));
    let syntax = fx.run(&["resolve", "-q", "bad;name"]);
    assert_eq!(syntax.status.code(), Some(3));
    let arch = fx.run(&["resolve", "-q", "-a", "sparc", "hello"]);
    assert_eq!(arch.status.code(), Some(3));
    assert!(stderr(&arch).contains("amd64"), "{}", stderr(&arch));
    // nothing was written for the failed builds
    assert_eq!(std::fs::read_dir(out.path()).expect("dir").count(), 0);
    // a tampered bundle is refused by verify
    let ok = fx.run(&["build", "-q", "--baseline", "none", "-o", &o, "libhello1"]);
    let path = stdout(&ok).trim().to_string();
    let mut data = std::fs::read(&path).expect("read");
    let n = data.len();
    data[n / 2] ^= 0x55;
    std::fs::write(&path, data).expect("write");
    let v = fx.run(&["verify", &path]);
    assert_ne!(v.status.code(), Some(0));
}

#[test]
fn mirror_down_is_a_network_error() {
    let fx = fixture();
    let dead = opaas_testkit::unused_local_url().expect("port");
    let o = Command::new(env!("CARGO_BIN_EXE_opaas"))
        .args([
            "resolve",
            "-q",
            "-d",
            "debian-12",
            "--mirror",
            &dead,
            "--security-mirror",
            &dead,
            "hello",
        ])
        .env("OPAAS_CACHE_DIR", fx.cache.path())
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(stderr(&o).contains(&dead), "{}", stderr(&o));
}

#[test]
fn stale_indices_are_refreshed_before_resolving() {
    let fx = fixture();
    let first = fx.run(&["resolve", "-q", "--baseline", "none", "libhello1"]);
    assert_eq!(stdout(&first), "libhello1=1.1\n", "{}", stderr(&first));
    // the archive moves on
    fx.repo
        .publish(
            &Suite::new("bookworm-updates")
                .package("main", Package::new("libhello1", "1.2", "amd64").with_deb()),
        )
        .expect("republish");
    // young cache: used as is
    let cached = fx.run(&["resolve", "-q", "--baseline", "none", "libhello1"]);
    assert_eq!(stdout(&cached), "libhello1=1.1\n");
    // older than --max-index-age: refreshed first
    let fresh = fx.run(&[
        "resolve",
        "-q",
        "--max-index-age",
        "0",
        "--baseline",
        "none",
        "libhello1",
    ]);
    assert_eq!(stdout(&fresh), "libhello1=1.2\n", "{}", stderr(&fresh));
}

#[test]
fn an_identical_build_reuses_the_verified_tarball() {
    let fx = fixture();
    let out = tempfile::tempdir().expect("out");
    let o = out.path().display().to_string();
    let b1 = fx.run(&["build", "-q", "--baseline", "none", "-o", &o, "hello"]);
    assert!(b1.status.success(), "build: {}", stderr(&b1));
    let path = stdout(&b1).trim().to_string();
    let bytes1 = std::fs::read(&path).expect("tarball");
    let modified = |p: &str| {
        std::fs::metadata(p)
            .and_then(|m| m.modified())
            .expect("mtime")
    };
    let m1 = modified(&path);
    std::thread::sleep(std::time::Duration::from_millis(20));
    // the same request again: the file is verified and kept, not written again
    let b2 = fx.run(&["build", "--baseline", "none", "-o", &o, "hello"]);
    assert!(b2.status.success(), "{}", stderr(&b2));
    assert_eq!(stdout(&b2).trim(), path);
    assert!(
        stderr(&b2).contains("reusing offline_pkg_debian-12_amd64_")
            && stderr(&b2).contains(", verified"),
        "{}",
        stderr(&b2)
    );
    assert_eq!(modified(&path), m1, "the tarball was written again");
    // another format is another file
    let z = fx.run(&[
        "build",
        "--baseline",
        "none",
        "--format",
        "tar.zst",
        "-o",
        &o,
        "hello",
    ]);
    assert!(
        z.status.success() && !stderr(&z).contains("reusing"),
        "{}",
        stderr(&z)
    );
    // a damaged file of that name is not reused: it is written again, and verifies
    let mut bad = bytes1.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0xff;
    std::fs::write(&path, &bad).expect("damage");
    let b3 = fx.run(&["build", "--baseline", "none", "-o", &o, "hello"]);
    assert!(b3.status.success(), "{}", stderr(&b3));
    assert!(!stderr(&b3).contains("reusing"), "{}", stderr(&b3));
    assert_eq!(std::fs::read(&path).expect("rewritten"), bytes1);
}

/// A mirror that resets, answers 500/503 or truncates on 30 % of all requests (indices and
/// .debs): ten seeded builds, none fails, each bundle verifies.
#[test]
fn builds_survive_a_bad_mirror_in_ten_seeded_runs() {
    let fx = fixture();
    for seed in 1..=10u64 {
        fx.server.chaos(
            seed,
            "/",
            30,
            vec![
                opaas_testkit::Fault::DropMidBody,
                opaas_testkit::Fault::Status(500),
                opaas_testkit::Fault::Status(503),
                opaas_testkit::Fault::Truncate,
            ],
        );
        let cache = tempfile::tempdir().expect("cache");
        let out = tempfile::tempdir().expect("out");
        let o = out.path().display().to_string();
        let url = fx.server.url();
        let b = Command::new(env!("CARGO_BIN_EXE_opaas"))
            .args([
                "build",
                "-q",
                "--baseline",
                "none",
                "-o",
                &o,
                "-d",
                "debian-12",
            ])
            .args(["--mirror", &url, "--security-mirror", &url, "--keyring"])
            .arg(&fx.keyring)
            .arg("hello")
            .env("OPAAS_CACHE_DIR", cache.path())
            .env_remove("OPAAS_MIRROR_DEBIAN")
            .env_remove("OPAAS_SECURITY_MIRROR_DEBIAN")
            .output()
            .expect("opaas runs");
        assert!(b.status.success(), "seed {seed}: {}", stderr(&b));
        let v = fx.run(&["verify", stdout(&b).trim()]);
        assert!(v.status.success(), "seed {seed}: {}", stdout(&v));
    }
    let log = fx.server.log();
    let faults = log
        .iter()
        .filter(|l| !l.ends_with("-> 200") && !l.ends_with("-> 206") && !l.ends_with("-> 404"))
        .count();
    assert!(
        faults >= 10,
        "only {faults} faults in {} requests",
        log.len()
    );
}
