//! `ResolveError` keeps its structure: the request entry, the package, and for an
//! unsatisfiable request the broken dependency with the chain of why each side was wanted.

use opaas_repo::store::SourceMeta;
use opaas_repo::universe::Universe;
use opaas_resolve::error::{AltProblem, Problem};
use opaas_resolve::{Baseline, Options, Request, ResolveError};

const PACKAGES: &str = "Package: app
Version: 1
Architecture: amd64
Depends: lib

Package: lib
Version: 2
Architecture: amd64
Conflicts: other

Package: other
Version: 3
Architecture: amd64

Package: virt-a
Version: 1
Architecture: amd64
Provides: virt

Package: virt-b
Version: 1
Architecture: amd64
Provides: virt
";

fn universe() -> Universe {
    let meta = SourceMeta {
        mirror: "memory:".into(),
        suite: "stable".into(),
        codename: "stable".into(),
        origin: String::new(),
        label: String::new(),
        component: "main".into(),
        arch: "amd64".into(),
        priority: 500,
        date: None,
        index_id: String::new(),
    };
    Universe::from_texts("amd64", vec![(meta, PACKAGES.to_string())])
}

fn resolve(reqs: &[&str]) -> Result<opaas_resolve::Resolution, ResolveError> {
    let u = universe();
    let reqs: Vec<Request> = reqs.iter().map(|r| Request::parse(r).unwrap()).collect();
    opaas_resolve::resolve(&u, &Baseline::none(), &reqs, Options::default())
}

#[test]
fn per_entry_errors_name_their_index_and_package() {
    let e = resolve(&["app", "lib=9"]).unwrap_err();
    assert!(matches!(&e, ResolveError::UnknownVersion { available, .. } if available == &["2"]));
    assert_eq!((e.index(), e.package()), (Some(1), Some("lib")));
    assert_eq!(
        e.to_string(),
        "version '9' of 'lib' is not available; available: 2"
    );

    let e = resolve(&["app", "other", "nope"]).unwrap_err();
    assert!(matches!(&e, ResolveError::UnknownPackage { .. }));
    assert_eq!((e.index(), e.package()), (Some(2), Some("nope")));

    let e = resolve(&["virt"]).unwrap_err();
    assert_eq!((e.index(), e.package()), (Some(0), Some("virt")));
    assert_eq!(
        e.to_string(),
        "package 'virt' is a virtual package provided by: virt-a, virt-b. Ask for one of them explicitly"
    );
}

#[test]
fn unsatisfiable_keeps_the_broken_dependency_and_both_chains() {
    let e = resolve(&["other", "app"]).unwrap_err();
    let ResolveError::Unsatisfiable(u) = &e else {
        panic!("expected Unsatisfiable, got {e:?}");
    };
    // lib (pulled in by app, entry 1) conflicts with other (entry 0)
    let broken = u
        .problems
        .iter()
        .find_map(|p| match p {
            Problem::Broken(b) => Some(b),
            _ => None,
        })
        .expect("a broken dependency");
    assert_eq!(broken.package.name.name, "lib");
    assert_eq!(broken.relation, "other");
    assert_eq!(broken.wanted_by.index, Some(1));
    assert!(broken.wanted_by.requested);
    assert_eq!(broken.wanted_by.via[0].name.name, "app");
    match &broken.alternatives[..] {
        [AltProblem::InConflict { other, wanted_by }] => {
            assert_eq!(other.name.name, "other");
            assert_eq!(wanted_by.index, Some(0));
        }
        a => panic!("unexpected alternatives {a:?}"),
    }
    assert_eq!(e.package(), Some("lib"));
    assert_eq!(e.index(), Some(1));
    assert_eq!(
        e.to_string(),
        "the request cannot be satisfied:\n  lib 2 Conflicts other (via app 1 <- requested)\n    but other 3 is to be installed (via requested)"
    );
}
