//! What the target already has installed.
//!
//! * `none`: nothing.
//! * `FILE`: a dpkg status file (`/var/lib/dpkg/status` of the target); stanzas whose Status is
//!   `install ok installed` (or `hold ok installed`) count.
//! * `minimal`: what `debootstrap --variant=minbase` / `mmdebstrap --variant=minbase` installs —
//!   every `Essential: yes` and `Priority: required` package plus `apt`, closed over
//!   Pre-Depends/Depends — at the versions of the release pocket (the oldest state a target of
//!   that release can be in, so a bundle carries every upgrade its packages need).

use opaas_deb::{paragraphs, parse_relations, Paragraph};
use opaas_repo::index::{relation_names, MARK_ESSENTIAL, MARK_REQUIRED, REF_FIELDS};
use opaas_repo::universe::Universe;
use std::collections::{BTreeMap, HashMap, HashSet};

/// One installed package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    pub name: String,
    pub arch: String,
    pub version: String,
    /// The full stanza (for Depends, Provides, Essential, Source, …).
    pub stanza: String,
}

/// The installed set, keyed by (name, arch).
#[derive(Debug, Clone, Default)]
pub struct Baseline {
    pub packages: BTreeMap<(String, String), Installed>,
    /// Names in the order the status file first references them (apt creates the packages
    /// only the status file knows after every index, in this order).
    refs: HashMap<String, usize>,
    /// Installed packages apt marked as automatically installed (/var/lib/apt/extended_states).
    auto: std::collections::HashSet<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("status file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("status file {0} has no installed package (expected stanzas with 'Status: install ok installed')")]
    Empty(String),
    #[error("cannot compute the minimal baseline: the release pocket '{0}' is not loaded")]
    NoReleasePocket(String),
}

impl Baseline {
    pub fn none() -> Baseline {
        Baseline::default()
    }

    /// Parses a dpkg status file's text (one pass over each stanza's fields).
    pub fn from_status(text: &str, native_arch: &str) -> Baseline {
        let mut packages = BTreeMap::new();
        let mut refs: HashMap<String, usize> = HashMap::new();
        let mut reference = |n: &[u8]| {
            if let Ok(n) = std::str::from_utf8(n) {
                if !refs.contains_key(n) {
                    let k = refs.len();
                    refs.insert(n.to_string(), k);
                }
            }
        };
        for p in paragraphs(text) {
            let (mut name, mut status, mut version, mut arch) = (None, "", None, None);
            let mut rel: [Option<&str>; REF_FIELDS.len()] = [None; REF_FIELDS.len()];
            for (f, v) in p.fields() {
                if f.eq_ignore_ascii_case("Package") {
                    name = Some(v);
                } else if f.eq_ignore_ascii_case("Status") {
                    status = v;
                } else if f.eq_ignore_ascii_case("Version") {
                    version = Some(v);
                } else if f.eq_ignore_ascii_case("Architecture") {
                    arch = Some(v);
                } else if let Some(k) = REF_FIELDS.iter().position(|r| r.eq_ignore_ascii_case(f)) {
                    rel[k] = Some(v);
                }
            }
            if let Some(n) = name {
                reference(n.as_bytes());
            }
            let w: Vec<&str> = status.split_whitespace().collect();
            if w.len() != 3
                || w[1] != "ok"
                || w[2] != "installed"
                || !(w[0] == "install" || w[0] == "hold")
            {
                continue;
            }
            let (Some(name), Some(version)) = (name, version) else {
                continue;
            };
            for (k, v) in rel.iter().enumerate() {
                if let Some(v) = v {
                    relation_names(v.as_bytes(), k == REF_FIELDS.len() - 1, &mut reference);
                }
            }
            let arch = match arch.unwrap_or("all") {
                "all" => native_arch,
                a => a,
            };
            packages.insert(
                (name.to_string(), arch.to_string()),
                Installed {
                    name: name.into(),
                    arch: arch.into(),
                    version: version.into(),
                    stanza: p.as_str().to_string(),
                },
            );
        }
        Baseline {
            packages,
            refs,
            auto: Default::default(),
        }
    }

    /// Reads apt's extended_states (`Package`, `Architecture`, `Auto-Installed: 1`): which
    /// installed packages are automatic, i.e. not roots of apt's autoremover.
    pub fn with_extended_states(mut self, text: &str, native_arch: &str) -> Baseline {
        for p in paragraphs(text) {
            if p.get("Auto-Installed").map(str::trim) != Some("1") {
                continue;
            }
            let Some(name) = p.get("Package") else {
                continue;
            };
            let arch = p.get("Architecture").unwrap_or(native_arch);
            self.auto
                .insert((name.trim().to_string(), arch.trim().to_string()));
        }
        self
    }

    /// Whether apt has the installed package marked automatic.
    pub fn is_auto(&self, name: &str, arch: &str) -> bool {
        self.auto.contains(&(name.to_string(), arch.to_string()))
    }

    /// The position of `name`'s first reference in the status file (see [`Baseline::refs`]).
    pub fn first_reference(&self, name: &str) -> Option<usize> {
        self.refs.get(name).copied()
    }

