//! dpkg version ordering.
//!
//! This is a direct transcription of dpkg's `verrevcmp` (lib/dpkg/version.c): a version is
//! `[epoch:]upstream[-revision]`; epochs compare numerically, then upstream and revision with
//! the "non-digit run, then digit run" walk where `~` sorts before everything (even the end of
//! the string), letters before other characters. It is tested against `dpkg --compare-versions`
//! on real data in `tests/versions.rs`.
//!
//! Versions are compared as borrowed `&str`: the resolver compares millions of them and never
//! needs an owned, pre-split form.

use std::cmp::Ordering;
use std::fmt;

/// The parts of a dpkg version, borrowed from the original string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionParts<'a> {
    pub epoch: u64,
    pub upstream: &'a str,
    pub revision: &'a str,
}

/// Why a version string is not a valid dpkg version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error("version is empty")]
    Empty,
    #[error("version '{0}' has a bad epoch (digits before ':' expected)")]
    BadEpoch(String),
    #[error("version '{0}' does not start with a digit")]
    NoLeadingDigit(String),
    #[error("version '{0}' contains the invalid character {1:?}")]
    BadChar(String, char),
}

/// Splits a version into epoch, upstream version and Debian revision (dpkg's `parseversion`).
pub fn split(v: &str) -> VersionParts<'_> {
    let v = v.trim();
    let (epoch, rest) = match v.find(':') {
        Some(i) => (v[..i].parse::<u64>().unwrap_or(0), &v[i + 1..]),
        None => (0, v),
    };
    let (upstream, revision) = match rest.rfind('-') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, ""),
    };
    VersionParts {
        epoch,
        upstream,
        revision,
    }
}

/// Checks a version string the way dpkg does when it parses a control file.
pub fn validate(v: &str) -> Result<(), VersionError> {
    let t = v.trim();
    if t.is_empty() {
        return Err(VersionError::Empty);
    }
    if let Some(i) = t.find(':') {
        let e = &t[..i];
        if e.is_empty() || !e.bytes().all(|b| b.is_ascii_digit()) {
            return Err(VersionError::BadEpoch(v.to_string()));
        }
    }
    let p = split(t);
    if !p.upstream.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(VersionError::NoLeadingDigit(v.to_string()));
    }
    let ok = |c: char| c.is_ascii_alphanumeric() || ".+~-:".contains(c);
    if let Some(c) = p.upstream.chars().find(|&c| !ok(c)) {
        return Err(VersionError::BadChar(v.to_string(), c));
    }
    if let Some(c) = p
        .revision
        .chars()
        .find(|&c| !(ok(c) && c != '-' && c != ':'))
    {
        return Err(VersionError::BadChar(v.to_string(), c));
    }
    Ok(())
}

#[inline]
fn order(c: u8) -> i32 {
    if c.is_ascii_digit() {
        0
    } else if c.is_ascii_alphabetic() {
        c as i32
    } else if c == b'~' {
        -1
    } else if c != 0 {
        c as i32 + 256
    } else {
        0
    }
}

/// dpkg's `verrevcmp` on one part (upstream or revision).
fn verrevcmp(a: &[u8], b: &[u8]) -> Ordering {
    let at = |i: usize| a.get(i).copied().unwrap_or(0);
    let bt = |i: usize| b.get(i).copied().unwrap_or(0);
    let (mut i, mut j) = (0usize, 0usize);
    while i < a.len() || j < b.len() {
        let mut first_diff: i32 = 0;
        while (i < a.len() && !at(i).is_ascii_digit()) || (j < b.len() && !bt(j).is_ascii_digit()) {
            let ac = order(at(i));
            let bc = order(bt(j));
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        while at(i) == b'0' {
            i += 1;
        }
        while bt(j) == b'0' {
            j += 1;
        }
        while at(i).is_ascii_digit() && bt(j).is_ascii_digit() {
            if first_diff == 0 {
                first_diff = at(i) as i32 - bt(j) as i32;
            }
            i += 1;
            j += 1;
        }
        if at(i).is_ascii_digit() {
            return Ordering::Greater;
        }
        if bt(j).is_ascii_digit() {
            return Ordering::Less;
        }
        if first_diff != 0 {
            return first_diff.cmp(&0);
        }
    }
    Ordering::Equal
}

/// Compares two dpkg versions (`dpkg --compare-versions a lt b` ⇔ `compare(a, b) == Less`).
pub fn compare(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (pa, pb) = (split(a), split(b));
    pa.epoch
        .cmp(&pb.epoch)
        .then_with(|| verrevcmp(pa.upstream.as_bytes(), pb.upstream.as_bytes()))
        .then_with(|| verrevcmp(pa.revision.as_bytes(), pb.revision.as_bytes()))
}

/// An owned version with dpkg ordering, for maps and sorting.
#[derive(Debug, Clone, Eq)]
pub struct Version(pub String);

impl Version {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl PartialEq for Version {
    fn eq(&self, o: &Self) -> bool {
        compare(&self.0, &o.0) == Ordering::Equal
    }
}
impl PartialOrd for Version {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Version {
    fn cmp(&self, o: &Self) -> Ordering {
        compare(&self.0, &o.0)
    }
}
impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    #[test]
    fn dpkg_rules() {
        let cases = [
            ("1.0", "1.0", Equal),
            ("1.0~rc1", "1.0", Less),
            ("1.0", "1.0+b1", Less),
            ("1:0.1", "2.0", Greater),
            ("1.0-1", "1.0-1ubuntu1", Less),
            ("1.0", "1.0-0", Equal),
            ("1.00", "1.0", Equal),
            ("1.0a", "1.0+", Less),
            ("1.0~~", "1.0~", Less),
            ("1.0~", "1.0", Less),
            ("2.36-9+deb12u4", "2.36-9+deb12u10", Less),
            ("0:1.2", "1.2", Equal),
            ("1.2.3", "1.2.10", Less),
            ("7.88.1-10+deb12u5", "7.88.1-10", Greater),
        ];
        for (a, b, want) in cases {
            assert_eq!(compare(a, b), want, "{a} vs {b}");
            assert_eq!(compare(b, a), want.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn split_and_validate() {
        let p = split("2:1.2-3-4");
        assert_eq!((p.epoch, p.upstream, p.revision), (2, "1.2-3", "4"));
        assert!(validate("1.0-1").is_ok());
        assert!(matches!(validate(""), Err(VersionError::Empty)));
        assert!(matches!(
            validate("a1"),
            Err(VersionError::NoLeadingDigit(_))
        ));
        assert!(matches!(validate("x:1"), Err(VersionError::BadEpoch(_))));
        assert!(matches!(
            validate("1.0 2"),
            Err(VersionError::BadChar(_, ' '))
        ));
    }
}
