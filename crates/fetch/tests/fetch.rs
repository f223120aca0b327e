//! Hermetic download tests against testkit's fault-injecting server on 127.0.0.1.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::*;
use opaas_fetch::{fetch_all, Cas, FetchError, Fetcher, Item, NoProgress, Options};
use opaas_testkit::{unused_local_url, Fault};

#[test]
fn twenty_files_in_parallel_then_a_second_run_downloads_nothing() {
    let fx = Fixture::new(20);
    let items = fx.items();
    let total: u64 = fx.files.iter().map(|f| f.size()).sum();
    let rec = Recorder::default();
    let t = Instant::now();
    let got = fetch_all(&fx.cas(), &items, &opts(), &rec).expect("fetch");
    eprintln!("20 files, {total} bytes in {:?}", t.elapsed());
    assert_eq!(got.downloads, 20);
    assert_eq!(got.cache_hits, 0);
    assert_eq!(got.downloaded_bytes, total);
    assert_eq!(got.paths.len(), 20);
    for (p, f) in got.paths.iter().zip(&fx.files) {
        assert_eq!(p, &fx.cas().path(&f.sha));
        assert_eq!(fx.server.requests_exact(&f.rel), 1, "{}", f.rel);
    }
    fx.assert_all_cached();
    assert_eq!(leftovers(&fx.cas()), Vec::<std::path::PathBuf>::new());
    assert_eq!(fx.cas().total_size().expect("size"), total);
    assert_eq!(*rec.start.lock().expect("lock"), Some((20, total)));
    assert_eq!(rec.bytes.load(Ordering::SeqCst), total);
    assert_eq!(rec.done.lock().expect("lock").len(), 20);
    assert!(rec.done.lock().expect("lock").iter().all(|(_, c)| !c));

    // second run: all hits, no request at all
    let before = fx.server.log().len();
    let rec = Recorder::default();
    let again = fetch_all(&fx.cas(), &items, &opts(), &rec).expect("fetch again");
    assert_eq!(again.downloaded_bytes, 0);
    assert_eq!(again.downloads, 0);
    assert_eq!(again.cache_hits, 20);
    assert_eq!(again.paths, got.paths);
    assert_eq!(fx.server.log().len(), before);
    assert_eq!(*rec.start.lock().expect("lock"), Some((20, 0)));
    assert!(rec.done.lock().expect("lock").iter().all(|(_, c)| *c));
}

#[test]
fn connection_dropped_mid_body_is_resumed_with_range() {
    let fx = Fixture::with_sizes(1, |_| 300_000);
    let f = &fx.files[0];
    fx.server.fail(&f.rel, Fault::DropMidBody, 1);
    let got = fetch_all(&fx.cas(), &fx.items(), &opts(), &NoProgress).expect("fetch");
    fx.assert_all_cached();
    let log = fx.server.log();
    assert_eq!(
        log,
        vec![
            format!("GET {} -> 200 (dropped mid-body)", f.rel),
            format!("GET {} -> 206", f.rel),
        ]
    );
    // half, then the other half: nothing twice
    assert_eq!(got.downloaded_bytes, f.size());
    assert!(leftovers(&fx.cas()).is_empty());
}

#[test]
fn server_errors_then_success() {
    let fx = Fixture::new(3);
    fx.server.fail(&fx.files[0].rel, Fault::Status(500), 2);
    fx.server.fail(&fx.files[1].rel, Fault::Status(503), 1);
    fx.server.fail(&fx.files[2].rel, Fault::Status(429), 1);
    let rec = Recorder::default();
    let got = fetch_all(&fx.cas(), &fx.items(), &opts(), &rec).expect("fetch");
    assert_eq!(got.downloads, 3);
    fx.assert_all_cached();
    assert_eq!(fx.server.requests_exact(&fx.files[0].rel), 3);
    assert_eq!(fx.server.requests_exact(&fx.files[1].rel), 2);
    assert_eq!(fx.server.requests_exact(&fx.files[2].rel), 2);
    let msgs = rec.messages.lock().expect("lock");
    assert!(
        msgs.iter()
            .any(|m| m.contains("HTTP 500") && m.contains("retry")),
        "{msgs:?}"
    );
}