    pub fn from_status_file(
        path: &std::path::Path,
        native_arch: &str,
    ) -> Result<Baseline, BaselineError> {
        let text = std::fs::read_to_string(path).map_err(|source| BaselineError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let b = Self::from_status(&text, native_arch);
        if b.packages.is_empty() {
            return Err(BaselineError::Empty(path.display().to_string()));
        }
        Ok(b)
    }

    /// The minbase set of the release pocket `suite`.
    pub fn minimal(u: &Universe, suite: &str, extra: &[String]) -> Result<Baseline, BaselineError> {
        let arch = u.native_arch.clone();
        // the release pocket's paragraph for a name (highest version there)
        let in_release = |name: &str| -> Option<Paragraph<'_>> {
            let mut best: Option<opaas_repo::universe::PkgRef> = None;
            for r in u.named(name) {
                if u.source(r).suite == suite
                    && u.arch(r) == arch
                    && best.is_none_or(|b| {
                        opaas_deb::compare_versions(u.version(r), u.version(b)).is_gt()
                    })
                {
                    best = Some(r);
                }
            }
            best.map(|r| u.paragraph(r))
        };
        if !u.sources.iter().any(|s| s.suite == suite) {
            return Err(BaselineError::NoReleasePocket(suite.to_string()));
        }
        let mut todo: Vec<String> = Vec::new();
        let mut seen = HashSet::new();
        for r in u.marked(MARK_ESSENTIAL | MARK_REQUIRED) {
            if u.source(r).suite != suite || u.arch(r) != arch {
                continue;
            }
            todo.push(u.name(r).to_string());
        }
        todo.push("apt".to_string());
        todo.extend(extra.iter().cloned());
        todo.sort();
        todo.dedup();
        // the seed set is installed together: an or-group any of them satisfies needs nothing
        let mut seed: HashSet<String> = todo.iter().cloned().collect();
        // virtual names the seed provides (base-files Pre-Depends awk: mawk, required, provides it)
        for n in todo.clone() {
            if let Some(p) = in_release(&n) {
                if let Ok(provs) = parse_relations(p.get("Provides").unwrap_or("")) {
                    seed.extend(provs.into_iter().flatten().map(|a| a.name.to_string()));
                }
            }
        }
        let mut packages = BTreeMap::new();
        while let Some(n) = todo.pop() {
            if !seen.insert(n.clone()) {
                continue;
            }
            let Some(p) = in_release(&n) else { continue };
            let version = p.get("Version").unwrap_or("").to_string();
            for field in ["Pre-Depends", "Depends"] {
                let Ok(groups) = parse_relations(p.get(field).unwrap_or("")) else {
                    continue;
                };
                for g in groups {
                    // debootstrap-like: keep a group satisfied by something already chosen,
                    // else the first alternative that exists (real package or provider)
                    if g.iter().any(|a| {
                        seed.contains(a.name)
                            || seen.contains(a.name)
                            || todo.iter().any(|t| t == a.name)
                    }) {
                        continue;
                    }
                    if let Some(a) = g.iter().find(|a| in_release(a.name).is_some()) {
                        todo.push(a.name.to_string());
                    } else if let Some(a) = g.first() {
                        if let Some(&pr) = u
                            .providers(a.name)
                            .iter()
                            .find(|&&r| u.source(r).suite == suite)
                        {
                            todo.push(u.name(pr).to_string());
                        }
                    }
                }
            }
            let mut stanza = p.as_str().to_string();
            stanza.push_str("\nStatus: install ok installed");
            packages.insert(
                (n.clone(), arch.clone()),
                Installed {
                    name: n,
                    arch: arch.clone(),
                    version,
                    stanza,
                },
            );
        }
        Ok(Baseline {
            packages,
            refs: HashMap::new(),
            auto: Default::default(),
        })
    }

    /// Renders the baseline as a dpkg status file (for apt in a private root, dose, …).
    pub fn to_status(&self) -> String {
        let mut s = String::new();
        for i in self.packages.values() {
            let p = Paragraph::new(&i.stanza);
            for (k, v) in p.fields() {
                if k == "Status"
                    || matches!(
                        k,
                        "Filename" | "Size" | "MD5sum" | "SHA256" | "SHA1" | "Description-md5"
                    )
                {
                    continue;
                }
                s.push_str(k);
                s.push_str(": ");
                s.push_str(v);
                s.push('\n');
                if k == "Package" {
                    s.push_str("Status: install ok installed\n");
                }
            }
            s.push('\n');
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extended_states_mark_installed_packages_automatic() {
        let status = "Package: a\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\n\nPackage: b\nStatus: install ok installed\nArchitecture: all\nVersion: 1\n";
        let ext = "Package: a\nArchitecture: amd64\nAuto-Installed: 1\n\nPackage: b\nAuto-Installed: 0\n\nPackage: c\nAuto-Installed: 1\n";
        let b = Baseline::from_status(status, "amd64").with_extended_states(ext, "amd64");
        assert!(b.is_auto("a", "amd64"));
        assert!(!b.is_auto("b", "amd64"));
        // no Architecture: the native one (older apt wrote none)
        assert!(b.is_auto("c", "amd64"));
        assert!(!b.is_auto("a", "arm64"));
    }
}
