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
    fixture_with(opaas_testkit::fixtures::debian12_hello())
}

fn fixture_with(suites: Vec<Suite>) -> Fx {
    let repo = FixtureRepo::temp().expect("repo");
    repo.publish_all(&suites).expect("publish");
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
        if matches!(args.first(), Some(&"verify")) {
            // the fixture's key signs the archive (the built-in keyrings do not know it)
            full.push("--keyring".into());
            full.push(self.keyring.display().to_string());
        } else {
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
            // the fixture is amd64; -a defaults to the host's architecture
            .env("OPAAS_ARCH", "amd64")
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
fn unpacked_bundles_verify_and_packages_keep_their_real_architecture() {
    let fx = fixture();
    let out = tempfile::tempdir().expect("out");
    let o = out.path().display().to_string();
    let b = fx.run(&["build", "-q", "--baseline", "none", "-o", &o, "hello"]);
    assert!(b.status.success(), "build: {}", stderr(&b));
    let path = stdout(&b).trim().to_string();
    // unpack it as an admin would, then verify the directory
    let dir = tempfile::tempdir().expect("unpack");
    opaas_bundle::open_archive(std::path::Path::new(&path))
        .expect("open")
        .unpack(dir.path())
        .expect("unpack");
    let top = std::fs::read_dir(dir.path())
        .expect("dir")
        .flatten()
        .next()
        .expect("top")
        .path();
    let top_s = top.display().to_string();
    let v = fx.run(&["verify", &top_s]);
    assert!(
        v.status.success(),
        "verify DIR: {}{}",
        stdout(&v),
        stderr(&v)
    );
    assert!(
        stdout(&v).contains("3 packages") && stdout(&v).trim_end().ends_with("OK"),
        "{}",
        stdout(&v)
    );
    let vj = fx.run(&["verify", "--json", &top_s]);
    let rep: serde_json::Value = serde_json::from_slice(&vj.stdout).expect("json");
    assert_eq!(rep["packages"], 3);
    assert!(top_s.ends_with(rep["top"].as_str().expect("top")), "{rep}");
    // manifest and build.log: `Architecture: all` stays `all`
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(top.join("manifest.json")).expect("manifest"))
            .expect("json");
    let arch_of = |name: &str| {
        manifest["packages"]
            .as_array()
            .expect("packages")
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| p["arch"].clone())
    };
    assert_eq!(arch_of("hello-doc"), Some(serde_json::json!("all")));
    assert_eq!(arch_of("hello"), Some(serde_json::json!("amd64")));
    assert_eq!(manifest["arch"], "amd64");
    let log = std::fs::read_to_string(top.join("build.log")).expect("build.log");
    assert!(log.contains("  hello-doc 1.0 all ["), "{log}");
    assert!(log.contains("  hello 1.0+deb12u1 amd64 ["), "{log}");
    // resolve --json: the same view (arch, lowercase sha256, the .deb's file name)
    let r = fx.run(&["resolve", "-q", "--json", "--baseline", "none", "hello"]);
    assert!(r.status.success(), "{}", stderr(&r));
    let doc: serde_json::Value = serde_json::from_slice(&r.stdout).expect("json");
    for p in doc["packages"].as_array().expect("packages") {
        assert!(p.get("architecture").is_none(), "{p}");
        let m = manifest["packages"]
            .as_array()
            .expect("packages")
            .iter()
            .find(|m| m["name"] == p["name"])
            .expect("in the manifest");
        for k in [
            "arch", "version", "size", "sha256", "filename", "pocket", "why",
        ] {
            assert_eq!(p[k], m[k], "{k} of {}", p["name"]);
        }
        let sha = p["sha256"].as_str().expect("sha");
        assert_eq!(sha, sha.to_ascii_lowercase());
        assert!(p["reason"].is_object() || p["reason"].is_string(), "{p}");
    }
    // a changed file in the directory is found, and verify fails with the trust code
    let deb = top.join("archive/pool/main/h/hello/hello_1.0+deb12u1_amd64.deb");
    let mut data = std::fs::read(&deb).expect("read");
    data[10] ^= 0x55;
    std::fs::write(&deb, data).expect("write");
    let v = fx.run(&["verify", &top_s]);
    assert_eq!(v.status.code(), Some(4), "{}", stdout(&v));
    assert!(stdout(&v).contains("PROBLEM"), "{}", stdout(&v));
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
    // one flag, humantime syntax: 0s and 1h; a bare number is still minutes
    let zero = fx.run(&[
        "resolve",
        "-q",
        "--max-index-age",
        "0s",
        "--baseline",
        "none",
        "libhello1",
    ]);
    assert_eq!(stdout(&zero), "libhello1=1.2\n", "{}", stderr(&zero));
    let bad = fx.run(&["resolve", "-q", "--max-index-age", "soon", "libhello1"]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("30m, 1h"), "{}", stderr(&bad));
}

