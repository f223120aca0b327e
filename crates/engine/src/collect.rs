//! What an offline server tells the builder about itself: the collect script it runs, and a
//! strict reader of the file that script writes.
//!
//! The admin runs [`COLLECT_SCRIPT`] on the target (`sh collect.sh > web01.opaas`): it only
//! reads (os-release, dpkg's architecture and status, apt's auto flags, holds) and writes one
//! text file to stdout. [`Collected::parse`] reads that file back. It trusts nothing in it: a
//! size limit, UTF-8 only, every header field checked against a narrow alphabet, the status
//! section's line count checked against the count the script wrote (a cut file is named as
//! such), an unknown or end-of-life release refused with the supported list. Nothing from the
//! file ever reaches a shell: the host name and versions that go into install.sh are validated
//! here and single-quoted by the bundle writer.

use opaas_repo::catalog;

/// The collect script, POSIX sh, read-only on the target.
pub const COLLECT_SCRIPT: &str = r#"#!/bin/sh
# OPaaS collect script: describes this machine for an offline upgrade bundle.
# Run as any user on the offline server:   sh collect.sh > "$(hostname).opaas"
# It only reads: /etc/os-release, dpkg's architecture and status, apt's auto flags, holds.
set -eu
LC_ALL=C
export LC_ALL
osr=/etc/os-release
[ -r "$osr" ] || osr=/usr/lib/os-release
val() {
  sed -n "s/^$1=//p" "$osr" | head -n 1 | sed -e 's/^"\(.*\)"$/\1/' -e "s/^'\(.*\)'\$/\1/"
}
host=$(cat /proc/sys/kernel/hostname 2>/dev/null || hostname)
status=/var/lib/dpkg/status
printf 'OPaaS-Collect: 1\n'
printf 'Hostname: %s\n' "$host"
printf 'Collected: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
printf 'OS-ID: %s\n' "$(val ID)"
printf 'OS-Version-ID: %s\n' "$(val VERSION_ID)"
printf 'OS-Codename: %s\n' "$(val VERSION_CODENAME)"
printf 'Architecture: %s\n' "$(dpkg --print-architecture)"
printf 'Foreign-Architectures: %s\n' "$(dpkg --print-foreign-architectures | tr '\n' ' ')"
printf 'Holds: %s\n' "$(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' | awk '$1 ~ /^h/ { printf "%s ", $2 }')"
printf 'Status-Lines: %s\n' "$(wc -l < "$status" | tr -d ' ')"
printf '\n### /var/lib/dpkg/status\n'
cat "$status"
printf '### /var/lib/apt/extended_states\n'
if [ -r /var/lib/apt/extended_states ]; then cat /var/lib/apt/extended_states; fi
printf '### end\n'
"#;

/// The largest collected file accepted (a dpkg status of 5 000 packages is about 10 MB).
pub const MAX_COLLECTED_BYTES: usize = 64 << 20;

/// A collected file, read and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collected {
    pub hostname: String,
    pub collected: String,
    /// The catalog id (`debian-12`).
    pub distro: String,
    pub arch: String,
    pub foreign_arches: Vec<String>,
    pub holds: Vec<String>,
    /// `/var/lib/dpkg/status`, as collected.
    pub status: String,
    /// `/var/lib/apt/extended_states` (may be empty).
    pub extended_states: String,
}

/// Why a collected file is refused; `line` is 1-based where one applies.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CollectError {
    #[error("the collected file is {size} bytes; the limit is {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("the collected file is not text (binary data at byte {offset}); give the file `sh collect.sh` wrote")]
    Binary { offset: usize },
    #[error("line {line}: {message}")]
    Bad { line: usize, message: String },
    #[error("the collected file is cut short: {0}; copy it again")]
    Truncated(String),
    #[error("{0}")]
    Unsupported(String),
}

fn bad(line: usize, message: impl Into<String>) -> CollectError {
    CollectError::Bad {
        line,
        message: message.into(),
    }
}

fn word_ok(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'+' | b':'))
}

