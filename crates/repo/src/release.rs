//! Release files: the signed table of index files with their sizes and SHA256 sums.

use opaas_deb::Paragraph;
use std::collections::HashMap;
use std::time::{Duration, SystemTime};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    pub sha256: String,
    pub size: u64,
}

/// The fields of a Release file OPaaS uses.
#[derive(Debug, Clone, Default)]
pub struct Release {
    pub origin: String,
    pub label: String,
    pub suite: String,
    pub codename: String,
    pub date: Option<SystemTime>,
    pub valid_until: Option<SystemTime>,
    pub acquire_by_hash: bool,
    pub not_automatic: bool,
    pub but_automatic_upgrades: bool,
    pub architectures: Vec<String>,
    pub components: Vec<String>,
    /// path (relative to dists/SUITE/) -> sha256 and size
    pub files: HashMap<String, FileEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReleaseError {
    #[error("Release file has no SHA256 section")]
    NoSha256,
    #[error("Release file has a malformed SHA256 line: '{0}'")]
    BadLine(String),
    #[error("Release file has an unreadable {field} date '{value}'")]
    BadDate { field: &'static str, value: String },
}

impl Release {
    pub fn parse(text: &str) -> Result<Release, ReleaseError> {
        let p = opaas_deb::paragraphs(text)
            .next()
            .unwrap_or(Paragraph::new(""));
        let s = |k| p.get(k).unwrap_or("").to_string();
        let yes = |k| p.get(k).is_some_and(|v| v.eq_ignore_ascii_case("yes"));
        let date = |k: &'static str| -> Result<Option<SystemTime>, ReleaseError> {
            match p.get(k) {
                None => Ok(None),
                Some(v) => parse_rfc2822(v)
                    .map(Some)
                    .ok_or_else(|| ReleaseError::BadDate {
                        field: k,
                        value: v.to_string(),
                    }),
            }
        };
        let mut files = HashMap::new();
        let sums = p.get("SHA256").ok_or(ReleaseError::NoSha256)?;
        for line in sums.lines() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let mut w = line.split_whitespace();
            let (Some(h), Some(sz), Some(path), None) = (w.next(), w.next(), w.next(), w.next())
            else {
                return Err(ReleaseError::BadLine(line.to_string()));
            };
            let size = sz
                .parse()
                .map_err(|_| ReleaseError::BadLine(line.to_string()))?;
            if h.len() != 64 || !h.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(ReleaseError::BadLine(line.to_string()));
            }
            files.insert(
                path.to_string(),
                FileEntry {
                    sha256: h.to_ascii_lowercase(),
                    size,
                },
            );
        }
        Ok(Release {
            origin: s("Origin"),
            label: s("Label"),
            suite: s("Suite"),
            codename: s("Codename"),
            date: date("Date")?,
            valid_until: date("Valid-Until")?,
            acquire_by_hash: yes("Acquire-By-Hash"),
            not_automatic: yes("NotAutomatic"),
            but_automatic_upgrades: yes("ButAutomaticUpgrades"),
            architectures: p
                .get("Architectures")
                .unwrap_or("")
                .split_whitespace()
                .map(String::from)
                .collect(),
            components: p
                .get("Components")
                .unwrap_or("")
                .split_whitespace()
                .map(String::from)
                .collect(),
            files,
        })
    }

    /// apt's default pin priority for packages from this suite.
    pub fn default_priority(&self) -> i32 {
        match (self.not_automatic, self.but_automatic_upgrades) {
            (true, true) => 100,
            (true, false) => 1,
            _ => 500,
        }
    }
}

/// Parses the RFC 2822 dates of Release files (`Sat, 11 Jul 2026 10:16:37 UTC`).
pub fn parse_rfc2822(s: &str) -> Option<SystemTime> {
    let mut w: Vec<&str> = s.split_whitespace().collect();
    if w.first().is_some_and(|d| d.ends_with(',')) {
        w.remove(0);
    }
    let [day, mon, year, time, zone, ..] = w.as_slice() else {
        return None;
    };
    let day: i64 = day.parse().ok()?;
    let mon = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| m.eq_ignore_ascii_case(mon))? as i64
        + 1;
    let year: i64 = year.parse().ok()?;
    let mut t = time.split(':').map(|x| x.parse::<i64>());
    let (h, m, sec) = (
        t.next()?.ok()?,
        t.next()?.ok()?,
        t.next().unwrap_or(Ok(0)).ok()?,
    );
    let offset = match *zone {
        "UTC" | "GMT" | "Z" => 0,
        z if (z.starts_with('+') || z.starts_with('-')) && z.len() == 5 => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let hh: i64 = z[1..3].parse().ok()?;
            let mm: i64 = z[3..5].parse().ok()?;
            sign * (hh * 3600 + mm * 60)
        }
        _ => return None,
    };
    // days from civil (Howard Hinnant)
    let y = if mon <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mon + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    let secs = days * 86400 + h * 3600 + m * 60 + sec - offset;
    u64::try_from(secs)
        .ok()
        .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s))
}

/// Formats a time like Release files do (UTC).
pub fn format_rfc2822(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    let wd = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
    let mn = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(m - 1) as usize];
    format!(
        "{wd}, {d:02} {mn} {y} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Formats a time as RFC 3339 UTC (`2026-07-11T10:16:37Z`).
pub fn format_rfc3339(t: SystemTime) -> String {
    let s = format_rfc2822(t);
    // "Sat, 11 Jul 2026 10:16:37 UTC" -> parts
    let w: Vec<&str> = s.split_whitespace().collect();
    let mon = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| Some(m) == w.get(2))
    .map_or(0, |i| i + 1);
    format!(
        "{}-{mon:02}-{}T{}Z",
        w.get(3).unwrap_or(&"1970"),
        w.get(1).unwrap_or(&"01"),
        w.get(4).unwrap_or(&"00:00:00")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        let t = parse_rfc2822("Sat, 11 Jul 2026 10:16:37 UTC").expect("date");
        assert_eq!(
            t.duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            1_783_764_997
        );
        assert_eq!(format_rfc2822(t), "Sat, 11 Jul 2026 10:16:37 UTC");
        assert_eq!(format_rfc3339(t), "2026-07-11T10:16:37Z");
        assert_eq!(
            parse_rfc2822("Thu, 01 Jan 1970 01:00:00 +0100"),
            Some(SystemTime::UNIX_EPOCH)
        );
        assert_eq!(parse_rfc2822("garbage"), None);
    }

    #[test]
    fn parses_release() {
        let r = Release::parse("Origin: Debian\nSuite: stable\nCodename: bookworm\nDate: Sat, 11 Jul 2026 10:16:37 UTC\nAcquire-By-Hash: yes\nNotAutomatic: yes\nButAutomaticUpgrades: yes\nArchitectures: amd64 arm64\nComponents: main\nSHA256:\n 9a654c21a035edc55b422292960320bcdc3b9351a35d48fccd42359f2cf130a8  2531138 main/binary-amd64/Packages\n").expect("parse");
        assert!(r.acquire_by_hash);
        assert_eq!(r.default_priority(), 100);
        assert_eq!(r.files["main/binary-amd64/Packages"].size, 2531138);
        assert!(matches!(
            Release::parse("Origin: x\n"),
            Err(ReleaseError::NoSha256)
        ));
        assert!(matches!(
            Release::parse("SHA256:\n zz 1 a\n"),
            Err(ReleaseError::BadLine(_))
        ));
    }
}
