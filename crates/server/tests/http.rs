//! The API against a real listening server on 127.0.0.1 (fixture archive served by the testkit
//! server): a job's life to a verified bundle, the event stream, cancel, auth, and 50 jobs at
//! once over overlapping packages.

mod common;

use common::{Client, Running};
use opaas_testkit::Fault;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn submit(c: &Client, body: Value) -> String {
    let r = c.post("/api/jobs", &body);
    assert_eq!(r.status, 202, "{}", r.text());
    let j = r.json();
    assert_eq!(j["state"], "queued");
    assert_eq!(
        r.header("location"),
        Some(format!("/api/jobs/{}", j["id"].as_str().expect("id")).as_str())
    );
    j["id"].as_str().expect("id").to_string()
}

#[test]
fn job_life_cycle_to_a_verified_bundle() {
    let fx = common::fixture();
    let data = tempfile::tempdir().expect("data");
    let srv = Running::start(common::config(&fx, data.path()));
    let c = Client::new(&srv.url);
    let id = submit(
        &c,
        json!({"distro":"debian-12","arch":"amd64","packages":["hello"],"baseline":"none","format":"tar.gz"}),
    );
    let j = c.wait(&id, Duration::from_secs(120));
    assert_eq!(j["state"], "done", "{j}");
    assert_eq!(j["progress"]["phase"], "done");
    assert_eq!(j["progress"]["packages_done"], 3);
    assert!(j["started_at"].is_string() && j["finished_at"].is_string());
    let b = &j["bundle"];
    let name = b["file_name"].as_str().expect("name").to_string();
    assert!(
        name.starts_with("offline_pkg_debian-12_amd64_") && name.ends_with(".tar.gz"),
        "{name}"
    );
    assert_eq!(b["package_count"], 3);
    assert_eq!(b["expired"], false);
    // the download: whole, then a range
    let d = c.get(&format!("/api/jobs/{id}/bundle"));
    assert_eq!(d.status, 200);
    assert_eq!(
        d.header("content-disposition"),
        Some(format!("attachment; filename=\"{name}\"").as_str())
    );
    assert_eq!(d.header("content-type"), Some("application/gzip"));
    assert_eq!(d.body.len() as u64, b["size"].as_u64().expect("size"));
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&d.body))
    };
    assert_eq!(sha, b["sha256"].as_str().expect("sha"));
    let part = c.get_with(
        &format!("/api/jobs/{id}/bundle"),
        &[("Range", "bytes=10-19")],
    );
    assert_eq!(part.status, 206);
    assert_eq!(part.body, d.body[10..20].to_vec());
    assert!(part
        .header("content-range")
        .is_some_and(|r| r.starts_with("bytes 10-19/")));
    // the tarball is a good bundle
    let out = tempfile::tempdir().expect("out");
    let p = out.path().join(&name);
    std::fs::write(&p, &d.body).expect("write");
    let rep = opaas_bundle::verify(&p).expect("verify");
    assert!(rep.problems.is_empty(), "{:?}", rep.problems);
    assert_eq!(rep.packages, 3);
    // manifest, log
    let m = c.get(&format!("/api/jobs/{id}/manifest"));
    assert_eq!(m.status, 200);
    let m = m.json();
    assert_eq!(m["package_count"], 3);
    assert_eq!(m["distro"]["id"], "debian-12");
    // the SBOM: the bundle's own sbom.cdx.json, byte for byte
    let s = c.get(&format!("/api/jobs/{id}/sbom"));
    assert_eq!(s.status, 200);
    assert_eq!(
        s.header("content-type"),
        Some("application/vnd.cyclonedx+json; version=1.6")
    );
    let in_bundle = {
        let mut ar = opaas_bundle::open_archive(&p).expect("open");
        let mut found = None;
        for e in ar.entries().expect("entries") {
            let mut e = e.expect("entry");
            if e.path().expect("path").ends_with("sbom.cdx.json") {
                let mut b = Vec::new();
                std::io::Read::read_to_end(&mut e, &mut b).expect("read");
                found = Some(b);
            }
        }
        found.expect("sbom.cdx.json in the bundle")
    };
    assert_eq!(s.body, in_bundle);
    let sb = s.json();
    assert_eq!(sb["specVersion"], "1.6");
    assert_eq!(sb["components"].as_array().map(Vec::len), Some(3));
    let log = c.get(&format!("/api/jobs/{id}/log"));
    assert_eq!(
        log.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    let log = log.text();
    for want in [
        "queued: hello",
        "started (attempt 1",
        "resolved 3 packages",
        "fetched",
        "done: offline_pkg_",
    ] {
        assert!(log.contains(want), "log lacks {want:?}:\n{log}");
    }
    // a late subscriber gets the state, then the end, and the stream closes
    let ev = c.events(&id, "");
    let names: Vec<&str> = ev.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(names, ["state", "end"]);
    assert_eq!(ev[1].1["state"], "done");
    // list: newest first
    let id2 = submit(
        &c,
        json!({"distro":"debian-12","packages":["libhello1"],"baseline":"none"}),
    );
    c.wait(&id2, Duration::from_secs(60));
    let list = c.get("/api/jobs?page=1&per_page=1").json();
    assert_eq!(list["total"], 2);
    assert_eq!(list["items"][0]["id"], id2.as_str());
    assert_eq!(list["per_page"], 1);
    let list = c.get("/api/jobs?page=2&per_page=1").json();
    assert_eq!(list["items"][0]["id"], id.as_str());
    // metrics saw the builds
    let metrics = c.get("/metrics").text();
    assert!(
        metrics.contains("opaas_jobs{state=\"done\"} 2"),
        "{metrics}"
    );
    assert!(metrics.contains("opaas_downloads_total 3"), "{metrics}");
    assert!(metrics.contains("opaas_cache_hits_total 1"), "{metrics}");
    assert!(metrics.contains("opaas_job_duration_seconds_count{outcome=\"done\"} 2"));
    // delete
    assert_eq!(c.delete(&format!("/api/jobs/{id}")).status, 204);
    assert_eq!(c.get(&format!("/api/jobs/{id}")).status, 404);
    assert_eq!(c.get(&format!("/api/jobs/{id}/bundle")).status, 404);
    assert!(!data.path().join("bundles").join(&id).exists());
    srv.stop();
}

