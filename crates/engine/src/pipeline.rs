//! resolve → download → bundle.

use crate::error::{EngineError, Kind};
use crate::session::{open, Session, Settings};
use opaas_bundle::{BundleDistro, BundleInput, BundlePackage, Format, Manifest, PackageInfo};
use opaas_fetch::{Cas, Item};
use opaas_repo::universe::Universe;
use opaas_resolve::{Options, Resolution, ResolveError};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::SystemTime;

/// What the target already has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Baseline {
    /// What a minbase image of the release has (the default).
    Minimal,
    /// Nothing: the full closure.
    None,
    /// The target's own `/var/lib/dpkg/status`.
    StatusFile(PathBuf),
    /// The same, uploaded as text.
    StatusText(String),
    /// A collected host (`opaas collect-script`): its status and apt's extended_states, whose
    /// auto flags tell apt's autoremover which installed packages are not roots.
    Host {
        status: String,
        extended_states: String,
    },
}

impl Baseline {
    /// `minimal`, `none`, or a path.
    pub fn parse(s: &str) -> Baseline {
        match s {
            "minimal" => Baseline::Minimal,
            "none" => Baseline::None,
            p => Baseline::StatusFile(PathBuf::from(p)),
        }
    }
    pub fn label(&self) -> &'static str {
        match self {
            Baseline::Minimal => "minimal",
            Baseline::None => "none",
            _ => "status-file",
        }
    }
}

/// A build or preview request.
#[derive(Debug, Clone)]
pub struct Request {
    pub distro: String,
    pub arch: String,
    /// `pkg`, `pkg=VERSION`, `pkg/SUITE`, `pkg:ARCH`
    pub packages: Vec<String>,
    pub recommends: bool,
    pub baseline: Baseline,
    /// `apt-get upgrade` / `dist-upgrade` of the baseline (a dpkg status file) instead of a
    /// plain install; `packages` may then be empty.
    pub upgrade: Option<opaas_resolve::UpgradeMode>,
    /// Ubuntu's phased updates in upgrade modes.
    pub phased: opaas_resolve::Phased,
    /// Upgrade modes: only the security pocket(s) are sources, as with a sources list that
    /// holds only -security.
    pub security_only: bool,
    /// The host the plan is for (upgrade bundles from a collected file).
    pub host: Option<String>,
}

/// A request resolved on its target.
pub struct Resolved {
    pub session: Session,
    pub universe: Universe,
    pub requests: Vec<opaas_resolve::Request>,
    pub result: Resolution,
    /// Things the user should know (e.g. stale indices used after a failed refresh).
    pub warnings: Vec<String>,
    /// Upgrade modes: `name:arch=version` of every package the baseline has installed (the
    /// state the plan assumes; install.sh refuses a machine that drifted from it).
    pub assumed: Vec<String>,
}

impl Resolved {
    /// Every package to install, in the resolution's order, as one typed view.
    pub fn packages(&self) -> Vec<PackageInfo> {
        self.result
            .install
            .iter()
            .map(|c| package_info(&self.universe, c))
            .collect()
    }
}

/// The view of a chosen package every front end shows (the manifest, the API, `resolve
/// --json`): its own `Architecture` (`all` stays `all`), the .deb's file name (without its pool
/// directory), size, lowercase SHA256 and pocket, and why it is there. A package without a
/// download source has empty file fields and size 0.
pub fn package_info(u: &Universe, c: &opaas_resolve::Chosen) -> PackageInfo {
    let mut info = PackageInfo {
        arch: c.arch.clone(),
        filename: String::new(),
        installed_size_kb: 0,
        name: c.name.clone(),
        pocket: String::new(),
        sha256: String::new(),
        size: 0,
        upgrade_from: c.upgrade_from.clone(),
        version: c.version.clone(),
        why: why(c),
    };
    if let Some(r) = c.pref {
        let p = u.paragraph(r);
        let src = u.source(r);
        if let Some(a) = p.get("Architecture").filter(|a| !a.is_empty()) {
            info.arch = a.to_string();
        }
        let filename = p.get("Filename").unwrap_or("");
        info.filename = filename.rsplit('/').next().unwrap_or(filename).to_string();
        info.installed_size_kb = p
            .get("Installed-Size")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        info.pocket = format!("{}/{}", src.suite, src.component);
        info.sha256 = p.get("SHA256").unwrap_or("").to_ascii_lowercase();
        info.size = p.get("Size").and_then(|s| s.parse().ok()).unwrap_or(0);
    }
    info
}

