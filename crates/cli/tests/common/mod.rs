//! Shared by the live tests: when they run, and what happens when they cannot.
//!
//! Every live test is `#[ignore = "live: …"]`: a plain `cargo test` lists it as *ignored*, never
//! as a pass. `cargo test -- --include-ignored` (the README's and CI's command) runs it. A live
//! test whose prerequisite (mirror, root, a tool) is missing then goes through [`unmet`]:
//! - `OPAAS_SKIP_LIVE=1` / `OPAAS_SKIP_E2E=1` (a skip asked for on purpose): prints `SKIP …`;
//! - `OPAAS_REQUIRE_LIVE=1` (set by `.ci/run`): the test FAILS with the reason;
//! - neither (a developer's machine): prints `SKIP …` with the reason and how to require it.

use std::process::Command;

/// The skip the user asked for, if any: `var` is `OPAAS_SKIP_LIVE` or `OPAAS_SKIP_E2E`.
pub fn skip_requested(var: &str) -> Option<String> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty() && v != "0")
        .map(|_| format!("{var} is set"))
}

/// Whether CI asked for every live test to really run (`OPAAS_REQUIRE_LIVE=1`).
pub fn live_required() -> bool {
    std::env::var_os("OPAAS_REQUIRE_LIVE").is_some_and(|v| !v.is_empty() && v != "0")
}

/// A live test cannot run (`why`): panics when live tests are required, else prints the SKIP
/// line. The caller returns right after.
pub fn unmet(test: &str, why: &str, skip_var: &str) {
    if live_required() {
        panic!(
            "live test {test} cannot run: {why}\n(OPAAS_REQUIRE_LIVE is set; \
             set {skip_var}=1 to skip it on purpose)"
        );
    }
    eprintln!("SKIP {test}: {why} (OPAAS_REQUIRE_LIVE=1 makes this a failure)");
}

/// The main mirror `opaas mirrors --json` picks for distro/arch, if it answers a TCP connection
/// within 10 s; otherwise why not.
pub fn mirror_unreachable(distro: &str, arch: &str) -> Option<String> {
    let out = match Command::new(env!("CARGO_BIN_EXE_opaas"))
        .args(["mirrors", "--json", "-d", distro, "-a", arch])
        .output()
    {
        Ok(o) => o,
        Err(e) => return Some(format!("cannot run opaas mirrors: {e}")),
    };
    if !out.status.success() {
        return Some(format!(
            "no mirror configured for {distro} {arch}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let doc: serde_json::Value = match serde_json::from_slice(&out.stdout) {
        Ok(d) => d,
        Err(e) => return Some(format!("opaas mirrors --json printed no JSON: {e}")),
    };
    match doc["main"]["url"].as_str() {
        Some(url) => reachable(url).err(),
        // `opaas mirrors` exits 0 with the sources it tried when nothing is configured
        None => Some(format!(
            "no mirror configured for {distro} {arch} (see `opaas mirrors -d {distro} -a {arch}`)"
        )),
    }
}

/// A TCP connection to the mirror's host within 10 s.
fn reachable(url: &str) -> Result<(), String> {
    use std::net::ToSocketAddrs;
    let rest = url
        .split("://")
        .nth(1)
        .ok_or_else(|| format!("not a URL: {url}"))?;
    let host = rest.split('/').next().unwrap_or("");
    let hostport = if host.contains(':') {
        host.to_string()
    } else if url.starts_with("https") {
        format!("{host}:443")
    } else {
        format!("{host}:80")
    };
    let addrs: Vec<_> = hostport
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    for a in addrs {
        if std::net::TcpStream::connect_timeout(&a, std::time::Duration::from_secs(10)).is_ok() {
            return Ok(());
        }
    }
    Err(format!("mirror {url} unreachable"))
}
