//! `collect-script` and `upgrade`: patch bundles for servers that are already installed.
//!
//! The admin runs the collect script on the offline server; `upgrade --from FILE` reads what it
//! wrote (strictly: `opaas_engine::collect`), computes `apt-get upgrade` (or `dist-upgrade`
//! with `--full`) of that exact system and prints the plan, security updates first; with `-o`
//! it also writes the upgrade bundle, whose install.sh refuses a machine that drifted.

use crate::cmd_build::{build_request, build_with, BuildArgs};
use crate::cmd_resolve::{PhasedArg, ResolveArgs};
use crate::common::{user_err, SourceArgs, TargetArgs};
use anyhow::Result;
use clap::Args;
use opaas_engine::collect::{Collected, COLLECT_SCRIPT, MAX_COLLECTED_BYTES};
use opaas_engine::plan::UpgradePlan;
use opaas_engine::Kind;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub fn collect_script() -> Result<ExitCode> {
    print!("{COLLECT_SCRIPT}");
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Clone, Debug)]
pub struct UpgradeArgs {
    /// The file the collect script wrote on the target (`opaas collect-script` prints it);
    /// repeat for a fleet: one bundle for every host (same distro and architecture), whose
    /// install.sh picks the plan of the host it runs on
    #[arg(long, required = true)]
    pub from: Vec<PathBuf>,
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
    pub s: SourceArgs,
    /// Packages to install in the same run (as `apt-get upgrade PKG…`)
    pub requests: Vec<String>,
}

/// Reads and checks one collected file; too large a file is refused before it is read.
fn read_collected(path: &Path) -> Result<Collected> {
    let bad = |m: String| user_err(Kind::BadInput, format!("{}: {m}", path.display()));
    let meta = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?;
    if !meta.is_file() {
        return Err(bad("not a file".into()));
    }
    if meta.len() > MAX_COLLECTED_BYTES as u64 {
        return Err(bad(format!(
            "the collected file is {} bytes; the limit is {MAX_COLLECTED_BYTES} bytes (give the file `sh collect.sh` wrote)",
            meta.len()
        )));
    }
    let data = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    Collected::parse(&data).map_err(|e| bad(e.to_string()))
}

pub fn upgrade(a: &UpgradeArgs) -> Result<ExitCode> {
    let mut hosts: Vec<(String, Collected)> = Vec::new();
    for f in &a.from {
        hosts.push((f.display().to_string(), read_collected(f)?));
    }
    opaas_engine::plan::check_fleet(&hosts)?;
    let first = &hosts[0].1;
    let r = ResolveArgs {
        t: TargetArgs {
            distro: first.distro.clone(),
            arch: first.arch.clone(),
            components: Vec::new(),
            s: a.s.clone(),
        },
        no_recommends: a.no_recommends,
        baseline: String::new(),
        extended_states: None,
        explain: false,
        json: a.json,
        upgrade: !a.full,
        full_upgrade: a.full,
        security_only: a.security_only,
        phased: a.phased,
        requests: a.requests.clone(),
    };
    let base = r.request()?;
    if !a.s.quiet {
        for (_, c) in &hosts {
            eprintln!(
                "{}: {} {} collected {} ({} packages installed)",
                c.hostname,
                c.distro,
                c.arch,
                c.collected,
                c.installed().len()
            );
        }
    }
    let settings = r.t.settings();
    let planned =
        opaas_engine::plan::plan_fleet(&settings, &base, &hosts, &opaas_engine::NoBuildProgress)?;
    let plans: Vec<UpgradePlan> = planned.into_iter().map(|(_, p)| p).collect();
    print_plans(&plans, a.json, a.output.is_some())?;
    let Some(out) = &a.output else {
        return Ok(ExitCode::SUCCESS);
    };
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
    if hosts.len() == 1 {
        let req = opaas_engine::plan::collected_request(&hosts[0].1, &base);
        return build_request(&b, &req);
    }
    build_with(&b, |settings, out, format, bars| {
        let (built, _) = opaas_engine::plan::build_fleet(
            settings,
            &base,
            &hosts,
            out,
            format,
            bars,
            &opaas_engine::NoReuse,
        )?;
        Ok(built)
    })
}

/// The plans: per host, security updates first, then the other upgrades, new packages, kept
/// back and removed ones. On stderr when a bundle is written (stdout is then its path). JSON:
/// the plan of a single host, or `{distro, arch, hosts: [plan…]}` for several.
fn print_plans(plans: &[UpgradePlan], json: bool, to_stderr: bool) -> Result<()> {
    let out = if json {
        match plans {
            [one] => serde_json::to_string_pretty(one)?,
            _ => serde_json::to_string_pretty(&serde_json::json!({
                "distro": plans.first().map(|p| p.distro.as_str()),
                "arch": plans.first().map(|p| p.arch.as_str()),
                "hosts": plans,
            }))?,
        }
    } else {
        let mut s = String::new();
        for (i, p) in plans.iter().enumerate() {
            if plans.len() > 1 {
                if i > 0 {
                    s.push('\n');
                }
                s.push_str(&format!(
                    "== {} ({} {}, collected {})\n",
                    p.host, p.distro, p.arch, p.collected
                ));
            }
            for it in &p.plan {
                match &it.from {
                    None => s.push_str(&format!(
                        "{:9} {} {} ({})\n",
                        it.kind, it.name, it.to, it.pocket
                    )),
                    Some(from) => s.push_str(&format!(
                        "{:9} {} {from} → {} ({})\n",
                        it.kind, it.name, it.to, it.pocket
                    )),
                }
            }
            for k in &p.kept_back {
                s.push_str(&format!(
                    "kept back {} {} (candidate {}: {})\n",
                    k.name, k.installed, k.candidate, k.reason
                ));
            }
            for x in &p.remove {
                s.push_str(&format!("remove    {x}\n"));
            }
            if !p.not_in_archive.is_empty() {
                let n = p.not_in_archive.len();
                let shown: Vec<&str> = p
                    .not_in_archive
                    .iter()
                    .take(8)
                    .map(String::as_str)
                    .collect();
                s.push_str(&format!(
                    "not in the archive (local or obsolete, left as they are): {n}: {}{}\n",
                    shown.join(" "),
                    if n > shown.len() { " …" } else { "" }
                ));
            }
            let c = &p.counts;
            s.push_str(&format!(
                "{} security, {} other upgrades, {} new, {} kept back, {} removed",
                c.security, c.upgrade, c.new, c.kept_back, c.remove
            ));
            if plans.len() > 1 {
                s.push('\n');
            }
        }
        s.trim_end().to_string()
    };
    if to_stderr {
        eprintln!("{out}");
    } else {
        println!("{out}");
    }
    Ok(())
}
