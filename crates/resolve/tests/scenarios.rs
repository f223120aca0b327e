//! Resolver scenarios as data (`tests/scenarios/*.toml`), one test per file (datatest-stable,
//! named after the file, so a failure names the apt behaviour it pins). Each scenario's
//! Packages texts are loaded into an in-memory `Universe` (no HTTP, no OpenPGP) and resolved;
//! the result must equal the scenario's `expect` (or its error must contain `expect_error`).
//!
//! Where `apt-get` exists on the host, every scenario is also published as a signed fixture
//! repository on 127.0.0.1 and run through the real apt in a private root (same Packages, same
//! baseline status): apt must agree with the expectation, so the expectations are apt's
//! behaviour, not ours. Set OPAAS_SKIP_APT=1 to skip that half.

use opaas_repo::release::Release;
use opaas_repo::store::SourceMeta;
use opaas_repo::universe::Universe;
use opaas_resolve::{Baseline, Options, Request};
use opaas_testkit::{FixtureRepo, Server, Suite};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Scenario {
    description: String,
    request: Vec<String>,
    #[serde(default = "yes")]
    recommends: bool,
    #[serde(default)]
    baseline: String,
    #[serde(default)]
    foreign: Vec<String>,
    expect: Option<Vec<String>>,
    expect_error: Option<String>,
    /// `install` (default), `upgrade` or `dist-upgrade`; the upgrade commands also compare
    /// removals (`-name` entries)
    #[serde(default = "install")]
    command: String,
    /// `include` (default) or `exclude`: Ubuntu phased updates in upgrade commands (apt is run
    /// with APT::Get::Never-Include-Phased-Updates for `exclude`)
    #[serde(default)]
    phased: String,
    suite: Vec<SuiteSpec>,
}

