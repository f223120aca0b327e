//! resolve → download → bundle.

use crate::error::{EngineError, Kind};
use crate::session::{open, Session, Settings};
use opaas_bundle::{BundleDistro, BundleInput, BundlePackage, Format};
use opaas_fetch::{Cas, Item};
use opaas_repo::universe::Universe;
use opaas_resolve::{Options, Reason, Resolution, ResolveError};
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
}

/// A request resolved on its target.
pub struct Resolved {
    pub session: Session,
    pub universe: Universe,
    pub requests: Vec<opaas_resolve::Request>,
    pub result: Resolution,
    /// Things the user should know (e.g. stale indices used after a failed refresh).
    pub warnings: Vec<String>,
}

/// One line of explanation for a package.
pub fn why(c: &opaas_resolve::Chosen) -> String {
    match &c.reason {
        Reason::Requested => "requested".to_string(),
        Reason::Dependency {
            parent,
            field,
            relation,
            choice,
        } => {
            let ch = if choice.is_empty() {
                String::new()
            } else {
                format!(" [{choice}]")
            };
            format!("{parent} {field}: {relation}{ch}")
        }
        Reason::SameSource { sibling } => format!("upgraded with {sibling} (same source package)"),
        Reason::ConflictUpgrade {
            parent,
            field,
            relation,
        } => format!("upgraded because {parent} {field}: {relation}"),
    }
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
    })
}

/// Parses and resolves a request as `apt-get install` would on the target.
pub fn resolve(settings: &Settings, req: &Request) -> Result<Resolved, EngineError> {
    if req.packages.is_empty() {
        return Err(EngineError::new(Kind::BadInput, "no packages requested").field("packages"));
    }
    let mut reqs = Vec::new();
    for r in &req.packages {
        reqs.push(
            opaas_resolve::Request::parse(r)
                .map_err(|e| EngineError::new(Kind::BadInput, e.to_string()).field("packages"))?,
        );
    }
    let extra: Vec<String> = reqs.iter().filter_map(|r| r.arch.clone()).collect();
    let session = open(settings, &req.distro, &req.arch, &extra)?;
    let warnings: Vec<String> = settings
        .max_index_age
        .and_then(|a| session.refresh_if_stale(a))
        .into_iter()
        .collect();
    let u = session.universe()?;
    let base = load_baseline(&req.baseline, &u, session.distro)?;
    let opts = Options {
        recommends: req.recommends,
        ..Options::default()
    };
    let result = opaas_resolve::resolve(&u, &base, &reqs, opts).map_err(|e| {
        let kind = match &e {
            ResolveError::UnknownPackage { .. } | ResolveError::VirtualPackage { .. } => {
                Kind::UnknownPackage
            }
            ResolveError::Unsatisfiable(_) => Kind::Unsatisfiable,
            _ => Kind::BadInput,
        };
        let mut err = EngineError::new(kind, format!("{e}")).field("packages");
        if let ResolveError::UnknownPackage { name, .. } = &e {
            err.message = format!(
                "unknown package '{name}' for {} {}{}",
                session.distro.id,
                req.arch,
                opaas_resolve::suggest::hint(&u, name)
            );
            err.suggestions = opaas_resolve::suggest::suggestions(&u, name);
        }
        err
    })?;
    Ok(Resolved {
        session,
        universe: u,
        requests: reqs,
        result,
        warnings,
    })
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
    /// Checked between steps; true stops the build with `Kind::Cancelled`.
    fn cancelled(&self) -> bool {
        false
    }
}

pub struct NoBuildProgress;
impl BuildProgress for NoBuildProgress {}

struct FetchAdapter<'a> {
    p: &'a dyn BuildProgress,
    files: AtomicUsize,
    bytes: AtomicU64,
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
        self.p.cancelled()
    }
}

/// A finished build.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Built {
    pub path: PathBuf,
    pub file_name: String,
    pub size: u64,
    pub package_count: usize,
    pub total_size: u64,
    pub downloaded_bytes: u64,
    pub cache_hits: usize,
    pub downloads: usize,
    /// An identical bundle was already there and verified: nothing was downloaded or packed.
    pub reused: bool,
}

fn check_cancel(p: &dyn BuildProgress) -> Result<(), EngineError> {
    if p.cancelled() {
        Err(EngineError::new(Kind::Cancelled, "cancelled"))
    } else {
        Ok(())
    }
}

