//! Shared by the live tests: is the configured mirror reachable?

use std::process::Command;

/// `None` when the main mirror `opaas mirrors` picks for distro/arch answers a TCP connection
/// within 10 s; otherwise why not (printed by the caller as the SKIP reason).
pub fn mirror_unreachable(distro: &str, arch: &str) -> Option<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_opaas"))
        .args(["mirrors", "-d", distro, "-a", arch])
        .output()
        .ok()?;
    if !out.status.success() {
        return Some(format!(
            "no mirror configured for {distro} {arch}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let url = text
        .lines()
        .find_map(|l| l.strip_prefix("main     "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or("")
        .to_string();
    if url.is_empty() {
        // `opaas mirrors` exits 0 with the table of sources it tried
        return Some(format!(
            "no mirror configured for {distro} {arch} (see `opaas mirrors -d {distro} -a {arch}`)"
        ));
    }
    reachable(&url).err()
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
