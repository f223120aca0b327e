//! `opaas upgrade --from FILE…` end to end through the binary against a signed fixture archive
//! on 127.0.0.1 (hermetic): the plan (security first), `--security-only`, fleet bundles (one
//! bundle, a plan and an index per host, install.sh picking this machine's plan or refusing),
//! and every kind of bad collected file (exit 3, naming it, nothing written).

use opaas_testkit::{FixtureRepo, Package, Server, Suite};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Fx {
    _repo: FixtureRepo,
    server: Server,
    keyring: PathBuf,
    cache: tempfile::TempDir,
    dir: tempfile::TempDir,
}

fn fixture() -> Fx {
    fixture_with(opaas_testkit::fixtures::debian12_hello())
}

fn fixture_with(suites: Vec<Suite>) -> Fx {
    let repo = FixtureRepo::temp().expect("repo");
    repo.publish_all(&suites).expect("publish");
    let server = Server::start(repo.root()).expect("server");
    let keyring = repo.keyring_path().to_path_buf();
    Fx {
        _repo: repo,
        server,
        keyring,
        cache: tempfile::tempdir().expect("cache"),
        dir: tempfile::tempdir().expect("dir"),
    }
}

impl Fx {
    fn run(&self, args: &[&str]) -> Output {
        let url = self.server.url();
        let mut full: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        full.extend(["--mirror", &url, "--security-mirror", &url].map(String::from));
        full.push("--keyring".into());
        full.push(self.keyring.display().to_string());
        Command::new(env!("CARGO_BIN_EXE_opaas"))
            .args(&full)
            .env("OPAAS_CACHE_DIR", self.cache.path())
            .env_remove("OPAAS_MIRROR_DEBIAN")
            .env_remove("OPAAS_SECURITY_MIRROR_DEBIAN")
            .output()
            .expect("opaas runs")
    }
    /// Writes a collected file named `name` and returns its path.
    fn file(&self, name: &str, text: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).expect("write");
        p.display().to_string()
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stanza(name: &str, version: &str, arch: &str) -> String {
    format!("Package: {name}\nStatus: install ok installed\nArchitecture: {arch}\nVersion: {version}\n\n")
}

/// What the collect script writes, for a host with `status`.
fn collected(host: &str, id: &str, version: &str, arch: &str, status: &str) -> String {
    format!(
        "OPaaS-Collect: 1\nHostname: {host}\nCollected: 2026-12-02T10:00:00Z\nOS-ID: {id}\nOS-Version-ID: {version}\nOS-Codename: x\nArchitecture: {arch}\nForeign-Architectures: \nHolds: \nStatus-Lines: {}\n\n### /var/lib/dpkg/status\n{status}### /var/lib/apt/extended_states\n### end\n",
        status.lines().count()
    )
}

fn web01() -> String {
    collected(
        "web01",
        "debian",
        "12",
        "amd64",
        &(stanza("hello", "1.0", "amd64")
            + &stanza("libhello1", "1.0", "amd64")
            + &stanza("hello-doc", "1.0", "all")),
    )
}

fn db01() -> String {
    collected(
        "db01",
        "debian",
        "12",
        "amd64",
        &(stanza("libhello1", "1.0", "amd64") + &stanza("local-tool", "0.1", "amd64")),
    )
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}{}", stdout(o), stderr(o)))
}