#[test]
fn event_stream_carries_state_progress_log_and_end() {
    let fx = common::fixture();
    fx.server
        .fail_always("/pool/", Fault::Delay(Duration::from_millis(300)));
    let data = tempfile::tempdir().expect("data");
    let mut cfg = common::config(&fx, data.path());
    cfg.download_jobs = 1;
    let srv = Running::start(cfg);
    let c = Client::new(&srv.url);
    let id = submit(
        &c,
        json!({"distro":"debian-12","packages":["tool-b","tool-d"],"baseline":"none"}),
    );
    let ev = c.events(&id, "");
    let names: Vec<&str> = ev.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(names.first(), Some(&"state"), "{names:?}");
    assert_eq!(names.last(), Some(&"end"), "{names:?}");
    for want in ["progress", "log"] {
        assert!(names.contains(&want), "no {want} event: {names:?}");
    }
    let states: Vec<&str> = ev
        .iter()
        .filter(|(e, _)| e == "state")
        .filter_map(|(_, j)| j["state"].as_str())
        .collect();
    for s in ["downloading", "packing"] {
        assert!(states.contains(&s), "no {s} state: {states:?}");
    }
    let last_progress = ev
        .iter()
        .rev()
        .find(|(e, _)| e == "progress")
        .map(|(_, p)| p.clone())
        .expect("progress");
    assert_eq!(last_progress["packages_total"], 4, "{last_progress}");
    assert_eq!(last_progress["packages_done"], 4, "{last_progress}");
    assert!(last_progress["bytes_done"].as_u64().expect("bytes") > 0);
    let logs: Vec<&str> = ev
        .iter()
        .filter(|(e, _)| e == "log")
        .filter_map(|(_, l)| l["line"].as_str())
        .collect();
    assert!(logs.iter().any(|l| l.contains("fetched")), "{logs:?}");
    assert!(ev
        .iter()
        .filter(|(e, _)| e == "log")
        .all(|(_, l)| l["n"].as_u64().is_some()));
    let end = &ev.last().expect("end").1;
    assert_eq!(end["state"], "done");
    assert!(end["bundle"]["file_name"].is_string());
    srv.stop();
}

