//! Reading bundles: [`open_archive`] (a `.tar.gz` or `.tar.zst`, told apart by its magic
//! bytes), the typed [`Manifest`] and the SHA256 of a file. `verify` and the service read
//! bundles only through these.

use crate::pagecache::{advise, mostly_cached, Advice};
use crate::{io_err, BundleDistro, BundleError, PackageInfo};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{self, BufRead, Read};
use std::path::Path;

/// The largest manifest accepted (a bundle of thousands of packages has a few MB).
const MAX_MANIFEST: u64 = 64 << 20;

/// `manifest.json` of a bundle. Fields are declared in alphabetical order: the file's bytes stay
/// what they were when it was written from a JSON map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Signed bundles: the suites shipped unmodified and the keyring that checks them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<ManifestArchive>,
    /// The bundle's architecture (the target's).
    pub arch: String,
    /// RFC 3339 UTC: the date of the newest package list the bundle was made from.
    pub created: String,
    pub distro: BundleDistro,
    /// Sum of the .deb sizes.
    pub download_size: u64,
    /// The manifest format (1).
    pub format: u32,
    pub id: String,
    /// Sum of the packages' Installed-Size, KiB.
    pub installed_size_kb: u64,
    /// SHA256 of the `opaas.lock` of a locked build (`opaas build --locked`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_sha256: Option<String>,
    pub options: ManifestOptions,
    pub package_count: usize,
    pub packages: Vec<PackageInfo>,
    /// Installed packages apt's plan removes (install.sh shows them and needs --force).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
    /// `install`, `upgrade` or `full-upgrade`.
    #[serde(default = "install_mode", skip_serializing_if = "is_install")]
    pub mode: String,
    /// Upgrade bundles: `name:arch=version` the plan assumes installed (drift check).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assumed: Vec<String>,
    /// Upgrade bundles: the collected host.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host: String,
    /// Fleet upgrade bundles: each host's plan (its index is `repo/plans/<n>/`, n from 1).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<crate::HostPlan>,
    /// The request as given (`pkg`, `pkg:ARCH`).
    pub request: Vec<String>,
    /// `opaas <version>`
    pub tool: String,
}

/// What a signed bundle's `archive/` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestArchive {
    /// The keyring install.sh gives apt: a path on the target, or `keyring/…` in the bundle.
    pub keyring: Vec<String>,
    pub suites: Vec<ManifestSuite>,
}

/// One suite of a signed bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestSuite {
    pub components: Vec<String>,
    /// `Date` of the signed Release (RFC 2822).
    pub date: Option<String>,
    /// The key that signed it when the bundle was built: fingerprint and user id.
    pub signed_by: String,
    pub suite: String,
    /// `Valid-Until` of the signed Release (RFC 2822); install.sh tells apt not to check it
    /// (docs/SECURITY.md).
    pub valid_until: Option<String>,
}

fn install_mode() -> String {
    "install".into()
}

fn is_install(m: &String) -> bool {
    m == "install"
}

/// The options a bundle was resolved with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestOptions {
    /// `minimal`, `none` or `status-file`.
    pub baseline: String,
    pub recommends: bool,
}

impl Manifest {
    /// The manifest as it is stored in a bundle (pretty JSON).
    pub fn to_json(&self) -> Result<Vec<u8>, BundleError> {
        serde_json::to_vec_pretty(self).map_err(|e| BundleError::Invalid(e.to_string()))
    }
    /// Parses a `manifest.json`.
    pub fn from_json(data: &[u8]) -> Result<Manifest, serde_json::Error> {
        serde_json::from_slice(data)
    }
}

/// A bundle tarball opened for reading: its tar entries, decompressed.
pub type Archive = tar::Archive<Box<dyn Read>>;

/// Opens a `.tar.gz` or `.tar.zst` (by its magic bytes, not its name).
pub fn open_archive(path: &Path) -> Result<Archive, BundleError> {
    let f = std::fs::File::open(path).map_err(io_err(path))?;
    archive_from(path, f)
}

/// [`open_archive`] over a reader of the file at `path` (named in errors).
pub(crate) fn archive_from(path: &Path, f: impl Read + 'static) -> Result<Archive, BundleError> {
    let mut r = io::BufReader::with_capacity(1 << 20, f);
    let magic = r
        .fill_buf()
        .map_err(io_err(path))?
        .get(..4)
        .map(<[u8]>::to_vec)
        .unwrap_or_default();
    let reader: Box<dyn Read> = if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::GzDecoder::new(r))
    } else if magic == [0x28, 0xb5, 0x2f, 0xfd] {
        Box::new(zstd::stream::read::Decoder::with_buffer(r).map_err(io_err(path))?)
    } else {
        return Err(BundleError::Invalid(format!(
            "{}: not a .tar.gz or .tar.zst file",
            path.display()
        )));
    };
    Ok(tar::Archive::new(reader))
}