#[test]
fn mirrors_json_names_each_archive_and_where_it_came_from() {
    let fx = fixture();
    let o = fx.run(&["mirrors", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let url = fx.server.url();
    assert_eq!(doc["distro"], "debian-12", "{doc}");
    assert_eq!(doc["codename"], "bookworm", "{doc}");
    assert_eq!(doc["arch"], "amd64", "{doc}");
    assert_eq!(doc["family"], "debian", "{doc}");
    assert_eq!(doc["main"]["url"], url.as_str(), "{doc}");
    assert_eq!(doc["security"]["url"], url.as_str(), "{doc}");
    assert!(
        doc["main"]["origin"]
            .as_str()
            .is_some_and(|o| o.contains("--mirror")),
        "{doc}"
    );
    let suites: Vec<&str> = doc["pockets"]
        .as_array()
        .expect("pockets")
        .iter()
        .filter_map(|p| p["suite"].as_str())
        .collect();
    assert_eq!(
        suites,
        ["bookworm", "bookworm-updates", "bookworm-security"],
        "{doc}"
    );
    assert_eq!(
        doc["pockets"][0]["url"],
        format!("{url}/dists/bookworm/").as_str()
    );
    assert!(
        doc["presets"]
            .as_array()
            .is_some_and(|p| p.iter().any(|n| n == "tuna")),
        "{doc}"
    );
}

#[test]
fn build_ends_with_path_size_count_and_sha256() {
    use sha2::Digest;
    let fx = fixture();
    let out = tempfile::tempdir().expect("out");
    let o = out.path().display().to_string();
    let b = fx.run(&["build", "--baseline", "none", "-o", &o, "hello"]);
    assert!(b.status.success(), "build: {}", stderr(&b));
    // stdout stays the path alone, for scripts
    let path = stdout(&b).trim().to_string();
    assert_eq!(stdout(&b).lines().count(), 1, "{}", stdout(&b));
    let bytes = std::fs::read(&path).expect("tarball");
    let sha = format!("{:x}", sha2::Sha256::digest(&bytes));
    let err = stderr(&b);
    let tail: Vec<&str> = err.lines().rev().take(4).collect();
    assert_eq!(
        tail,
        [
            format!("sha256   {sha}"),
            "packages 3".to_string(),
            format!(
                "size     {} ({} bytes)",
                human(bytes.len() as u64),
                bytes.len()
            ),
            format!("bundle   {path}"),
        ],
        "{err}"
    );
    // -q: only the path
    let q = fx.run(&["build", "-q", "--baseline", "none", "-o", &o, "hello"]);
    assert!(!stderr(&q).contains("sha256"), "{}", stderr(&q));
}

fn human(b: u64) -> String {
    if b >= 1 << 20 {
        format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64)
    } else if b >= 1 << 10 {
        format!("{:.1} KiB", b as f64 / 1024.0)
    } else {
        format!("{b} B")
    }
}

/// debian12_hello plus web servers to search for (no .debs: search reads the indices only).
fn search_fixture() -> Fx {
    let mut suites = opaas_testkit::fixtures::debian12_hello();
    let pkg = |name: &str, prio: &str, desc: &str| {
        Package::new(name, "1.0", "amd64")
            .field("Priority", prio)
            .field("Description", desc)
    };
    let main = suites
        .remove(0)
        .package("main", pkg("web-server", "optional", "a dummy"))
        .package("main", pkg("web-server-tools", "optional", "tools"))
        .package(
            "main",
            pkg("libweb-server-perl", "optional", "a Perl module"),
        )
        .package(
            "main",
            pkg("aardvark-web", "extra", "web server for aardvarks"),
        )
        .package("main", pkg("tinyhttpd", "optional", "a tiny Web Server"))
        .package(
            "main",
            pkg(
                "nginx",
                "optional",
                "small, powerful, scalable web/proxy server",
            )
            .provides("httpd, httpd-cgi"),
        )
        .package(
            "main",
            pkg(
                "apache2",
                "optional",
                "Apache HTTP Server\n The most widely used web server on the Internet.",
            )
            .provides("httpd"),
        )
        .package("main", pkg("davfs", "optional", "mount WebDAV servers"))
        .package("main", pkg("webcam", "optional", "a camera"));
    suites.insert(0, main);
    fixture_with(suites)
}

fn names(o: &Output) -> Vec<String> {
    stdout(o)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(String::from)
        .collect()
}

#[test]
fn search_takes_several_words_ranks_real_matches_and_says_what_the_limit_cut() {
    let fx = search_fixture();
    // two words, no quotes: exact name, prefix, contains, summary (whole words, then priority,
    // then length: davfs' "WebDAV servers" only holds the words), then the long description
    let s = fx.run(&["search", "web", "server"]);
    assert!(s.status.success(), "{}", stderr(&s));
    assert_eq!(
        names(&s),
        [
            "web-server",
            "web-server-tools",
            "libweb-server-perl",
            "nginx",
            "tinyhttpd",
            "aardvark-web",
            "davfs",
            "apache2"
        ],
        "{}",
        stdout(&s)
    );
    assert!(
        stdout(&s).starts_with("web-server 1.0 - a dummy\n"),
        "{}",
        stdout(&s)
    );
    assert!(!stderr(&s).contains("cut"), "{}", stderr(&s));
    // a virtual name finds its providers after the name matches
    let h = fx.run(&["search", "httpd"]);
    assert_eq!(
        names(&h),
        ["tinyhttpd", "nginx", "apache2"],
        "{}",
        stdout(&h)
    );
    // a single word still ranks exact, prefix, contains
    let hello = fx.run(&["search", "HELLO"]);
    assert_eq!(names(&hello), ["hello", "hello-doc", "libhello1"]);
    // the limit is a flag, and what it cut is said
    let l = fx.run(&["search", "--limit", "2", "web", "server"]);
    assert!(l.status.success(), "{}", stderr(&l));
    assert_eq!(names(&l), ["web-server", "web-server-tools"]);
    assert!(
        stderr(&l).contains("2 of 8 matches shown; 6 more cut by --limit 2"),
        "{}",
        stderr(&l)
    );
    // nothing: exit 1 with a message
    let none = fx.run(&["search", "web", "zzz"]);
    assert_eq!(none.status.code(), Some(1));
    assert!(
        stderr(&none).contains("no package matches 'web zzz'"),
        "{}",
        stderr(&none)
    );
    // no word at all is a usage error
    assert_eq!(fx.run(&["search"]).status.code(), Some(2));
}

/// `opaas mirrors` with a clean environment and HOME (the host's /etc/apt has no Ubuntu ports
/// entry on any machine this runs on but an Ubuntu ports host).
fn mirrors_cmd(home: &std::path::Path, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_opaas"));
    c.args(["mirrors", "-d", "ubuntu-24.04", "-a", "arm64"])
        .args(extra)
        .env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("OPAAS_MIRROR_PRESET");
    for fam in ["DEBIAN", "UBUNTU", "UBUNTU_PORTS"] {
        c.env_remove(format!("OPAAS_MIRROR_{fam}"))
            .env_remove(format!("OPAAS_SECURITY_MIRROR_{fam}"));
    }
    c
}

#[test]
fn mirrors_lists_every_source_tried_and_exits_0_when_nothing_is_configured() {
    let home = tempfile::tempdir().expect("home");
    let o = mirrors_cmd(home.path(), &[]).output().expect("runs");
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{}", stderr(&o));
    let cfg = format!(
        "config {} [mirrors] ubuntu_ports",
        home.path().join(".config/opaas/config.toml").display()
    );
    let row = |out: &str, source: &str, state: &str| {
        out.lines().any(|l| {
            let l = l.trim_start();
            l.starts_with(source) && l.trim_end().ends_with(state)
        })
    };
    assert!(row(&out, "--mirror ", "not given"), "{out}");
    assert!(
        row(&out, "env OPAAS_MIRROR_UBUNTU_PORTS ", "not set"),
        "{out}"
    );
    assert!(row(&out, &cfg, "file absent"), "{out}");
    assert!(
        row(&out, "host APT sources /etc/apt", "no ubuntu_ports entry"),
        "{out}"
    );
    assert!(
        row(
            &out,
            "preset (--mirror-preset, OPAAS_MIRROR_PRESET",
            "none chosen"
        ),
        "{out}"
    );
    assert!(row(&out, "--security-mirror ", "not given"), "{out}");
    assert!(
        out.contains("NOT CONFIGURED: no main archive mirror for ubuntu-24.04 arm64")
            && out.contains(
                "--mirror URL, env OPAAS_MIRROR_UBUNTU_PORTS, `ubuntu_ports` in [mirrors]"
            )
            && out.contains("--mirror-preset NAME"),
        "{out}"
    );
    assert!(!out.lines().any(|l| l.starts_with("main     ")), "{out}");
    // configured twice: the env var wins over the config file, and both are shown
    let conf = home.path().join("opaas.toml");
    std::fs::write(
        &conf,
        "[mirrors]\nubuntu_ports = \"http://config.invalid/ubuntu-ports\"\n",
    )
    .expect("config");
    let o = mirrors_cmd(home.path(), &["--config", &conf.display().to_string()])
        .env("OPAAS_MIRROR_UBUNTU_PORTS", "http://env.invalid/ports")
        .output()
        .expect("runs");
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{}", stderr(&o));
    assert!(
        row(
            &out,
            "env OPAAS_MIRROR_UBUNTU_PORTS",
            "http://env.invalid/ports  <- used"
        ),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.contains("http://config.invalid/ubuntu-ports  (not used")),
        "{out}"
    );
    assert!(
        out.contains("main     http://env.invalid/ports  [env OPAAS_MIRROR_UBUNTU_PORTS]"),
        "{out}"
    );
    assert!(!out.contains("NOT CONFIGURED"), "{out}");
    // an unknown distro is still bad input with its code
    let bad = Command::new(env!("CARGO_BIN_EXE_opaas"))
        .args(["mirrors", "-d", "debian-99", "-a", "amd64"])
        .output()
        .expect("runs");
    assert_eq!(bad.status.code(), Some(3), "{}", stderr(&bad));
}