#[test]
fn cancel_queued_and_running_jobs() {
    let fx = common::fixture();
    fx.server
        .fail_always("/pool/", Fault::Delay(Duration::from_millis(1500)));
    let data = tempfile::tempdir().expect("data");
    let mut cfg = common::config(&fx, data.path());
    cfg.workers = 1;
    cfg.download_jobs = 1;
    let srv = Running::start(cfg);
    let c = Client::new(&srv.url);
    let running = submit(
        &c,
        json!({"distro":"debian-12","packages":["tool-b"],"baseline":"none"}),
    );
    let queued = submit(
        &c,
        json!({"distro":"debian-12","packages":["tool-c"],"baseline":"none"}),
    );
    let t0 = Instant::now();
    while c.get(&format!("/api/jobs/{running}")).json()["state"] != "downloading" {
        assert!(t0.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(20));
    }
    // submitting for a target whose indices are not cached does not fetch them (the worker
    // does, later): the submission stays fast
    let dists = fx.server.requests("/dists/");
    let other = submit(
        &c,
        json!({"distro":"debian-12","arch":"arm64","packages":["hello"]}),
    );
    assert_eq!(fx.server.requests("/dists/"), dists);
    assert_eq!(
        c.post(&format!("/api/jobs/{other}/cancel"), &json!({}))
            .json()["state"],
        "cancelled"
    );
    // queued: cancelled at once
    let j = c
        .post(&format!("/api/jobs/{queued}/cancel"), &json!({}))
        .json();
    assert_eq!(j["state"], "cancelled", "{j}");
    assert!(j["finished_at"].is_string());
    // running: cancelled now, the worker drops its build when the engine checks
    let r = c.post(&format!("/api/jobs/{running}/cancel"), &json!({}));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["state"], "cancelled");
    // cancelling again changes nothing
    assert_eq!(
        c.post(&format!("/api/jobs/{running}/cancel"), &json!({}))
            .json()["state"],
        "cancelled"
    );
    let ev = c.events(&running, "");
    assert_eq!(ev.last().map(|(e, _)| e.as_str()), Some("end"));
    fx.server.clear_faults();
    // the worker comes free; the cancelled jobs stay cancelled, without a bundle
    let next = submit(
        &c,
        json!({"distro":"debian-12","packages":["hello"],"baseline":"none"}),
    );
    assert_eq!(c.wait(&next, Duration::from_secs(120))["state"], "done");
    for id in [&running, &queued] {
        let j = c.get(&format!("/api/jobs/{id}")).json();
        assert_eq!(j["state"], "cancelled");
        assert!(j["bundle"].is_null());
        assert!(!data.path().join("bundles").join(id).exists());
        assert!(c
            .get(&format!("/api/jobs/{id}/log"))
            .text()
            .contains("cancelled by the user"));
    }
    assert!(common::files_under(&data.path().join("tmp")).is_empty());
    // deleting a running job cancels it first
    fx.server
        .fail_always("/pool/", Fault::Delay(Duration::from_millis(1500)));
    let del = submit(
        &c,
        json!({"distro":"debian-12","packages":["tool-e"],"baseline":"none"}),
    );
    let t0 = Instant::now();
    while c.get(&format!("/api/jobs/{del}")).json()["state"] == "queued" {
        assert!(t0.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(c.delete(&format!("/api/jobs/{del}")).status, 204);
    assert_eq!(c.get(&format!("/api/jobs/{del}")).status, 404);
    fx.server.clear_faults();
    let after = submit(
        &c,
        json!({"distro":"debian-12","packages":["libhello1"],"baseline":"none"}),
    );
    assert_eq!(c.wait(&after, Duration::from_secs(120))["state"], "done");
    assert!(!data.path().join("bundles").join(&del).exists());
    assert!(!data.path().join("jobs").join(format!("{del}.log")).exists());
    srv.stop();
}

#[test]
fn auth_on_and_off() {
    let fx = common::fixture();
    let data = tempfile::tempdir().expect("data");
    let mut cfg = common::config(&fx, data.path());
    cfg.token = Some("s3cret-token".into());
    let srv = Running::start(cfg);
    let mut c = Client::new(&srv.url);
    for path in [
        "/api/distros",
        "/api/jobs",
        "/api/openapi.json",
        "/api/nope",
    ] {
        let r = c.get(path);
        assert_eq!(r.status, 401, "{path}");
        assert_eq!(r.json()["error"]["code"], "unauthorized");
        assert!(r.header("www-authenticate").is_some());
    }
    assert_eq!(
        c.post(
            "/api/jobs",
            &json!({"distro":"debian-12","packages":["hello"]})
        )
        .status,
        401
    );
    // /healthz and the UI stay open; /metrics needs the token unless --metrics-public (issue 16)
    assert_eq!(c.get("/healthz").status, 200);
    assert_eq!(c.get("/metrics").status, 401);
    assert_eq!(c.get("/").status, 200);
    // a wrong token is refused too
    c.token = Some("wrong".into());
    assert_eq!(c.get("/api/distros").status, 401);
    c.token = Some("s3cret-token".into());
    assert_eq!(c.get("/api/distros").status, 200);
    assert_eq!(c.get("/metrics").status, 200);
    let id = submit(
        &c,
        json!({"distro":"debian-12","packages":["hello"],"baseline":"none"}),
    );
    assert_eq!(c.wait(&id, Duration::from_secs(120))["state"], "done");
    // ?token= works for the event stream and the download only
    let anon = Client::new(&srv.url);
    assert_eq!(
        anon.get(&format!("/api/jobs/{id}/bundle?token=s3cret-token"))
            .status,
        200
    );
    assert_eq!(anon.get(&format!("/api/jobs/{id}/bundle")).status, 401);
    assert_eq!(
        anon.get(&format!("/api/jobs/{id}/bundle?token=nope"))
            .status,
        401
    );
    let ev = anon.events(&id, "?token=s3cret-token");
    assert_eq!(ev.last().map(|(e, _)| e.as_str()), Some("end"));
    assert_eq!(
        anon.get(&format!("/api/jobs/{id}?token=s3cret-token"))
            .status,
        401
    );
    srv.stop();
    // without a token everything is open
    let data2 = tempfile::tempdir().expect("data");
    let srv = Running::start(common::config(&fx, data2.path()));
    let c = Client::new(&srv.url);
    assert_eq!(c.get("/api/distros").status, 200);
    assert_eq!(c.get("/api/jobs").status, 200);
    srv.stop();
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// 50 jobs at once over overlapping packages, plus clients polling: all finish, and each .deb
/// is fetched from the mirror exactly once. Prints throughput and latencies (bounded loops).
#[test]
fn fifty_jobs_at_once_fetch_each_deb_once() {
    let fx = common::fixture();
    let data = tempfile::tempdir().expect("data");
    let srv = Running::start(common::config(&fx, data.path()));
    // warm the indices so that the measurement is about jobs, not the first index fetch
    let c = Client::new(&srv.url);
    assert_eq!(c.get("/api/packages?distro=debian-12&q=tool").status, 200);
    let n = 50;
    let t0 = Instant::now();
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let url = srv.url.clone();
            std::thread::spawn(move || {
                let c = Client::new(&url);
                let t = common::TOOLS;
                let mut pkgs = vec![t[i % t.len()], t[(i + 1) % t.len()]];
                if i % 3 == 0 {
                    pkgs.push("hello");
                }
                let s = Instant::now();
                let r = c.post(
                    "/api/jobs",
                    &json!({"distro":"debian-12","packages":pkgs,"baseline":"none","format": if i % 5 == 0 {"tar.zst"} else {"tar.gz"}}),
                );
                (s.elapsed().as_secs_f64() * 1000.0, r.status, r.json())
            })
        })
        .collect();
    let mut submit_ms = Vec::new();
    let mut ids = Vec::new();
    for h in handles {
        let (ms, status, j) = h.join().expect("thread");
        assert_eq!(status, 202, "{j}");
        submit_ms.push(ms);
        ids.push(j["id"].as_str().expect("id").to_string());
    }
    let submitted = t0.elapsed();
    // pollers: a bounded loop of GET /api/jobs/{id} and GET /api/jobs until all are done
    let pollers: Vec<_> = (0..4)
        .map(|k| {
            let url = srv.url.clone();
            let ids = ids.clone();
            std::thread::spawn(move || {
                let c = Client::new(&url);
                let mut lat = Vec::new();
                for round in 0..20_000 {
                    let s = Instant::now();
                    let r = if round % 5 == 0 {
                        c.get("/api/jobs?per_page=50")
                    } else {
                        c.get(&format!("/api/jobs/{}", ids[(round + k) % ids.len()]))
                    };
                    lat.push(s.elapsed().as_secs_f64() * 1000.0);
                    assert_eq!(r.status, 200);
                    if round % 5 == 0 {
                        let all_done = r.json()["items"]
                            .as_array()
                            .expect("items")
                            .iter()
                            .all(|j| j["state"] == "done" || j["state"] == "failed");
                        if all_done {
                            break;
                        }
                    }
                }
                lat
            })
        })
        .collect();
    let mut poll_ms: Vec<f64> = Vec::new();
    for p in pollers {
        poll_ms.extend(p.join().expect("poller"));
    }
    for id in &ids {
        let j = c.wait(id, Duration::from_secs(300));
        assert_eq!(j["state"], "done", "{j}");
    }
    let all = t0.elapsed();
    // each .deb once
    let pool: Vec<String> = fx
        .server
        .log()
        .into_iter()
        .filter(|l| l.contains("/pool/"))
        .collect();
    let mut seen = std::collections::HashMap::new();
    for l in &pool {
        let path = l.split_whitespace().nth(1).unwrap_or("").to_string();
        *seen.entry(path).or_insert(0) += 1;
    }
    assert!(!seen.is_empty());
    for (path, count) in &seen {
        assert_eq!(*count, 1, "{path} fetched {count} times");
    }
    submit_ms.sort_by(f64::total_cmp);
    poll_ms.sort_by(f64::total_cmp);
    println!(
        "LOAD: {n} jobs submitted in {:.2} s, all done in {:.2} s ({:.1} jobs/s); submit p50 {:.1} ms p99 {:.1} ms; {} polls p50 {:.2} ms p99 {:.2} ms; {} distinct .debs, each fetched once",
        submitted.as_secs_f64(),
        all.as_secs_f64(),
        n as f64 / all.as_secs_f64(),
        percentile(&submit_ms, 0.5),
        percentile(&submit_ms, 0.99),
        poll_ms.len(),
        percentile(&poll_ms, 0.5),
        percentile(&poll_ms, 0.99),
        seen.len()
    );
    srv.stop();
}

