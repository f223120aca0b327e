//! `opaas-bundle`: turns a resolution and its downloaded .debs into the product, a tarball
//! that installs offline with one command.
//!
//! ```text
//! offline_pkg_<distro>_<arch>_<id>/
//!   install.sh      templates/install.sh.j2, rendered (preflight, apt from repo/ only, services)
//!   README.txt      templates/README.txt.j2, rendered (zh-CN and en)
//!   manifest.json   request, distro, arch, options, tool version, creation time, every package
//!   SHA256SUMS      every other file of the bundle
//!   repo/           flat APT repository: the .debs, Packages, Packages.gz, Release
//!   build.log       what was resolved and why
//! ```
//!
//! Determinism: the same resolution gives a byte-identical tarball. The id is a hash of the
//! resolution (distro, arch, request, options, every package's name/version/sha256); the time
//! recorded in the manifest, the Release file and every tar header is the date of the newest
//! signed Release the resolution was made from (not the wall clock); entries are written in a
//! fixed order with fixed owners and modes; gzip headers carry no time. The .debs are streamed
//! from the content-addressed cache into the archive: nothing is staged on disk, and the
//! tarball is written to a temp name and renamed when complete.

mod read;
mod render;
mod verify;
mod write;

pub use read::{open_archive, read_manifest, sha256_file, Archive, Manifest, ManifestOptions};
pub use render::{render_install_sh, render_readme};
pub use verify::{verify, VerifyReport};
pub use write::{bundle_file_name, bundle_id, write_bundle, write_bundle_with, Format, Written};

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// One resolved package as every front end shows it: the manifest's `packages`, the API's
/// preview and `opaas resolve --json` (re-exported by the engine). Fields are declared in
/// alphabetical order, the order the manifest has always had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageInfo {
    /// The package's own `Architecture` field: `all` stays `all`.
    pub arch: String,
    /// File name of the .deb (inside `repo/` in a bundle).
    pub filename: String,
    /// Installed-Size in KiB (0 if unknown).
    #[serde(default)]
    pub installed_size_kb: u64,
    pub name: String,
    /// `suite/component` it came from.
    pub pocket: String,
    /// SHA256 of the .deb, lowercase hex.
    pub sha256: String,
    /// Size of the .deb in bytes.
    pub size: u64,
    /// The version the target has, when this is an upgrade of an installed package.
    #[serde(default)]
    pub upgrade_from: Option<String>,
    pub version: String,
    /// Why it is included (`requested`, or the dependency that pulled it in).
    pub why: String,
}

/// One package of the bundle: what the manifest says of it, its index paragraph and its file.
#[derive(Debug, Clone)]
pub struct BundlePackage {
    pub info: PackageInfo,
    /// The index paragraph (its Filename is rewritten for the flat repository).
    pub stanza: String,
    /// The verified .deb in the cache.
    pub path: PathBuf,
}

impl std::ops::Deref for BundlePackage {
    type Target = PackageInfo;
    fn deref(&self) -> &PackageInfo {
        &self.info
    }
}

/// The distro a bundle targets, as install.sh checks it against /etc/os-release. (Fields in
/// alphabetical order, as in the manifest.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleDistro {
    pub codename: String,
    /// Catalog id, e.g. `debian-12`.
    pub id: String,
    /// os-release ID: `debian` or `ubuntu`.
    pub os_id: String,
}

/// Everything a bundle is made of.
#[derive(Debug, Clone)]
pub struct BundleInput {
    pub distro: BundleDistro,
    pub arch: String,
    pub request: Vec<String>,
    pub recommends: bool,
    pub baseline: String,
    pub packages: Vec<BundlePackage>,
    /// RFC 3339 UTC time recorded in the bundle (the newest Release date used).
    pub created: String,
    /// The same time as seconds since the epoch (tar headers).
    pub created_epoch: u64,
    /// The same time in RFC 2822 (`Sat, 11 Jul 2026 10:16:37 UTC`), for the repo's Release file.
    pub created_rfc2822: String,
    pub tool_version: String,
    pub build_log: String,
}

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no space left on the device holding {path}; free some space or choose another -o directory")]
    DiskFull { path: PathBuf },
    #[error("template {name}: {message}")]
    Template { name: &'static str, message: String },
    #[error("{0}")]
    Invalid(String),
}

pub(crate) fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> BundleError + '_ {
    move |source| {
        if source.kind() == std::io::ErrorKind::StorageFull {
            BundleError::DiskFull {
                path: path.to_path_buf(),
            }
        } else {
            BundleError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    }
}
