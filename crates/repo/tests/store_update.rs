//! `store::update` and `store::load_cached` against signed fixture archives served on
//! 127.0.0.1: formats, by-hash, InRelease fallback, every trust failure, incremental updates,
//! retries, a dead mirror, and concurrent updates. Hermetic: no network beyond loopback.

mod common;

use common::*;
use opaas_repo::http::HttpError;
use opaas_repo::sig::{generate_key, SigError};
use opaas_repo::store::RepoError;
use opaas_testkit::{unused_local_url, Compression, Fault, Mangle, Package, Signing, Suite};
use std::sync::Arc;

const XZ: &str = "/main/binary-amd64/Packages.xz";

fn assert_standard_content(fx: &Fx) {
    let u = fx.universe();
    let versions: Vec<&str> = u
        .versions("hello", "amd64")
        .iter()
        .map(|c| c.version)
        .collect();
    assert_eq!(versions, ["1.1", "1.0+sec1", "1.0"]);
    assert_eq!(
        u.candidate("hello", "amd64", None).map(|c| c.version),
        Some("1.1")
    );
    // Architecture: all is filed under the native architecture
    assert_eq!(u.versions("common", "amd64").len(), 1);
    let provs: Vec<&str> = u.providers("foo").iter().map(|&r| u.name(r)).collect();
    assert_eq!(provs, ["libfoo1"]);
    // the .deb fields made it through
    let r = u.versions("hello", "amd64")[0].main;
    let p = u.paragraph(r);
    assert_eq!(
        p.get("Filename"),
        Some("pool/main/h/hello/hello_1.1_amd64.deb")
    );
    let meta = u.source(r);
    assert_eq!(
        (
            meta.suite.as_str(),
            meta.codename.as_str(),
            meta.origin.as_str(),
            meta.priority
        ),
        ("fixture-updates", "fixture-updates", "OPaaS-Test", 500)
    );
    assert_eq!(meta.mirror, fx.server.url());
}

fn happy(compressions: &[Compression], expect_path: &str) -> Fx {
    let fx = standard_with(|s| s.compressions(compressions));
    let r = fx.update().expect("update");
    assert_eq!((r.indices_fetched, r.indices_unchanged), (3, 0));
    assert!(r.bytes_fetched > 0);
    for suite in ["fixture", "fixture-updates", "fixture-security"] {
        assert_eq!(
            fx.server
                .requests_exact(&format!("/dists/{suite}/main/binary-amd64/{expect_path}")),
            1,
            "{:#?}",
            fx.server.log()
        );
        assert_eq!(
            fx.server
                .requests_exact(&format!("/dists/{suite}/InRelease")),
            1
        );
    }
    // one index per suite, nothing else: no Release/Release.gpg when InRelease is there
    assert_eq!(fx.server.requests("/Packages"), 3, "{:#?}", fx.server.log());
    assert_eq!(fx.server.requests("Release.gpg"), 0);
    assert_eq!(fx.server.requests("by-hash"), 0);
    assert_standard_content(&fx);
    fx
}

#[test]
fn happy_path_xz() {
    happy(&[Compression::Xz, Compression::Gz], "Packages.xz");
}

#[test]
fn happy_path_gz_only() {
    happy(&[Compression::Gz], "Packages.gz");
}

#[test]
fn happy_path_plain_only() {
    happy(&[Compression::Plain], "Packages");
}

#[test]
fn by_hash_used_when_acquire_by_hash() {
    let fx = standard_with(|s| s.acquire_by_hash(true));
    fx.update().expect("update");
    assert_eq!(
        fx.server.requests("/main/binary-amd64/by-hash/SHA256/"),
        3,
        "{:#?}",
        fx.server.log()
    );
    assert_eq!(fx.server.requests("/Packages"), 0);
    assert_standard_content(&fx);
}

#[test]
fn by_hash_missing_on_a_lagging_mirror_falls_back_to_the_plain_path() {
    let fx = standard_with(|s| s.acquire_by_hash(true));
    fx.server.fail_always("/by-hash/", Fault::NotFound);
    fx.update().expect("update");
    assert_eq!(fx.server.requests("/by-hash/"), 3);
    assert_eq!(fx.server.requests("/Packages.xz"), 3);
    assert_standard_content(&fx);
}

#[test]
fn by_hash_not_used_without_acquire_by_hash() {
    let fx = standard_with(|s| s.acquire_by_hash(false));
    fx.update().expect("update");
    assert_eq!(fx.server.requests("by-hash"), 0);
}

