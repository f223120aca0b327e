//! `opaas-repo`: reading Debian and Ubuntu archives with apt's level of trust.
pub mod catalog;
pub mod config;
pub mod http;
pub mod index;
pub mod keyrings;
pub mod mirrors;
pub mod release;
pub mod sig;
pub mod store;
pub mod universe;