fn install() -> String {
    "install".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SuiteSpec {
    name: String,
    #[serde(default)]
    not_automatic: bool,
    #[serde(default)]
    but_automatic_upgrades: bool,
    #[serde(default)]
    architectures: Vec<String>,
    packages: String,
}

fn yes() -> bool {
    true
}

fn status_text(baseline: &str) -> String {
    let mut s = String::new();
    for p in opaas_deb::paragraphs(baseline) {
        for line in p.as_str().lines() {
            s.push_str(line);
            s.push('\n');
            if line.starts_with("Package:") && p.get("Status").is_none() {
                s.push_str("Status: install ok installed\n");
            }
        }
        s.push('\n');
    }
    s
}

fn arches(sc: &Scenario) -> Vec<String> {
    let mut arches = vec!["amd64".to_string()];
    arches.extend(sc.foreign.iter().cloned());
    arches
}

/// The scenario's suites as the testkit publishes them.
fn suites(sc: &Scenario, arches: &[String]) -> Vec<Suite> {
    let mut suites = Vec::new();
    for s in &sc.suite {
        let mut su = Suite::new(&s.name);
        let a: Vec<&str> = if s.architectures.is_empty() {
            arches.iter().map(String::as_str).collect()
        } else {
            s.architectures.iter().map(String::as_str).collect()
        };
        su = su.architectures(&a);
        if s.not_automatic {
            su = su.not_automatic();
        }
        if s.but_automatic_upgrades {
            su = su.but_automatic_upgrades();
        }
        for p in opaas_deb::paragraphs(&s.packages) {
            // apt -s needs a download source for every version; the file itself is never fetched
            let mut st = p.as_str().to_string();
            if p.get("Filename").is_none() {
                let (n, v, a) = (
                    p.get("Package").unwrap_or(""),
                    p.get("Version").unwrap_or(""),
                    p.get("Architecture").unwrap_or(""),
                );
                st.push_str(&format!(
                    "\nFilename: pool/main/{n}_{v}_{a}.deb\nSize: 1000\nSHA256: {}",
                    "0".repeat(64)
                ));
            }
            su = su.stanza("main", &st);
        }
        suites.push(su);
    }
    suites
}

/// The Packages texts of every suite × architecture, in `store::load_cached`'s order, in memory.
fn universe(sc: &Scenario, suites: &[Suite], arches: &[String]) -> Universe {
    let mut texts = Vec::new();
    for (spec, su) in sc.suite.iter().zip(suites) {
        // the pin priority comes from the Release fields, as for a fetched suite
        let release = format!(
            "Suite: {}\nNotAutomatic: {}\nButAutomaticUpgrades: {}\nSHA256:\n",
            spec.name,
            if spec.not_automatic { "yes" } else { "no" },
            if spec.but_automatic_upgrades {
                "yes"
            } else {
                "no"
            },
        );
        let priority = Release::parse(&release)
            .expect("release")
            .default_priority();
        for a in arches {
            let meta = SourceMeta {
                mirror: "memory:".into(),
                suite: spec.name.clone(),
                codename: spec.name.clone(),
                origin: String::new(),
                label: String::new(),
                component: "main".into(),
                arch: a.clone(),
                priority,
                date: None,
                index_id: String::new(),
            };
            texts.push((meta, su.index_text("main", a)));
        }
    }
    Universe::from_texts("amd64", texts)
}

fn ours(sc: &Scenario, u: &Universe, status: &str) -> Result<Vec<String>, String> {
    let base = Baseline::from_status(status, "amd64");
    let reqs: Vec<Request> = sc
        .request
        .iter()
        .map(|r| Request::parse(r).expect("request"))
        .collect();
    let opts = Options {
        recommends: sc.recommends,
        ..Options::default()
    };
    let phased = if sc.phased == "exclude" {
        opaas_resolve::Phased::Exclude
    } else {
        opaas_resolve::Phased::Include
    };
    let r = match sc.command.as_str() {
        "upgrade" => opaas_resolve::resolve_upgrade(
            u,
            &base,
            &reqs,
            opts,
            opaas_resolve::UpgradeMode::Upgrade,
            phased,
        ),
        "dist-upgrade" => opaas_resolve::resolve_upgrade(
            u,
            &base,
            &reqs,
            opts,
            opaas_resolve::UpgradeMode::FullUpgrade,
            phased,
        ),
        _ => opaas_resolve::resolve(u, &base, &reqs, opts),
    };
    let upgrading = sc.command != "install";
    r.map(|r| {
        let mut v: Vec<String> = r
            .install
            .iter()
            .map(|c| {
                if c.arch == "amd64" {
                    format!("{}={}", c.name, c.version)
                } else {
                    format!("{}:{}={}", c.name, c.arch, c.version)
                }
            })
            .collect();
        if upgrading {
            v.extend(r.remove.iter().map(|x| format!("-{x}")));
        }
        v.sort();
        v
    })
    .map_err(|e| e.to_string())
}

fn apt_available() -> bool {
    std::env::var_os("OPAAS_SKIP_APT").is_none()
        && Command::new("apt-get").arg("--version").output().is_ok()
}

/// The scenario published as a signed fixture repository on 127.0.0.1, run through apt.
fn apt_on_fixture(
    sc: &Scenario,
    suites: &[Suite],
    arches: &[String],
    status: &str,
) -> Result<Vec<String>, String> {
    let repo = FixtureRepo::temp().expect("fixture repo");
    repo.publish_all(suites).expect("publish");
    let server = Server::start(repo.root()).expect("server");
    apt_oracle(&server.url(), repo.keyring_path(), sc, arches, status)
}

/// `apt-get -s install` in a private root against the same fixture, or None without apt.
fn apt_oracle(
    url: &str,
    keyring: &Path,
    sc: &Scenario,
    arches: &[String],
    status: &str,
) -> Result<Vec<String>, String> {
    let root = tempfile::tempdir().expect("apt root");
    let r = root.path();
    for d in [
        "etc/apt/apt.conf.d",
        "etc/apt/preferences.d",
        "etc/apt/sources.list.d",
        "var/lib/apt/lists/partial",
        "var/cache/apt/archives/partial",
        "var/lib/dpkg",
        "var/log/apt",
    ] {
        std::fs::create_dir_all(r.join(d)).expect("mkdir");
    }
    // apt wants a binary keyring to end in .gpg
    let kr = r.join("fixture-keyring.gpg");
    std::fs::copy(keyring, &kr).expect("keyring copy");
    let keyring = kr.as_path();
    let mut sources = String::new();
    for s in &sc.suite {
        sources.push_str(&format!(
            "deb [signed-by={}] {url} {} main\n",
            keyring.display(),
            s.name
        ));
    }
    std::fs::write(r.join("etc/apt/sources.list"), sources).expect("sources");
    std::fs::write(r.join("var/lib/dpkg/status"), status).expect("status");
    let arch_list: String = arches.iter().map(|a| format!("\"{a}\"; ")).collect();
    let conf = format!(
        "Dir \"{root}/\";\nDir::State::status \"{root}/var/lib/dpkg/status\";\nAPT::Architecture \"amd64\";\nAPT::Architectures {{ {arch_list}}};\nAcquire::Languages \"none\";\nAPT::Get::Assume-Yes \"true\";\nAPT::Install-Suggests \"false\";\nAPT::Sandbox::User \"root\";\n",
        root = r.display()
    );
    let conf_path: PathBuf = r.join("apt.conf");
    std::fs::write(&conf_path, conf).expect("conf");
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .env("APT_CONFIG", &conf_path)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(args)
            .output()
            .expect("apt-get runs")
    };
    let up = apt(&["-q", "update"]);
    assert!(
        up.status.success(),
        "apt-get update failed: {}",
        String::from_utf8_lossy(&up.stderr)
    );
    let rec = format!("APT::Install-Recommends={}", sc.recommends);
    let mut args = vec!["-s", "-o", rec.as_str()];
    if sc.phased == "exclude" {
        args.extend(["-o", "APT::Get::Never-Include-Phased-Updates=true"]);
    }
    args.push(sc.command.as_str());
    args.extend(sc.request.iter().map(String::as_str));
    let out = apt(&args);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!("{text}{}", String::from_utf8_lossy(&out.stderr)));
    }
    let mut v: Vec<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("Inst "))
        .filter_map(|l| {
            let name = l.split_whitespace().next()?;
            let ver = l.split_once('(')?.1.split_whitespace().next()?;
            Some(format!("{name}={ver}"))
        })
        .collect();
    if sc.command != "install" {
        v.extend(
            text.lines()
                .filter_map(|l| l.strip_prefix("Remv "))
                .filter_map(|l| l.split_whitespace().next())
                .map(|n| format!("-{n}")),
        );
    }
    v.sort();
    Ok(v)
}