impl Collected {
    /// Reads a file written by [`COLLECT_SCRIPT`].
    pub fn parse(data: &[u8]) -> Result<Collected, CollectError> {
        if data.len() > MAX_COLLECTED_BYTES {
            return Err(CollectError::TooLarge {
                size: data.len(),
                limit: MAX_COLLECTED_BYTES,
            });
        }
        let text = std::str::from_utf8(data).map_err(|e| CollectError::Binary {
            offset: e.valid_up_to(),
        })?;
        if let Some(off) = text.find('\0') {
            return Err(CollectError::Binary { offset: off });
        }
        let mut lines = text.split_inclusive('\n').enumerate();
        match lines.next() {
            Some((_, l)) if l.trim_end() == "OPaaS-Collect: 1" => {}
            Some((_, l)) if l.starts_with("OPaaS-Collect:") => {
                return Err(bad(1, format!("unknown collect format '{}'; this opaas reads format 1", l.trim_end())))
            }
            _ => {
                return Err(bad(
                    1,
                    "not a collected file (it must start with 'OPaaS-Collect: 1'; run `opaas collect-script` for the script)",
                ))
            }
        }
        let mut header: Vec<(usize, String, String)> = Vec::new();
        let mut after_header = None;
        for (i, l) in lines.by_ref() {
            let l = l.trim_end_matches(['\n', '\r']);
            if l.is_empty() {
                after_header = Some(i + 1);
                break;
            }
            let Some((k, v)) = l.split_once(':') else {
                return Err(bad(
                    i + 1,
                    format!("expected 'Field: value', got '{}'", clip(l)),
                ));
            };
            header.push((i + 1, k.trim().to_string(), v.trim().to_string()));
        }
        if after_header.is_none() {
            return Err(CollectError::Truncated("the header never ends".into()));
        }
        let get = |name: &str| -> Result<(usize, String), CollectError> {
            header
                .iter()
                .find(|(_, k, _)| k == name)
                .map(|(n, _, v)| (*n, v.clone()))
                .ok_or_else(|| bad(1, format!("the header has no '{name}' field")))
        };
        let (hl, hostname) = get("Hostname")?;
        if hostname.is_empty()
            || hostname.len() > 253
            || !hostname
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            return Err(bad(hl, format!("'{}' is not a host name", clip(&hostname))));
        }
        let (_, collected) = get("Collected")?;
        let (il, os_id) = get("OS-ID")?;
        let (vl, version) = get("OS-Version-ID")?;
        for (n, v) in [(il, &os_id), (vl, &version)] {
            if !word_ok(v) || v.len() > 32 {
                return Err(bad(n, format!("'{}' is not an os-release value", clip(v))));
            }
        }
        let (al, arch) = get("Architecture")?;
        if arch.is_empty() || !word_ok(&arch) || arch.len() > 32 {
            return Err(bad(
                al,
                format!("'{}' is not a dpkg architecture", clip(&arch)),
            ));
        }
        let (fl, foreign) = get("Foreign-Architectures").unwrap_or((0, String::new()));
        let foreign_arches: Vec<String> = foreign.split_whitespace().map(str::to_string).collect();
        if foreign_arches.iter().any(|a| !word_ok(a)) {
            return Err(bad(fl, "bad foreign architecture list"));
        }
        let (hdl, holds) = get("Holds").unwrap_or((0, String::new()));
        let holds: Vec<String> = holds.split_whitespace().map(str::to_string).collect();
        if holds.iter().any(|h| !word_ok(h)) {
            return Err(bad(hdl, "bad package name in Holds"));
        }
        let (sl, status_lines) = get("Status-Lines")?;
        let status_lines: usize = status_lines
            .parse()
            .map_err(|_| bad(sl, "Status-Lines is not a number"))?;
        let id = format!("{}-{}", os_id.to_ascii_lowercase(), version);
        let distro = match catalog::find(&id) {
            Ok(d) => d,
            Err(_) => {
                let known: Vec<String> = catalog::distros()
                    .iter()
                    .map(|d| format!("{} ({})", d.id, d.codename))
                    .collect();
                return Err(CollectError::Unsupported(format!(
                    "the collected machine runs {id}, which this opaas does not support (end of life or unknown); supported: {}",
                    known.join(", ")
                )));
            }
        };
        if distro.check_arch(&arch).is_err() {
            return Err(CollectError::Unsupported(format!(
                "the collected machine is {} {arch}; {} supports {}",
                distro.id,
                distro.id,
                distro.all_architectures().collect::<Vec<_>>().join(", ")
            )));
        }
        // the sections
        let mut section: Option<&str> = None;
        let mut status = String::new();
        let mut ext = String::new();
        let mut n_status = 0usize;
        let mut ended = false;
        for (_, l) in lines {
            match l.trim_end_matches(['\n', '\r']) {
                "### /var/lib/dpkg/status" => section = Some("status"),
                "### /var/lib/apt/extended_states" => section = Some("ext"),
                "### end" => {
                    ended = true;
                    break;
                }
                _ => match section {
                    Some("status") => {
                        status.push_str(l);
                        n_status += 1;
                    }
                    Some("ext") => ext.push_str(l),
                    _ => {}
                },
            }
        }
        if !ended {
            return Err(CollectError::Truncated(format!(
                "no '### end' line ({n_status} of {status_lines} status lines present)"
            )));
        }
        if n_status != status_lines {
            return Err(CollectError::Truncated(format!(
                "the dpkg status has {n_status} lines, the script counted {status_lines}"
            )));
        }
        if !status.contains("Status: ") {
            return Err(CollectError::Unsupported(
                "the collected dpkg status lists no package".into(),
            ));
        }
        Ok(Collected {
            hostname,
            collected,
            distro: distro.id.clone(),
            arch,
            foreign_arches,
            holds,
            status,
            extended_states: ext,
        })
    }

    /// `name:arch=version` of every installed package, sorted: what the upgrade plan assumes.
    pub fn installed(&self) -> Vec<String> {
        let base = opaas_resolve::Baseline::from_status(&self.status, &self.arch);
        base.packages
            .values()
            .map(|i| format!("{}:{}={}", i.name, i.arch, i.version))
            .collect()
    }
}

