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

/// Parses the RFC 2822 dates of Release files (`Sat, 11 Jul 2026 10:16:37 UTC`; the archive
/// tools write `UTC`, which RFC 2822 spells `+0000`).
///
/// Ubuntu's archive writes a single-digit hour after two spaces (`Tue, 01 Dec 2026  2:36:54
/// UTC`), which apt's strptime-based parser accepts: runs of white space count as one and
/// one-digit day and time fields are padded before parsing.
pub fn parse_rfc2822(s: &str) -> Option<SystemTime> {
    let words: Vec<String> = s
        .split_whitespace()
        .map(|w| {
            if w.contains(':') {
                w.split(':')
                    .map(|x| format!("{x:0>2}"))
                    .collect::<Vec<_>>()
                    .join(":")
            } else if w.len() == 1 && w.as_bytes()[0].is_ascii_digit() {
                format!("0{w}")
            } else {
                w.to_string()
            }
        })
        .collect();
    let t = words.join(" ");
    let t = match t.rsplit_once(' ') {
        Some((head, "UTC" | "Z")) => format!("{head} +0000"),
        _ => t.to_string(),
    };
    let dt =
        time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc2822).ok()?;
    u64::try_from(dt.unix_timestamp())
        .ok()
        .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s))
}

/// A time in UTC, whole seconds (times before 1970 become the epoch).
fn utc_seconds(t: SystemTime) -> time::OffsetDateTime {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    i64::try_from(secs)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// Formats a time like Release files do (UTC).
pub fn format_rfc2822(t: SystemTime) -> String {
    utc_seconds(t)
        .format(time::macros::format_description!(
            "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] UTC"
        ))
        .unwrap_or_default()
}

/// Formats a time as RFC 3339 UTC (`2026-07-11T10:16:37Z`).
pub fn format_rfc3339(t: SystemTime) -> String {
    utc_seconds(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
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
        // Ubuntu's archive, December 2026: two spaces and a one-digit hour
        assert_eq!(
            parse_rfc2822("Sat, 11 Jul 2026  9:16:37 UTC"),
            Some(t - Duration::from_secs(3600))
        );
        assert_eq!(
            parse_rfc2822("Sat, 1 Jul 2026 10:16:37 UTC"),
            Some(t - Duration::from_secs(10 * 86400))
        );
        assert_eq!(
            parse_rfc2822("11 Jul 2026 10:16:37 GMT"),
            Some(t),
            "weekday optional, GMT"
        );
        assert_eq!(
            format_rfc2822(SystemTime::UNIX_EPOCH),
            "Thu, 01 Jan 1970 00:00:00 UTC"
        );
        assert_eq!(
            format_rfc3339(t + Duration::from_millis(250)),
            "2026-07-11T10:16:37Z"
        );
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
