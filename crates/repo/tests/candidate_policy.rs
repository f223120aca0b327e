//! apt's default candidate policy (`Universe::candidate`) over indices fetched from a fixture
//! archive: pin priorities come from the signed Release (NotAutomatic, ButAutomaticUpgrades).

mod common;

use common::*;
use opaas_repo::universe::Universe;
use opaas_testkit::{Package, Suite};

fn p(name: &str, version: &str) -> Package {
    Package::new(name, version, "amd64")
}

/// release (500), updates (500), security (500), backports (NotAutomatic +
/// ButAutomaticUpgrades: 100), experimental (NotAutomatic: 1).
fn universe() -> (Fx, Universe) {
    let fx = Fx::new(&[
        ("fixture", MAIN),
        ("fixture-updates", MAIN),
        ("fixture-security", SECURITY),
        ("fixture-backports", MAIN),
        ("fixture-experimental", MAIN),
    ]);
    fx.publish(
        &Suite::new("fixture")
            .package("main", p("hello", "1.0"))
            .package("main", p("same", "1.0"))
            .package("main", p("exp", "1.0"))
            .package("main", p("bpo", "1.0"))
            .package("main", Package::new("common", "1.0", "all")),
    );
    fx.publish(&Suite::new("fixture-updates").package("main", p("hello", "1.2")));
    fx.publish(
        &Suite::new("fixture-security")
            .package("main", p("hello", "1.1"))
            .package("main", p("same", "1.0")),
    );
    fx.publish(
        &Suite::new("fixture-backports")
            .but_automatic_upgrades()
            .package("main", p("bpo", "2.0"))
            .package("main", p("bpo", "2.1"))
            .package("main", p("only-bpo", "1.0")),
    );
    fx.publish(
        &Suite::new("fixture-experimental")
            .not_automatic()
            .package("main", p("exp", "2.0"))
            .package("main", p("exp", "2.1"))
            .package("main", p("only-exp", "1.0")),
    );
    fx.update().expect("update");
    let u = fx.universe();
    (fx, u)
}

fn cand<'u>(u: &'u Universe, name: &str, installed: Option<&str>) -> Option<&'u str> {
    u.candidate(name, "amd64", installed).map(|c| c.version)
}

#[test]
fn priorities_come_from_the_release_files() {
    let (_fx, u) = universe();
    let prio: Vec<(&str, i32)> = u
        .sources
        .iter()
        .map(|s| (s.suite.as_str(), s.priority))
        .collect();
    assert_eq!(
        prio,
        [
            ("fixture", 500),
            ("fixture-updates", 500),
            ("fixture-security", 500),
            ("fixture-backports", 100),
            ("fixture-experimental", 1),
        ]
    );
}

#[test]
fn highest_version_wins_at_equal_priority_across_pockets() {
    let (_fx, u) = universe();
    assert_eq!(cand(&u, "hello", None), Some("1.2"));
    // the same version in two pockets is one candidate with both sources
    let v = u.versions("same", "amd64");
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].refs.len(), 2);
    assert_eq!(cand(&u, "same", None), Some("1.0"));
    // Architecture: all counts as the native architecture
    assert_eq!(cand(&u, "common", None), Some("1.0"));
    assert_eq!(cand(&u, "hello", Some("1.1")), Some("1.2"));
    assert_eq!(cand(&u, "missing", None), None);
    assert_eq!(u.candidate("hello", "arm64", None).map(|c| c.version), None);
}

#[test]
fn not_automatic_loses_to_a_lower_version_at_500() {
    let (_fx, u) = universe();
    assert_eq!(cand(&u, "exp", None), Some("1.0"));
    // ... but is the candidate when it is the only source
    assert_eq!(cand(&u, "only-exp", None), Some("1.0"));
    let c = u.candidate("only-exp", "amd64", None).expect("candidate");
    assert_eq!(c.priority, 1);
    // installed from experimental: kept, not upgraded automatically, not downgraded
    assert_eq!(cand(&u, "exp", Some("2.0")), Some("2.0"));
}

#[test]
fn but_automatic_upgrades_is_100() {
    let (_fx, u) = universe();
    // not chosen over the release's lower version...
    assert_eq!(cand(&u, "bpo", None), Some("1.0"));
    let c = u.candidate("only-bpo", "amd64", None).expect("candidate");
    assert_eq!((c.version, c.priority), ("1.0", 100));
    // ...but once installed from there, it is upgraded within backports
    assert_eq!(cand(&u, "bpo", Some("2.0")), Some("2.1"));
    assert_eq!(cand(&u, "bpo", Some("2.1")), Some("2.1"));
}

#[test]
fn installed_version_is_not_downgraded() {
    let (_fx, u) = universe();
    // installed newer than anything at 500: the 500 versions are lower, so none is chosen
    let c = cand(&u, "hello", Some("9.0"));
    assert!(c.is_none() || c == Some("9.0"), "{c:?}");
    assert_eq!(cand(&u, "exp", Some("2.1")), Some("2.1"));
    assert_eq!(cand(&u, "bpo", Some("2.1")), Some("2.1"));
}