#[test]
fn arch_defaults_to_the_hosts_and_says_so() {
    // dpkg's name for this host's architecture: dpkg itself when there is one
    let host = Command::new("dpkg")
        .arg("--print-architecture")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| stdout(&o).trim().to_string())
        .unwrap_or_else(|| {
            match std::env::consts::ARCH {
                "x86_64" => "amd64",
                "aarch64" => "arm64",
                other => other,
            }
            .to_string()
        });
    let run = |extra: &[&str], env_arch: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_opaas"));
        c.args(["mirrors", "-d", "debian-12"])
            .args(["--mirror", "http://m.invalid/debian"])
            .args(["--security-mirror", "http://m.invalid/security"])
            .args(extra)
            .env_remove("OPAAS_ARCH");
        if let Some(a) = env_arch {
            c.env("OPAAS_ARCH", a);
        }
        c.output().expect("runs")
    };
    let d = run(&[], None);
    assert!(d.status.success(), "{}", stderr(&d));
    assert!(
        stdout(&d).starts_with(&format!("distro   debian-12 (bookworm) {host}\n")),
        "{}",
        stdout(&d)
    );
    assert!(
        stderr(&d).contains(&format!(
            "no -a/--arch given: targeting this host's architecture, {host}"
        )),
        "{}",
        stderr(&d)
    );
    // given by flag or env, or -q: no note
    let other = if host == "arm64" { "amd64" } else { "arm64" };
    for o in [
        run(&["-a", other], None),
        run(&[], Some(other)),
        run(&["-q"], None),
    ] {
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(!stderr(&o).contains("--arch given"), "{}", stderr(&o));
    }
    assert!(stdout(&run(&[], Some(other))).contains(&format!("(bookworm) {other}\n")));
    // the help says it
    let h = Command::new(env!("CARGO_BIN_EXE_opaas"))
        .args(["resolve", "--help"])
        .output()
        .expect("help");
    assert!(
        stdout(&h).contains("default: this host's"),
        "{}",
        stdout(&h)
    );
    assert!(
        stdout(&h).contains(&format!("[default: {host}]")),
        "{}",
        stdout(&h)
    );
}

