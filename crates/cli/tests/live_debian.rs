//! LIVE tests against the real Debian archive (and Ubuntu when `OPAAS_MIRROR_UBUNTU` is set).
//!
//! Mirrors come from the usual configuration (`OPAAS_MIRROR_DEBIAN` /
//! `OPAAS_SECURITY_MIRROR_DEBIAN`, else the host's APT sources). Every test here is
//! `#[ignore = "live: …"]`: `cargo test` lists them as ignored, `cargo test -- --include-ignored`
//! runs them. A test that cannot reach its mirror then fails under `OPAAS_REQUIRE_LIVE=1` (CI)
//! and prints `SKIP` otherwise; `OPAAS_SKIP_LIVE=1` skips them on purpose (see `common`).
//! Configuration, not a missing mirror: Ubuntu runs only with `OPAAS_MIRROR_UBUNTU` set, the
//! differential checks run with the project's apt oracle (`scripts/oracle`, or
//! `OPAAS_ORACLE_DIR`), which needs apt-get on the host: without it they fail under
//! `OPAAS_REQUIRE_LIVE=1` like a missing mirror.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

fn opaas() -> &'static str {
    env!("CARGO_BIN_EXE_opaas")
}

fn cache_dir() -> PathBuf {
    // shared by the live tests of one run so each archive is fetched once
    static D: OnceLock<PathBuf> = OnceLock::new();
    D.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("opaas-live-cache-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&d);
        d
    })
    .clone()
}

fn run(args: &[&str]) -> Output {
    Command::new(opaas())
        .args(args)
        .env("OPAAS_CACHE_DIR", cache_dir())
        .output()
        .expect("opaas runs")
}

/// Returns from the test unless it can run: the skip was not asked for and the mirror answers.
macro_rules! live {
    ($distro:expr, $arch:expr) => {
        let test = format!("(live) {} {}", $distro, $arch);
        if let Some(why) = common::skip_requested("OPAAS_SKIP_LIVE") {
            eprintln!("SKIP {test}: {why}");
            return;
        }
        if let Some(why) = common::mirror_unreachable($distro, $arch) {
            common::unmet(&test, &why, "OPAAS_SKIP_LIVE");
            return;
        }
    };
}

