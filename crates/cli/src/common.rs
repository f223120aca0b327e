//! Options shared by every command that reads a repository, and how they become engine
//! settings; exit codes.

use clap::Args;
use opaas_engine::{EngineError, Kind, Settings};
use opaas_repo::store::RepoError;
use std::path::PathBuf;

/// Exit codes (documented in the README): 0 ok, 1 other error, 2 usage (clap),
/// 3 bad input (unknown distro/arch/package), 4 repository trust or integrity failure,
/// 5 network / mirror unreachable, 6 nothing cached with --offline, 7 unsatisfiable request.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    e.chain()
        .find_map(|c| c.downcast_ref::<EngineError>())
        .map_or(1, EngineError::exit_code)
}

/// An error about what the user asked for.
pub fn user_err(kind: Kind, message: impl Into<String>) -> anyhow::Error {
    EngineError::new(kind, message).into()
}

/// Where repositories are and how they are trusted: shared by every command that reads them,
/// `serve` included.
#[derive(Args, Clone, Debug)]
pub struct MirrorArgs {
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
    /// OpenPGP keyring(s) to verify Release files with, instead of the distro's own
    #[arg(long)]
    pub keyring: Vec<PathBuf>,
    /// Connections to one mirror at a time, over all parallel downloads (-j). 4 is polite to a
    /// small mirror; a CDN or a mirror of your own serves 16 and more, and a large build then
    /// downloads faster (docs/BENCHMARKS.md)
    #[arg(long, default_value_t = 4, env = "OPAAS_CONNECTIONS_PER_HOST",
          value_parser = clap::value_parser!(u16).range(1..=64))]
    pub connections_per_host: u16,
}

impl MirrorArgs {
    /// Engine settings with these mirrors, config and keyrings (everything else default).
    pub fn settings(&self) -> Settings {
        Settings {
            config_file: self.config.clone(),
            mirror: self.mirror.clone(),
            security_mirror: self.security_mirror.clone(),
            mirror_preset: self.mirror_preset.clone(),
            keyrings: self.keyring.clone(),
            per_host: usize::from(self.connections_per_host),
            ..Settings::default()
        }
    }
}

/// How old cached indices may be before they are refreshed: one flag, one syntax, for every
/// repository command and `serve`.
#[derive(Args, Clone, Debug)]
pub struct IndexAge {
    /// Refresh cached indices older than this before using them (e.g. 30m, 1h, 2h30m;
    /// a bare number is minutes)
    #[arg(long, default_value = "1h", value_parser = index_age, env = "OPAAS_MAX_INDEX_AGE")]
    pub max_index_age: std::time::Duration,
}

/// A humantime duration; a bare number is minutes, the unit `--max-index-age` had before.
pub fn index_age(s: &str) -> Result<std::time::Duration, String> {
    let t = s.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t
            .parse::<u64>()
            .ok()
            .and_then(|m| m.checked_mul(60))
            .map(std::time::Duration::from_secs)
            .ok_or_else(|| format!("'{s}' is out of range"));
    }
    humantime::parse_duration(t)
        .map_err(|e| format!("'{s}' is not a duration (e.g. 30m, 1h, 2h30m): {e}"))
}

#[derive(Args, Clone, Debug)]
pub struct TargetArgs {
    /// Target distro: ubuntu-24.04, ubuntu-22.04, debian-13, debian-12, debian-11 (codenames work)
    #[arg(long, short = 'd', env = "OPAAS_DISTRO")]
    pub distro: String,
    /// Target architecture, as dpkg names it (amd64, arm64, armhf, i386, ppc64el, s390x,
    /// riscv64, …); default: this host's (said on stderr)
    #[arg(long, short = 'a', default_value_t = host_arch().to_string(), env = "OPAAS_ARCH")]
    pub arch: String,
    /// Components to use (default: the distro's default components)
    #[arg(long, value_delimiter = ',')]
    pub components: Vec<String>,
    #[command(flatten)]
    pub s: SourceArgs,
}