/// One line of explanation for a package (rendered by `opaas_resolve::Why`).
pub fn why(c: &opaas_resolve::Chosen) -> String {
    c.reason.to_string()
}

fn load_baseline(
    b: &Baseline,
    u: &Universe,
    distro: &opaas_repo::catalog::Distro,
) -> Result<opaas_resolve::Baseline, EngineError> {
    let bad = |m: String| EngineError::new(Kind::BadInput, m).field("baseline");
    Ok(match b {
        Baseline::None => opaas_resolve::Baseline::none(),
        Baseline::Minimal => {
            opaas_resolve::Baseline::minimal(u, &distro.pockets[0].suite, &distro.minimal_extra)
                .map_err(|e| bad(e.to_string()))?
        }
        Baseline::StatusFile(p) => opaas_resolve::Baseline::from_status_file(p, &u.native_arch)
            .map_err(|e| bad(e.to_string()))?,
        Baseline::StatusText(t) => {
            let b = opaas_resolve::Baseline::from_status(t, &u.native_arch);
            if b.packages.is_empty() {
                return Err(bad("the status file has no installed package (expected stanzas with 'Status: install ok installed')".into()));
            }
            b
        }
        Baseline::Host {
            status,
            extended_states,
        } => {
            let b = opaas_resolve::Baseline::from_status(status, &u.native_arch);
            if b.packages.is_empty() {
                return Err(bad("the collected file's status has no installed package (expected stanzas with 'Status: install ok installed')".into()));
            }
            b.with_extended_states(extended_states, &u.native_arch)
        }
    })
}

/// Refuses, before the solver runs, the first plain request (no `:ARCH`) whose name no package
/// has and none provides, naming its entry (`index`), the name (`package`) and look-alikes.
pub fn check_names(
    u: &Universe,
    distro_id: &str,
    arch: &str,
    reqs: &[opaas_resolve::Request],
) -> Result<(), EngineError> {
    for (i, r) in reqs.iter().enumerate() {
        if r.arch.is_some() {
            continue;
        }
        if u.candidate(&r.name, &u.native_arch, None).is_none() && u.providers(&r.name).is_empty() {
            let mut e = EngineError::new(
                Kind::UnknownPackage,
                format!(
                    "unknown package '{}' for {distro_id} {arch}{}",
                    r.name,
                    opaas_resolve::suggest::hint(u, &r.name)
                ),
            )
            .field("packages")
            .index(i)
            .package(r.name.clone());
            e.suggestions = opaas_resolve::suggest::suggestions(u, &r.name);
            return Err(e);
        }
    }
    Ok(())
}

/// Parses and resolves a request as `apt-get install` would on the target.
pub fn resolve(settings: &Settings, req: &Request) -> Result<Resolved, EngineError> {
    resolve_with(settings, req, &opaas_repo::store::NoProgress)
}

/// The package lists fetched before resolving, as [`BuildProgress::index_file`] calls.
pub struct IndexProgress<'a>(pub &'a dyn BuildProgress);

impl opaas_repo::store::UpdateProgress for IndexProgress<'_> {
    fn file_done(&self, what: &str, bytes: u64, fetched: bool) {
        self.0.index_file(what, bytes, fetched);
    }
}

