//! `opaas-resolve`: computes exactly what `apt-get install` would download on a target.
//!
//! * [`request`]: the request forms apt accepts.
//! * [`baseline`]: what the target already has (`minimal`, `none`, a dpkg status file).
//! * apt's classic solver, one module per apt function: `model` (the cache,
//!   pkgcachegen.cc), `depcache` (pkgDepCache and MarkInstall, depcache.cc), `candidates`
//!   (policy and CompareProviders), `cacheset` (apt-get's request handling), `problem` (the
//!   broken check), `resolver` (pkgProblemResolver), `upgrade` (apt-get upgrade / dist-upgrade), [`explain`] (reasons and chains as text).
//!   docs/apt-semantics.md has the apt source references.

mod autoremove;
pub mod baseline;
mod cacheset;
mod candidates;
mod depcache;
pub mod error;
pub mod explain;
mod model;
mod problem;
pub mod request;
mod resolution;
mod resolver;
pub mod suggest;
mod upgrade;

pub use baseline::Baseline;
pub use cacheset::{resolve, resolve_upgrade};
pub use depcache::Options;
pub use error::{ResolveError, Unsatisfiable};
pub use explain::Why;
pub use model::DepKind;
pub use request::Request;
pub use resolution::{Chosen, KeptBack, Resolution};
pub use upgrade::{Phased, UpgradeMode};