/// The `<top>/manifest.json` of a bundle tarball, parsed.
pub fn read_manifest(path: &Path) -> Result<Manifest, BundleError> {
    let [json] = read_head_members(path, ["manifest.json"])?;
    let Some(buf) = json else {
        return Err(BundleError::Invalid(format!(
            "{}: the bundle has no manifest.json",
            path.display()
        )));
    };
    Manifest::from_json(&buf)
        .map_err(|e| BundleError::Invalid(format!("{}: manifest.json: {e}", path.display())))
}

/// The small `<top>/NAME` members of a bundle tarball (manifest.json, sbom.cdx.json, …: at
/// most 64 MiB each), read from the front of the archive: decompression stops once all are
/// found, and these are among the first members a bundle has.
pub fn read_head_members<const N: usize>(
    path: &Path,
    names: [&str; N],
) -> Result<[Option<Vec<u8>>; N], BundleError> {
    let mut ar = open_archive(path)?;
    let bad =
        |e: io::Error| BundleError::Invalid(format!("{}: corrupt archive: {e}", path.display()));
    let mut out: [Option<Vec<u8>>; N] = std::array::from_fn(|_| None);
    for entry in ar.entries().map_err(bad)? {
        let e = entry.map_err(bad)?;
        let p = e.path().map_err(bad)?.to_string_lossy().into_owned();
        let Some(rest) = p.split_once('/').map(|(_, rest)| rest.to_string()) else {
            continue;
        };
        if let Some(k) = names.iter().position(|n| *n == rest) {
            let mut buf = Vec::new();
            e.take(MAX_MANIFEST).read_to_end(&mut buf).map_err(bad)?;
            out[k] = Some(buf);
            if out.iter().all(Option::is_some) {
                break;
            }
        }
    }
    Ok(out)
}

/// Where the SHA-256 of a bundle file, recorded when it was written, is kept: a hidden
/// `sha256sum`-format file beside it (`.NAME.sha256`).
pub fn digest_file_path(bundle: &Path) -> std::path::PathBuf {
    let name = bundle
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    bundle.with_file_name(format!(".{name}.sha256"))
}

/// Records `sha256` as the digest of `bundle` (temp file and rename).
pub fn write_digest_file(bundle: &Path, sha256: &str) -> Result<(), BundleError> {
    let side = digest_file_path(bundle);
    let name = bundle
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = side.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, format!("{sha256}  {name}\n")).map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, &side).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io_err(&side)(e)
    })
}

/// The digest recorded for `bundle`, if any (and well-formed).
pub fn recorded_digest(bundle: &Path) -> Option<String> {
    let text = std::fs::read_to_string(digest_file_path(bundle)).ok()?;
    let h = text.split_whitespace().next()?;
    (h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit())).then(|| h.to_ascii_lowercase())
}

/// SHA256 (lowercase hex) and size of a file.
pub fn sha256_file(path: &Path) -> Result<(String, u64), BundleError> {
    let mut f = std::fs::File::open(path).map_err(io_err(path))?;
    hash_rest(path, &mut f, Sha256::new(), 0)
}

/// Feeds what is left of `f` into `h`, which has seen `n` bytes; the digest and total size.
/// Pages it pulls in from the disk are given back as it goes (`crate::pagecache`).
pub(crate) fn hash_rest(
    path: &Path,
    f: &mut std::fs::File,
    mut h: Sha256,
    mut n: u64,
) -> Result<(String, u64), BundleError> {
    /// Bytes hashed between two hand-backs of the pages behind.
    const BEHIND: u64 = 8 << 20;
    let mut buf = vec![0u8; 1 << 20];
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let give_back = !mostly_cached(f, len);
    let mut dropped = n;
    loop {
        let k = f.read(&mut buf).map_err(io_err(path))?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
        if give_back && n - dropped >= BEHIND {
            advise(f, dropped, n - dropped, Advice::DontNeed);
            dropped = n;
        }
    }
    if give_back {
        advise(f, dropped, 0, Advice::DontNeed);
    }
    Ok((hex::encode(h.finalize()), n))
}
