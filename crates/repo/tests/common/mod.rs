//! Shared set-up for the hermetic store tests: a signed fixture archive served on 127.0.0.1,
//! a made-up distro whose pockets are its suites, and a cache in a temp directory.
#![allow(dead_code)]

use opaas_repo::catalog::{ArchiveKind, Distro};
use opaas_repo::http::Http;
use opaas_repo::store::{self, Cache, NoProgress, RepoError, Target, UpdateReport};
use opaas_repo::universe::Universe;
use opaas_testkit::{target, FixtureRepo, Package, Server, Suite};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

pub const MAIN: ArchiveKind = ArchiveKind::Main;
pub const SECURITY: ArchiveKind = ArchiveKind::Security;

/// The default pockets: a release, its updates and its security pocket.
pub const POCKETS: &[(&str, ArchiveKind)] = &[
    ("fixture", MAIN),
    ("fixture-updates", MAIN),
    ("fixture-security", SECURITY),
];

pub struct Fx {
    pub repo: FixtureRepo,
    pub server: Server,
    pub distro: Distro,
    pub components: Vec<String>,
    pub arches: Vec<String>,
    /// Where the mirrors point (the server, unless a test says otherwise).
    pub main_url: String,
    pub security_url: String,
    pub http: Http,
    pub cache: Cache,
    cache_dir: tempfile::TempDir,
}

impl Fx {
    /// An archive with `pockets` (not yet published), served, and an empty cache.
    pub fn new(pockets: &[(&str, ArchiveKind)]) -> Fx {
        let repo = FixtureRepo::temp().expect("fixture repo");
        let server = Server::start(repo.root()).expect("server");
        let cache_dir = tempfile::tempdir().expect("cache dir");
        let url = server.url();
        Fx {
            distro: target::distro("fixture-1", pockets, &["main"], &["amd64"]),
            components: vec!["main".into()],
            arches: vec!["amd64".into()],
            main_url: url.clone(),
            security_url: url,
            http: Http::new(),
            cache: Cache::new(cache_dir.path()),
            cache_dir,
            repo,
            server,
        }
    }

    pub fn publish(&self, s: &Suite) {
        self.repo.publish(s).expect("publish");
    }

    pub fn target(&self) -> Target<'_> {
        Target {
            distro: &self.distro,
            arches: self.arches.clone(),
            components: self.components.clone(),
            mirrors: target::mirrors(&self.main_url, &self.security_url),
            keyring: opaas_repo::keyrings::LazyKeyring::ready(
                self.repo.keyring().expect("keyring"),
            ),
        }
    }

    pub fn update(&self) -> Result<UpdateReport, RepoError> {
        store::update(&self.cache, &self.target(), &self.http, &NoProgress)
    }

    pub fn cache_dir(&self) -> &Path {
        self.cache_dir.path()
    }

    /// (suite, component, arch) -> Packages text, as `load_cached` returns them.
    pub fn loaded(&self) -> BTreeMap<(String, String, String), String> {
        store::load_cached(&self.cache, &self.target())
            .expect("load_cached")
            .into_iter()
            .map(|(m, f)| {
                (
                    (m.suite, m.component, m.arch),
                    String::from_utf8_lossy(f.text()).into_owned(),
                )
            })
            .collect()
    }

    pub fn universe(&self) -> Universe {
        Universe::new(
            "amd64",
            store::load_cached(&self.cache, &self.target()).expect("load_cached"),
        )
    }

    /// Every file of the cache (but the lock) with its content.
    pub fn tree(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
            let Ok(rd) = std::fs::read_dir(dir) else {
                return;
            };
            for e in rd {
                let p = e.expect("dir entry").path();
                if p.is_dir() {
                    walk(root, &p, out);
                } else if p.file_name().is_some_and(|n| n != "lock") {
                    let rel = p.strip_prefix(root).expect("under root").to_path_buf();
                    out.insert(rel, std::fs::read(&p).expect("read cache file"));
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(self.cache.root(), self.cache.root(), &mut out);
        out
    }

    /// Runs a failing update and checks that the cache is exactly as it was and still loads.
    pub fn update_fails_cleanly(&self) -> RepoError {
        let (tree, loaded) = (self.tree(), self.loaded());
        let e = self.update().expect_err("update must fail");
        assert_eq!(
            self.tree().keys().collect::<Vec<_>>(),
            tree.keys().collect::<Vec<_>>(),
            "cache files changed after: {e}"
        );
        assert!(self.tree() == tree, "cache content changed after: {e}");
        assert_eq!(self.loaded(), loaded, "loaded indices changed after: {e}");
        e
    }
}

/// A package with a real .deb.
pub fn pkg(name: &str, version: &str) -> Package {
    Package::new(name, version, "amd64").with_deb()
}

/// The standard content of the three default pockets.
pub fn release_suite() -> Suite {
    Suite::new("fixture")
        .package("main", pkg("hello", "1.0"))
        .package(
            "main",
            Package::new("libfoo1", "1.0", "amd64")
                .provides("foo")
                .depends("base-files"),
        )
        .package("main", Package::new("common", "1.0", "all").with_deb())
}
pub fn updates_suite() -> Suite {
    Suite::new("fixture-updates").package("main", pkg("hello", "1.1"))
}
pub fn security_suite() -> Suite {
    Suite::new("fixture-security").package("main", pkg("hello", "1.0+sec1"))
}
pub fn standard_suites() -> Vec<Suite> {
    vec![release_suite(), updates_suite(), security_suite()]
}

/// A standard fixture, published with `f` applied to every suite.
pub fn standard_with(f: impl Fn(Suite) -> Suite) -> Fx {
    let fx = Fx::new(POCKETS);
    for s in standard_suites() {
        fx.publish(&f(s));
    }
    fx
}

pub fn hours(h: u64) -> Duration {
    Duration::from_secs(h * 3600)
}

pub fn now() -> SystemTime {
    SystemTime::now()
}