#[test]
fn explain_goes_to_stderr_as_help_says_and_stdout_keeps_the_list() {
    let fx = fixture();
    let r = fx.run(&["resolve", "-q", "--explain", "--baseline", "none", "hello"]);
    assert!(r.status.success(), "{}", stderr(&r));
    assert_eq!(
        stdout(&r),
        "hello=1.0+deb12u1\nhello-doc=1.0\nlibhello1=1.1\n"
    );
    let err = stderr(&r);
    for p in [
        "hello 1.0+deb12u1 <- ",
        "hello-doc 1.0 <- ",
        "libhello1 1.1 <- ",
    ] {
        assert!(err.lines().any(|l| l.starts_with(p)), "{p}: {err}");
    }
    let h = Command::new(env!("CARGO_BIN_EXE_opaas"))
        .args(["resolve", "--help"])
        .output()
        .expect("help");
    let help = stdout(&h).split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        help.contains(
            "why each package is included, one `name version <- reason` line each, on stderr"
        ),
        "{help}"
    );
}

#[test]
fn offline_hint_names_the_cache_dir_and_mirrors_given_and_works() {
    let fx = fixture();
    let empty = tempfile::tempdir().expect("cache");
    let e = empty.path().display().to_string();
    let o = fx.run(&["resolve", "-q", "--offline", "--cache-dir", &e, "hello"]);
    assert_eq!(o.status.code(), Some(6), "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(
        err.matches("no cached indices").count(),
        1,
        "said once: {err}"
    );
    let cmd = err
        .split('`')
        .nth(1)
        .unwrap_or_else(|| panic!("a command in backticks: {err}"));
    assert!(
        cmd.starts_with("opaas update -d debian-12 -a amd64 "),
        "{cmd}"
    );
    assert!(cmd.ends_with(&format!(" --cache-dir {e}")), "{cmd}");
    assert!(
        cmd.contains(&format!(" --mirror {} ", fx.server.url())),
        "{cmd}"
    );
    // the hint, run as given, fills that cache: the offline resolve then works
    let words: Vec<&str> = cmd.split_whitespace().skip(1).collect();
    let u = Command::new(env!("CARGO_BIN_EXE_opaas"))
        .args(&words)
        .env_remove("OPAAS_CACHE_DIR")
        .output()
        .expect("update runs");
    assert!(u.status.success(), "{}", stderr(&u));
    let again = fx.run(&[
        "resolve",
        "-q",
        "--offline",
        "--cache-dir",
        &e,
        "--baseline",
        "none",
        "hello",
    ]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(
        stdout(&again),
        "hello=1.0+deb12u1\nhello-doc=1.0\nlibhello1=1.1\n"
    );
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
            && stderr(&b2).contains(", verified: "),
        "{}",
        stderr(&b2)
    );
    assert_eq!(modified(&path), m1, "the tarball was written again");
    // the digest recorded beside it when it was written made that one hash pass
    let side = {
        let p = std::path::Path::new(&path);
        let name = p.file_name().expect("name").to_string_lossy().into_owned();
        p.with_file_name(format!(".{name}.sha256"))
    };
    let recorded = std::fs::read_to_string(&side).expect("digest file");
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes1));
    assert!(recorded.starts_with(&digest), "{recorded}");
    assert!(
        stderr(&b2).contains("its SHA-256 as recorded when written"),
        "{}",
        stderr(&b2)
    );
    // without (or with a wrong) digest file the tarball is verified member by member, reused,
    // and its digest recorded again
    for damage in [None, Some("0".repeat(64))] {
        match &damage {
            None => std::fs::remove_file(&side).expect("rm digest"),
            Some(d) => std::fs::write(&side, format!("{d}  x\n")).expect("write digest"),
        }
        let b = fx.run(&["build", "--baseline", "none", "-o", &o, "hello"]);
        assert!(
            b.status.success() && stderr(&b).contains("every member against SHA256SUMS"),
            "{}",
            stderr(&b)
        );
        assert_eq!(modified(&path), m1, "the tarball was written again");
        assert!(std::fs::read_to_string(&side)
            .expect("digest again")
            .starts_with(&digest));
    }
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

