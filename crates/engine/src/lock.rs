//! `opaas.lock`: a resolution written down (`opaas lock`) so that `opaas build --locked`
//! rebuilds the byte-identical bundle later without resolving: target, request, options, every
//! package (name, arch, version, SHA-256, pool filename, its index paragraph) and, for a signed
//! bundle, every signed file of every suite (path, SHA-256, size; the Release dates). The signed
//! files themselves are kept by content in the cache (`<cache>/signed-v1/<sha256>`): the mirror
//! re-signs its suites (security suites daily), and a rebuild must ship the files the lock
//! names. A rebuild checks the mirror's current signed indices for every locked package and
//! fails naming every version the mirror no longer has.

use crate::error::{EngineError, Kind};
use crate::pipeline::{
    assemble, finish, package_lines, resolve, suite_lines, BuildProgress, Built, Phase, Request,
};
use crate::session::{open, Settings};
use opaas_bundle::{
    ArchiveSuite, BundleDistro, BundleInput, BundlePackage, Format, KeyringSource, PackageInfo,
    SignedArchive,
};
use opaas_fetch::Item;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The lockfile format version this build writes and reads.
const LOCK_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Lock {
    /// Format version (1).
    pub version: u32,
    /// `opaas <version>` that wrote it.
    pub tool: String,
    pub target: LockTarget,
    pub request: LockRequest,
    pub options: LockOptions,
    /// Signed bundles: every suite shipped, with its signed files.
    #[serde(default, rename = "suite")]
    pub suites: Vec<LockSuite>,
    #[serde(default, rename = "package")]
    pub packages: Vec<LockPackage>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LockTarget {
    pub distro: String,
    pub codename: String,
    pub os_id: String,
    pub arch: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LockRequest {
    pub packages: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LockOptions {
    pub recommends: bool,
    pub baseline: String,
    /// A signed bundle (the default) or the flat, unsigned repository.
    pub signed: bool,
    /// The bundle's time: the newest signed Release date of the resolution (RFC 3339) and the
    /// same as seconds since the epoch.
    pub created: String,
    pub created_epoch: u64,
    /// Signed bundles: the target's keyring file and its package, or (a `--keyring` mirror)
    /// the keyring files shipped in the bundle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyring_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyring_package: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keyring_files: Vec<LockFile>,
    /// Installed packages apt's plan removes (recorded in the manifest as a build records them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LockFile {
    pub path: String,
    pub sha256: String,
    pub size: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LockSuite {
    pub suite: String,
    /// `Date` and `Valid-Until` of the signed Release (RFC 2822).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<String>,
    pub signed_by: String,
    pub components: Vec<String>,
    pub arches: Vec<String>,
    /// Paths under `dists/<suite>/`: the signed Release, then the indices.
    pub files: Vec<LockFile>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LockPackage {
    pub name: String,
    pub arch: String,
    pub version: String,
    pub sha256: String,
    pub size: u64,
    /// Its `Filename` in the archive (pool path).
    pub filename: String,
    pub pocket: String,
    pub why: String,
    pub installed_size_kb: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade_from: Option<String>,
    /// The index paragraph as resolved (the flat repository of an unsigned bundle is made of it).
    pub stanza: String,
}

fn bad(msg: impl Into<String>) -> EngineError {
    EngineError::new(Kind::BadInput, msg).field("lock")
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// Where signed files are kept by content for locked rebuilds.
fn signed_store(cache_root: &Path) -> PathBuf {
    cache_root.join("signed-v1")
}

/// Keeps `data` under its SHA256 (temp file + rename; an existing file is left alone).
fn keep(store: &Path, data: &[u8]) -> Result<LockFile, EngineError> {
    let sha = sha256_hex(data);
    let io = |p: &Path, e: std::io::Error| {
        EngineError::new(Kind::Internal, format!("{}: {e}", p.display()))
    };
    std::fs::create_dir_all(store).map_err(|e| io(store, e))?;
    let dest = store.join(&sha);
    if !dest.is_file() {
        let tmp = store.join(format!(".{sha}.tmp{}", std::process::id()));
        std::fs::write(&tmp, data).map_err(|e| io(&tmp, e))?;
        std::fs::rename(&tmp, &dest).map_err(|e| io(&dest, e))?;
    }
    Ok(LockFile {
        path: String::new(),
        sha256: sha,
        size: data.len() as u64,
    })
}

/// A kept file, checked against its SHA256 and size.
fn kept(store: &Path, f: &LockFile, what: &str) -> Result<Vec<u8>, EngineError> {
    let p = store.join(&f.sha256);
    let data = std::fs::read(&p).map_err(|_| {
        EngineError::new(
            Kind::NotCached,
            format!(
                "{what} as locked (SHA256 {}) is not in {}: a signed locked build needs the cache the lock was written with",
                f.sha256,
                store.display()
            ),
        )
    })?;
    if data.len() as u64 != f.size || sha256_hex(&data) != f.sha256 {
        return Err(EngineError::new(
            Kind::Trust,
            format!("{}: does not match the SHA256 the lock names", p.display()),
        ));
    }
    Ok(data)
}

/// Parses a lockfile.
pub fn parse_lock(text: &str) -> Result<Lock, EngineError> {
    let lock: Lock = toml::from_str(text).map_err(|e| bad(format!("not an opaas.lock: {e}")))?;
    if lock.version != LOCK_VERSION {
        return Err(bad(format!(
            "lockfile version {} is not {LOCK_VERSION}; write it again with this opaas",
            lock.version
        )));
    }
    Ok(lock)
}

/// Resolves `req` and writes down everything a rebuild needs; the signed files are kept in the
/// cache. Returns the lockfile's text.
pub fn lock(
    settings: &Settings,
    req: &Request,
    progress: &dyn BuildProgress,
) -> Result<String, EngineError> {
    if req.upgrade.is_some() {
        return Err(bad("opaas lock writes install plans; an upgrade plan is made from a collected file with opaas upgrade"));
    }
    progress.phase(Phase::Resolving);
    let resolved = resolve(settings, req)?;
    let (input, _) = assemble(settings, req, &resolved, progress)?;
    let store = signed_store(&resolved.session.cache_root);
    let mut options = LockOptions {
        recommends: input.recommends,
        baseline: input.baseline.clone(),
        signed: input.archive.is_some(),
        created: input.created.clone(),
        created_epoch: input.created_epoch,
        keyring_path: None,
        keyring_package: None,
        keyring_files: Vec::new(),
        remove: input.remove.clone(),
    };
    let mut suites = Vec::new();
    if let Some(a) = &input.archive {
        match &a.keyring {
            KeyringSource::Target { path, package } => {
                options.keyring_path = Some(path.clone());
                options.keyring_package = Some(package.clone());
            }
            KeyringSource::Shipped(files) => {
                for (name, data) in files {
                    let mut f = keep(&store, data)?;
                    f.path = name.clone();
                    options.keyring_files.push(f);
                }
            }
        }
        for s in &a.suites {
            let mut files = Vec::new();
            for (path, data) in &s.files {
                let mut f = keep(&store, data)?;
                f.path = path.clone();
                files.push(f);
            }
            suites.push(LockSuite {
                suite: s.suite.clone(),
                date: s.date.clone(),
                valid_until: s.valid_until.clone(),
                signed_by: s.signed_by.clone(),
                components: s.components.clone(),
                arches: s.arches.clone(),
                files,
            });
        }
    }
    let mut packages: Vec<LockPackage> = input
        .packages
        .iter()
        .map(|p| LockPackage {
            name: p.name.clone(),
            arch: p.arch.clone(),
            version: p.version.clone(),
            sha256: p.sha256.clone(),
            size: p.size,
            filename: p.pool_path.clone(),
            pocket: p.pocket.clone(),
            why: p.why.clone(),
            installed_size_kb: p.installed_size_kb,
            upgrade_from: p.upgrade_from.clone(),
            stanza: p.stanza.clone(),
        })
        .collect();
    packages.sort_by(|a, b| a.name.cmp(&b.name).then(a.arch.cmp(&b.arch)));
    let lock = Lock {
        version: LOCK_VERSION,
        tool: format!("opaas {}", env!("CARGO_PKG_VERSION")),
        target: LockTarget {
            distro: input.distro.id.clone(),
            codename: input.distro.codename.clone(),
            os_id: input.distro.os_id.clone(),
            arch: input.arch.clone(),
        },
        request: LockRequest {
            packages: input.request.clone(),
        },
        options,
        suites,
        packages,
    };
    let body =
        toml::to_string(&lock).map_err(|e| EngineError::new(Kind::Internal, e.to_string()))?;
    Ok(format!(
        "# opaas.lock: written by `opaas lock`; `opaas build --locked FILE` rebuilds this bundle\n# byte for byte without resolving. Do not edit.\n{body}"
    ))
}

/// Rebuilds the bundle of a lockfile (`text`, as read) into `out_dir` without resolving.
pub fn build_locked(
    settings: &Settings,
    text: &str,
    out_dir: &Path,
    format: Format,
    progress: &dyn BuildProgress,
) -> Result<Built, EngineError> {
    let digest = sha256_hex(text.as_bytes());
    let lock = parse_lock(text)?;
    progress.phase(Phase::Resolving);
    let t = &lock.target;
    let extra: Vec<String> = lock
        .packages
        .iter()
        .filter(|p| p.arch != "all" && p.arch != t.arch)
        .map(|p| p.arch.clone())
        .collect();
    let session = open(settings, &t.distro, &t.arch, &extra)?;
    if let Some(w) = settings
        .max_index_age
        .and_then(|a| session.refresh_if_stale(a))
    {
        progress.log(&format!("W: {w}"));
    }
    let u = session.universe()?;
    // every locked .deb, as the mirror's current signed indices have it
    let mut items = Vec::new();
    let mut missing = Vec::new();
    for p in &lock.packages {
        let hit = u.named(&p.name).iter().copied().find(|&r| {
            let para = u.paragraph(r);
            u.version(r) == p.version
                && u.raw_arch(r) == p.arch
                && para
                    .get("SHA256")
                    .is_some_and(|s| s.eq_ignore_ascii_case(&p.sha256))
        });
        match hit {
            Some(r) => {
                let filename = u.paragraph(r).get("Filename").unwrap_or("").to_string();
                items.push(Item {
                    name: filename.rsplit('/').next().unwrap_or(&filename).to_string(),
                    urls: vec![format!("{}/{filename}", u.source(r).mirror)],
                    sha256: p.sha256.clone(),
                    size: p.size,
                });
            }
            None => missing.push(format!("{} {} ({})", p.name, p.version, p.arch)),
        }
    }
    if !missing.is_empty() {
        return Err(EngineError::new(
            Kind::UnknownPackage,
            format!(
                "the mirror no longer has {} locked version(s): {}; the lock cannot be rebuilt (write a new one with opaas lock)",
                missing.len(),
                missing.join(", ")
            ),
        )
        .field("lock"));
    }
    let store = signed_store(&session.cache_root);
    let archive = if lock.options.signed {
        let keyring = if lock.options.keyring_files.is_empty() {
            KeyringSource::Target {
                path: lock.options.keyring_path.clone().unwrap_or_default(),
                package: lock.options.keyring_package.clone().unwrap_or_default(),
            }
        } else {
            let mut files = Vec::new();
            for f in &lock.options.keyring_files {
                files.push((
                    f.path.clone(),
                    kept(&store, f, &format!("keyring {}", f.path))?,
                ));
            }
            KeyringSource::Shipped(files)
        };
        let mut suites = Vec::new();
        for s in &lock.suites {
            let mut files = Vec::new();
            for f in &s.files {
                let what = format!("dists/{}/{}", s.suite, f.path);
                files.push((f.path.clone(), kept(&store, f, &what)?));
            }
            suites.push(ArchiveSuite {
                suite: s.suite.clone(),
                components: s.components.clone(),
                arches: s.arches.clone(),
                files,
                signed_by: s.signed_by.clone(),
                date: s.date.clone(),
                valid_until: s.valid_until.clone(),
            });
        }
        Some(SignedArchive { suites, keyring })
    } else {
        None
    };
    let when = SystemTime::UNIX_EPOCH + Duration::from_secs(lock.options.created_epoch);
    let total: u64 = lock.packages.iter().map(|p| p.size).sum();
    let packages: Vec<BundlePackage> = lock
        .packages
        .iter()
        .map(|p| BundlePackage {
            info: PackageInfo {
                arch: p.arch.clone(),
                filename: p
                    .filename
                    .rsplit('/')
                    .next()
                    .unwrap_or(&p.filename)
                    .to_string(),
                installed_size_kb: p.installed_size_kb,
                name: p.name.clone(),
                pocket: p.pocket.clone(),
                sha256: p.sha256.clone(),
                size: p.size,
                upgrade_from: p.upgrade_from.clone(),
                version: p.version.clone(),
                why: p.why.clone(),
            },
            stanza: p.stanza.clone(),
            path: PathBuf::new(),
            pool_path: p.filename.clone(),
        })
        .collect();
    let mut log = format!(
        "opaas {} build --locked\nlock sha256: {digest}\ndistro: {} ({})\narch: {}\nrequest: {}\nrecommends: {}\nbaseline: {}\nindices as of: {}\n\npackages ({}, {total} bytes):\n",
        env!("CARGO_PKG_VERSION"),
        t.distro,
        t.codename,
        t.arch,
        lock.request.packages.join(" "),
        lock.options.recommends,
        lock.options.baseline,
        lock.options.created,
        lock.packages.len(),
    );
    log.push_str(&package_lines(&packages));
    if let Some(a) = &archive {
        log.push_str(&suite_lines(&a.suites));
    }
    progress.log(&format!(
        "locked: {} packages, {total} bytes to bundle (lock sha256 {digest})",
        lock.packages.len()
    ));
    let input = BundleInput {
        distro: BundleDistro {
            codename: t.codename.clone(),
            id: t.distro.clone(),
            os_id: t.os_id.clone(),
        },
        arch: t.arch.clone(),
        request: lock.request.packages.clone(),
        recommends: lock.options.recommends,
        baseline: lock.options.baseline.clone(),
        packages,
        remove: lock.options.remove.clone(),
        mode: "install".into(),
        assumed: Vec::new(),
        host: String::new(),
        hosts: Vec::new(),
        phased: "include".into(),
        created: opaas_repo::release::format_rfc3339(when),
        created_epoch: lock.options.created_epoch,
        created_rfc2822: opaas_repo::release::format_rfc2822(when),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        build_log: log,
        archive,
        lock_sha256: Some(digest),
    };
    finish(
        settings,
        &session,
        input,
        &items,
        out_dir,
        format,
        progress,
        &crate::pipeline::NoReuse,
    )
}
