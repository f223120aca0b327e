//! Options shared by every command that reads a repository, and how they become a target.

use anyhow::Result;
use clap::Args;
use opaas_repo::catalog::{self, Distro};
use opaas_repo::config::Config;
use opaas_repo::http::Http;
use opaas_repo::mirrors::{self, MirrorInputs};
use opaas_repo::store::{self, Cache, RepoError, Target};
use opaas_repo::universe::Universe;
use std::path::{Path, PathBuf};

/// Exit codes (documented in the README): 0 ok, 1 other error, 2 usage (clap),
/// 3 bad input (unknown distro/arch/package), 4 repository trust or integrity failure,
/// 5 network / mirror unreachable, 6 nothing cached with --offline, 7 unsatisfiable request.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    for c in e.chain() {
        if let Some(r) = c.downcast_ref::<RepoError>() {
            return match r {
                RepoError::Http(_) => 5,
                RepoError::NotCached { .. } => 6,
                RepoError::Io { .. } => 1,
                RepoError::MissingIndex { .. } => 3,
                _ => 4,
            };
        }
        if c.downcast_ref::<catalog::CatalogError>().is_some()
            || c.downcast_ref::<mirrors::MirrorError>().is_some()
        {
            return 3;
        }
        if let Some(f) = c.downcast_ref::<opaas_fetch::FetchError>() {
            return if f.is_integrity() {
                4
            } else if f.is_network() {
                5
            } else {
                1
            };
        }
        if let Some(u) = c.downcast_ref::<UserError>() {
            return u.code;
        }
    }
    1
}

/// An error about what the user asked for, with its exit code.
#[derive(Debug)]
pub struct UserError {
    pub code: u8,
    pub message: String,
}
impl std::fmt::Display for UserError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}
impl std::error::Error for UserError {}

#[derive(Args, Clone, Debug)]
pub struct TargetArgs {
    /// Target distro: ubuntu-24.04, ubuntu-22.04, debian-13, debian-12, debian-11 (codenames work)
    #[arg(long, short = 'd', env = "OPAAS_DISTRO")]
    pub distro: String,
    /// Target architecture (amd64, arm64, armhf, i386, ppc64el, s390x, riscv64, …)
    #[arg(long, short = 'a', default_value = "amd64", env = "OPAAS_ARCH")]
    pub arch: String,
    /// Components to use (default: the distro's default components)
    #[arg(long, value_delimiter = ',')]
    pub components: Vec<String>,
    /// Main archive mirror URL (overrides env, config and host sources)
    #[arg(long)]
    pub mirror: Option<String>,
    /// Security archive mirror URL
    #[arg(long)]
    pub security_mirror: Option<String>,
    /// Named public mirror preset (see `opaas mirrors`)
    #[arg(long)]
    pub mirror_preset: Option<String>,
    /// Config file (default ~/.config/opaas/config.toml)
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Cache directory (default $OPAAS_CACHE_DIR or ~/.cache/opaas)
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// OpenPGP keyring(s) to verify Release files with, instead of the distro's own
    #[arg(long)]
    pub keyring: Vec<PathBuf>,
    /// Use the cache only; never touch the network
    #[arg(long)]
    pub offline: bool,
    /// Fewer messages on stderr
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

pub struct Ctx {
    pub distro: &'static Distro,
    pub cache: Cache,
    pub target: Target<'static>,
    pub http: Http,
    pub quiet: bool,
}

impl TargetArgs {
    pub fn ctx(&self) -> Result<Ctx> {
        self.ctx_with_arches(&[])
    }

    /// A context for the target arch plus `extra` foreign architectures.
    pub fn ctx_with_arches(&self, extra: &[String]) -> Result<Ctx> {
        let distro = catalog::find(&self.distro)?;
        distro.check_arch(&self.arch)?;
        let config = Config::load(self.config.as_deref())?;
        let mut inp = MirrorInputs::from_env(&config);
        inp.mirror_flag = self.mirror.as_deref();
        inp.security_flag = self.security_mirror.as_deref();
        inp.preset_flag = self.mirror_preset.as_deref();
        let m = mirrors::resolve(distro, &self.arch, &inp)?;
        let components = if self.components.is_empty() {
            distro.components.clone()
        } else {
            for c in &self.components {
                if !distro.components.contains(c) && !distro.optional_components.contains(c) {
                    return Err(UserError {
                        code: 3,
                        message: format!(
                            "{} has no component '{c}'; it has: {}",
                            distro.id,
                            distro
                                .components
                                .iter()
                                .chain(&distro.optional_components)
                                .cloned()
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    }
                    .into());
                }
            }
            self.components.clone()
        };
        let keyrings: Vec<&Path> = self.keyring.iter().map(PathBuf::as_path).collect();
        let kr_name = config
            .keyrings
            .get(&distro.keyring)
            .map(|p| vec![p.as_path()]);
        let keyring = opaas_repo::keyrings::for_distro(
            &distro.keyring,
            if keyrings.is_empty() {
                kr_name.as_deref().unwrap_or(&[])
            } else {
                &keyrings
            },
        )
        .map_err(RepoError::Keyring)?;
        let cache_dir = self
            .cache_dir
            .clone()
            .or_else(|| config.cache_dir.clone())
            .unwrap_or_else(Cache::default_dir);
        let mut arches = vec![self.arch.clone()];
        for a in extra {
            if !arches.contains(a) {
                distro.check_arch(a)?;
                arches.push(a.clone());
            }
        }
        Ok(Ctx {
            distro,
            cache: Cache::new(cache_dir),
            target: Target {
                distro,
                arches,
                components,
                mirrors: m,
                keyring,
            },
            http: Http::new(),
            quiet: self.quiet,
        })
    }
}

impl Ctx {
    /// Loads the indices: from the cache when it has them, else fetches them first (unless
    /// offline).
    pub fn universe(&self, offline: bool) -> Result<Universe> {
        let loaded = match store::load_cached(&self.cache, &self.target) {
            Ok(l) => l,
            Err(RepoError::NotCached { .. }) if !offline => {
                if !self.quiet {
                    eprintln!(
                        "fetching indices for {} {} …",
                        self.distro.id,
                        self.target.arches.join(",")
                    );
                }
                store::update(&self.cache, &self.target, &self.http, &store::NoProgress)?;
                store::load_cached(&self.cache, &self.target)?
            }
            Err(e) => return Err(e.into()),
        };
        Ok(Universe::new(&self.target.arches[0], loaded))
    }
}

pub fn user_err(code: u8, message: impl Into<String>) -> anyhow::Error {
    UserError {
        code,
        message: message.into(),
    }
    .into()
}