#[test]
fn persistent_5xx_exhausts_retries() {
    let fx = Fixture::new(1);
    fx.server.fail_always(&fx.files[0].rel, Fault::Status(502));
    let o = Options {
        retries: 2,
        ..opts()
    };
    let err = fetch_all(&fx.cas(), &fx.items(), &o, &NoProgress).expect_err("fails");
    assert!(
        matches!(&err, FetchError::Http { status: 502, url } if url.ends_with(&fx.files[0].rel)),
        "{err:?}"
    );
    assert!(err.is_network());
    assert_eq!(fx.server.requests_exact(&fx.files[0].rel), 3);
}

#[test]
fn not_found_on_the_first_mirror_fails_over_to_the_second() {
    let fx = Fixture::new(2);
    let empty = tempfile::tempdir().expect("tmp");
    let first = opaas_testkit::Server::start(empty.path()).expect("server");
    let items: Vec<Item> = fx
        .files
        .iter()
        .map(|f| f.item(&[&first.url(), &fx.server.url()]))
        .collect();
    let rec = Recorder::default();
    let got = fetch_all(&fx.cas(), &items, &opts(), &rec).expect("fetch");
    assert_eq!(got.downloads, 2);
    fx.assert_all_cached();
    for f in &fx.files {
        // 404 is not retried
        assert_eq!(first.requests_exact(&f.rel), 1);
        assert_eq!(fx.server.requests_exact(&f.rel), 1);
    }
    let msgs = rec.messages.lock().expect("lock");
    assert!(
        msgs.iter()
            .any(|m| m.contains("HTTP 404") && m.contains("next mirror")),
        "{msgs:?}"
    );
}

