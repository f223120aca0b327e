//! `opaas-resolve`: computes exactly what `apt-get install` would download on a target.
//!
//! * [`request`]: the request forms apt accepts.
//! * [`baseline`]: what the target already has (`minimal`, `none`, a dpkg status file).
//! * [`solver`]: apt's classic marking algorithm, ported rule by rule.

pub mod baseline;
pub mod request;
pub mod solver;
pub mod suggest;

pub use baseline::Baseline;
pub use request::Request;
pub use solver::{resolve, Chosen, Options, Reason, Resolution, ResolveError};
