//! Settings (flags, env, config file) → a target on disk and on the network.

use crate::error::{EngineError, Kind};
use opaas_repo::catalog::{self, Distro};
use opaas_repo::config::Config;
use opaas_repo::http::Http;
use opaas_repo::mirrors::{self, MirrorInputs};
use opaas_repo::store::{self, Cache, RepoError, Target};
use opaas_repo::universe::Universe;
use std::path::{Path, PathBuf};

/// How to reach repositories: what the CLI flags and the service's configuration provide.
/// Empty fields fall back to env, config file, host APT sources and presets (see `mirrors`).
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub config_file: Option<PathBuf>,
    pub cache_dir: Option<PathBuf>,
    pub mirror: Option<String>,
    pub security_mirror: Option<String>,
    pub mirror_preset: Option<String>,
    pub keyrings: Vec<PathBuf>,
    pub components: Vec<String>,
    /// Never touch the network for indices.
    pub offline: bool,
    /// Parallel downloads (0 = default).
    pub jobs: usize,
    /// Connections to one mirror at a time, over all downloads (0 = default: 4).
    pub per_host: usize,
    /// Bundles with a flat repository of their own (apt on the target trusts it blindly)
    /// instead of the distribution's signed archive: for mirrors without a signature.
    pub unsigned: bool,
    /// Cached indices older than this are refreshed before resolving (not offline; `None`:
    /// only missing indices are fetched). A refresh that fails falls back to the cache with a
    /// warning.
    pub max_index_age: Option<std::time::Duration>,
}

/// One distro/arch target, ready to load or update its indices.
pub struct Session {
    pub distro: &'static Distro,
    pub cache: Cache,
    /// The directory under which every cache lives (indices, .debs).
    pub cache_root: PathBuf,
    pub target: Target<'static>,
    pub http: Http,
    pub offline: bool,
    /// The keyring files given (flag or config) instead of the distribution's own; empty: the
    /// built-in keyrings.
    pub keyring_files: Vec<PathBuf>,
}

/// Every place [`open`] looks for `distro`'s mirrors on `arch`, and what each holds — what
/// `opaas mirrors` prints even when nothing is configured.
pub fn mirror_trace(
    s: &Settings,
    distro: &str,
    arch: &str,
) -> Result<(&'static Distro, mirrors::Trace), EngineError> {
    let (distro, config) = distro_and_config(s, distro, arch)?;
    let t =
        mirrors::trace(distro, arch, &mirror_inputs(s, &config)).map_err(|e| bad(&e, "mirror"))?;
    Ok((distro, t))
}

/// The mirrors `open` would use for `distro` on `arch` (no file or network access beyond the
/// configuration and the host's APT sources): an error with field `mirror` when this
/// configuration has none for it.
pub fn mirrors_for(
    s: &Settings,
    distro: &str,
    arch: &str,
) -> Result<mirrors::Mirrors, EngineError> {
    let (distro, config) = distro_and_config(s, distro, arch)?;
    mirrors::resolve(distro, arch, &mirror_inputs(s, &config)).map_err(|e| bad(&e, "mirror"))
}

/// A bad-input error about request field `f`.
fn bad(e: &dyn std::fmt::Display, f: &'static str) -> EngineError {
    EngineError::new(Kind::BadInput, e.to_string()).field(f)
}

/// The catalog entry of `distro` (its `arch` checked) and the configuration file.
fn distro_and_config(
    s: &Settings,
    distro: &str,
    arch: &str,
) -> Result<(&'static Distro, Config), EngineError> {
    let distro = catalog::find(distro).map_err(|e| bad(&e, "distro"))?;
    distro.check_arch(arch).map_err(|e| bad(&e, "arch"))?;
    let config = Config::load(s.config_file.as_deref()).map_err(|e| bad(&e, "config"))?;
    Ok((distro, config))
}

/// Where mirrors come from: the flags of `s` over the environment over `config`.
fn mirror_inputs<'a>(s: &'a Settings, config: &'a Config) -> MirrorInputs<'a> {
    let mut inp = MirrorInputs::from_env(config);
    inp.mirror_flag = s.mirror.as_deref();
    inp.security_flag = s.security_mirror.as_deref();
    inp.preset_flag = s.mirror_preset.as_deref();
    inp
}

