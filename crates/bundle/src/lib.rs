//! `opaas-bundle`: turns a resolution and its downloaded .debs into the product, a tarball
//! that installs offline with one command.
//!
//! ```text
//! offline_pkg_<distro>_<arch>_<id>/
//!   install.sh      templates/install.sh.j2, rendered (preflight, apt from repo/ only, services)
//!   README.txt      templates/README.txt.j2, rendered (zh-CN and en)
//!   manifest.json   request, distro, arch, options, tool version, creation time, every package
//!   sbom.cdx.json   CycloneDX 1.6 SBOM: a component per .deb (purl, SHA-256, source), the
//!                   dependency edges of the resolution
//!   SHA256SUMS      every other file of the bundle
//!   archive/        (signed bundles, the default) the distribution's own archive, unmodified:
//!                   dists/<suite>/InRelease (or Release + Release.gpg), the compressed
//!                   Packages indices it lists, and the .debs at their pool/ paths
//!   keyring/        (signed bundles of a mirror given with --keyring) that keyring
//!   repo/           (unsigned bundles) flat APT repository: the .debs, Packages, Packages.gz, Release
//!   build.log       what was resolved and why
//! ```
//!
//! A signed bundle lets the target's own apt check the distribution's signature chain
//! (InRelease → Packages → .deb) with the target's own archive keyring: nobody has to trust
//! OPaaS, the mirror or the transfer (docs/SECURITY.md).
//!
//! Determinism: the same resolution gives a byte-identical tarball. The id is a hash of the
//! resolution (distro, arch, request, options, every package's name/version/sha256); the time
//! recorded in the manifest, the Release file and every tar header is the date of the newest
//! signed Release the resolution was made from (not the wall clock); entries are written in a
//! fixed order with fixed owners and modes; gzip headers carry no time. The .debs are streamed
//! from the content-addressed cache into the archive: nothing is staged on disk, and the
//! tarball is written to a temp name and renamed when complete.

mod pagecache;
mod read;
mod render;
mod sbom;
mod verify;
mod write;

pub use read::{
    digest_file_path, open_archive, read_head_members, read_manifest, recorded_digest, sha256_file,
    write_digest_file, Archive, Manifest, ManifestArchive, ManifestOptions, ManifestSuite,
};
pub use render::{render_install_sh, render_readme};
pub use sbom::{purl, sbom_json};
pub use verify::{verify, verify_with, SignatureChecker, SuiteCheck, VerifyReport};
pub use write::{
    bundle_file_name, bundle_id, write_bundle, write_bundle_streaming, write_bundle_with, Format,
    Written,
};

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
    /// Its `Filename` in the archive (`pool/main/h/hello/hello_1.0_amd64.deb`): where a signed
    /// bundle keeps it, under `archive/`.
    pub pool_path: String,
}

/// The distribution's own signed archive, as a signed bundle ships it (unmodified).
#[derive(Debug, Clone)]
pub struct SignedArchive {
    /// Every suite a package comes from, in the catalog's order.
    pub suites: Vec<ArchiveSuite>,
    /// The keyring apt on the target checks the signatures with.
    pub keyring: KeyringSource,
}

/// Which keyring the target's apt is given (`signed-by=`).
#[derive(Debug, Clone)]
pub enum KeyringSource {
    /// The target's own archive keyring file (`/usr/share/keyrings/debian-archive-keyring.gpg`)
    /// and the package that installs it.
    Target { path: String, package: String },
    /// Keyring files shipped in the bundle under `keyring/` (a mirror signed by another key,
    /// given with `--keyring`): (file name, bytes).
    Shipped(Vec<(String, Vec<u8>)>),
}

/// One suite of a signed archive.
#[derive(Debug, Clone)]
pub struct ArchiveSuite {
    /// The directory under `dists/` (`bookworm-security`).
    pub suite: String,
    /// Components whose indices are shipped (the sources line lists them).
    pub components: Vec<String>,
    /// Architectures whose indices are shipped.
    pub arches: Vec<String>,
    /// (path under `dists/<suite>/`, bytes): `InRelease` (or `Release` + `Release.gpg`) and
    /// the compressed indices, exactly as the mirror served them.
    pub files: Vec<(String, Vec<u8>)>,
    /// The key that signed it: fingerprint, then the user id when known.
    pub signed_by: String,
    /// `Date` and `Valid-Until` of the signed Release (RFC 2822), if any.
    pub date: Option<String>,
    pub valid_until: Option<String>,
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

/// One host's plan in a fleet upgrade bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostPlan {
    /// The host name the collect script recorded.
    pub host: String,
    /// SHA256 (lowercase hex) of `assumed`, sorted bytewise, one entry per line, each line
    /// ending in a newline: install.sh computes the same from dpkg to find this plan when the
    /// host name changed.
    pub digest: String,
    /// `name:arch=version` of every package the plan assumes installed (drift check).
    pub assumed: Vec<String>,
    /// The file names (in `repo/`) of the .debs this plan installs.
    pub files: Vec<String>,
    /// Installed packages this plan removes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
}

impl HostPlan {
    /// The digest of an `assumed` list (see [`HostPlan::digest`]).
    pub fn digest_of(assumed: &[String]) -> String {
        use sha2::{Digest, Sha256};
        let mut v: Vec<&String> = assumed.iter().collect();
        v.sort();
        let mut h = Sha256::new();
        for a in v {
            h.update(a.as_bytes());
            h.update(b"\n");
        }
        hex::encode(h.finalize())
    }
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
    /// Installed packages apt's plan removes (apt's answer on the target's status).
    pub remove: Vec<String>,
    /// `install` (a first install), `upgrade` or `full-upgrade` (apt-get upgrade /
    /// dist-upgrade of a collected system: install.sh runs that instead of install).
    pub mode: String,
    /// Upgrade bundles: `name:arch=version` of every package the plan assumes installed.
    pub assumed: Vec<String>,
    /// Upgrade bundles: the host name of the collected system (empty otherwise; a fleet
    /// bundle names its hosts in `hosts`).
    pub host: String,
    /// Fleet upgrade bundles (several collected systems, one bundle): each host's own plan.
    /// `packages` is then the union of the plans; install.sh picks the plan of the machine it
    /// runs on (by host name, else by the digest of its installed packages) and gives apt only
    /// that plan's packages. Empty for every other bundle.
    pub hosts: Vec<HostPlan>,
    /// Upgrade bundles: `exclude` when the plan kept Ubuntu's phased updates back (install.sh
    /// then tells the target's apt to do the same), else `include`.
    pub phased: String,
    /// RFC 3339 UTC time recorded in the bundle (the newest Release date used).
    pub created: String,
    /// The same time as seconds since the epoch (tar headers).
    pub created_epoch: u64,
    /// The same time in RFC 2822 (`Sat, 11 Jul 2026 10:16:37 UTC`), for the repo's Release file.
    pub created_rfc2822: String,
    pub tool_version: String,
    pub build_log: String,
    /// `Some`: a signed bundle (the archive's own signed files); `None`: the flat, unsigned
    /// repository of earlier versions (`--unsigned`).
    pub archive: Option<SignedArchive>,
    /// SHA256 of the `opaas.lock` a locked build was made from (recorded in the manifest and
    /// the SBOM).
    pub lock_sha256: Option<String>,
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
