//! The fixture `.deb`s are real packages: dpkg-deb reads them and dpkg installs them into a
//! scratch root (skipped where dpkg is not installed).

use opaas_testkit::{FixtureRepo, Package, Suite};
use std::process::Command;

fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok()
}

#[test]
fn dpkg_installs_fixture_debs() {
    if !have("dpkg") || !have("dpkg-deb") {
        eprintln!("dpkg not installed; skipping");
        return;
    }
    let repo = FixtureRepo::temp().expect("repo");
    let p = repo
        .publish(
            &Suite::new("fixture")
                .package(
                    "main",
                    Package::new("libfixture1", "1.0-1", "all")
                        .multi_arch("foreign")
                        .deb_file("/usr/lib/fixture/libfixture.txt", b"lib\n"),
                )
                .package(
                    "main",
                    Package::new("fixture-tool", "2:3.1-1", "all")
                        .depends("libfixture1 (>= 1.0)")
                        .deb_file("/usr/bin/fixture-tool", b"#!/bin/sh\necho hi\n")
                        .deb_script(
                            "postinst",
                            "#!/bin/sh\nset -e\ntouch \"$DPKG_ROOT/postinst-ran\"\n",
                        ),
                ),
        )
        .expect("publish");
    assert_eq!(p.debs.len(), 2);
    for d in &p.debs {
        let path = repo.path(&d.filename);
        let out = Command::new("dpkg-deb")
            .arg("--info")
            .arg(&path)
            .output()
            .expect("dpkg-deb");
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{}: {}",
            d.filename,
            String::from_utf8_lossy(&out.stderr)
        );
        let f = Command::new("dpkg-deb")
            .args(["--field"])
            .arg(&path)
            .arg("Version")
            .output()
            .expect("dpkg-deb");
        assert_eq!(String::from_utf8_lossy(&f.stdout).trim(), d.version);
    }
    // install both into a scratch root
    let root = tempfile::tempdir().expect("root");
    let admin = root.path().join("var/lib/dpkg");
    for d in ["info", "updates", "triggers"] {
        std::fs::create_dir_all(admin.join(d)).expect("mkdir");
    }
    std::fs::write(admin.join("status"), "").expect("status");
    let debs: Vec<_> = p.debs.iter().map(|d| repo.path(&d.filename)).collect();
    let out = Command::new("dpkg")
        .arg(format!("--root={}", root.path().display()))
        .args([
            "--force-not-root",
            "--force-script-chrootless",
            "--log=/dev/null",
            "--install",
        ])
        .args(&debs)
        .output()
        .expect("dpkg");
    assert!(
        out.status.success(),
        "dpkg -i: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let r = root.path();
    assert_eq!(
        std::fs::read(r.join("usr/lib/fixture/libfixture.txt")).expect("installed"),
        b"lib\n"
    );
    assert!(r.join("usr/bin/fixture-tool").exists());
    assert!(r.join("postinst-ran").exists(), "postinst did not run");
    let status = std::fs::read_to_string(admin.join("status")).expect("status");
    assert!(
        status.contains("Package: fixture-tool\nStatus: install ok installed"),
        "{status}"
    );
    assert!(status.contains("Version: 2:3.1-1"), "{status}");
}