#[test]
fn inrelease_missing_falls_back_to_release_and_release_gpg() {
    let fx = standard_with(|s| s.inrelease(false));
    fx.update().expect("update");
    for suite in ["fixture", "fixture-updates", "fixture-security"] {
        for f in ["InRelease", "Release", "Release.gpg"] {
            assert_eq!(
                fx.server.requests_exact(&format!("/dists/{suite}/{f}")),
                1,
                "{f}"
            );
        }
    }
    assert_standard_content(&fx);
    // the detached signature is checked too
    fx.publish(
        &release_suite()
            .inrelease(false)
            .signing(Signing::Key(Arc::new(generate_key("other").expect("key")))),
    );
    let e = fx.update_fails_cleanly();
    assert!(
        matches!(
            &e,
            RepoError::Signature { url, source: SigError::UnknownKey { .. } } if url.ends_with("/dists/fixture/Release")
        ),
        "{e:?}"
    );
}

/// A good first update, then `break_it`, then an update that must fail without touching the
/// cache. Returns the error.
fn trust_failure(break_it: impl FnOnce(&Fx)) -> RepoError {
    let fx = standard_with(|s| s);
    fx.update().expect("first update");
    assert_standard_content(&fx);
    break_it(&fx);
    let e = fx.update_fails_cleanly();
    // the message names the place
    assert!(e.to_string().contains("/dists/fixture"), "{e}");
    assert_standard_content(&fx);
    e
}

