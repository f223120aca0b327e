//! A bounded load test on 127.0.0.1: a fixture archive, `opaas serve` in process, then
//!
//! 1. JOBS jobs (default 200) submitted by CLIENTS threads (default 16) at once, over
//!    overlapping packages, while 4 pollers read `GET /api/jobs/{id}` and `GET /api/jobs` until
//!    every job is done (each poller at most 50 000 requests);
//! 2. POLLS requests (default 5000) of `GET /api/jobs/{id}` from CLIENTS threads on the idle
//!    service.
//!
//! Prints throughput and p50/p99 latencies, and checks that every .deb was fetched from the
//! mirror once. `cargo run --release -p opaas-server --example loadtest [JOBS CLIENTS POLLS]`

#[path = "../tests/common/mod.rs"]
mod common;

use serde_json::json;
use std::time::{Duration, Instant};

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return 0.0;
    }
    v[(((v.len() - 1) as f64) * p).round() as usize]
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let jobs = args.first().copied().unwrap_or(200);
    let clients = args.get(1).copied().unwrap_or(16).max(1);
    let polls = args.get(2).copied().unwrap_or(5000);
    let fx = common::fixture();
    let data = tempfile::tempdir().expect("data");
    let mut cfg = common::config(&fx, data.path());
    cfg.workers = 2;
    let srv = common::Running::start(cfg);
    let c = common::Client::new(&srv.url);
    assert_eq!(c.get("/api/packages?distro=debian-12&q=tool").status, 200);

    // 1. submissions + pollers
    let t0 = Instant::now();
    let per = jobs.div_ceil(clients);
    let submitters: Vec<_> = (0..clients)
        .map(|k| {
            let url = srv.url.clone();
            std::thread::spawn(move || {
                let c = common::Client::new(&url);
                let mut out = Vec::new();
                for j in 0..per {
                    let i = k * per + j;
                    if i >= jobs {
                        break;
                    }
                    let t = common::TOOLS;
                    let mut pkgs = vec![t[i % t.len()], t[(i / t.len() + 1) % t.len()]];
                    if i % 3 == 0 {
                        pkgs.push("hello");
                    }
                    let s = Instant::now();
                    let r = c.post(
                        "/api/jobs",
                        &json!({"distro":"debian-12","packages":pkgs,"baseline":"none"}),
                    );
                    let ms = s.elapsed().as_secs_f64() * 1000.0;
                    assert_eq!(r.status, 202, "{}", r.text());
                    out.push((ms, r.json()["id"].as_str().unwrap_or("").to_string()));
                }
                out
            })
        })
        .collect();
    let mut submit_ms = Vec::new();
    let mut ids = Vec::new();
    for h in submitters {
        for (ms, id) in h.join().expect("submitter") {
            submit_ms.push(ms);
            ids.push(id);
        }
    }
    let submitted = t0.elapsed().as_secs_f64();
    let pollers: Vec<_> = (0..4)
        .map(|k| {
            let url = srv.url.clone();
            let ids = ids.clone();
            std::thread::spawn(move || {
                let c = common::Client::new(&url);
                let mut lat = Vec::new();
                for round in 0..50_000usize {
                    let s = Instant::now();
                    if round % 10 == 0 {
                        let r = c.get("/api/jobs?per_page=100");
                        lat.push(s.elapsed().as_secs_f64() * 1000.0);
                        let busy = r.json()["items"]
                            .as_array()
                            .map(|a| {
                                a.iter().any(|j| {
                                    !["done", "failed", "cancelled"]
                                        .contains(&j["state"].as_str().unwrap_or(""))
                                })
                            })
                            .unwrap_or(true);
                        if !busy {
                            break;
                        }
                    } else {
                        let _ = c.get(&format!("/api/jobs/{}", ids[(round * 7 + k) % ids.len()]));
                        lat.push(s.elapsed().as_secs_f64() * 1000.0);
                    }
                }
                lat
            })
        })
        .collect();
    let mut busy_poll_ms = Vec::new();
    for p in pollers {
        busy_poll_ms.extend(p.join().expect("poller"));
    }
    let mut failed = 0;
    for id in &ids {
        let j = c.wait(id, Duration::from_secs(600));
        if j["state"] != "done" {
            failed += 1;
            eprintln!("job {id}: {j}");
        }
    }
    let all = t0.elapsed().as_secs_f64();
    let mut per_path = std::collections::HashMap::new();
    for l in fx.server.log().iter().filter(|l| l.contains("/pool/")) {
        *per_path
            .entry(l.split_whitespace().nth(1).unwrap_or("").to_string())
            .or_insert(0usize) += 1;
    }
    let once = per_path.values().all(|&n| n == 1);

    // 2. polling the idle service
    let t1 = Instant::now();
    let per = polls.div_ceil(clients);
    let readers: Vec<_> = (0..clients)
        .map(|k| {
            let url = srv.url.clone();
            let ids = ids.clone();
            std::thread::spawn(move || {
                let c = common::Client::new(&url);
                (0..per)
                    .map(|i| {
                        let s = Instant::now();
                        let r = c.get(&format!("/api/jobs/{}", ids[(i * clients + k) % ids.len()]));
                        assert_eq!(r.status, 200);
                        s.elapsed().as_secs_f64() * 1000.0
                    })
                    .collect::<Vec<f64>>()
            })
        })
        .collect();
    let mut idle_ms = Vec::new();
    for r in readers {
        idle_ms.extend(r.join().expect("reader"));
    }
    let idle_s = t1.elapsed().as_secs_f64();

    println!(
        "load test on 127.0.0.1 ({} workers, {clients} client threads)",
        2
    );
    println!(
        "  {jobs} jobs: submitted in {submitted:.2} s ({:.0}/s), all finished in {all:.2} s ({:.1} jobs/s); {failed} not done",
        jobs as f64 / submitted,
        jobs as f64 / all
    );
    println!(
        "  POST /api/jobs      p50 {:.1} ms  p99 {:.1} ms",
        pct(&mut submit_ms.clone(), 0.5),
        pct(&mut submit_ms, 0.99)
    );
    println!(
        "  polling while busy  {} requests  p50 {:.2} ms  p99 {:.2} ms",
        busy_poll_ms.len(),
        pct(&mut busy_poll_ms.clone(), 0.5),
        pct(&mut busy_poll_ms, 0.99)
    );
    println!(
        "  GET /api/jobs/{{id}} idle: {} requests in {idle_s:.2} s ({:.0}/s)  p50 {:.2} ms  p99 {:.2} ms",
        idle_ms.len(),
        idle_ms.len() as f64 / idle_s,
        pct(&mut idle_ms.clone(), 0.5),
        pct(&mut idle_ms, 0.99)
    );
    println!(
        "  {} distinct .debs fetched from the mirror, each once: {once}",
        per_path.len()
    );
    srv.stop();
    if failed > 0 || !once {
        std::process::exit(1);
    }
}