/// The tarball is written while the .debs download: a .deb the mirror no longer has fails the
/// build naming it, and leaves neither a tarball nor a temporary file behind.
#[test]
fn a_missing_deb_fails_the_build_and_leaves_no_tarball() {
    let fx = fixture();
    fx.server
        .fail_always("libhello1_", opaas_testkit::Fault::NotFound);
    let out = tempfile::tempdir().expect("out");
    let o = out.path().display().to_string();
    let b = fx.run(&["build", "-q", "--baseline", "none", "-o", &o, "hello"]);
    assert!(!b.status.success(), "{}", stderr(&b));
    assert!(stderr(&b).contains("libhello1"), "{}", stderr(&b));
    let left: Vec<_> = std::fs::read_dir(out.path())
        .expect("out dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    // with the file back, the same build succeeds and verifies
    fx.server.clear_faults();
    let b = fx.run(&["build", "-q", "--baseline", "none", "-o", &o, "hello"]);
    assert!(b.status.success(), "{}", stderr(&b));
    let v = fx.run(&["verify", stdout(&b).trim()]);
    assert!(v.status.success(), "{}", stderr(&v));
}

/// A mirror that resets, answers 500/503, truncates or stalls on 30 % of all requests (indices
/// and .debs): ten seeded builds, none fails, each bundle verifies (issue 12's acceptance run).
/// The stall sends half the body, then nothing for 1 s, then closes; a connection that stays
/// silent longer is the client's stall timeout (`crates/fetch/tests/bad_mirrors.rs`, 300 ms).
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
                opaas_testkit::Fault::Stall(std::time::Duration::from_secs(1)),
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
    let kind = |k: &str| log.iter().filter(|l| l.contains(k)).count();
    assert!(kind("stalled") > 0, "no stall was injected");
    println!(
        "10 seeded builds through 30 % faults: {} requests; {} dropped mid-body, {} stalled, {} HTTP 500, {} HTTP 503 (truncated answers are logged as 200)",
        log.len(),
        kind("dropped mid-body"),
        kind("stalled"),
        kind("-> 500"),
        kind("-> 503"),
    );
}

