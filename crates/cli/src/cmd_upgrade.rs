//! `collect-script` and `upgrade`: patch bundles for servers that are already installed.
//!
//! The admin runs the collect script on the offline server; `upgrade --from FILE` reads what it
//! wrote (strictly: `opaas_engine::collect`), computes `apt-get upgrade` (or `dist-upgrade`
//! with `--full`) of that exact system and prints the plan, security updates first; with `-o`
//! it also writes the upgrade bundle, whose install.sh refuses a machine that drifted.

use crate::cmd_build::{build_request, BuildArgs};
use crate::cmd_resolve::{PhasedArg, ResolveArgs};
use crate::common::{user_err, IndexAge, MirrorArgs, TargetArgs};
use anyhow::Result;
use clap::Args;
use opaas_engine::collect::{Collected, COLLECT_SCRIPT};
use opaas_engine::{Baseline, Kind};
use std::path::PathBuf;
use std::process::ExitCode;

pub fn collect_script() -> Result<ExitCode> {
    print!("{COLLECT_SCRIPT}");
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Clone, Debug)]
pub struct UpgradeArgs {
    /// The file the collect script wrote on the target (`opaas collect-script` prints it)
    #[arg(long)]
    pub from: PathBuf,
    /// apt-get dist-upgrade (new packages and removals allowed) instead of apt-get upgrade
    #[arg(long)]
    pub full: bool,
    /// Only versions from the security pocket
    #[arg(long)]
    pub security_only: bool,
    /// Ubuntu phased updates: include (default) or exclude
    #[arg(long, value_enum, default_value = "include")]
    pub phased: PhasedArg,
    /// Do not follow Recommends of newly installed packages
    #[arg(long)]
    pub no_recommends: bool,
    /// Machine-readable plan
    #[arg(long)]
    pub json: bool,
    /// Write the upgrade bundle into this directory (without: print the plan only)
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
    /// Archive format of the bundle: tar.gz or tar.zst
    #[arg(long, default_value = "tar.gz")]
    pub format: String,
    /// Parallel downloads
    #[arg(long, short = 'j', default_value_t = 8)]
    pub jobs: usize,
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
    /// Packages to install in the same run (as `apt-get upgrade PKG…`)
    pub requests: Vec<String>,
}

pub fn upgrade(a: &UpgradeArgs) -> Result<ExitCode> {
    let data = std::fs::read(&a.from)
        .map_err(|e| user_err(Kind::BadInput, format!("{}: {e}", a.from.display())))?;
    let c = Collected::parse(&data)
        .map_err(|e| user_err(Kind::BadInput, format!("{}: {e}", a.from.display())))?;
    let r = ResolveArgs {
        t: TargetArgs {
            distro: c.distro.clone(),
            arch: c.arch.clone(),
            components: Vec::new(),
            m: a.m.clone(),
            cache_dir: a.cache_dir.clone(),
            offline: a.offline,
            age: a.age.clone(),
            quiet: a.quiet,
        },
        no_recommends: a.no_recommends,
        baseline: String::new(),
        explain: false,
        json: a.json,
        upgrade: !a.full,
        full_upgrade: a.full,
        security_only: a.security_only,
        phased: a.phased,
        requests: a.requests.clone(),
    };
    let mut req = r.request();
    req.baseline = Baseline::StatusText(c.status.clone());
    req.host = Some(c.hostname.clone());
    if !a.quiet {
        eprintln!(
            "{}: {} {} collected {} ({} packages installed)",
            c.hostname,
            c.distro,
            c.arch,
            c.collected,
            c.installed().len()
        );
    }
    let resolved = opaas_engine::resolve(&r.t.settings(), &req)?;
    print_plan(&resolved, a.json, a.output.is_some())?;
    match &a.output {
        None => Ok(ExitCode::SUCCESS),
        Some(out) => {
            let b = BuildArgs {
                r,
                output: out.clone(),
                format: a.format.clone(),
                jobs: a.jobs,
                // upgrade bundles keep the flat repository for now: with the whole signed
                // indices, apt on the target would also see upgrades the plan left out
                // (phased updates are included there), which the bundle does not carry
                unsigned: true,
                locked: None,
            };
            build_request(&b, &req)
        }
    }
}

const KINDS: [&str; 3] = ["security", "upgrade", "new"];

/// The plan: security updates first, then the other upgrades, new packages, kept back and
/// removed ones. On stderr when a bundle is written (stdout is then its path).
fn print_plan(r: &opaas_engine::Resolved, json: bool, to_stderr: bool) -> Result<()> {
    let u = &r.universe;
    let mut rows: Vec<(u8, String, String, String, String)> = Vec::new();
    for c in &r.result.install {
        let info = opaas_engine::package_info(u, c);
        let security = info
            .pocket
            .split('/')
            .next()
            .unwrap_or("")
            .ends_with("-security");
        let class = match (&c.upgrade_from, security) {
            (Some(_), true) => 0,
            (Some(_), false) => 1,
            (None, _) => 2,
        };
        rows.push((
            class,
            c.name.clone(),
            c.upgrade_from.clone().unwrap_or_default(),
            c.version.clone(),
            info.pocket.clone(),
        ));
    }
    rows.sort();
    let out = if json {
        let items: Vec<_> = rows
            .iter()
            .map(|(k, n, from, to, pocket)| {
                let kind = KINDS[*k as usize];
                serde_json::json!({
                    "kind": kind,
                    "name": n, "from": if from.is_empty() { None } else { Some(from) },
                    "to": to, "pocket": pocket,
                })
            })
            .collect();
        serde_json::to_string_pretty(&serde_json::json!({
            "distro": r.session.distro.id,
            "plan": items,
            "kept_back": r.result.kept_back,
            "remove": r.result.remove,
        }))?
    } else {
        let mut s = String::new();
        for (k, n, from, to, pocket) in &rows {
            let kind = KINDS[*k as usize];
            if from.is_empty() {
                s.push_str(&format!("{kind:9} {n} {to} ({pocket})\n"));
            } else {
                s.push_str(&format!("{kind:9} {n} {from} → {to} ({pocket})\n"));
            }
        }
        for k in &r.result.kept_back {
            s.push_str(&format!(
                "kept back {} {} (candidate {}: it needs new packages or removals; --full allows them)\n",
                k.name, k.installed, k.candidate
            ));
        }
        for x in &r.result.remove {
            s.push_str(&format!("remove    {x}\n"));
        }
        let n = |k: u8| rows.iter().filter(|r| r.0 == k).count();
        s.push_str(&format!(
            "{} security, {} other upgrades, {} new, {} kept back, {} removed",
            n(0),
            n(1),
            n(2),
            r.result.kept_back.len(),
            r.result.remove.len()
        ));
        s
    };
    if to_stderr {
        eprintln!("{out}");
    } else {
        println!("{out}");
    }
    Ok(())
}