#[test]
fn the_plan_lists_security_first_and_security_only_keeps_to_the_security_pocket() {
    let fx = fixture();
    let a = fx.file("web01.opaas", &web01());
    let o = fx.run(&["upgrade", "-q", "--from", &a, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["host"], "web01");
    let plan = v["plan"].as_array().expect("plan");
    let rows: Vec<String> = plan
        .iter()
        .map(|p| {
            format!(
                "{} {} {}→{} {}",
                p["kind"], p["name"], p["from"], p["to"], p["pocket"]
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            r#""security" "hello" "1.0"→"1.0+deb12u1" "bookworm-security/main""#,
            r#""upgrade" "libhello1" "1.0"→"1.1" "bookworm-updates/main""#
        ],
        "{rows:?}"
    );
    assert_eq!(v["counts"]["security"], 1);
    // the text plan says the same, security first
    let t = fx.run(&["upgrade", "-q", "--from", &a]);
    let text = stdout(&t);
    let hello = text.find("hello 1.0 → 1.0+deb12u1").expect(&text);
    let lib = text.find("libhello1 1.0 → 1.1").expect(&text);
    assert!(hello < lib && text.starts_with("security"), "{text}");
    // --security-only: the security pocket alone. hello's security update needs libhello1
    // (>= 1.1), which only bookworm-updates has: apt-get upgrade keeps hello back
    let s = fx.run(&["upgrade", "-q", "--security-only", "--from", &a, "--json"]);
    assert!(s.status.success(), "{}", stderr(&s));
    let v = json(&s);
    assert_eq!(v["plan"].as_array().map(Vec::len), Some(0), "{v}");
    assert_eq!(v["kept_back"][0]["name"], "hello", "{v}");
    assert_eq!(v["kept_back"][0]["candidate"], "1.0+deb12u1", "{v}");
    assert_eq!(v["kept_back"][0]["code"], "new-or-removal", "{v}");
    // a package held on the server stays, and the plan says why
    let held = fx.file(
        "held.opaas",
        &web01()
            .replace("Holds: \n", "Holds: libhello1 \n")
            .replacen(
                "Package: libhello1\nStatus: install ok installed",
                "Package: libhello1\nStatus: hold ok installed",
                1,
            ),
    );
    let h = fx.run(&["upgrade", "-q", "--from", &held, "--json"]);
    assert!(h.status.success(), "{}", stderr(&h));
    let v = json(&h);
    let kept: Vec<(String, String)> = v["kept_back"]
        .as_array()
        .expect("kept_back")
        .iter()
        .map(|k| {
            (
                k["name"].as_str().unwrap_or("").to_string(),
                k["code"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert!(kept.contains(&("libhello1".into(), "hold".into())), "{v}");
    // a host with only libhello1: nothing from the security pocket to take
    let b = fx.file("db01.opaas", &db01());
    let s = fx.run(&["upgrade", "-q", "--security-only", "--from", &b, "--json"]);
    assert!(s.status.success(), "{}", stderr(&s));
    assert_eq!(json(&s)["plan"].as_array().map(Vec::len), Some(0));
    // every version a security-only plan takes is a security pocket's
    let fx2 = fixture_with({
        let mut s = opaas_testkit::fixtures::debian12_hello();
        s[2] = s[2].clone().package(
            "main",
            Package::new("libhello1", "1.1+deb12u1", "amd64").with_deb(),
        );
        s
    });
    let a2 = fx2.file("web01.opaas", &web01());
    let s = fx2.run(&["upgrade", "-q", "--security-only", "--from", &a2, "--json"]);
    assert!(s.status.success(), "{}", stderr(&s));
    let v = json(&s);
    let plan = v["plan"].as_array().expect("plan");
    assert_eq!(plan.len(), 2, "{v}");
    assert!(
        plan.iter()
            .all(|p| p["kind"] == "security" && p["pocket"] == "bookworm-security/main"),
        "{v}"
    );
}

fn unpack(tarball: &str, into: &Path) -> PathBuf {
    let st = Command::new("tar")
        .arg("-xzf")
        .arg(tarball)
        .arg("-C")
        .arg(into)
        .status()
        .expect("tar");
    assert!(st.success());
    let top = std::fs::read_dir(into)
        .expect("dir")
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().starts_with("offline_pkg_"))
        .expect("top dir");
    top.path()
}

fn field_values(packages: &str, field: &str) -> Vec<String> {
    let mut v: Vec<String> = packages
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{field}: ")))
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

#[test]
fn a_fleet_gets_one_bundle_with_a_plan_and_an_index_per_host() {
    let fx = fixture();
    let a = fx.file("web01.opaas", &web01());
    let b = fx.file("db01.opaas", &db01());
    // the plans, per host
    let p = fx.run(&["upgrade", "-q", "--from", &a, "--from", &b, "--json"]);
    assert!(p.status.success(), "{}", stderr(&p));
    let v = json(&p);
    assert_eq!(v["hosts"].as_array().map(Vec::len), Some(2), "{v}");
    assert_eq!(v["hosts"][0]["host"], "web01");
    assert_eq!(v["hosts"][0]["plan"].as_array().map(Vec::len), Some(2));
    assert_eq!(v["hosts"][1]["host"], "db01");
    assert_eq!(v["hosts"][1]["plan"][0]["name"], "libhello1");
    assert_eq!(v["hosts"][1]["plan"].as_array().map(Vec::len), Some(1));
    assert_eq!(v["hosts"][1]["not_in_archive"][0], "local-tool:amd64");
    let t = fx.run(&["upgrade", "-q", "--from", &a, "--from", &b]);
    assert!(stdout(&t).contains("== web01 (debian-12 amd64") && stdout(&t).contains("== db01"));
    // the bundle
    let out = tempfile::tempdir().expect("out");
    let o = out.path().display().to_string();
    let built = fx.run(&["upgrade", "-q", "--from", &a, "--from", &b, "-o", &o]);
    assert!(built.status.success(), "{}", stderr(&built));
    let tarball = stdout(&built).trim().to_string();
    let v = Command::new(env!("CARGO_BIN_EXE_opaas"))
        .args(["verify", &tarball])
        .output()
        .expect("verify");
    assert!(v.status.success(), "verify: {}{}", stdout(&v), stderr(&v));
    let x = tempfile::tempdir().expect("x");
    let top = unpack(&tarball, x.path());
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(top.join("manifest.json")).expect("manifest"))
            .expect("json");
    assert_eq!(manifest["mode"], "upgrade");
    assert_eq!(manifest["hosts"][0]["host"], "web01");
    assert_eq!(manifest["hosts"][1]["host"], "db01");
    assert_eq!(
        manifest["package_count"], 2,
        "the union: hello and libhello1"
    );
    let read = |p: &str| std::fs::read_to_string(top.join(p)).expect(p);
    // one index per plan; each Filename points at the shared .deb in repo/
    assert_eq!(
        field_values(&read("repo/plans/1/Packages"), "Package"),
        ["hello", "libhello1"]
    );
    assert_eq!(
        field_values(&read("repo/plans/2/Packages"), "Package"),
        ["libhello1"]
    );
    for f in field_values(&read("repo/plans/1/Packages"), "Filename") {
        assert!(top.join("repo").join(&f).is_file(), "{f}");
    }
    let debs = std::fs::read_dir(top.join("repo"))
        .expect("repo")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".deb"))
        })
        .count();
    assert_eq!(debs, 2);
    let sh = read("install.sh");
    assert!(sh.contains("FLEET='1'") && sh.contains("FLEET_HOSTS=('web01' 'db01')"));
    // verify checks each plan's index against the manifest, not only SHA256SUMS: a copy whose
    // db01 index also offers hello (and whose SHA256SUMS was rewritten to match) is refused
    let verify_dir = |dir: &Path| {
        Command::new(env!("CARGO_BIN_EXE_opaas"))
            .arg("verify")
            .arg(dir)
            .output()
            .expect("verify")
    };
    assert!(verify_dir(&top).status.success());
    let y = tempfile::tempdir().expect("y");
    let copy = unpack(&tarball, y.path());
    let p1 = read("repo/plans/1/Packages");
    std::fs::write(copy.join("repo/plans/2/Packages"), &p1).expect("write");
    let sums = read("SHA256SUMS");
    let new_sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(p1.as_bytes()))
    };
    let sums: String = sums
        .lines()
        .map(|l| {
            if l.ends_with("  repo/plans/2/Packages") {
                format!("{new_sha}  repo/plans/2/Packages\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(copy.join("SHA256SUMS"), sums).expect("sums");
    let bad = verify_dir(&copy);
    assert!(!bad.status.success(), "{}", stdout(&bad));
    assert!(
        format!("{}{}", stdout(&bad), stderr(&bad))
            .contains("repo/plans/2/Packages lists 2 files, the manifest's plan of db01 1"),
        "{}{}",
        stdout(&bad),
        stderr(&bad)
    );
    // install.sh on this machine (neither web01 nor db01): no plan, refused before anything
    if !have_debian12_dpkg() {
        eprintln!("SKIP the install.sh part: this host is not a debian-12 amd64 dpkg system");
        return;
    }
    let run = |dir: &Path, extra: &[&str]| {
        Command::new("bash")
            .arg(dir.join("install.sh"))
            .arg("--dry-run")
            .args(extra)
            .output()
            .expect("bash")
    };
    let st0 = std::fs::read("/var/lib/dpkg/status").unwrap_or_default();
    let r = run(&top, &[]);
    let all = format!("{}{}", stdout(&r), stderr(&r));
    assert_eq!(r.status.code(), Some(3), "{all}");
    assert!(
        all.contains("this bundle has no plan for this machine")
            && all.contains("its plans are for web01 db01"),
        "{all}"
    );
    // --plan picks one by name (a renamed machine): this machine then drifted from it
    let r = run(&top, &["--plan", "db01"]);
    let all = format!("{}{}", stdout(&r), stderr(&r));
    assert!(
        all.contains("this machine uses the plan of / 本机使用方案: db01 (matched by / 匹配依据: --plan), 1 packages"),
        "{all}"
    );
    assert_eq!(r.status.code(), Some(3), "{all}");
    assert!(
        all.contains("this machine changed since its status was collected"),
        "{all}"
    );
    // this machine has far more than 50 packages the plan does not know: the list is cut
    // cleanly (no SIGPIPE under pipefail: the exit status above is 3, not 141)
    assert!(all.contains("more / 另有"), "{all}");
    let r = run(&top, &["--plan", "nosuch"]);
    assert_eq!(r.status.code(), Some(2), "{}", stderr(&r));
    assert_eq!(
        std::fs::read("/var/lib/dpkg/status").unwrap_or_default(),
        st0,
        "dpkg status changed"
    );
}

fn have_debian12_dpkg() -> bool {
    let os = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    os.contains("VERSION_CODENAME=bookworm")
        && Command::new("dpkg")
            .arg("--print-architecture")
            .output()
            .is_ok_and(|o| o.stdout == b"amd64\n")
        && Command::new("apt-get").arg("--version").output().is_ok()
}

/// install.sh finds its plan by the digest of the installed packages when the host name is
/// another, and apt then reads only that plan's index. This machine's own status is the
/// collected one (the collect script run here, under another host name); the fixture archive
/// carries a newer base-files so that the plan upgrades something. Dry run only.
#[test]
fn install_sh_finds_a_renamed_hosts_plan_by_its_status_digest() {
    if !have_debian12_dpkg() {
        eprintln!("SKIP: this host is not a debian-12 amd64 dpkg system");
        return;
    }
    let mut suites = opaas_testkit::fixtures::debian12_hello();
    suites[0] = suites[0].clone().package(
        "main",
        Package::new("base-files", "99.0", "amd64").with_deb(),
    );
    let fx = fixture_with(suites);
    let script = fx.dir.path().join("collect.sh");
    std::fs::write(&script, opaas_engine::collect::COLLECT_SCRIPT).expect("script");
    let c = Command::new("sh").arg(&script).output().expect("sh");
    assert!(c.status.success());
    let text = String::from_utf8_lossy(&c.stdout).into_owned();
    let host = text
        .lines()
        .find_map(|l| l.strip_prefix("Hostname: "))
        .expect("host")
        .to_string();
    let renamed = text.replacen(&format!("Hostname: {host}\n"), "Hostname: renamed-01\n", 1);
    let a = fx.file("renamed.opaas", &renamed);
    let b = fx.file("web01.opaas", &web01());
    let out = tempfile::tempdir().expect("out");
    let o = out.path().display().to_string();
    let built = fx.run(&["upgrade", "-q", "--from", &b, "--from", &a, "-o", &o]);
    assert!(built.status.success(), "{}", stderr(&built));
    let x = tempfile::tempdir().expect("x");
    let top = unpack(stdout(&built).trim(), x.path());
    let r = Command::new("bash")
        .arg(top.join("install.sh"))
        .arg("--dry-run")
        .output()
        .expect("bash");
    let all = format!("{}{}", stdout(&r), stderr(&r));
    assert!(
        all.contains("this machine uses the plan of / 本机使用方案: renamed-01 (matched by / 匹配依据: installed packages (status digest)"),
        "{all}"
    );
    assert!(all.contains("no drift"), "{all}");
    assert!(
        all.contains("plans/2/"),
        "apt reads the plan's own index: {all}"
    );
    assert!(all.contains("Inst base-files"), "{all}");
    assert!(!all.contains("Inst hello"), "web01's plan leaked: {all}");
    assert_eq!(r.status.code(), Some(0), "{all}");
}

#[test]
fn bad_collected_files_exit_3_naming_the_problem_and_write_nothing() {
    let fx = fixture();
    let out = tempfile::tempdir().expect("out");
    let o = out.path().display().to_string();
    let good = web01();
    let check = |name: &str, files: &[&str], needle: &str| {
        let mut args = vec!["upgrade", "-q", "-o", &o];
        for f in files {
            args.push("--from");
            args.push(f);
        }
        let r = fx.run(&args);
        let e = stderr(&r);
        assert_eq!(r.status.code(), Some(3), "{name}: {e}");
        assert!(e.contains(needle), "{name}: expected '{needle}' in: {e}");
        assert_eq!(
            std::fs::read_dir(out.path()).expect("out").count(),
            0,
            "{name}: something was written"
        );
    };
    let truncated = fx.file("cut.opaas", &good[..good.len() - 40]);
    check("truncated", &[&truncated], "cut short");
    let mut bin = good.clone().into_bytes();
    bin[60] = 0xff;
    let binary = fx.dir.path().join("bin.opaas");
    std::fs::write(&binary, bin).expect("write");
    let binary = binary.display().to_string();
    check("binary", &[&binary], "is not text");
    // 100 MB (sparse): refused from its size, before it is read
    let big = fx.dir.path().join("big.opaas");
    std::fs::File::create(&big)
        .and_then(|f| f.set_len(100 << 20))
        .expect("big");
    let big = big.display().to_string();
    check("100 MB", &[&big], "104857600 bytes; the limit is");
    let sparc = fx.file(
        "sparc.opaas",
        &good.replace(
            "Architecture: amd64\nForeign",
            "Architecture: sparc\nForeign",
        ),
    );
    check("unsupported architecture", &[&sparc], "debian-12 sparc");
    let buster = fx.file(
        "buster.opaas",
        &good.replace("OS-Version-ID: 12", "OS-Version-ID: 10"),
    );
    check(
        "end-of-life release",
        &[&buster],
        "runs debian-10, which this opaas does not support",
    );
    let gone = fx.file(
        "gone.opaas",
        &collected(
            "old01",
            "debian",
            "12",
            "amd64",
            &(stanza("gone-tool", "1.0", "amd64") + &stanza("gone-lib", "2.0", "amd64")),
        ),
    );
    check(
        "nothing in the archive",
        &[&gone],
        "none of the 2 packages installed on old01 exists in the debian-12 amd64 archive",
    );
    let missing = fx.dir.path().join("nosuch.opaas").display().to_string();
    check("missing file", &[&missing], "nosuch.opaas");
    // fleets: one distro and architecture, each host once
    let a = fx.file("web01.opaas", &good);
    let arm = fx.file(
        "arm01.opaas",
        &good.replace("web01", "arm01").replace(
            "Architecture: amd64\nForeign",
            "Architecture: arm64\nForeign",
        ),
    );
    check(
        "mixed architectures",
        &[&a, &arm],
        "arm01.opaas: arm01 is debian-12 arm64, but",
    );
    let ubuntu = fx.file(
        "noble01.opaas",
        &good
            .replace("web01", "noble01")
            .replace("OS-ID: debian", "OS-ID: ubuntu")
            .replace("OS-Version-ID: 12", "OS-Version-ID: 24.04"),
    );
    check(
        "mixed distros",
        &[&a, &ubuntu],
        "noble01.opaas: noble01 is ubuntu-24.04 amd64",
    );
    let again = fx.file("web01-again.opaas", &good);
    check(
        "a host twice",
        &[&a, &again],
        "were both collected on host 'web01'",
    );
}

/// `resolve --upgrade --baseline STATUS --extended-states FILE` plans as `upgrade --from` does
/// for a collected file holding the same two files; misuse is bad input (exit 3) naming the flag
/// or the file.
#[test]
fn resolve_takes_the_targets_extended_states_beside_its_status() {
    let fx = fixture();
    let status = stanza("hello", "1.0", "amd64") + &stanza("libhello1", "1.0", "amd64");
    let states = "Package: libhello1\nArchitecture: amd64\nAuto-Installed: 1\n\n";
    let sf = fx.file("status", &status);
    let ef = fx.file("extended_states", states);
    let host = collected("web01", "debian", "12", "amd64", &status).replace(
        "### /var/lib/apt/extended_states\n",
        &format!("### /var/lib/apt/extended_states\n{states}"),
    );
    let hf = fx.file("web01.opaas", &host);
    let resolve = |args: &[&str]| {
        let mut full = vec!["resolve", "-q", "-d", "debian-12", "-a", "amd64"];
        full.extend_from_slice(args);
        fx.run(&full)
    };
    let via_upgrade = fx.run(&["upgrade", "-q", "--from", &hf, "--full", "--json"]);
    assert!(via_upgrade.status.success(), "{}", stderr(&via_upgrade));
    let mut planned: Vec<String> = json(&via_upgrade)["plan"]
        .as_array()
        .expect("plan")
        .iter()
        .map(|p| {
            format!(
                "{}={}",
                p["name"].as_str().unwrap_or(""),
                p["to"].as_str().unwrap_or("")
            )
        })
        .collect();
    planned.sort();
    let o = resolve(&[
        "--full-upgrade",
        "--baseline",
        &sf,
        "--extended-states",
        &ef,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut resolved: Vec<String> = stdout(&o).lines().map(str::to_string).collect();
    resolved.sort();
    assert_eq!(resolved, planned);
    assert!(!resolved.is_empty(), "the fixture has upgrades");
    // misuse: no status file to go with it; a file that is not there
    let o = resolve(&["--extended-states", &ef, "hello"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--extended-states goes with --baseline FILE"),
        "{}",
        stderr(&o)
    );
    let missing = fx.dir.path().join("nope").display().to_string();
    let o = resolve(&[
        "--full-upgrade",
        "--baseline",
        &sf,
        "--extended-states",
        &missing,
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains(&missing), "{}", stderr(&o));
}