/// The index tables' CRCs are checked beside the resolution, not before it (issue 9's speed):
/// a table whose bytes changed after it was written must still never decide the answer. Here
/// one byte of the name blob is changed so that `hello` is no longer in the table; trusted, the
/// table would make `hello` an unknown package. The damaged table is found, rebuilt from its
/// verified Packages text, and the request resolved again.
#[test]
fn a_damaged_index_table_is_rebuilt_and_the_request_resolved_again() {
    let fx = fixture();
    let u = fx.run(&["update", "-q"]);
    assert!(u.status.success(), "update: {}", stderr(&u));
    let good = fx.run(&["resolve", "-q", "--offline", "--baseline", "none", "hello"]);
    assert!(good.status.success(), "resolve: {}", stderr(&good));
    // every .idx holding the name `hello` gets it changed to `hellp` (same length, so the
    // table stays well-formed and only the CRC can tell)
    let damaged = damage_hello(fx.cache.path());
    assert!(damaged > 0, "no index table names hello");
    let again = fx.run(&["resolve", "-q", "--offline", "--baseline", "none", "hello"]);
    assert!(
        again.status.success(),
        "a damaged table decided the answer: {}",
        stderr(&again)
    );
    assert_eq!(stdout(&again), stdout(&good));
    // the rebuilt tables are whole again: a third run needs no rebuild and agrees
    let check_rebuilt = || {
        for e in walk(fx.cache.path()) {
            if e.extension().is_some_and(|x| x == "idx") {
                let b = std::fs::read(&e).expect("read idx");
                assert!(
                    b.windows(5).all(|w| w != b"hellp"),
                    "{} was not rebuilt",
                    e.display()
                );
            }
        }
    };
    check_rebuilt();
    // `show` reads the indices outside the resolve pipeline (Session::universe): it waits for
    // the CRC too and rebuilds before it answers
    assert_eq!(damage_hello(fx.cache.path()), damaged);
    let shown = fx.run(&["show", "--offline", "hello"]);
    assert!(shown.status.success(), "show: {}", stderr(&shown));
    check_rebuilt();
}

/// Changes the name `hello` to `hellp` in every `.idx` under `dir`; how many files it changed.
fn damage_hello(dir: &std::path::Path) -> usize {
    let mut damaged = 0;
    for e in walk(dir) {
        if e.extension().is_some_and(|x| x == "idx") {
            let mut b = std::fs::read(&e).expect("read idx");
            let Some(at) = b.windows(5).position(|w| w == b"hello") else {
                continue;
            };
            b[at + 4] = b'p';
            std::fs::write(&e, &b).expect("write idx");
            damaged += 1;
        }
    }
    damaged
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}
