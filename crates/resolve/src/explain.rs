//! Explanations: why each package is in the result, why a dependency is unmet, and the chain
//! from a package back to the request that pulled it in.
//!
//! The marking records reasons as ids ([`crate::depcache::Reason`]); this module turns them
//! into names and text, once, at the edge (apt's `--explain`-like `Debug::pkgDepCache::Marker`
//! output and the "but X is to be installed" lines of apt-private/private-output.cc).

use crate::depcache::{DepCache, Reason};
use crate::error::{AltProblem, Chain, PkgName, PkgVersion};
use crate::model::{DepGroup, Mode, PkgId, VerId, Which};
use serde::Serialize;
use std::collections::HashSet;

/// Why a package is in the result, rendered (names and relations as text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Why {
    Requested,
    Dependency {
        parent: String,
        field: &'static str,
        relation: String,
        /// How the chosen package answers the relation ("first alternative", "provides …"),
        /// empty when it is the only member.
        choice: String,
    },
    SameSource {
        sibling: String,
    },
    ConflictUpgrade {
        parent: String,
        field: &'static str,
        relation: String,
    },
    /// apt-get upgrade / dist-upgrade moves an installed package to its candidate.
    Upgrade,
}

impl std::fmt::Display for Why {
    /// One line: `requested`, `nginx 1.22 Depends: libc6 (>= 2.34) [first alternative]`, …
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Why::Requested => f.write_str("requested"),
            Why::Upgrade => f.write_str("upgrade"),
            Why::Dependency {
                parent,
                field,
                relation,
                choice,
            } => {
                write!(f, "{parent} {field}: {relation}")?;
                if !choice.is_empty() {
                    write!(f, " [{choice}]")?;
                }
                Ok(())
            }
            Why::SameSource { sibling } => {
                write!(f, "upgraded with {sibling} (same source package)")
            }
            Why::ConflictUpgrade {
                parent,
                field,
                relation,
            } => write!(f, "upgraded because {parent} {field}: {relation}"),
        }
    }
}

impl DepCache<'_> {
    pub(crate) fn pkg_name(&self, p: PkgId) -> PkgName {
        let p = &self.pkgs[p];
        PkgName {
            name: p.name.clone(),
            arch: (p.arch != self.native).then(|| p.arch.clone()),
        }
    }

    pub(crate) fn pkg_version(&self, v: VerId) -> PkgVersion {
        PkgVersion {
            name: self.pkg_name(self.vers[v].pkg),
            version: self.vers[v].version.clone(),
        }
    }

    /// `name[:arch] version`
    fn describe(&self, v: VerId) -> String {
        self.pkg_version(v).to_string()
    }

    /// The text of a reason.
    pub(crate) fn render(&self, r: Reason) -> Why {
        match r {
            Reason::Requested => Why::Requested,
            Reason::Upgrade => Why::Upgrade,
            Reason::Dependency { dep, choice } => {
                let g = self.group(dep);
                Why::Dependency {
                    parent: self.describe(dep.ver),
                    field: g.kind.field(),
                    relation: g.text(),
                    choice: self.choice(g, choice),
                }
            }
            Reason::SameSource { sibling } => Why::SameSource {
                sibling: self.describe(sibling),
            },
            Reason::ConflictUpgrade { parent, dep } => {
                let g = self.group(dep);
                Why::ConflictUpgrade {
                    parent: self.describe(parent),
                    field: g.kind.field(),
                    relation: g.text(),
                }
            }
        }
    }

    /// How `chosen` answers the or-group `g`.
    fn choice(&self, g: &DepGroup, chosen: VerId) -> String {
        let cp = &self.pkgs[self.vers[chosen].pkg];
        if g.alts.len() > 1 || g.alts.first().is_some_and(|a| a.name != cp.name) {
            let idx = g.alts.iter().position(|a| a.name == cp.name);
            match idx {
                Some(0) => "first alternative".to_string(),
                Some(i) => format!("alternative {} (earlier ones not installable)", i + 1),
                None => format!(
                    "provides {}",
                    g.alts
                        .iter()
                        .map(|a| a.name)
                        .collect::<Vec<_>>()
                        .join(" | ")
                ),
            }
        } else {
            String::new()
        }
    }

    /// Why each member of the unsatisfied or-group `g` of `v` does not help.
    pub(crate) fn why_unsatisfied(&mut self, v: VerId, g: &DepGroup) -> Vec<AltProblem> {
        let mut parts = Vec::new();
        for a in &g.alts {
            if g.kind.negative() {
                for s in self.alt_solutions(v, a, Which::Inst, true) {
                    let sp = self.vers[s].pkg;
                    parts.push(AltProblem::InConflict {
                        other: self.pkg_version(s),
                        wanted_by: self.chain(sp),
                    });
                }
                continue;
            }
            let arch = self.parent_arch(v);
            let tp = self.pkg(a.name, &arch);
            let avail: Vec<String> = self
                .u
                .versions(a.name, &arch)
                .iter()
                .map(|c| c.version.to_string())
                .collect();
            let cand = self.pkgs[tp].cand.map(|c| self.vers[c].version.clone());
            let alt = a.to_string();
            let why = if avail.is_empty() && self.providers(a.name).is_empty() {
                AltProblem::NoSuchPackage { alt }
            } else if let Some(candidate) = cand {
                let blocked = self.pkgs[tp].mode != Mode::Install;
                if a.cons
                    .as_ref()
                    .is_some_and(|(op, w)| !op.matches(&candidate, w))
                {
                    AltProblem::WrongCandidate { alt, candidate }
                } else if blocked {
                    AltProblem::Blocked { alt, candidate }
                } else {
                    AltProblem::Candidate { alt, candidate }
                }
            } else {
                AltProblem::NoInstallableVersion {
                    alt,
                    available: avail,
                }
            };
            parts.push(why);
        }
        parts
    }

    /// The chain of reasons from `p` back to a request (or as far as it goes).
    pub(crate) fn chain(&self, p: PkgId) -> Chain {
        let mut out = Chain::default();
        let mut cur = p;
        let mut seen = HashSet::new();
        while let Some(r) = self.pkgs[cur].reason {
            if !seen.insert(cur) {
                break;
            }
            let parent = match r {
                Reason::Upgrade => break,
                Reason::Requested => {
                    out.requested = true;
                    out.index = self.requested.iter().position(|&t| t == cur);
                    break;
                }
                Reason::Dependency { dep, .. } => dep.ver,
                Reason::ConflictUpgrade { parent, .. } => parent,
                Reason::SameSource { sibling } => sibling,
            };
            out.via.push(self.pkg_version(parent));
            cur = self.vers[parent].pkg;
        }
        out
    }
}