/// [`resolve`], telling `index` about the package lists it fetches or refreshes.
pub fn resolve_with(
    settings: &Settings,
    req: &Request,
    index: &dyn opaas_repo::store::UpdateProgress,
) -> Result<Resolved, EngineError> {
    // The index tables' CRCs are checked beside the resolution (IndexFile::load). A damaged
    // table makes the answer, right or wrong, untrustworthy: it is removed, rebuilt from its
    // verified Packages text, and the request resolved again.
    match resolve_once(settings, req, index)? {
        Ok(r) => Ok(r),
        Err(damaged) => {
            opaas_repo::store::remove_damaged(&damaged);
            match resolve_once(settings, req, index)? {
                Ok(r) => Ok(r),
                Err(again) => Err(EngineError::new(
                    Kind::Trust,
                    format!(
                        "index tables are damaged again after a rebuild: {}; check the disk of the cache directory",
                        again
                            .iter()
                            .map(|p| p.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )),
            }
        }
    }
}

/// One resolution; `Ok(Err(tables))` when index tables it read turned out damaged.
fn resolve_once(
    settings: &Settings,
    req: &Request,
    index: &dyn opaas_repo::store::UpdateProgress,
) -> Result<Result<Resolved, Vec<std::path::PathBuf>>, EngineError> {
    if req.packages.is_empty() && req.upgrade.is_none() {
        return Err(EngineError::new(Kind::BadInput, "no packages requested").field("packages"));
    }
    if req.upgrade.is_some()
        && !matches!(
            req.baseline,
            Baseline::StatusFile(_) | Baseline::StatusText(_) | Baseline::Host { .. }
        )
    {
        return Err(EngineError::new(
            Kind::BadInput,
            "an upgrade needs the target's dpkg status: give --baseline FILE (/var/lib/dpkg/status of the target)",
        )
        .field("baseline"));
    }
    if req.security_only && req.upgrade.is_none() {
        return Err(EngineError::new(
            Kind::BadInput,
            "--security-only applies to --upgrade and --full-upgrade",
        )
        .field("security_only"));
    }
    let mut reqs = Vec::new();
    for (i, r) in req.packages.iter().enumerate() {
        reqs.push(opaas_resolve::Request::parse(r).map_err(|e| {
            EngineError::new(Kind::BadInput, e.to_string())
                .field("packages")
                .index(i)
                .with_source(e)
        })?);
    }
    let extra: Vec<String> = reqs.iter().filter_map(|r| r.arch.clone()).collect();
    let session = open(settings, &req.distro, &req.arch, &extra)?;
    let warnings: Vec<String> = settings
        .max_index_age
        .and_then(|a| session.refresh_if_stale_with(a, index))
        .into_iter()
        .collect();
    let u = if req.security_only {
        session.universe_where(index, |m| session.target.is_security(&m.suite))?
    } else {
        session.universe_with(index)?
    };
    let computed = resolve_in(&session, req, &reqs, &u);
    let damaged = u.damaged_tables();
    if !damaged.is_empty() {
        return Ok(Err(damaged));
    }
    let (result, assumed) = computed?;
    Ok(Ok(Resolved {
        session,
        universe: u,
        requests: reqs,
        result,
        warnings,
        assumed,
    }))
}

/// The resolution itself, on a loaded universe: the resolution and the versions it assumed
/// installed (upgrades).
fn resolve_in(
    session: &Session,
    req: &Request,
    reqs: &[opaas_resolve::Request],
    u: &Universe,
) -> Result<(opaas_resolve::Resolution, Vec<String>), EngineError> {
    let base = load_baseline(&req.baseline, u, session.distro)?;
    check_names(u, &session.distro.id, &req.arch, reqs)?;
    let opts = Options {
        recommends: req.recommends,
        ..Options::default()
    };
    let result = match req.upgrade {
        None => opaas_resolve::resolve(u, &base, reqs, opts),
        Some(mode) => opaas_resolve::resolve_upgrade(u, &base, reqs, opts, mode, req.phased),
    };
    let result = result.map_err(|e| {
        let kind = match &e {
            ResolveError::UnknownPackage { .. } | ResolveError::VirtualPackage { .. } => {
                Kind::UnknownPackage
            }
            ResolveError::Unsatisfiable(_) => Kind::Unsatisfiable,
            _ => Kind::BadInput,
        };
        let message = match &e {
            ResolveError::UnknownPackage { name, .. } => format!(
                "unknown package '{name}' for {} {}{}",
                session.distro.id,
                req.arch,
                opaas_resolve::suggest::hint(u, name)
            ),
            _ => e.to_string(),
        };
        let mut err = EngineError::new(kind, message).field("packages");
        if let Some(i) = e.index() {
            err = err.index(i);
        }
        if let Some(p) = e.package() {
            err = err.package(p);
        }
        if let ResolveError::UnknownPackage { name, .. } = &e {
            err.suggestions = opaas_resolve::suggest::suggestions(u, name);
        }
        err.with_source(e)
    })?;
    let assumed = if req.upgrade.is_some() {
        base.packages
            .values()
            .map(|i| format!("{}:{}={}", i.name, i.arch, i.version))
            .collect()
    } else {
        Vec::new()
    };
    Ok((result, assumed))
}

/// Build phases, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Resolving,
    Downloading,
    Packing,
}

/// Progress of a build, reported by the engine and drawn by the front end.
pub trait BuildProgress: Sync {
    fn phase(&self, _p: Phase) {}
    fn log(&self, _line: &str) {}
    /// Download totals (`files`, `bytes` still to fetch) once known.
    fn download_start(&self, _files: usize, _bytes: u64) {}
    /// Cumulative progress.
    fn download(&self, _files_done: usize, _bytes_done: u64) {}
    /// Fetching the package lists: one index file (or signed Release) is done, `fetched` false
    /// when the cached copy was still current.
    fn index_file(&self, _what: &str, _bytes: u64, _fetched: bool) {}
    /// Packing: bytes of `.deb` files written into the bundle so far, and in all.
    fn pack(&self, _done: u64, _total: u64) {}
    /// Checked between steps; true stops the build with `Kind::Cancelled`.
    fn cancelled(&self) -> bool {
        false
    }
}

pub struct NoBuildProgress;
impl BuildProgress for NoBuildProgress {}

/// Where earlier bundles may be kept apart from the output directory (the service keeps each
/// job's bundle in its own directory). Asked once the bundle's file name is known, after
/// resolving and before downloading.
pub trait Reuse: Sync {
    /// Puts an existing bundle named `file_name` at `dest` (a hard link, say), or does nothing.
    /// It may wait (for an identical build that is still running). Whatever is at `dest`
    /// afterwards is verified before it is reused; otherwise the build writes `dest` anew
    /// (temporary file + rename: a hard-linked original is never written to).
    fn place(&self, file_name: &str, dest: &Path);
}

/// No bundles anywhere but in the output directory.
pub struct NoReuse;
impl Reuse for NoReuse {
    fn place(&self, _file_name: &str, _dest: &Path) {}
}

struct FetchAdapter<'a> {
    p: &'a dyn BuildProgress,
    files: AtomicUsize,
    bytes: AtomicU64,
    /// Told of every finished file (the packer waits on it).
    gate: Option<&'a Gate>,
}