/// Where a command reads repositories from and how it talks: mirrors, cache, offline, index
/// age, quiet. Part of [`TargetArgs`], and of `upgrade`, whose distro and architecture come
/// from the collected file instead of flags.
#[derive(Args, Clone, Debug)]
pub struct SourceArgs {
    #[command(flatten)]
    pub m: MirrorArgs,
    /// Cache directory (default $OPAAS_CACHE_DIR or ~/.cache/opaas)
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Use the cache only; never touch the network
    #[arg(long)]
    pub offline: bool,
    #[command(flatten)]
    pub age: IndexAge,
    /// Fewer messages on stderr
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

impl TargetArgs {
    pub fn settings(&self) -> Settings {
        Settings {
            cache_dir: self.s.cache_dir.clone(),
            components: self.components.clone(),
            offline: self.s.offline,
            jobs: 0,
            max_index_age: Some(self.s.age.max_index_age),
            ..self.s.m.settings()
        }
    }

    pub fn session(&self) -> anyhow::Result<opaas_engine::Session> {
        Ok(opaas_engine::open(
            &self.settings(),
            &self.distro,
            &self.arch,
            &[],
        )?)
    }
}

/// The host's architecture as dpkg names it (`dpkg --print-architecture`): that of this binary.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "i386",
        "arm" => "armhf",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64el",
        "powerpc64" => "ppc64",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "loongarch64" => "loong64",
        "mips64" if cfg!(target_endian = "little") => "mips64el",
        other => other,
    }
}

/// A path or URL as the user would type it back (single-quoted when the shell would split it).
fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@+%~".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

impl TargetArgs {
    /// The `opaas update` command that fills the cache this command read: the same distro,
    /// arch, components, mirrors, config, keyrings and cache directory.
    pub fn update_command(&self) -> String {
        let mut c = format!(
            "opaas update -d {} -a {}",
            shell_word(&self.distro),
            shell_word(&self.arch)
        );
        let mut opt = |flag: &str, v: &str| {
            c.push_str(&format!(" {flag} {}", shell_word(v)));
        };
        if !self.components.is_empty() {
            opt("--components", &self.components.join(","));
        }
        if let Some(m) = &self.s.m.mirror {
            opt("--mirror", m);
        }
        if let Some(m) = &self.s.m.security_mirror {
            opt("--security-mirror", m);
        }
        if let Some(p) = &self.s.m.mirror_preset {
            opt("--mirror-preset", p);
        }
        if let Some(f) = &self.s.m.config {
            opt("--config", &f.display().to_string());
        }
        for k in &self.s.m.keyring {
            opt("--keyring", &k.display().to_string());
        }
        if let Some(d) = &self.s.cache_dir {
            opt("--cache-dir", &d.display().to_string());
        }
        c
    }
}

/// Context the binary adds to a library error: with `--offline` and an empty cache, the
/// `opaas update` to run names the same cache directory, mirrors and keyrings.
pub fn with_hint(mut e: anyhow::Error, t: Option<&TargetArgs>) -> anyhow::Error {
    let Some(t) = t else { return e };
    if let Some(ee) = e.downcast_mut::<EngineError>() {
        let what = ee
            .source
            .as_deref()
            .and_then(|s| s.downcast_ref::<RepoError>())
            .and_then(|r| match r {
                RepoError::NotCached { what, .. } => Some(what.clone()),
                _ => None,
            });
        if let (Kind::NotCached, Some(what)) = (ee.kind, what) {
            ee.message = format!(
                "no cached indices for {what}; run `{}` (without --offline) first",
                t.update_command()
            );
        }
    }
    e
}

/// The error and its causes, `a: b: c`, down to the first [`EngineError`]: its message already
/// says what its typed source says (printing both repeated every library error).
pub fn describe(e: &anyhow::Error) -> String {
    let mut parts = Vec::new();
    for c in e.chain() {
        parts.push(c.to_string());
        if c.downcast_ref::<EngineError>().is_some() {
            break;
        }
    }
    parts.join(": ")
}