fn clip(s: &str) -> String {
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(60).collect::<String>())
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(status: &str) -> String {
        format!(
            "OPaaS-Collect: 1\nHostname: web01\nCollected: 2026-12-02T10:00:00Z\nOS-ID: debian\nOS-Version-ID: 12\nOS-Codename: bookworm\nArchitecture: amd64\nForeign-Architectures: \nHolds: \nStatus-Lines: {}\n\n### /var/lib/dpkg/status\n{status}### /var/lib/apt/extended_states\n### end\n",
            status.lines().count()
        )
    }

    const STATUS: &str =
        "Package: hello\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.10-3\n\n";

    #[test]
    fn reads_what_the_script_writes() {
        let c = Collected::parse(sample(STATUS).as_bytes()).expect("parse");
        assert_eq!(c.hostname, "web01");
        assert_eq!(c.distro, "debian-12");
        assert_eq!(c.arch, "amd64");
        assert_eq!(c.status, STATUS);
        assert_eq!(c.installed(), ["hello:amd64=2.10-3"]);
    }

    #[test]
    fn refuses_bad_files_clearly() {
        let good = sample(STATUS);
        // cut short
        let cut = &good[..good.len() - 30];
        assert!(matches!(
            Collected::parse(cut.as_bytes()),
            Err(CollectError::Truncated(_))
        ));
        // binary
        let mut bin = good.clone().into_bytes();
        bin[40] = 0xff;
        assert!(matches!(
            Collected::parse(&bin),
            Err(CollectError::Binary { offset: 40 })
        ));
        // too large
        let big = vec![b'a'; MAX_COLLECTED_BYTES + 1];
        assert!(matches!(
            Collected::parse(&big),
            Err(CollectError::TooLarge { .. })
        ));
        // not a collected file
        let e = Collected::parse(b"Package: x\n").unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
        // other architecture
        let e = Collected::parse(good.replace("amd64\nForeign", "sparc\nForeign").as_bytes())
            .unwrap_err();
        assert!(e.to_string().contains("sparc"), "{e}");
        // unknown / end-of-life release
        let e = Collected::parse(
            good.replace("OS-Version-ID: 12", "OS-Version-ID: 10")
                .as_bytes(),
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("debian-10") && e.to_string().contains("supported"),
            "{e}"
        );
        // a host name that is not one
        let e = Collected::parse(good.replace("web01", "web01;rm -rf /").as_bytes()).unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        // status lines count does not match
        let e = Collected::parse(
            good.replace("Status-Lines: 5", "Status-Lines: 9")
                .as_bytes(),
        )
        .unwrap_err();
        assert!(matches!(e, CollectError::Truncated(_)), "{e}");
    }

    /// The script is valid POSIX sh and, run here, writes a file the reader accepts (this
    /// host is a Debian/Ubuntu machine with dpkg in CI).
    #[test]
    fn the_script_runs_and_its_output_parses() {
        let d = tempfile::tempdir().expect("tmp");
        let p = d.path().join("collect.sh");
        std::fs::write(&p, COLLECT_SCRIPT).expect("write");
        let n = std::process::Command::new("sh")
            .arg("-n")
            .arg(&p)
            .status()
            .expect("sh");
        assert!(n.success());
        if std::process::Command::new("dpkg")
            .arg("--version")
            .output()
            .is_err()
        {
            eprintln!("SKIP the_script_runs_and_its_output_parses: no dpkg on this host");
            return;
        }
        let out = std::process::Command::new("sh")
            .arg(&p)
            .output()
            .expect("run");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        match Collected::parse(&out.stdout) {
            Ok(c) => assert!(!c.installed().is_empty()),
            // a host of a release the catalog does not carry still yields a well-formed file
            Err(CollectError::Unsupported(m)) => eprintln!("host not in the catalog: {m}"),
            Err(e) => panic!("the script's own output is refused: {e}"),
        }
    }
}
