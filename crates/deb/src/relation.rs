//! Relation fields (Depends, Pre-Depends, Recommends, Conflicts, Breaks, Provides, …).
//!
//! `a (>= 1) | b:any, c [amd64] <!nocheck>` parses into and-groups of or-alternatives. Arch
//! restrictions (`[amd64 !i386]`) are kept and evaluated with [`Relation::applies_to`]; build
//! profiles (`<…>`) are ignored, as they are for binary packages.

use std::fmt;

/// A version comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<<",
            Op::Le => "<=",
            Op::Eq => "=",
            Op::Ge => ">=",
            Op::Gt => ">>",
        }
    }

    /// Does `have` satisfy `have OP want`?
    pub fn matches(self, have: &str, want: &str) -> bool {
        use std::cmp::Ordering::*;
        let c = crate::version::compare(have, want);
        match self {
            Op::Lt => c == Less,
            Op::Le => c != Greater,
            Op::Eq => c == Equal,
            Op::Ge => c != Less,
            Op::Gt => c == Greater,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One alternative: `name[:arch] [(op version)] [[arch list]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation<'a> {
    pub name: &'a str,
    /// Architecture qualifier after `:` (`any`, `native`, or an architecture name).
    pub arch: Option<&'a str>,
    pub constraint: Option<(Op, &'a str)>,
    /// Raw architecture restriction list, without brackets.
    pub arches: Option<&'a str>,
}

impl Relation<'_> {
    /// Does the architecture restriction (if any) include `arch`?
    pub fn applies_to(&self, arch: &str) -> bool {
        let Some(list) = self.arches else {
            return true;
        };
        let mut any_positive = false;
        let mut matched_positive = false;
        for a in list.split_whitespace() {
            if let Some(neg) = a.strip_prefix('!') {
                if arch_matches(neg, arch) {
                    return false;
                }
            } else {
                any_positive = true;
                matched_positive |= arch_matches(a, arch);
            }
        }
        !any_positive || matched_positive
    }

    /// Does a package version `v` satisfy this relation's version constraint?
    pub fn version_matches(&self, v: &str) -> bool {
        self.constraint.is_none_or(|(op, want)| op.matches(v, want))
    }
}

/// Debian architecture wildcard matching (`any`, `linux-any`, `any-amd64`, or the name).
pub fn arch_matches(pattern: &str, arch: &str) -> bool {
    pattern == arch
        || pattern == "any"
        || pattern == "linux-any"
        || pattern == format!("any-{arch}")
}

impl fmt::Display for Relation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)?;
        if let Some(a) = self.arch {
            write!(f, ":{a}")?;
        }
        if let Some((op, v)) = self.constraint {
            write!(f, " ({op} {v})")?;
        }
        if let Some(a) = self.arches {
            write!(f, " [{a}]")?;
        }
        Ok(())
    }
}

/// A relation field that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot parse relation '{text}': {why}")]
pub struct RelationError {
    pub text: String,
    pub why: &'static str,
}

/// An and-list of or-groups.
pub type Relations<'a> = Vec<Vec<Relation<'a>>>;

/// Parses a relation field. Empty groups (`a, , b`, trailing commas) are skipped as dpkg does.
pub fn parse_relations(s: &str) -> Result<Relations<'_>, RelationError> {
    let mut out = Vec::new();
    for group in s.split(',') {
        if group.trim().is_empty() {
            continue;
        }
        let mut alts = Vec::with_capacity(1);
        for alt in group.split('|') {
            alts.push(parse_one(alt)?);
        }
        out.push(alts);
    }
    Ok(out)
}

/// Parses a single relation (`name[:arch] [(op ver)] [[arches]] [<profiles>]`).
pub fn parse_one(s: &str) -> Result<Relation<'_>, RelationError> {
    let err = |why| RelationError {
        text: s.trim().to_string(),
        why,
    };
    let t = s.trim_start();
    let name_end = t
        .find(|c: char| c.is_whitespace() || c == '(' || c == '[' || c == '<')
        .unwrap_or(t.len());
    let full = &t[..name_end];
    if full.is_empty() {
        return Err(err("missing package name"));
    }
    let (name, arch) = match full.split_once(':') {
        Some((n, a)) if !a.is_empty() => (n, Some(a)),
        Some(_) => return Err(err("empty architecture qualifier")),
        None => (full, None),
    };
    if !name
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.' | b'_'))
    {
        return Err(err("invalid package name"));
    }
    let mut rest = t[name_end..].trim_start();
    let mut constraint = None;
    let mut arches = None;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('(') {
            let close = r.find(')').ok_or_else(|| err("unclosed '('"))?;
            let inner = r[..close].trim();
            let op_len = inner
                .find(|c: char| !matches!(c, '<' | '>' | '='))
                .unwrap_or(inner.len());
            let op = match &inner[..op_len] {
                "<<" => Op::Lt,
                "<=" | "<" => Op::Le,
                "=" => Op::Eq,
                ">=" | ">" => Op::Ge,
                ">>" => Op::Gt,
                _ => return Err(err("unknown version operator")),
            };
            let v = inner[op_len..].trim();
            if v.is_empty() {
                return Err(err("missing version"));
            }
            constraint = Some((op, v));
            rest = r[close + 1..].trim_start();
        } else if let Some(r) = rest.strip_prefix('[') {
            let close = r.find(']').ok_or_else(|| err("unclosed '['"))?;
            arches = Some(r[..close].trim());
            rest = r[close + 1..].trim_start();
        } else if let Some(r) = rest.strip_prefix('<') {
            let close = r.find('>').ok_or_else(|| err("unclosed '<'"))?;
            rest = r[close + 1..].trim_start();
        } else {
            return Err(err("unexpected text after package name"));
        }
    }
    Ok(Relation {
        name,
        arch,
        constraint,
        arches,
    })
}

/// Debian policy §5.6.1: `[a-z0-9][a-z0-9+.-]+` (apt also accepts upper case in some indices;
/// we accept it too but never produce it).
pub fn is_valid_name(n: &str) -> bool {
    let b = n.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_groups() {
        let r = parse_relations("libc6 (>= 2.34), a | b:any (<< 2~), c [amd64 !i386] <!nocheck>,")
            .unwrap_or_default();
        assert_eq!(r.len(), 3);
        assert_eq!(r[0][0].name, "libc6");
        assert_eq!(r[0][0].constraint, Some((Op::Ge, "2.34")));
        assert_eq!(r[1].len(), 2);
        assert_eq!(r[1][1].arch, Some("any"));
        assert_eq!(r[1][1].constraint, Some((Op::Lt, "2~")));
        assert_eq!(r[2][0].arches, Some("amd64 !i386"));
        assert!(r[2][0].applies_to("amd64"));
        assert!(!r[2][0].applies_to("i386"));
        assert!(!r[2][0].applies_to("arm64"));
        assert_eq!(r[1][1].to_string(), "b:any (<< 2~)");
    }

    #[test]
    fn multiline_and_legacy_ops() {
        let r = parse_relations("a (<1),\n b (> 2)").unwrap_or_default();
        assert_eq!(r[0][0].constraint, Some((Op::Le, "1")));
        assert_eq!(r[1][0].constraint, Some((Op::Ge, "2")));
        assert!(parse_relations("a (~ 1)").is_err());
        assert!(parse_relations("(>= 1)").is_err());
        assert!(parse_relations("a (>= 1").is_err());
        assert!(parse_relations("").unwrap_or_default().is_empty());
    }

    #[test]
    fn negated_only_list() {
        let r = parse_one("x [!arm64]").expect("parses");
        assert!(r.applies_to("amd64"));
        assert!(!r.applies_to("arm64"));
    }

    #[test]
    fn op_matching() {
        assert!(Op::Ge.matches("2.36-9", "2.34"));
        assert!(!Op::Lt.matches("1.0", "1.0"));
        assert!(Op::Le.matches("1.0", "1.0"));
        assert!(Op::Eq.matches("1.0-0", "1.0"));
    }

    #[test]
    fn names() {
        assert!(is_valid_name("libstdc++6"));
        assert!(is_valid_name("g++-12"));
        assert!(!is_valid_name("a"));
        assert!(!is_valid_name("-x"));
        assert!(!is_valid_name("a b"));
        assert!(!is_valid_name("a;rm"));
    }
}
