//! `opaas-engine`: the pipeline both front ends run — the CLI (`opaas build`) and the service
//! (`opaas serve`) — so they cannot drift apart:
//!
//! [`Settings`] → [`open`] a [`Session`] (distro, arch, mirrors, keyring, cache) → [`resolve`]
//! (indices loaded or fetched, baseline, apt's algorithm) → [`build`] (downloads into the
//! shared content-addressed cache, then the bundle). Progress is reported through
//! [`BuildProgress`]; errors carry a [`Kind`] that each front end maps to exit codes or HTTP
//! statuses.

pub mod collect;
mod error;
mod lock;
mod pipeline;
pub mod plan;
mod search;
mod session;
mod signed;

pub use error::{EngineError, Kind};
pub use lock::{build_locked, lock, parse_lock, Lock};
pub use opaas_bundle::{Manifest, PackageInfo};
pub use pipeline::{
    build, build_reusing, check_names, package_info, resolve, resolve_with, why, Baseline,
    BuildProgress, Built, IndexProgress, NoBuildProgress, NoReuse, Phase, Request, Resolved, Reuse,
};
pub use search::{search, search_counted, Hit, Hits};
pub use session::{mirror_trace, mirrors_for, open, Session, Settings};
pub use signed::{signed_archive, verify_bundle};