/// Where the packer waits for the downloads: woken at every finished file and at the end.
#[derive(Default)]
struct Gate {
    /// The fetch has returned (whatever its result).
    done: std::sync::Mutex<bool>,
    cv: std::sync::Condvar,
    /// The packer failed: the downloads stop.
    aborted: std::sync::atomic::AtomicBool,
}

impl Gate {
    fn notify(&self) {
        self.cv.notify_all();
    }
    fn finish(&self) {
        *self.done.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cv.notify_all();
    }
    fn abort(&self) {
        self.aborted.store(true, Ordering::Relaxed);
    }
    /// Blocks until `path` (a store file, renamed into place only once verified) exists, the
    /// fetch ended without it, or the build was cancelled.
    fn wait_for(&self, path: &Path, progress: &dyn BuildProgress) -> std::io::Result<()> {
        let mut done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if path.is_file() {
                return Ok(());
            }
            if *done {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "not downloaded",
                ));
            }
            if progress.cancelled() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::Interrupted,
                    "cancelled",
                ));
            }
            done = self
                .cv
                .wait_timeout(done, std::time::Duration::from_millis(200))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

impl opaas_fetch::Progress for FetchAdapter<'_> {
    fn start(&self, files: usize, bytes: u64) {
        self.p.download_start(files, bytes);
    }
    fn bytes(&self, n: u64) {
        let b = self.bytes.fetch_add(n, Ordering::Relaxed) + n;
        self.p.download(self.files.load(Ordering::Relaxed), b);
    }
    fn file_done(&self, name: &str, cached: bool) {
        if let Some(g) = self.gate {
            g.notify();
        }
        let f = self.files.fetch_add(1, Ordering::Relaxed) + 1;
        self.p.download(f, self.bytes.load(Ordering::Relaxed));
        self.p.log(&format!(
            "{} {name}",
            if cached { "cached " } else { "fetched" }
        ));
    }
    fn message(&self, msg: &str) {
        self.p.log(msg);
    }
    fn cancelled(&self) -> bool {
        self.p.cancelled() || self.gate.is_some_and(|g| g.aborted.load(Ordering::Relaxed))
    }
}