#[test]
fn not_found_everywhere_names_every_mirror() {
    let fx = Fixture::new(1);
    let empty = tempfile::tempdir().expect("tmp");
    let other = opaas_testkit::Server::start(empty.path()).expect("server");
    fx.server.fail_always(&fx.files[0].rel, Fault::NotFound);
    let item = fx.files[0].item(&[&other.url(), &fx.server.url()]);
    let err =
        fetch_all(&fx.cas(), std::slice::from_ref(&item), &opts(), &NoProgress).expect_err("fails");
    let FetchError::AllMirrorsFailed { tried, last, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(tried, &item.urls);
    assert!(last.contains("404"), "{last}");
    let text = err.to_string();
    for u in &item.urls {
        assert!(text.contains(u.as_str()), "{text}");
    }
    assert!(err.is_network());
    assert!(leftovers(&fx.cas()).is_empty());
}

#[test]
fn wrong_hash_is_a_hash_mismatch_after_retries_and_nothing_is_cached() {
    let fx = Fixture::new(1);
    let f = &fx.files[0];
    fx.server.fail_always(&f.rel, Fault::Corrupt);
    let o = Options {
        retries: 2,
        ..opts()
    };
    let err = fetch_all(&fx.cas(), &fx.items(), &o, &NoProgress).expect_err("fails");
    match &err {
        FetchError::HashMismatch {
            name,
            url,
            expected,
            got,
        } => {
            assert_eq!(name, &f.name());
            assert!(url.ends_with(&f.rel));
            assert_eq!(expected, &f.sha);
            assert_ne!(got, &f.sha);
        }
        e => panic!("{e:?}"),
    }
    assert!(err.is_integrity());
    assert_eq!(fx.server.requests_exact(&f.rel), 3);
    assert!(!fx.cas().path(&f.sha).exists());
    assert!(!fx.cas().contains(&f.sha, f.size()));
    assert!(
        leftovers(&fx.cas()).is_empty(),
        "{:?}",
        leftovers(&fx.cas())
    );
    assert!(!list_files(fx.cas().root())
        .iter()
        .any(|p| p.extension().is_some_and(|e| e == "deb")));
}

#[test]
fn corrupt_once_then_good() {
    let fx = Fixture::new(1);
    fx.server.fail(&fx.files[0].rel, Fault::Corrupt, 1);
    let got = fetch_all(&fx.cas(), &fx.items(), &opts(), &NoProgress).expect("fetch");
    assert_eq!(got.downloaded_bytes, 2 * fx.files[0].size());
    fx.assert_all_cached();
}

#[test]
fn truncated_body_is_retried() {
    let fx = Fixture::new(2);
    fx.server.fail(&fx.files[0].rel, Fault::Truncate, 1);
    // always truncated: a size mismatch in the end
    fx.server.fail_always(&fx.files[1].rel, Fault::Truncate);
    let o = Options {
        retries: 2,
        ..opts()
    };
    let err = fetch_all(&fx.cas(), &fx.items(), &o, &NoProgress).expect_err("one fails");
    match &err {
        FetchError::SizeMismatch {
            expected, got, url, ..
        } => {
            assert_eq!(*expected, fx.files[1].size());
            assert_eq!(*got, fx.files[1].size() / 2);
            assert!(url.ends_with(&fx.files[1].rel));
        }
        e => panic!("{e:?}"),
    }
    assert!(err.is_integrity());
    assert_eq!(fx.server.requests_exact(&fx.files[0].rel), 2);
    assert_eq!(fx.server.requests_exact(&fx.files[1].rel), 3);
    // the good one is in the store, the bad one left nothing
    assert!(fx.cas().contains(&fx.files[0].sha, fx.files[0].size()));
    assert_eq!(
        std::fs::read(fx.cas().path(&fx.files[0].sha)).expect("read"),
        fx.files[0].bytes
    );
    assert!(leftovers(&fx.cas()).is_empty());
    assert!(!fx.cas().path(&fx.files[1].sha).exists());
}

#[test]
fn two_threads_fetching_the_same_set_download_each_file_once() {
    let fx = Fixture::new(12);
    // slow the first answer for each file so the two runs overlap
    for f in &fx.files {
        fx.server
            .fail(&f.rel, Fault::Delay(Duration::from_millis(60)), 1);
    }
    let items = fx.items();
    let barrier = Barrier::new(2);
    let o = Options { jobs: 4, ..opts() };
    let (a, b) = std::thread::scope(|s| {
        let run = || {
            barrier.wait();
            fetch_all(&fx.cas(), &items, &o, &NoProgress).expect("fetch")
        };
        let a = s.spawn(run);
        let b = s.spawn(run);
        (a.join().expect("a"), b.join().expect("b"))
    });
    eprintln!(
        "thread a: {} downloads, {} hits; thread b: {} downloads, {} hits",
        a.downloads, a.cache_hits, b.downloads, b.cache_hits
    );
    for f in &fx.files {
        assert_eq!(fx.server.requests_exact(&f.rel), 1, "{}", f.rel);
    }
    assert_eq!(a.downloads + b.downloads, 12);
    assert_eq!(a.cache_hits + b.cache_hits, 12);
    assert_eq!(a.paths, b.paths);
    fx.assert_all_cached();
    assert!(leftovers(&fx.cas()).is_empty());
}

#[test]
fn duplicates_within_one_call_are_fetched_once() {
    let fx = Fixture::new(2);
    let mut items = fx.items();
    items.push(items[0].clone());
    let mut upper = items[0].clone();
    upper.sha256 = upper.sha256.to_ascii_uppercase();
    upper.name = "alias.deb".into();
    items.push(upper);
    let got = fetch_all(&fx.cas(), &items, &opts(), &NoProgress).expect("fetch");
    assert_eq!(got.paths.len(), 4);
    assert_eq!(got.paths[0], got.paths[2]);
    assert_eq!(got.paths[0], got.paths[3]);
    assert_eq!(got.downloads, 2);
    assert_eq!(fx.server.requests_exact(&fx.files[0].rel), 1);

    // the same hash with two sizes is refused before anything is fetched
    let mut bad = items[0].clone();
    bad.size += 1;
    let err =
        fetch_all(&fx.cas(), &[items[0].clone(), bad], &opts(), &NoProgress).expect_err("invalid");
    assert!(matches!(err, FetchError::InvalidItem { .. }), "{err:?}");
}

/// Writes `bytes` as the `.part` of `sha`, as a crashed run would have left it.
fn plant_part(cas: &Cas, sha: &str, bytes: &[u8]) {
    let p = cas.part_path(sha);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(&p, bytes).expect("write part");
}

#[test]
fn a_part_left_by_a_crash_is_resumed() {
    let fx = Fixture::with_sizes(2, |_| 400_000);
    let (f, g) = (&fx.files[0], &fx.files[1]);
    let cas = fx.cas();
    let prefix = 150_000;
    plant_part(&cas, &f.sha, &f.bytes[..prefix]);
    // a complete .part that was never renamed needs no request at all
    plant_part(&cas, &g.sha, &g.bytes);
    let rec = Recorder::default();
    let got = fetch_all(&cas, &fx.items(), &opts(), &rec).expect("fetch");
    assert_eq!(fx.server.log(), vec![format!("GET {} -> 206", f.rel)]);
    assert_eq!(got.downloaded_bytes, f.size() - prefix as u64);
    assert_eq!(got.downloads, 2);
    assert_eq!(rec.bytes.load(Ordering::SeqCst), f.size() + g.size());
    fx.assert_all_cached();
    assert!(leftovers(&cas).is_empty());
}

#[test]
fn a_bad_part_is_thrown_away_and_fetched_again_from_scratch() {
    let fx = Fixture::with_sizes(2, |_| 100_000);
    let (f, g) = (&fx.files[0], &fx.files[1]);
    let cas = fx.cas();
    // wrong prefix: the resumed file fails verification, then one fresh download
    plant_part(&cas, &f.sha, &random_bytes(99, 30_000));
    // longer than the file can be: dropped without asking
    plant_part(&cas, &g.sha, &random_bytes(98, 100_001));
    let got = fetch_all(&cas, &fx.items(), &opts(), &NoProgress).expect("fetch");
    assert_eq!(
        fx.server
            .log()
            .iter()
            .filter(|l| l.contains(&f.rel))
            .collect::<Vec<_>>(),
        vec![
            &format!("GET {} -> 206", f.rel),
            &format!("GET {} -> 200", f.rel)
        ]
    );
    assert_eq!(fx.server.requests_exact(&g.rel), 1);
    assert_eq!(got.downloaded_bytes, 70_000 + 100_000 + 100_000);
    fx.assert_all_cached();
}

/// A server that ignores `Range` (always 200 with the whole file) and records request heads.
fn range_ignoring_server(body: Vec<u8>) -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", l.local_addr().expect("addr"));
    let heads = Arc::new(std::sync::Mutex::new(Vec::new()));
    let h = Arc::clone(&heads);
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            let mut head = Vec::new();
            let mut b = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                match s.read(&mut b) {
                    Ok(1) => head.push(b[0]),
                    _ => break,
                }
            }
            h.lock()
                .expect("lock")
                .push(String::from_utf8_lossy(&head).into_owned());
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(&body);
        }
    });
    (url, heads)
}