#[test]
fn bad_signature_is_refused() {
    let e = trust_failure(|fx| {
        let p = fx.repo.path("dists/fixture/InRelease");
        let t = std::fs::read_to_string(&p).expect("InRelease");
        let t2 = t.replacen("Origin: OPaaS-Test", "Origin: OPaaS-Tesu", 1);
        assert_ne!(t, t2);
        std::fs::write(&p, t2).expect("tamper");
    });
    assert!(
        matches!(
            &e,
            RepoError::Signature {
                source: SigError::BadSignature { .. },
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn unknown_key_is_refused() {
    let other = Arc::new(generate_key("Somebody Else <x@example.invalid>").expect("key"));
    let e = trust_failure(|fx| fx.publish(&release_suite().signing(Signing::Key(other))));
    assert!(
        matches!(
            &e,
            RepoError::Signature {
                source: SigError::UnknownKey { .. },
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("--keyring"), "{e}");
}

#[test]
fn expired_release_is_refused() {
    let e = trust_failure(|fx| fx.publish(&release_suite().valid_until(now() - hours(1))));
    assert!(matches!(&e, RepoError::Expired { .. }), "{e:?}");
}

#[test]
fn valid_until_in_the_future_is_accepted() {
    let fx = standard_with(|s| s.valid_until(now() + hours(24 * 7)));
    fx.update().expect("update");
    let st = fx
        .cache
        .suite_state(&fx.server.url(), "fixture")
        .expect("state");
    assert!(st.valid_until.is_some());
}

#[test]
fn release_dated_in_the_future_is_refused() {
    let e = trust_failure(|fx| fx.publish(&release_suite().date(now() + hours(24))));
    assert!(matches!(&e, RepoError::NotYetValid { .. }), "{e:?}");
}

#[test]
fn wrong_suite_is_refused() {
    let e = trust_failure(|fx| {
        let mut s = release_suite();
        s.name = "other".into();
        s.codename = "other".into();
        fx.publish(&s); // still in dists/fixture/
    });
    assert!(
        matches!(&e, RepoError::WrongSuite { got, want, .. } if got == "other/other" && want == "fixture"),
        "{e:?}"
    );
}

/// The release suite with new content (so its index is fetched again).
fn changed_release_suite() -> Suite {
    release_suite().package("main", pkg("newcomer", "1.0"))
}

#[test]
fn index_hash_mismatch_is_refused() {
    let e = trust_failure(|fx| {
        fx.publish(&changed_release_suite());
        fx.server
            .fail_always(&format!("/dists/fixture{XZ}"), Fault::Corrupt);
    });
    assert!(
        matches!(&e, RepoError::HashMismatch { url, .. } if url.ends_with(XZ)),
        "{e:?}"
    );
}

#[test]
fn index_size_mismatch_is_refused() {
    let e = trust_failure(|fx| {
        fx.publish(&changed_release_suite());
        fx.server
            .fail_always(&format!("/dists/fixture{XZ}"), Fault::Truncate);
    });
    assert!(
        matches!(&e, RepoError::SizeMismatch { expected, got, .. } if got < expected),
        "{e:?}"
    );
}

#[test]
fn truncated_xz_published_by_the_archive_is_refused() {
    let e = trust_failure(|fx| {
        fx.publish(
            &changed_release_suite().mangle("main/binary-amd64/Packages.xz", Mangle::Truncate),
        )
    });
    assert!(matches!(&e, RepoError::Decompress { .. }), "{e:?}");
}

#[test]
fn corrupt_gz_published_by_the_archive_is_refused() {
    let e = trust_failure(|fx| {
        fx.publish(
            &changed_release_suite()
                .compressions(&[Compression::Gz])
                .mangle("main/binary-amd64/Packages.gz", Mangle::CorruptMiddle),
        )
    });
    assert!(matches!(&e, RepoError::Decompress { .. }), "{e:?}");
}

#[test]
fn decompressed_text_must_match_the_release() {
    let e = trust_failure(|fx| {
        let good = changed_release_suite();
        // a well-formed xz whose text differs in one byte from what the Release lists
        let text = good
            .index_text("main", "amd64")
            .replace("Version: 1.0", "Version: 1.9");
        let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 6);
        std::io::Write::write_all(&mut xz, text.as_bytes()).expect("xz");
        let xz = xz.finish().expect("xz");
        fx.publish(&good.mangle("main/binary-amd64/Packages.xz", Mangle::Replace(xz)));
    });
    // the .deb fields make the text differ in length too, so either check may fire
    assert!(
        matches!(
            &e,
            RepoError::HashMismatch { url, .. } | RepoError::SizeMismatch { url, .. }
                if url.ends_with("(decompressed)")
        ),
        "{e:?}"
    );
}

#[test]
fn failure_in_a_later_pocket_keeps_that_pocket_as_it_was() {
    let fx = standard_with(|s| s);
    fx.update().expect("first update");
    let before = fx.loaded();
    let state = fx
        .cache
        .suite_state(&fx.server.url(), "fixture-security")
        .expect("state");
    fx.publish(&security_suite().valid_until(now() - hours(1)));
    let e = fx.update().expect_err("expired");
    assert!(
        matches!(&e, RepoError::Expired { url, .. } if url.contains("fixture-security")),
        "{e:?}"
    );
    let after = fx
        .cache
        .suite_state(&fx.server.url(), "fixture-security")
        .expect("state");
    assert_eq!(after.fetched_at, state.fetched_at);
    assert_eq!(after.indices, state.indices);
    assert_eq!(fx.loaded(), before);
}

#[test]
fn missing_component_is_an_error_except_in_the_security_pocket() {
    let mut fx = Fx::new(POCKETS);
    fx.components = vec!["main".into(), "contrib".into()];
    let with_contrib = |s: Suite| s.components(&["main", "contrib"]);
    fx.publish(&with_contrib(release_suite()));
    fx.publish(&with_contrib(updates_suite()));
    fx.publish(&security_suite()); // no contrib: tolerated
    fx.update().expect("update");
    let loaded = fx.loaded();
    assert_eq!(loaded.len(), 5, "{:?}", loaded.keys());
    fx.publish(&updates_suite()); // now the updates pocket lacks contrib
    let e = fx.update().expect_err("missing contrib");
    assert_eq!(fx.loaded(), loaded);
    assert!(
        matches!(&e, RepoError::MissingIndex { suite, component, arch }
            if suite == "fixture-updates" && component == "contrib" && arch == "amd64"),
        "{e:?}"
    );
}

#[test]
fn unchanged_release_downloads_no_index_and_a_change_fetches_only_that_index() {
    let fx = standard_with(|s| s);
    fx.update().expect("first update");
    fx.server.reset_counts();
    // republishing re-signs (new InRelease bytes, new Date) but the indices are the same
    for s in standard_suites() {
        fx.publish(&s);
    }
    let r = fx.update().expect("second update");
    assert_eq!(
        (r.indices_fetched, r.indices_unchanged, r.bytes_fetched),
        (0, 3, 0)
    );
    assert_eq!(fx.server.requests("/Packages"), 0, "{:#?}", fx.server.log());
    assert_eq!(fx.server.requests("/InRelease"), 3);
    // change one suite only
    fx.server.reset_counts();
    let old_files: Vec<_> = fx.tree().into_keys().collect();
    fx.publish(&updates_suite().package("main", pkg("brand-new", "0.1")));
    let r = fx.update().expect("third update");
    assert_eq!((r.indices_fetched, r.indices_unchanged), (1, 2));
    assert_eq!(fx.server.requests("/Packages"), 1, "{:#?}", fx.server.log());
    assert_eq!(
        fx.server
            .requests_exact(&format!("/dists/fixture-updates{XZ}")),
        1
    );
    let u = fx.universe();
    assert_eq!(
        u.candidate("brand-new", "amd64", None).map(|c| c.version),
        Some("0.1")
    );
    // the superseded index files were removed
    let new_files: Vec<_> = fx.tree().into_keys().collect();
    assert_eq!(old_files.len(), new_files.len(), "{new_files:?}");
}

#[test]
fn transient_failures_are_retried() {
    let fx = standard_with(|s| s);
    fx.server
        .fail("/dists/fixture/InRelease", Fault::Status(500), 2);
    fx.server.fail(
        &format!("/dists/fixture-updates{XZ}"),
        Fault::Status(503),
        1,
    );
    fx.server.fail(
        &format!("/dists/fixture-security{XZ}"),
        Fault::DropMidBody,
        1,
    );
    fx.update().expect("update succeeds after retries");
    assert_eq!(fx.server.requests_exact("/dists/fixture/InRelease"), 3);
    assert_eq!(
        fx.server
            .requests_exact(&format!("/dists/fixture-updates{XZ}")),
        2
    );
    assert_eq!(
        fx.server
            .requests_exact(&format!("/dists/fixture-security{XZ}")),
        2
    );
    assert_standard_content(&fx);
}

#[test]
fn persistent_server_error_is_an_http_error() {
    let fx = standard_with(|s| s);
    fx.server
        .fail_always("/dists/fixture/InRelease", Fault::Status(500));
    let e = fx.update().expect_err("500");
    assert!(
        matches!(&e, RepoError::Http(HttpError::Status { status: 500, .. })),
        "{e:?}"
    );
    // retried, then given up
    assert_eq!(fx.server.requests_exact("/dists/fixture/InRelease"), 4);
}

#[test]
fn mirror_that_is_down_gives_a_clear_http_error() {
    let mut fx = standard_with(|s| s);
    let dead = unused_local_url().expect("port");
    fx.main_url = dead.clone();
    fx.security_url = dead.clone();
    let e = fx.update().expect_err("down");
    assert!(
        matches!(&e, RepoError::Http(HttpError::Network { .. })),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("{dead}/dists/fixture/InRelease")),
        "{msg}"
    );
    assert!(msg.contains("is the mirror up and reachable"), "{msg}");
    assert!(matches!(
        opaas_repo::store::load_cached(&fx.cache, &fx.target()),
        Err(RepoError::NotCached { .. })
    ));
}

#[test]
fn concurrent_updates_of_one_cache_both_succeed() {
    let fx = standard_with(|s| s);
    let results: Vec<_> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..2)
            .map(|_| {
                let fx = &fx;
                s.spawn(move || {
                    let http = opaas_repo::http::Http::new();
                    opaas_repo::store::update(
                        &fx.cache,
                        &fx.target(),
                        &http,
                        &opaas_repo::store::NoProgress,
                    )
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    let mut fetched = 0;
    for r in results {
        fetched += r.expect("concurrent update").indices_fetched;
    }
    // the lock serialises them: the second finds everything in place
    assert_eq!(fetched, 3);
    assert_standard_content(&fx);
    // a second cache handle on the same directory sees the same state
    let other = opaas_repo::store::Cache::new(fx.cache_dir());
    assert_eq!(
        opaas_repo::store::load_cached(&other, &fx.target())
            .expect("load")
            .len(),
        3
    );
}

#[test]
fn updating_another_architecture_keeps_the_first_ones_indices() {
    let mut fx = Fx::new(POCKETS);
    for s in standard_suites() {
        fx.publish(&s.architectures(&["amd64", "arm64"]));
    }
    fx.arches = vec!["arm64".into()];
    let r = fx.update().expect("arm64");
    assert_eq!(r.indices_fetched, 3);
    fx.arches = vec!["amd64".into()];
    let r = fx.update().expect("amd64");
    assert_eq!(r.indices_fetched, 3);
    fx.arches = vec!["arm64".into(), "amd64".into()];
    let r = fx.update().expect("both");
    assert_eq!((r.indices_fetched, r.indices_unchanged), (0, 6));
    assert_eq!(fx.loaded().len(), 6);
    // a change to the suite drops the other architecture's now-stale index from the state
    fx.arches = vec!["amd64".into()];
    fx.publish(
        &updates_suite()
            .architectures(&["amd64", "arm64"])
            .package("main", Package::new("new-all", "1", "all")),
    );
    fx.update().expect("amd64 again");
    fx.arches = vec!["arm64".into()];
    assert!(matches!(
        opaas_repo::store::load_cached(&fx.cache, &fx.target()),
        Err(RepoError::NotCached { .. })
    ));
}

#[test]
fn unsigned_repository_is_refused() {
    let e = trust_failure(|fx| fx.publish(&release_suite().signing(Signing::Unsigned)));
    // No InRelease and no Release.gpg: a trust failure (CLI exit 4), not a network one.
    assert!(matches!(e, RepoError::Signature { .. }), "{e:?}");
    assert!(e.to_string().contains("not signed"), "{e}");
}
