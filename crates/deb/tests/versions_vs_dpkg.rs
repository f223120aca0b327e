//! Differential test: our ordering against `dpkg --compare-versions` on the versions of the
//! host's own dpkg status file plus hand-picked edge cases. Skips (with a printed reason) where
//! dpkg is absent.

use std::cmp::Ordering;
use std::process::Command;

fn dpkg_cmp(a: &str, b: &str) -> Option<Ordering> {
    let run = |op: &str| {
        Command::new("dpkg")
            .args(["--compare-versions", a, op, b])
            .status()
            .ok()
            .map(|s| s.success())
    };
    if run("lt")? {
        Some(Ordering::Less)
    } else if run("eq")? {
        Some(Ordering::Equal)
    } else {
        Some(Ordering::Greater)
    }
}

#[test]
fn agrees_with_dpkg() {
    if Command::new("dpkg").arg("--version").output().is_err() {
        eprintln!("SKIP agrees_with_dpkg: dpkg is not installed on this host");
        return;
    }
    let status = std::fs::read_to_string("/var/lib/dpkg/status").unwrap_or_default();
    let mut versions: Vec<String> = opaas_deb::paragraphs(&status)
        .filter_map(|p| p.get("Version").map(str::to_string))
        .collect();
    versions.sort();
    versions.dedup();
    versions.truncate(150);
    for v in [
        "1.0~rc1",
        "1.0",
        "1.0+b1",
        "1:0.9",
        "1.0-1~bpo12+1",
        "1.0-1",
        "1.0-1ubuntu0.1",
        "2.36-9+deb12u10",
        "2.36-9+deb12u9",
        "0.0",
        "00",
        "1.0a",
        "1.0.",
        "1.0~~a",
        "9.9p1-3ubuntu0.1",
        "20230311.0",
    ] {
        versions.push(v.to_string());
    }
    let mut checked = 0;
    for (i, a) in versions.iter().enumerate() {
        // each version against a few others spread over the list
        for b in versions.iter().skip(i / 2).step_by(37).take(3) {
            let want = dpkg_cmp(a, b).expect("dpkg runs");
            assert_eq!(opaas_deb::compare_versions(a, b), want, "{a} vs {b}");
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} comparisons made");
    eprintln!("{checked} comparisons agree with dpkg");
}