#[test]
fn a_200_to_a_range_request_restarts_from_zero() {
    let body = random_bytes(5, 200_000);
    let sha = sha256_hex(&body);
    let (url, heads) = range_ignoring_server(body.clone());
    let cache = tempfile::tempdir().expect("tmp");
    let cas = Cas::new(cache.path());
    plant_part(&cas, &sha, &body[..50_000]);
    let item = Item {
        name: "x.deb".into(),
        urls: vec![format!("{url}/x.deb")],
        sha256: sha.clone(),
        size: body.len() as u64,
    };
    let got = fetch_all(&cas, &[item], &opts(), &NoProgress).expect("fetch");
    assert_eq!(got.downloaded_bytes, 200_000);
    assert_eq!(std::fs::read(cas.path(&sha)).expect("read"), body);
    let heads = heads.lock().expect("lock");
    assert_eq!(heads.len(), 1);
    assert!(
        heads[0]
            .to_ascii_lowercase()
            .contains("range: bytes=50000-"),
        "{}",
        heads[0]
    );
}

#[test]
fn a_dead_mirror_gives_an_error_naming_its_url() {
    let dead = format!(
        "{}/pool/main/x/x_1_all.deb",
        unused_local_url().expect("port")
    );
    let item = Item {
        name: "x_1_all.deb".into(),
        urls: vec![dead.clone()],
        sha256: "ab".repeat(32),
        size: 10,
    };
    let cache = tempfile::tempdir().expect("tmp");
    let o = Options {
        retries: 1,
        ..opts()
    };
    let t = Instant::now();
    let err = fetch_all(
        &Cas::new(cache.path()),
        std::slice::from_ref(&item),
        &o,
        &NoProgress,
    )
    .expect_err("dead");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert!(
        matches!(&err, FetchError::Network { url, .. } if *url == dead),
        "{err:?}"
    );
    assert!(err.to_string().contains(&dead), "{err}");
    assert!(err.is_network());

    // two dead mirrors: both named
    let dead2 = format!(
        "{}/pool/main/x/x_1_all.deb",
        unused_local_url().expect("port")
    );
    let two = Item {
        urls: vec![dead.clone(), dead2.clone()],
        ..item
    };
    let err = fetch_all(&Cas::new(cache.path()), &[two], &o, &NoProgress).expect_err("dead");
    let text = err.to_string();
    assert!(
        matches!(err, FetchError::AllMirrorsFailed { .. }),
        "{err:?}"
    );
    assert!(text.contains(&dead) && text.contains(&dead2), "{text}");
    assert!(err.is_network());
    let chain = std::error::Error::source(&err).map(|e| e.to_string());
    assert!(chain.is_some_and(|c| c.contains(&dead2)));
}