/// Resolves, downloads and writes the bundle into `out_dir`.
pub fn build(
    settings: &Settings,
    req: &Request,
    out_dir: &Path,
    format: Format,
    progress: &dyn BuildProgress,
) -> Result<Built, EngineError> {
    progress.phase(Phase::Resolving);
    let Resolved {
        session,
        universe: u,
        requests,
        result,
        warnings,
    } = resolve(settings, req)?;
    for w in &warnings {
        progress.log(&format!("W: {w}"));
    }
    if !result.remove.is_empty() {
        return Err(EngineError::new(
            Kind::Unsatisfiable,
            format!(
                "apt would have to remove installed packages ({}); a bundle cannot do that",
                result.remove.join(", ")
            ),
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
        })?;
        let p = u.paragraph(r);
        let filename = p.get("Filename").unwrap_or("");
        let sha256 = p.get("SHA256").unwrap_or("").to_ascii_lowercase();
        let size: u64 = p.get("Size").and_then(|s| s.parse().ok()).unwrap_or(0);
        if filename.is_empty() || sha256.len() != 64 || size == 0 {
            return Err(EngineError::new(
                Kind::Trust,
                format!(
                    "{} {}: the index gives no Filename/Size/SHA256 to verify the download with",
                    c.name, c.version
                ),
            ));
        }
        let src = u.source(r);
        let base = filename.rsplit('/').next().unwrap_or(filename).to_string();
        items.push(Item {
            name: base.clone(),
            urls: vec![format!("{}/{}", src.mirror, filename)],
            sha256: sha256.clone(),
            size,
        });
        pkgs.push(BundlePackage {
            name: c.name.clone(),
            version: c.version.clone(),
            arch: c.arch.clone(),
            size,
            sha256,
            filename: base,
            pocket: format!("{}/{}", src.suite, src.component),
            why: why(c),
            installed_size_kb: p
                .get("Installed-Size")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
            stanza: p.as_str().to_string(),
            path: PathBuf::new(),
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
    for p in &pkgs {
        log.push_str(&format!(
            "  {} {} {} [{}] <- {}\n",
            p.name, p.version, p.arch, p.pocket, p.why
        ));
    }
    let os_id = match session.distro.family {
        opaas_repo::catalog::Family::Debian => "debian",
        _ => "ubuntu",
    };
    let mut input = BundleInput {
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
        created: opaas_repo::release::format_rfc3339(newest),
        created_epoch: epoch,
        created_rfc2822: opaas_repo::release::format_rfc2822(newest),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        build_log: log,
    };
    // the same resolution and format give the same file: reuse it once it verifies
    let existing = out_dir.join(opaas_bundle::bundle_file_name(&input, format));
    if existing.is_file() {
        let name = existing
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match opaas_bundle::verify(&existing) {
            Ok(rep) if rep.problems.is_empty() => {
                progress.log(&format!("reusing {name}, verified"));
                let size = std::fs::metadata(&existing).map(|m| m.len()).unwrap_or(0);
                return Ok(Built {
                    path: existing,
                    file_name: name,
                    size,
                    package_count: input.packages.len(),
                    total_size: total,
                    downloaded_bytes: 0,
                    cache_hits: 0,
                    downloads: 0,
                    reused: true,
                });
            }
            Ok(rep) => progress.log(&format!(
                "W: {name} exists but does not verify ({}); writing it again",
                rep.problems.join("; ")
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
        ..defaults
    };
    let adapter = FetchAdapter {
        p: progress,
        files: AtomicUsize::new(0),
        bytes: AtomicU64::new(0),
    };
    let fetched = opaas_fetch::fetch_all(&cas, &items, &opts, &adapter);
    // a cancelled fetch stops within a fraction of a second; say so rather than "failed"
    check_cancel(progress)?;
    let fetched = fetched?;
    for (p, path) in input.packages.iter_mut().zip(&fetched.paths) {
        p.path = path.clone();
    }
    progress.phase(Phase::Packing);
    let path = opaas_bundle::write_bundle(&input, out_dir, format)?;
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    progress.log(&format!("wrote {file_name} ({size} bytes)"));
    Ok(Built {
        path,
        file_name,
        size,
        package_count: input.packages.len(),
        total_size: total,
        downloaded_bytes: fetched.downloaded_bytes,
        cache_hits: fetched.cache_hits,
        downloads: fetched.downloads,
        reused: false,
    })
}

/// A search hit.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Hit {
    pub name: String,
    pub version: String,
    pub summary: String,
}

/// Name matches first (exact, prefix, substring), then description matches; one per package.
pub fn search(u: &Universe, term: &str, limit: usize) -> Vec<Hit> {
    let term_l = term.to_ascii_lowercase();
    let mut scored: Vec<(u8, &str)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for name in u.names() {
        let rank = if name == term_l {
            0
        } else if name.starts_with(&term_l) {
            1
        } else if name.contains(&term_l) {
            2
        } else {
            continue;
        };
        seen.insert(name);
        scored.push((rank, name));
    }
    if scored.len() < limit {
        for r in u.all_refs() {
            let n = u.name(r);
            if seen.contains(n) {
                continue;
            }
            let d = u.paragraph(r).get("Description").unwrap_or("");
            if opaas_deb::deb822::first_line(d)
                .to_ascii_lowercase()
                .contains(&term_l)
            {
                seen.insert(n);
                scored.push((3, n));
            }
        }
    }
    scored.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then(a.1.len().cmp(&b.1.len()))
            .then(a.1.cmp(b.1))
    });
    scored
        .into_iter()
        .filter_map(|(_, n)| {
            let c = u.candidate(n, &u.native_arch, None)?;
            let d = u.paragraph(c.main).get("Description").unwrap_or("");
            Some(Hit {
                name: n.to_string(),
                version: c.version.to_string(),
                summary: opaas_deb::deb822::first_line(d).to_string(),
            })
        })
        .take(limit)
        .collect()
}
