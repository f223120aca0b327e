//! Why a request cannot be resolved, as data: the request entry (0-based `index`), the package,
//! and for an unsatisfiable request the dependency that breaks with the chain of why each side
//! was wanted. `Display` renders the text apt users expect; front ends read the fields.

use crate::model::DepKind;
use std::fmt;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ResolveError {
    #[error("unknown package '{name}' for {arch}{hint}")]
    UnknownPackage {
        /// The request entry (0-based).
        index: usize,
        name: String,
        arch: String,
        /// " (did you mean …?)", from [`crate::suggest::hint`]; may be empty.
        hint: String,
    },
    #[error("package '{name}' is a virtual package provided by: {}. Ask for one of them explicitly", .providers.join(", "))]
    VirtualPackage {
        index: usize,
        name: String,
        /// The providing packages, sorted.
        providers: Vec<String>,
    },
    #[error("version '{version}' of '{name}' is not available; available: {}", .available.join(", "))]
    UnknownVersion {
        index: usize,
        name: String,
        version: String,
        /// The versions that exist, highest first.
        available: Vec<String>,
    },
    #[error("'{name}' has no version in suite '{suite}'; available: {}", render_suites(.available))]
    UnknownSuite {
        index: usize,
        name: String,
        suite: String,
        /// (version, suites publishing it), highest version first.
        available: Vec<(String, Vec<String>)>,
    },
    #[error("the request cannot be satisfied:\n{0}")]
    Unsatisfiable(Unsatisfiable),
    /// apt's own solver gives up (e.g. ResolveByKeep loops); apt fails the same way.
    #[error("apt's solver gives up: {0}")]
    Internal(String),
}

fn render_suites(a: &[(String, Vec<String>)]) -> String {
    a.iter()
        .map(|(v, s)| format!("{v} ({})", s.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}

impl ResolveError {
    /// The request entry (0-based) the error is about: the entry itself for a bad entry, the
    /// entry at the root of the first broken chain for an unsatisfiable request.
    pub fn index(&self) -> Option<usize> {
        match self {
            ResolveError::UnknownPackage { index, .. }
            | ResolveError::VirtualPackage { index, .. }
            | ResolveError::UnknownVersion { index, .. }
            | ResolveError::UnknownSuite { index, .. } => Some(*index),
            ResolveError::Unsatisfiable(u) => u.problems.iter().find_map(Problem::index),
            ResolveError::Internal(_) => None,
        }
    }

    /// The package the error is about: the name asked for, or the first package left broken.
    pub fn package(&self) -> Option<&str> {
        match self {
            ResolveError::UnknownPackage { name, .. }
            | ResolveError::VirtualPackage { name, .. }
            | ResolveError::UnknownVersion { name, .. }
            | ResolveError::UnknownSuite { name, .. } => Some(name),
            ResolveError::Unsatisfiable(u) => u.problems.first().map(Problem::package),
            ResolveError::Internal(_) => None,
        }
    }
}

/// What is left broken after marking and apt's problem resolver (see
/// [`crate::problem`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsatisfiable {
    pub problems: Vec<Problem>,
}

impl fmt::Display for Unsatisfiable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A requested package could not be marked for installation.
    NotInstallable {
        /// The request entry (0-based).
        index: usize,
        package: PkgName,
    },
    /// A package to be installed has a dependency (or conflict) left unsatisfied.
    Broken(Broken),
}

impl Problem {
    pub fn index(&self) -> Option<usize> {
        match self {
            Problem::NotInstallable { index, .. } => Some(*index),
            Problem::Broken(b) => b.wanted_by.index,
        }
    }
    pub fn package(&self) -> &str {
        match self {
            Problem::NotInstallable { package, .. } => &package.name,
            Problem::Broken(b) => &b.package.name.name,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::NotInstallable { package, .. } => write!(f, "  {package} cannot be installed"),
            Problem::Broken(b) => write!(f, "{b}"),
        }
    }
}

/// `package version` has `kind: relation` unsatisfied; each member of the or-group says why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    pub package: PkgVersion,
    pub kind: DepKind,
    /// The or-group as written.
    pub relation: String,
    /// Why the broken package is to be installed.
    pub wanted_by: Chain,
    pub alternatives: Vec<AltProblem>,
}

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "  {} {} {}{}\n    ",
            self.package, self.kind, self.relation, self.wanted_by
        )?;
        for (i, a) in self.alternatives.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{a}")?;
        }
        Ok(())
    }
}

/// Why one member of a broken or-group does not help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AltProblem {
    /// (Conflicts/Breaks) `other` matches and is to be installed, wanted by `wanted_by`.
    InConflict { other: PkgVersion, wanted_by: Chain },
    /// Neither a package nor a provided name.
    NoSuchPackage { alt: String },
    /// The candidate does not satisfy the version constraint.
    WrongCandidate { alt: String, candidate: String },
    /// The candidate satisfies it but could not be marked.
    Blocked { alt: String, candidate: String },
    /// The candidate is marked (the group fails for another member or architecture).
    Candidate { alt: String, candidate: String },
    /// Versions exist but none is a candidate.
    NoInstallableVersion { alt: String, available: Vec<String> },
}

impl fmt::Display for AltProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AltProblem::InConflict { other, wanted_by } => {
                write!(f, "but {other} is to be installed{wanted_by}")
            }
            AltProblem::NoSuchPackage { alt } => write!(f, "{alt}: no such package in the indices"),
            AltProblem::WrongCandidate { alt, candidate } => {
                write!(f, "{alt}: candidate is {candidate}")
            }
            AltProblem::Blocked { alt, candidate } => write!(
                f,
                "{alt}: {candidate} cannot be installed (it conflicts with or breaks something chosen)"
            ),
            AltProblem::Candidate { alt, candidate } => write!(f, "{alt}: {candidate}"),
            AltProblem::NoInstallableVersion { alt, available } => write!(
                f,
                "{alt}: no installable version (available: {})",
                available.join(", ")
            ),
        }
    }
}

/// A package name, with its architecture when that is not the native one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkgName {
    pub name: String,
    /// `None` for the native architecture.
    pub arch: Option<String>,
}

impl fmt::Display for PkgName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(a) = &self.arch {
            write!(f, ":{a}")?;
        }
        Ok(())
    }
}

/// A package version: `name[:arch] version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkgVersion {
    pub name: PkgName,
    pub version: String,
}

impl fmt::Display for PkgVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name, self.version)
    }
}

/// Why a package is to be installed, nearest reason first: `via[0]` pulled it in, `via[1]`
/// pulled `via[0]` in, …, up to a request when `requested`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chain {
    pub via: Vec<PkgVersion>,
    /// The chain ends at a package on the command line.
    pub requested: bool,
    /// That request entry (0-based).
    pub index: Option<usize>,
}

impl fmt::Display for Chain {
    /// ` (via X <- Y <- requested)`, or nothing for an empty chain.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.via.is_empty() && !self.requested {
            return Ok(());
        }
        f.write_str(" (via ")?;
        for (i, v) in self.via.iter().enumerate() {
            if i > 0 {
                f.write_str(" <- ")?;
            }
            write!(f, "{v}")?;
        }
        if self.requested {
            if !self.via.is_empty() {
                f.write_str(" <- ")?;
            }
            f.write_str("requested")?;
        }
        f.write_str(")")
    }
}