#[test]
fn slow_answer_times_out_and_is_retried() {
    let fx = Fixture::new(1);
    fx.server.fail(
        &fx.files[0].rel,
        Fault::Delay(Duration::from_millis(700)),
        1,
    );
    let o = Options {
        timeout: Duration::from_millis(200),
        ..opts()
    };
    let rec = Recorder::default();
    let t = Instant::now();
    fetch_all(&fx.cas(), &fx.items(), &o, &rec).expect("fetch");
    assert!(
        t.elapsed() < Duration::from_millis(650),
        "{:?}",
        t.elapsed()
    );
    fx.assert_all_cached();
    assert_eq!(fx.server.requests_exact(&fx.files[0].rel), 2);
    let msgs = rec.messages.lock().expect("lock");
    assert!(msgs.iter().any(|m| m.contains("retry 1/")), "{msgs:?}");
}

#[test]
fn file_urls_work_and_resume() {
    let mirror = tempfile::tempdir().expect("tmp");
    let files = write_files(mirror.path(), 3, 11, |i| 10_000 * (i + 1));
    let base = format!("file://{}", mirror.path().display());
    let items: Vec<Item> = files.iter().map(|f| f.item(&[&base])).collect();
    let cache = tempfile::tempdir().expect("tmp");
    let cas = Cas::new(cache.path());
    plant_part(&cas, &files[2].sha, &files[2].bytes[..12_345]);
    let got = fetch_all(&cas, &items, &opts(), &NoProgress).expect("fetch");
    assert_eq!(got.downloads, 3);
    assert_eq!(got.downloaded_bytes, 10_000 + 20_000 + 30_000 - 12_345);
    for f in &files {
        assert_eq!(std::fs::read(cas.path(&f.sha)).expect("read"), f.bytes);
    }
    // a missing local file fails over to the next mirror
    let more = write_files(mirror.path(), 1, 12, |_| 5_000);
    let nowhere = tempfile::tempdir().expect("tmp");
    let item = more[0].item(&[&format!("file://{}", nowhere.path().display()), &base]);
    let got = fetch_all(&cas, &[item], &opts(), &NoProgress).expect("fetch");
    assert_eq!(got.downloads, 1);
}

#[cfg(target_os = "linux")]
#[test]
fn disk_full_is_reported_and_the_part_removed() {
    // the .part is a symlink to /dev/full: every write fails with ENOSPC
    if !std::path::Path::new("/dev/full").exists() {
        eprintln!("skipped: no /dev/full");
        return;
    }
    let fx = Fixture::new(1);
    let f = &fx.files[0];
    let cas = fx.cas();
    let part = cas.part_path(&f.sha);
    std::fs::create_dir_all(part.parent().expect("parent")).expect("mkdir");
    std::os::unix::fs::symlink("/dev/full", &part).expect("symlink");
    let err = fetch_all(&cas, &fx.items(), &opts(), &NoProgress).expect_err("full");
    assert!(
        matches!(&err, FetchError::DiskFull { path } if *path == part),
        "{err:?}"
    );
    assert!(err.to_string().contains("no space left"), "{err}");
    assert!(std::fs::symlink_metadata(&part).is_err(), "the .part stays");
    assert!(!cas.path(&f.sha).exists());
    // not retried: one request
    assert_eq!(fx.server.requests_exact(&f.rel), 1);
}

#[test]
fn invalid_items_are_refused() {
    let cache = tempfile::tempdir().expect("tmp");
    let cas = Cas::new(cache.path());
    let bad_sha = Item {
        name: "x.deb".into(),
        urls: vec!["http://127.0.0.1:1/x.deb".into()],
        sha256: "../../etc/passwd".into(),
        size: 1,
    };
    let err =
        fetch_all(&cas, std::slice::from_ref(&bad_sha), &opts(), &NoProgress).expect_err("bad");
    assert!(matches!(err, FetchError::InvalidItem { .. }), "{err:?}");
    let no_url = Item {
        urls: vec![],
        sha256: "00".repeat(32),
        ..bad_sha
    };
    let err = fetch_all(&cas, &[no_url], &opts(), &NoProgress).expect_err("bad");
    assert!(matches!(err, FetchError::InvalidItem { .. }), "{err:?}");
    // nothing to do is fine
    let got = fetch_all(&cas, &[], &opts(), &NoProgress).expect("empty");
    assert!(got.paths.is_empty());
}

