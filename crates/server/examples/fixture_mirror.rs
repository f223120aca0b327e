//! A signed fixture archive of every distro of the catalog (all components and architectures,
//! a few tiny real .debs) served on 127.0.0.1, for API fuzzing and load scripts
//! (`scripts/fuzz-api.sh`). Prints `<url> <keyring>` on one line, then serves until stdin
//! closes or the process is killed.
//!
//!     cargo run -p opaas-server --example fixture_mirror
//!
//! `FIXTURE_BIG=N` adds two big jobs to Debian 12 amd64: `big-app` pulls in 20 `big-mid-*`
//! packages and N `big-lib-*` libraries under them, `big2-app` the same with `big2-` names (the
//! web UI's long-task test asks for them, one per viewport, so that both download);
//! `FIXTURE_DELAY_MS=M` delays each of their `.deb` downloads by M ms, so that the download
//! phase lasts long enough to be watched.

#[path = "../tests/common/mod.rs"]
mod common;

use opaas_testkit::{Fault, Package, Suite};
use std::io::{Read, Write};
use std::time::Duration;

fn env_number(key: &str) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// `{p}-app` → 20 × `{p}-mid-MM` → `libs` × `{p}-lib-MM-LLL` in all (each a real small .deb).
fn big_job(mut release: Suite, p: &str, libs: u64) -> Suite {
    const MIDS: u64 = 20;
    let per_mid = libs.div_ceil(MIDS);
    let mut mids = Vec::new();
    for m in 0..MIDS {
        let mid = format!("{p}-mid-{m:02}");
        let libs_of: Vec<String> = (0..per_mid)
            .filter(|l| m * per_mid + l < libs)
            .map(|l| format!("{p}-lib-{m:02}-{l:03}"))
            .collect();
        for l in &libs_of {
            // a few kB each, different contents
            let body = format!("{l}\n").repeat(200);
            release = release.package(
                "main",
                Package::new(l, "1.0", "amd64")
                    .field("Description", "a library of the big fixture job")
                    .deb_file(&format!("/usr/share/{l}/data"), body.as_bytes()),
            );
        }
        let mut pkg = Package::new(&mid, "1.0", "amd64")
            .field("Description", "a middle package of the big fixture job")
            .with_deb();
        if !libs_of.is_empty() {
            pkg = pkg.depends(&libs_of.join(", "));
        }
        release = release.package("main", pkg);
        mids.push(mid);
    }
    release.package(
        "main",
        Package::new(&format!("{p}-app"), "1.0", "amd64")
            .depends(&mids.join(", "))
            .field("Description", "the big fixture job: hundreds of packages")
            .with_deb(),
    )
}

fn main() {
    let mut suites = common::all_distro_suites();
    let big = env_number("FIXTURE_BIG");
    if big > 0 {
        // the first suite is Debian 12's release pocket
        let release = suites.remove(0);
        suites.insert(0, big_job(big_job(release, "big", big), "big2", big));
    }
    let fx = common::fixture_with(&suites);
    let delay = env_number("FIXTURE_DELAY_MS");
    if delay > 0 {
        fx.server
            .fail_always("/big", Fault::Delay(Duration::from_millis(delay)));
    }
    {
        let mut out = std::io::stdout();
        let _ = writeln!(out, "{} {}", fx.server.url(), fx.keyring.display());
        let _ = out.flush();
    }
    // serve until stdin closes (the caller exits) or a signal ends us
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
}