/// Opens the target `distro`/`arch` (plus foreign `extra` architectures).
pub fn open(
    s: &Settings,
    distro: &str,
    arch: &str,
    extra: &[String],
) -> Result<Session, EngineError> {
    let (distro, config) = distro_and_config(s, distro, arch)?;
    let m = mirrors::resolve(distro, arch, &mirror_inputs(s, &config))
        .map_err(|e| bad(&e, "mirror"))?;
    let components = if s.components.is_empty() {
        distro.components.clone()
    } else {
        for c in &s.components {
            if !distro.components.contains(c) && !distro.optional_components.contains(c) {
                let all: Vec<String> = distro
                    .components
                    .iter()
                    .chain(&distro.optional_components)
                    .cloned()
                    .collect();
                return Err(EngineError::new(
                    Kind::BadInput,
                    format!(
                        "{} has no component '{c}'; it has: {}",
                        distro.id,
                        all.join(", ")
                    ),
                )
                .field("components"));
            }
        }
        s.components.clone()
    };
    let explicit: Vec<&Path> = s.keyrings.iter().map(PathBuf::as_path).collect();
    let from_config: Vec<&Path> = config
        .keyrings
        .get(&distro.keyring)
        .map(|p| vec![p.as_path()])
        .unwrap_or_default();
    let keyring_files: Vec<&Path> = if explicit.is_empty() {
        from_config
    } else {
        explicit
    };
    let keyring = opaas_repo::keyrings::LazyKeyring::for_distro(&distro.keyring, &keyring_files)
        .map_err(|e| EngineError::from(RepoError::Keyring(e)))?;
    let keyring_files: Vec<PathBuf> = keyring_files.iter().map(|p| p.to_path_buf()).collect();
    let cache_root = s
        .cache_dir
        .clone()
        .or_else(|| config.cache_dir.clone())
        .unwrap_or_else(Cache::default_dir);
    let mut arches = vec![arch.to_string()];
    for a in extra {
        if !arches.contains(a) {
            distro.check_arch(a).map_err(|e| bad(&e, "arch"))?;
            arches.push(a.clone());
        }
    }
    Ok(Session {
        distro,
        cache: Cache::new(&cache_root),
        cache_root,
        target: Target {
            distro,
            arches,
            components,
            mirrors: m,
            keyring,
        },
        // a busy mirror failing several requests in a row is waited out, not fatal
        http: Http::new().with_patience(std::time::Duration::from_secs(10)),
        offline: s.offline,
        keyring_files,
    })
}

impl Session {
    pub fn arch(&self) -> &str {
        &self.target.arches[0]
    }

    /// Fetches the indices that changed.
    pub fn update(
        &self,
        progress: &dyn store::UpdateProgress,
    ) -> Result<store::UpdateReport, EngineError> {
        if self.offline {
            return Err(EngineError::new(
                Kind::BadInput,
                "cannot update the indices with --offline",
            ));
        }
        Ok(store::update(
            &self.cache,
            &self.target,
            &self.http,
            progress,
        )?)
    }

    /// Whether every pocket is cached, and whether any is older than `max_age`.
    pub fn cache_age(&self, max_age: std::time::Duration) -> (bool, bool) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let (mut cached, mut stale) = (true, false);
        for (mirror, suite) in self.target.pockets() {
            match self.cache.suite_state(mirror, suite) {
                Some(st) => stale |= now.saturating_sub(st.fetched_at) >= max_age.as_secs(),
                None => cached = false,
            }
        }
        (cached, stale)
    }

    /// Refreshes cached indices older than `max_age` (cheap when nothing changed: one signed
    /// Release per pocket). Returns a warning when the refresh failed and the cache is used.
    pub fn refresh_if_stale(&self, max_age: std::time::Duration) -> Option<String> {
        self.refresh_if_stale_with(max_age, &store::NoProgress)
    }

    /// [`Session::refresh_if_stale`], telling `progress` about each index file.
    pub fn refresh_if_stale_with(
        &self,
        max_age: std::time::Duration,
        progress: &dyn store::UpdateProgress,
    ) -> Option<String> {
        if self.offline {
            return None;
        }
        let (cached, stale) = self.cache_age(max_age);
        if !(cached && stale) {
            return None;
        }
        match store::update(&self.cache, &self.target, &self.http, progress) {
            Ok(_) => None,
            Err(e) => Some(format!(
                "could not refresh the package indices ({e}); using the cached ones"
            )),
        }
    }

    /// Loads the indices: from the cache when it has them, else fetches them first (unless
    /// offline).
    /// Waits for the index tables' CRC checks and rebuilds any damaged table (`show`, `search`,
    /// `baseline`, the service): callers that use the indices without asking
    /// [`Universe::damaged_tables`] themselves, as the resolve pipeline does.
    pub fn universe(&self) -> Result<Universe, EngineError> {
        let u = self.universe_with(&store::NoProgress)?;
        let damaged = u.damaged_tables();
        if damaged.is_empty() {
            return Ok(u);
        }
        drop(u);
        store::remove_damaged(&damaged);
        self.universe_with(&store::NoProgress)
    }

    /// [`Session::universe`], telling `progress` about each index file it fetches.
    pub fn universe_with(
        &self,
        progress: &dyn store::UpdateProgress,
    ) -> Result<Universe, EngineError> {
        let loaded = match store::load_cached(&self.cache, &self.target) {
            Ok(l) => l,
            Err(RepoError::NotCached { .. }) if !self.offline => {
                store::update(&self.cache, &self.target, &self.http, progress)?;
                store::load_cached(&self.cache, &self.target)?
            }
            Err(e) => return Err(e.into()),
        };
        Ok(Universe::new(&self.target.arches[0], loaded))
    }

    /// The universe of only the sources `keep` accepts (e.g. the security pocket).
    pub fn universe_where(
        &self,
        progress: &dyn store::UpdateProgress,
        keep: impl Fn(&opaas_repo::store::SourceMeta) -> bool,
    ) -> Result<Universe, EngineError> {
        self.universe_with(progress)?;
        let mut loaded = store::load_cached(&self.cache, &self.target)?;
        loaded.retain(|(m, _)| keep(m));
        Ok(Universe::new(&self.target.arches[0], loaded))
    }
}