#[test]
fn one_fetcher_serves_several_calls() {
    let fx = Fixture::new(4);
    let fetcher = Fetcher::new(opts());
    let items = fx.items();
    let a = fetcher
        .fetch_all(&fx.cas(), &items[..2], &NoProgress)
        .expect("a");
    let b = fetcher
        .fetch_all(&fx.cas(), &items, &NoProgress)
        .expect("b");
    assert_eq!((a.downloads, b.downloads, b.cache_hits), (2, 2, 2));
    fx.assert_all_cached();
}

/// The manifest [`fetch_manifest`] reads: `<cache dir>` then `<sha> <size> <url>` lines.
fn write_manifest(cache: &std::path::Path, items: &[Item], to: &std::path::Path) {
    let mut manifest = format!("{}\n", cache.display());
    for it in items {
        manifest.push_str(&format!("{} {} {}\n", it.sha256, it.size, it.urls[0]));
    }
    std::fs::write(to, manifest).expect("manifest");
}

/// Fetches what a manifest lists (3 parallel downloads) and asserts that every item ends up in
/// the cache with its size and SHA-256, each counted once as a download or a cache hit.
fn fetch_manifest(manifest: &std::path::Path) -> opaas_fetch::Fetched {
    let text = std::fs::read_to_string(manifest).expect("manifest");
    let mut lines = text.lines();
    let cas = Cas::new(lines.next().expect("cache line"));
    let items: Vec<Item> = lines
        .map(|l| {
            let mut w = l.split(' ');
            let sha = w.next().expect("sha").to_string();
            let size = w.next().expect("size").parse().expect("size");
            let url = w.next().expect("url").to_string();
            Item {
                name: url.rsplit('/').next().unwrap_or_default().to_string(),
                urls: vec![url],
                sha256: sha,
                size,
            }
        })
        .collect();
    assert!(!items.is_empty(), "the manifest lists nothing");
    let o = Options { jobs: 3, ..opts() };
    let got = fetch_all(&cas, &items, &o, &NoProgress).expect("child fetch");
    assert_eq!(got.downloads + got.cache_hits, items.len(), "{got:?}");
    for it in &items {
        assert!(cas.contains(&it.sha256, it.size), "{} not cached", it.name);
        let bytes = std::fs::read(cas.path(&it.sha256)).expect("cached file");
        assert_eq!(sha256_hex(&bytes), it.sha256, "{}", it.name);
    }
    got
}

/// The child half of [`two_processes_share_the_cache`] (the manifest named in
/// `OPAAS_FETCH_TEST_CHILD`). Run on its own, it fetches a fixture of its own into an empty
/// cache, so it checks something either way.
#[test]
fn child_process_fetch() {
    let own;
    let manifest = match std::env::var("OPAAS_FETCH_TEST_CHILD") {
        Ok(m) => std::path::PathBuf::from(m),
        Err(_) => {
            own = Fixture::new(4);
            let m = own.cache.path().join("manifest");
            write_manifest(own.cache.path(), &own.items(), &m);
            m
        }
    };
    let got = fetch_manifest(&manifest);
    println!(
        "child: {} downloads, {} hits",
        got.downloads, got.cache_hits
    );
}

#[test]
fn two_processes_share_the_cache() {
    let fx = Fixture::new(10);
    for f in &fx.files {
        fx.server
            .fail(&f.rel, Fault::Delay(Duration::from_millis(80)), 1);
    }
    let items = fx.items();
    let mpath = fx.cache.path().join("manifest");
    write_manifest(fx.cache.path(), &items, &mpath);
    let exe = std::env::current_exe().expect("exe");
    let child = std::process::Command::new(exe)
        .args(["child_process_fetch", "--exact", "--nocapture"])
        .env("OPAAS_FETCH_TEST_CHILD", &mpath)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn child");
    let o = Options { jobs: 3, ..opts() };
    let mine = fetch_all(&fx.cas(), &items, &o, &NoProgress).expect("fetch");
    let out = child.wait_with_output().expect("child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("child: "), "{stdout}");
    eprintln!(
        "parent: {} downloads, {} hits; {}",
        mine.downloads,
        mine.cache_hits,
        stdout
            .lines()
            .find(|l| l.starts_with("child:"))
            .unwrap_or("")
    );
    for f in &fx.files {
        assert_eq!(fx.server.requests_exact(&f.rel), 1, "{}", f.rel);
    }
    fx.assert_all_cached();
    assert!(leftovers(&fx.cas()).is_empty());
}