#[test]
fn a_late_subscriber_first_gets_the_log_lines_written_before_it_connected() {
    let fx = common::fixture();
    fx.server
        .fail_always("/pool/", Fault::Delay(Duration::from_millis(1500)));
    let data = tempfile::tempdir().expect("data");
    let mut cfg = common::config(&fx, data.path());
    cfg.download_jobs = 1;
    let srv = Running::start(cfg);
    let c = Client::new(&srv.url);
    let id = submit(
        &c,
        json!({"distro":"debian-12","packages":["tool-b","tool-d"],"baseline":"none"}),
    );
    // connect late: the job is already downloading ("queued" and "started" are long logged)
    let t0 = Instant::now();
    loop {
        let j = c.get(&format!("/api/jobs/{id}")).json();
        if j["state"] == "downloading" {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "never downloading: {j}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let ev = c.events(&id, "");
    let names: Vec<&str> = ev.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(names.first(), Some(&"state"), "{names:?}");
    assert_eq!(ev[0].1["state"], "downloading", "{names:?}");
    assert_eq!(names.last(), Some(&"end"), "{names:?}");
    // the earlier lines come right after the state, before anything live
    assert_eq!(names.get(1), Some(&"log"), "{names:?}");
    let logs: Vec<(u64, String)> = ev
        .iter()
        .filter(|(e, _)| e == "log")
        .map(|(_, l)| {
            (
                l["n"].as_u64().expect("n"),
                l["line"].as_str().expect("line").to_string(),
            )
        })
        .collect();
    assert!(logs[0].1.starts_with("queued: "), "{logs:?}");
    assert_eq!(logs[0].0, 1);
    assert!(
        logs.iter().any(|(_, l)| l.starts_with("started")),
        "{logs:?}"
    );
    // every line exactly once, in order: the replay and the live lines meet without a gap
    let ns: Vec<u64> = logs.iter().map(|(n, _)| *n).collect();
    assert_eq!(ns, (1..=logs.len() as u64).collect::<Vec<_>>(), "{logs:?}");
    let file = c.get(&format!("/api/jobs/{id}/log")).text();
    let lines: Vec<&str> = logs.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(lines, file.lines().collect::<Vec<_>>());
    assert_eq!(ev.last().expect("end").1["state"], "done");
    srv.stop();
}