/// A finished build.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Built {
    pub path: PathBuf,
    pub file_name: String,
    pub size: u64,
    /// SHA256 of the tarball, lowercase hex.
    pub sha256: String,
    /// The bundle's manifest.
    pub manifest: Manifest,
    /// `manifest.json` exactly as it is in the tarball.
    #[serde(skip)]
    pub manifest_json: Vec<u8>,
    /// `sbom.cdx.json` (CycloneDX 1.6) exactly as it is in the tarball; empty for a reused
    /// bundle written before SBOMs were.
    #[serde(skip)]
    pub sbom_json: Vec<u8>,
    pub package_count: usize,
    pub total_size: u64,
    pub downloaded_bytes: u64,
    pub cache_hits: usize,
    pub downloads: usize,
    /// An identical bundle was already there and verified: nothing was downloaded or packed.
    pub reused: bool,
    /// How the reused bundle was verified ("" when not reused).
    pub reuse_check: &'static str,
}

/// A verified existing bundle: its digest, size and manifest (typed and as stored); or the
/// problems that make it unusable. Its manifest must list exactly the packages of `input`
/// (the 8-digit id in the file name is a short hash: a collision must not pass for a reuse).
/// A file whose SHA-256 still equals the digest recorded beside it when it was written (or
/// last verified in full) is verified by that one hash pass; any other is verified member by
/// member, as `opaas verify` does.
#[allow(clippy::type_complexity)]
fn reusable(
    path: &Path,
    input: &BundleInput,
) -> Result<
    Result<(String, u64, Manifest, Vec<u8>, Vec<u8>, &'static str), Vec<String>>,
    opaas_bundle::BundleError,
> {
    // fast path: the file still has the SHA-256 recorded when it was written (one hash pass,
    // no decompression); the manifest and SBOM are read from the archive's first members
    let mut fast = None;
    if let Some(recorded) = opaas_bundle::recorded_digest(path) {
        let (sha256, size) = opaas_bundle::sha256_file(path)?;
        if sha256 == recorded {
            if let [Some(json), sbom] =
                opaas_bundle::read_head_members(path, ["manifest.json", "sbom.cdx.json"])?
            {
                fast = Some((
                    json,
                    sbom.unwrap_or_default(),
                    (sha256, size),
                    "its SHA-256 as recorded when written",
                ));
            }
        }
    }
    let (json, sbom_json, file_sha256, how) = match fast {
        Some(f) => f,
        None => {
            let rep = opaas_bundle::verify(path)?;
            if !rep.problems.is_empty() {
                return Ok(Err(rep.problems));
            }
            let Some(json) = rep.manifest_json else {
                return Ok(Err(vec!["no manifest.json".into()]));
            };
            let hs = match rep.file_sha256 {
                Some(h) => h,
                None => opaas_bundle::sha256_file(path)?,
            };
            // verified in full: record its digest so that the next reuse is one pass
            let _ = opaas_bundle::write_digest_file(path, &hs.0);
            (
                json,
                rep.sbom_json.unwrap_or_default(),
                hs,
                "every member against SHA256SUMS",
            )
        }
    };
    let manifest = match Manifest::from_json(&json) {
        Ok(m) => m,
        Err(e) => return Ok(Err(vec![format!("manifest.json: {e}")])),
    };
    let key =
        |name: &str, version: &str, arch: &str, sha: &str| format!("{name} {version} {arch} {sha}");
    let mut want: Vec<String> = input
        .packages
        .iter()
        .map(|p| key(&p.name, &p.version, &p.arch, &p.sha256))
        .collect();
    let mut have: Vec<String> = manifest
        .packages
        .iter()
        .map(|p| key(&p.name, &p.version, &p.arch, &p.sha256))
        .collect();
    want.sort();
    have.sort();
    if want != have
        || manifest.distro.id != input.distro.id
        || manifest.arch != input.arch
        || manifest.request != input.request
        || manifest.options.recommends != input.recommends
        || manifest.options.baseline != input.baseline
    {
        return Ok(Err(vec![
            "its manifest lists another resolution (the same short id)".into(),
        ]));
    }
    let (sha256, size) = file_sha256;
    Ok(Ok((sha256, size, manifest, json, sbom_json, how)))
}

fn check_cancel(p: &dyn BuildProgress) -> Result<(), EngineError> {
    if p.cancelled() {
        Err(EngineError::new(Kind::Cancelled, "cancelled"))
    } else {
        Ok(())
    }
}

/// Resolves, downloads and writes the bundle into `out_dir`; an identical bundle already in
/// `out_dir` is verified and reused instead.
pub fn build(
    settings: &Settings,
    req: &Request,
    out_dir: &Path,
    format: Format,
    progress: &dyn BuildProgress,
) -> Result<Built, EngineError> {
    build_reusing(settings, req, out_dir, format, progress, &NoReuse)
}

/// [`build`], asking `reuse` for an identical bundle kept elsewhere once the file name is known.
pub fn build_reusing(
    settings: &Settings,
    req: &Request,
    out_dir: &Path,
    format: Format,
    progress: &dyn BuildProgress,
    reuse: &dyn Reuse,
) -> Result<Built, EngineError> {
    progress.phase(Phase::Resolving);
    let resolved = resolve_with(settings, req, &IndexProgress(progress))?;
    let (input, items) = assemble(settings, req, &resolved, progress)?;
    finish(
        settings,
        &resolved.session,
        input,
        &items,
        out_dir,
        format,
        progress,
        reuse,
    )
}

/// A resolution turned into what a bundle is made of (the .debs not fetched yet: their paths are
/// empty) and the downloads it needs.
pub(crate) fn assemble(
    settings: &Settings,
    req: &Request,
    resolved: &Resolved,
    progress: &dyn BuildProgress,
) -> Result<(BundleInput, Vec<Item>), EngineError> {
    let Resolved {
        session,
        universe: u,
        requests,
        result,
        warnings,
        assumed,
    } = resolved;
    for w in warnings {
        progress.log(&format!("W: {w}"));
    }
    if !result.remove.is_empty() {
        progress.log(&format!(
            "W: apt's plan removes installed packages: {} (recorded in the manifest; install.sh shows them and needs --force)",
            result.remove.join(", ")
        ));
    }
    check_cancel(progress)?;
    let mut items = Vec::new();
    let mut pkgs = Vec::new();
    for c in &result.install {
        let r = c.pref.ok_or_else(|| {
            EngineError::new(
                Kind::Unsatisfiable,
                format!("{} {} has no download source", c.name, c.version),
            )
            .package(c.name.clone())
        })?;
        let p = u.paragraph(r);
        let info = package_info(u, c);
        let pool_path = p.get("Filename").unwrap_or("");
        if pool_path.is_empty() || info.sha256.len() != 64 || info.size == 0 {
            return Err(EngineError::new(
                Kind::Trust,
                format!(
                    "{} {}: the index gives no Filename/Size/SHA256 to verify the download with",
                    c.name, c.version
                ),
            )
            .package(c.name.clone()));
        }
        items.push(Item {
            name: info.filename.clone(),
            urls: vec![format!("{}/{}", u.source(r).mirror, pool_path)],
            sha256: info.sha256.clone(),
            size: info.size,
        });
        pkgs.push(BundlePackage {
            info,
            stanza: p.as_str().to_string(),
            path: PathBuf::new(),
            pool_path: pool_path.to_string(),
        });
    }
    let total: u64 = items.iter().map(|i| i.size).sum();
    progress.log(&format!(
        "resolved {} packages, {} bytes to bundle",
        items.len(),
        total
    ));
    for p in &pkgs {
        progress.log(&format!("  {} {} <- {}", p.name, p.version, p.why));
    }
    // the bundle's time: the newest signed Release it was made from (deterministic)
    let newest = u
        .sources
        .iter()
        .filter_map(|s| {
            s.date
                .as_deref()
                .and_then(opaas_repo::release::parse_rfc2822)
        })
        .max()
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let epoch = newest
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut log = format!(
        "opaas {} build\ndistro: {} ({})\narch: {}\nrequest: {}\nrecommends: {}\nbaseline: {}\nmirror: {}\nsecurity mirror: {}\nindices as of: {}\n\npackages ({}, {} bytes):\n",
        env!("CARGO_PKG_VERSION"),
        session.distro.id,
        session.distro.codename,
        req.arch,
        req.packages.join(" "),
        req.recommends,
        req.baseline.label(),
        session.target.mirrors.main.url,
        session.target.mirrors.security.url,
        opaas_repo::release::format_rfc3339(newest),
        pkgs.len(),
        total
    );
    log.push_str(&package_lines(&pkgs));
    let os_id = match session.distro.family {
        opaas_repo::catalog::Family::Debian => "debian",
        _ => "ubuntu",
    };
    let archive = if settings.unsigned {
        None
    } else {
        let a = crate::signed::signed_archive(session, u, &result.install)?;
        log.push_str(&suite_lines(&a.suites));
        Some(a)
    };
    let input = BundleInput {
        distro: BundleDistro {
            id: session.distro.id.clone(),
            os_id: os_id.into(),
            codename: session.distro.codename.clone(),
        },
        arch: req.arch.clone(),
        request: requests
            .iter()
            .map(|r| match &r.arch {
                Some(x) => format!("{}:{x}", r.name),
                None => r.name.clone(),
            })
            .collect(),
        recommends: req.recommends,
        baseline: req.baseline.label().to_string(),
        packages: pkgs,
        remove: result.remove.clone(),
        mode: match req.upgrade {
            None => "install",
            Some(opaas_resolve::UpgradeMode::Upgrade) => "upgrade",
            Some(opaas_resolve::UpgradeMode::FullUpgrade) => "full-upgrade",
        }
        .to_string(),
        assumed: assumed.clone(),
        host: req.host.clone().unwrap_or_default(),
        hosts: Vec::new(),
        phased: match req.phased {
            opaas_resolve::Phased::Include => "include",
            opaas_resolve::Phased::Exclude => "exclude",
        }
        .to_string(),
        created: opaas_repo::release::format_rfc3339(newest),
        created_epoch: epoch,
        created_rfc2822: opaas_repo::release::format_rfc2822(newest),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        build_log: log,
        archive,
        lock_sha256: None,
    };
    Ok((input, items))
}

/// build.log's line per package.
pub(crate) fn package_lines(pkgs: &[BundlePackage]) -> String {
    pkgs.iter()
        .map(|p| {
            format!(
                "  {} {} {} [{}] <- {}\n",
                p.name, p.version, p.arch, p.pocket, p.why
            )
        })
        .collect()
}

/// build.log's line per signed suite.
pub(crate) fn suite_lines(suites: &[opaas_bundle::ArchiveSuite]) -> String {
    suites
        .iter()
        .map(|s| {
            format!(
                "signed suite {} ({}): signed by {}\n",
                s.suite,
                s.components.join(" "),
                s.signed_by
            )
        })
        .collect()
}

/// Downloads what `input` needs (reusing an identical bundle already in `out_dir`, or one
/// `reuse` places there) and writes it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn finish(
    settings: &Settings,
    session: &Session,
    mut input: BundleInput,
    items: &[Item],
    out_dir: &Path,
    format: Format,
    progress: &dyn BuildProgress,
    reuse: &dyn Reuse,
) -> Result<Built, EngineError> {
    let total: u64 = items.iter().map(|i| i.size).sum();
    // the same resolution and format give the same file: reuse it once it verifies
    let file_name = opaas_bundle::bundle_file_name(&input, format);
    let existing = out_dir.join(&file_name);
    if !existing.is_file() {
        reuse.place(&file_name, &existing);
        check_cancel(progress)?;
    }
    if existing.is_file() {
        let name = existing
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match reusable(&existing, &input) {
            Ok(Ok((sha256, size, manifest, manifest_json, sbom_json, how))) => {
                progress.log(&format!("reusing {name}, verified ({how})"));
                return Ok(Built {
                    path: existing,
                    file_name: name,
                    size,
                    sha256,
                    manifest,
                    manifest_json,
                    sbom_json,
                    package_count: input.packages.len(),
                    total_size: total,
                    downloaded_bytes: 0,
                    cache_hits: 0,
                    downloads: 0,
                    reused: true,
                    reuse_check: how,
                });
            }
            Ok(Err(problems)) => progress.log(&format!(
                "W: {name} exists but does not verify ({}); writing it again",
                problems.join("; ")
            )),
            Err(e) => progress.log(&format!(
                "W: {name} exists but cannot be read ({e}); writing it again"
            )),
        }
    }
    progress.phase(Phase::Downloading);
    let cas = Cas::new(&session.cache_root);
    let defaults = opaas_fetch::Options::default();
    let opts = opaas_fetch::Options {
        jobs: if settings.jobs == 0 {
            defaults.jobs
        } else {
            settings.jobs
        },
        per_host: if settings.per_host == 0 {
            defaults.per_host
        } else {
            settings.per_host
        },
        ..defaults
    };
    let gate = Gate::default();
    let adapter = FetchAdapter {
        p: progress,
        files: AtomicUsize::new(0),
        bytes: AtomicU64::new(0),
        gate: Some(&gate),
    };
    // every .deb's place in the store is known before it arrives (its SHA-256 is signed), so
    // the tarball is written while the downloads run, in its fixed member order, each member
    // once its file is complete; the downloads are queued in that order
    for p in input.packages.iter_mut() {
        p.path = cas.path(&p.sha256.to_ascii_lowercase());
    }
    let mut order: Vec<usize> = (0..items.len().min(input.packages.len())).collect();
    if input.archive.is_some() {
        order.sort_by(|&a, &b| {
            input.packages[a]
                .pool_path
                .cmp(&input.packages[b].pool_path)
        });
    } else {
        order.sort_by(|&a, &b| {
            let (x, y) = (&input.packages[a], &input.packages[b]);
            x.name.cmp(&y.name).then(x.arch.cmp(&y.arch))
        });
    }
    let queued: Vec<Item> = order.iter().map(|&i| items[i].clone()).collect();
    let (fetched, written) = std::thread::scope(|sc| {
        let fetch = sc.spawn(|| {
            let r = opaas_fetch::fetch_all(&cas, &queued, &opts, &adapter);
            gate.finish();
            if r.is_ok() {
                // what is left of the packing now runs alone
                progress.phase(Phase::Packing);
            }
            r
        });
        let w = opaas_bundle::write_bundle_streaming(
            &input,
            out_dir,
            format,
            &|d, t| progress.pack(d, t),
            &|path| gate.wait_for(path, progress),
        );
        if w.is_err() {
            // the tarball cannot be written: stop the downloads too
            gate.abort();
        }
        let f = fetch
            .join()
            .unwrap_or(Err(opaas_fetch::FetchError::Cancelled));
        (f, w)
    });
    // a cancelled fetch stops within a fraction of a second; say so rather than "failed"
    check_cancel(progress)?;
    // a failed download explains a failed tarball better than the tarball's error does
    let fetched = fetched?;
    let w = written?;
    progress.log(&format!("wrote {} ({} bytes)", w.file_name, w.size));
    Ok(Built {
        path: w.path,
        file_name: w.file_name,
        size: w.size,
        sha256: w.sha256,
        manifest: w.manifest,
        manifest_json: w.manifest_json,
        sbom_json: w.sbom_json,
        package_count: input.packages.len(),
        total_size: total,
        downloaded_bytes: fetched.downloaded_bytes,
        cache_hits: fetched.cache_hits,
        downloads: fetched.downloads,
        reused: false,
        reuse_check: "",
    })
}