fn scenario(path: &Path) -> datatest_stable::Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios");
    let count = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .count();
    assert!(count >= 20, "scenarios missing");
    let sc: Scenario = toml::from_str(&std::fs::read_to_string(path)?)?;
    assert!(!sc.description.is_empty());
    let arches = arches(&sc);
    let suites = suites(&sc, &arches);
    let status = status_text(&sc.baseline);
    let got = ours(&sc, &universe(&sc, &suites, &arches), &status);
    let apt = apt_available().then(|| apt_on_fixture(&sc, &suites, &arches, &status));
    if apt.is_none() {
        eprintln!(
            "NOTE: apt-get not available (or OPAAS_SKIP_APT set): not cross-checked against apt"
        );
    }
    let mut failures = Vec::new();
    match (&sc.expect, &sc.expect_error) {
        (Some(want), None) => {
            let mut want = want.clone();
            want.sort();
            if got.as_ref() != Ok(&want) {
                failures.push(format!("opaas gave {got:?}, expected {want:?}"));
            }
            if let Some(apt) = &apt {
                if apt.as_ref() != Ok(&want) {
                    failures.push(format!("apt gave {apt:?}, the scenario expects {want:?}"));
                }
            }
        }
        (None, Some(err)) => {
            match &got {
                Err(e) if e.contains(err.as_str()) => {}
                other => failures.push(format!(
                    "expected an error containing {err:?}, opaas gave {other:?}"
                )),
            }
            if let Some(apt) = &apt {
                if apt.is_ok() {
                    failures.push(format!(
                        "apt accepted a request the scenario expects to fail: {apt:?}"
                    ));
                }
            }
        }
        _ => failures.push("needs exactly one of expect / expect_error".to_string()),
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!("{}: {}", sc.description, failures.join("\n")).into())
    }
}

datatest_stable::harness! {
    { test = scenario, root = "tests/scenarios", pattern = r"^.*\.toml$" },
}
