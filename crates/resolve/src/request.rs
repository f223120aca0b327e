//! Request forms, as `apt-get install` accepts them: `pkg`, `pkg=VERSION`, `pkg/SUITE`,
//! `pkg:ARCH`, and combinations (`pkg:i386=1.0`).

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Request {
    pub name: String,
    pub arch: Option<String>,
    pub version: Option<String>,
    pub suite: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid request '{given}': {why}. Use pkg, pkg=VERSION, pkg/SUITE or pkg:ARCH with a Debian package name ([a-z0-9][a-z0-9+.-]+)")]
pub struct RequestError {
    pub given: String,
    pub why: &'static str,
}

impl Request {
    pub fn parse(s: &str) -> Result<Request, RequestError> {
        let err = |why| RequestError {
            given: s.to_string(),
            why,
        };
        let s = s.trim();
        if s.is_empty() {
            return Err(err("empty request"));
        }
        // apt: the last of '/' or '=' separates the selector
        let (head, version, suite) = match s.rfind(['/', '=']) {
            Some(i) if s.as_bytes()[i] == b'=' => (&s[..i], Some(&s[i + 1..]), None),
            Some(i) => (&s[..i], None, Some(&s[i + 1..])),
            None => (s, None, None),
        };
        let (name, arch) = match head.split_once(':') {
            Some((n, a)) => (n, Some(a)),
            None => (head, None),
        };
        if !opaas_deb::relation::is_valid_name(name) || name.bytes().any(|b| b.is_ascii_uppercase())
        {
            return Err(err("invalid package name"));
        }
        if let Some(a) = arch {
            if a.is_empty()
                || !a
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            {
                return Err(err("invalid architecture"));
            }
        }
        if let Some(v) = version {
            opaas_deb::version::validate(v).map_err(|_| err("invalid version"))?;
        }
        if let Some(r) = suite {
            if r.is_empty()
                || !r
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
            {
                return Err(err("invalid suite"));
            }
        }
        Ok(Request {
            name: name.to_string(),
            arch: arch.map(str::to_string),
            version: version.map(str::to_string),
            suite: suite.map(str::to_string),
        })
    }
}

impl std::fmt::Display for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)?;
        if let Some(a) = &self.arch {
            write!(f, ":{a}")?;
        }
        if let Some(v) = &self.version {
            write!(f, "={v}")?;
        }
        if let Some(s) = &self.suite {
            write!(f, "/{s}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let r = Request::parse("nginx/noble-updates").expect("suite");
        assert_eq!(
            (r.name.as_str(), r.suite.as_deref()),
            ("nginx", Some("noble-updates"))
        );
        let r = Request::parse("libc6:i386=2.36-9").expect("arch+ver");
        assert_eq!(
            (r.arch.as_deref(), r.version.as_deref()),
            (Some("i386"), Some("2.36-9"))
        );
        assert_eq!(r.to_string(), "libc6:i386=2.36-9");
        for bad in ["", "a", "Foo", "x;rm -rf", "jq=", "jq/", "jq:", "jq=abc"] {
            assert!(Request::parse(bad).is_err(), "{bad}");
        }
    }
}