fn update_and_show_jq(distro: &str, arch: &str) {
    let up = run(&["update", "-q", "-d", distro, "-a", arch]);
    assert!(
        up.status.success(),
        "update failed: {}",
        String::from_utf8_lossy(&up.stderr)
    );
    let show = run(&["show", "--offline", "-d", distro, "-a", arch, "jq"]);
    assert!(
        show.status.success(),
        "show failed: {}",
        String::from_utf8_lossy(&show.stderr)
    );
    let text = String::from_utf8_lossy(&show.stdout);
    assert!(text.starts_with("Package: jq\n"), "{text}");
    assert!(text.contains(&format!("Architecture: {arch}")), "{text}");
    assert!(text.contains("Candidate: 1."), "{text}");
    // a second update changes nothing
    let again = run(&["update", "-d", distro, "-a", arch]);
    assert!(
        String::from_utf8_lossy(&again.stderr).contains(" 0 indices fetched"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}

#[test]
#[ignore = "live: the real Debian mirror; run with cargo test -- --include-ignored"]
fn live_debian12_amd64_update_show() {
    live!("debian-12", "amd64");
    update_and_show_jq("debian-12", "amd64");
}

#[test]
#[ignore = "live: the real Debian mirror; run with cargo test -- --include-ignored"]
fn live_debian12_arm64_update_show() {
    live!("debian-12", "arm64");
    update_and_show_jq("debian-12", "arm64");
}

#[test]
#[ignore = "live: the real Debian mirror; run with cargo test -- --include-ignored"]
fn live_debian11_amd64_update_show() {
    live!("debian-11", "amd64");
    update_and_show_jq("debian-11", "amd64");
}

#[test]
#[ignore = "live: the real Ubuntu mirror (OPAAS_MIRROR_UBUNTU); run with cargo test -- --include-ignored"]
fn live_ubuntu2404_amd64_update_show() {
    if std::env::var_os("OPAAS_MIRROR_UBUNTU").is_none() {
        eprintln!("SKIP (live) ubuntu-24.04 amd64: OPAAS_MIRROR_UBUNTU is not set (configuration)");
        return;
    }
    live!("ubuntu-24.04", "amd64");
    update_and_show_jq("ubuntu-24.04", "amd64");
}

/// The apt oracle: the project's own `scripts/oracle` (`apt-oracle.sh` + baselines), or
/// `OPAAS_ORACLE_DIR` for another kit of the same shape.
fn oracle_dir() -> Option<PathBuf> {
    let p = std::env::var_os("OPAAS_ORACLE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/oracle"));
    p.join("apt-oracle.sh").exists().then_some(p)
}

/// The resolver against the real apt on a few public requests (the full table is in
/// docs/BENCHMARKS.md, made with scripts/apt-diff.sh), then dose-distcheck on the result.
fn differential(distro: &str, arch: &str, target: &str, requests: &[&str]) {
    let Some(oracle) = oracle_dir() else {
        eprintln!(
            "SKIP (live) differential {target}: no apt oracle kit (set OPAAS_ORACLE_DIR) (configuration)"
        );
        return;
    };
    if Command::new("apt-get").arg("--version").output().is_err() {
        common::unmet(
            &format!("(live) differential {target}"),
            "apt-get not installed",
            "OPAAS_SKIP_LIVE",
        );
        return;
    }
    let status = oracle.join(format!("status/{target}.status"));
    let status_s = status.to_string_lossy().into_owned();
    for req in requests {
        let pkgs: Vec<&str> = req.split_whitespace().collect();
        let mut args = vec![
            "resolve",
            "-q",
            "-d",
            distro,
            "-a",
            arch,
            "--baseline",
            &status_s,
        ];
        args.extend(&pkgs);
        let ours = run(&args);
        assert!(
            ours.status.success(),
            "opaas resolve {req}: {}",
            String::from_utf8_lossy(&ours.stderr)
        );
        let mut ours_v: Vec<String> = String::from_utf8_lossy(&ours.stdout)
            .lines()
            .map(String::from)
            .collect();
        ours_v.sort();
        let apt = Command::new(oracle.join("apt-oracle.sh"))
            .env("OPAAS", env!("CARGO_BIN_EXE_opaas"))
            .arg(target)
            .args(&pkgs)
            .output()
            .expect("oracle runs");
        assert!(
            apt.status.success(),
            "apt oracle {req}: {}",
            String::from_utf8_lossy(&apt.stderr)
        );
        let mut apt_v: Vec<String> = String::from_utf8_lossy(&apt.stdout)
            .lines()
            .map(String::from)
            .collect();
        apt_v.sort();
        assert_eq!(
            ours_v, apt_v,
            "opaas and apt differ on '{req}' for {target}"
        );
        eprintln!("{target} '{req}': identical ({} packages)", ours_v.len());
        dose_check(distro, arch, &status, &pkgs);
    }
}

/// dose-distcheck: the resolved stanzas plus the baseline are installable together.
fn dose_check(distro: &str, arch: &str, status: &Path, pkgs: &[&str]) {
    if Command::new("dose-distcheck")
        .arg("--version")
        .output()
        .is_err()
    {
        common::unmet(
            "(live) dose-distcheck",
            "dose-distcheck not installed (apt-get install dose-distcheck)",
            "OPAAS_SKIP_LIVE",
        );
        return;
    }
    let status_s = status.to_string_lossy().into_owned();
    let mut args = vec![
        "resolve",
        "-q",
        "--json",
        "--offline",
        "-d",
        distro,
        "-a",
        arch,
        "--baseline",
        &status_s,
    ];
    args.extend(pkgs);
    let out = run(&args);
    assert!(out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let names: Vec<String> = doc["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| {
            format!(
                "{}={}",
                p["name"].as_str().unwrap_or(""),
                p["version"].as_str().unwrap_or("")
            )
        })
        .collect();
    // the stanzas themselves, from `opaas show` of each exact version
    let mut packages = String::new();
    for n in &names {
        let (name, ver) = n.split_once('=').unwrap_or((n, ""));
        let s = run(&[
            "show",
            "--offline",
            "-d",
            distro,
            "-a",
            arch,
            &format!("{name}={ver}"),
        ]);
        assert!(
            s.status.success(),
            "show {n}: {}",
            String::from_utf8_lossy(&s.stderr)
        );
        let text = String::from_utf8_lossy(&s.stdout).into_owned();
        let stanza = text.split("\n\n").next().unwrap_or("");
        packages.push_str(stanza);
        packages.push_str("\n\n");
    }
    let dir = tempfile::tempdir().expect("tmp");
    let pk = dir.path().join("Packages");
    std::fs::write(&pk, packages).expect("write");
    let coinst: Vec<String> = names
        .iter()
        .map(|n| {
            let (name, ver) = n.split_once('=').unwrap_or((n, ""));
            format!("{name}:{arch} (= {ver})")
        })
        .collect();
    let out = Command::new("dose-distcheck")
        .args([
            format!("--deb-native-arch={arch}"),
            "-e".into(),
            format!("--coinst={}", coinst.join(",")),
            format!("deb://{}", pk.display()),
            "--bg".into(),
            format!("deb://{}", status.display()),
        ])
        .output()
        .expect("dose runs");
    assert!(
        out.status.success(),
        "dose-distcheck: not co-installable:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
#[ignore = "live: the real Debian mirror; run with cargo test -- --include-ignored"]
fn live_differential_debian12_amd64() {
    live!("debian-12", "amd64");
    differential(
        "debian-12",
        "amd64",
        "bookworm-amd64",
        &["nginx htop jq", "openssh-server vim", "python3 git curl"],
    );
}

#[test]
#[ignore = "live: the real Debian mirror; run with cargo test -- --include-ignored"]
fn live_differential_debian12_arm64() {
    live!("debian-12", "arm64");
    differential(
        "debian-12",
        "arm64",
        "bookworm-arm64",
        &["nginx htop jq", "docker.io"],
    );
}
