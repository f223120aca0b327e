//! `resolve` and `baseline`.

use crate::cmd_repo::human;
use crate::common::{user_err, TargetArgs};
use anyhow::Result;
use clap::Args;
use opaas_engine::{why, Baseline, Kind, Request, Resolved};
use std::process::ExitCode;
use std::time::Instant;

#[derive(Args, Clone, Debug)]
pub struct ResolveArgs {
    #[command(flatten)]
    pub t: TargetArgs,
    /// Do not follow Recommends (apt follows them by default)
    #[arg(long)]
    pub no_recommends: bool,
    /// What the target already has: minimal (a minbase image), none, or a dpkg status file
    #[arg(long, default_value = "minimal")]
    pub baseline: String,
    /// The target's /var/lib/apt/extended_states, beside a --baseline status file: which
    /// installed packages apt marked automatic (its autoremover keeps only what a manual
    /// package needs; a collected file from `opaas collect-script` carries it already)
    #[arg(long, value_name = "FILE")]
    pub extended_states: Option<std::path::PathBuf>,
    /// Also print why each package is included, one `name version <- reason` line each, on
    /// stderr (stdout keeps only the name=version list, for scripts; --json has it as `why`)
    #[arg(long)]
    pub explain: bool,
    /// Machine-readable output
    #[arg(long)]
    pub json: bool,
    /// apt-get upgrade of the --baseline status file: upgrades only, nothing new, nothing
    /// removed; what would need that is kept back (listed with --explain and in --json)
    #[arg(long, conflicts_with = "full_upgrade")]
    pub upgrade: bool,
    /// apt-get dist-upgrade (full-upgrade) of the --baseline status file: new packages and
    /// removals allowed
    #[arg(long)]
    pub full_upgrade: bool,
    /// With --upgrade/--full-upgrade: only the security pocket is a source (as a sources list
    /// holding only -security)
    #[arg(long)]
    pub security_only: bool,
    /// Ubuntu phased updates: include (default; install.sh passes
    /// APT::Get::Always-Include-Phased-Updates) or exclude (keep back updates still phasing)
    #[arg(long, value_enum, default_value = "include")]
    pub phased: PhasedArg,
    /// Packages: pkg, pkg=VERSION, pkg/SUITE, pkg:ARCH (optional with --upgrade/--full-upgrade)
    #[arg(required_unless_present_any = ["upgrade", "full_upgrade"])]
    pub requests: Vec<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum PhasedArg {
    Include,
    Exclude,
}

impl ResolveArgs {
    /// The engine's request; reads the status and extended_states files when both are given.
    pub fn request(&self) -> Result<Request> {
        let baseline = match &self.extended_states {
            None => Baseline::parse(&self.baseline),
            Some(es) => {
                let Baseline::StatusFile(sf) = Baseline::parse(&self.baseline) else {
                    return Err(user_err(
                        Kind::BadInput,
                        format!(
                            "--extended-states goes with --baseline FILE (the target's dpkg status), not --baseline {}",
                            self.baseline
                        ),
                    ));
                };
                let read = |p: &std::path::Path, what: &str| {
                    std::fs::read_to_string(p).map_err(|e| {
                        user_err(
                            Kind::BadInput,
                            format!("cannot read the {what} {}: {e}", p.display()),
                        )
                    })
                };
                Baseline::Host {
                    status: read(&sf, "status file")?,
                    extended_states: read(es, "extended_states file")?,
                }
            }
        };
        Ok(Request {
            distro: self.t.distro.clone(),
            arch: self.t.arch.clone(),
            packages: self.requests.clone(),
            recommends: !self.no_recommends,
            baseline,
            upgrade: if self.full_upgrade {
                Some(opaas_resolve::UpgradeMode::FullUpgrade)
            } else if self.upgrade {
                Some(opaas_resolve::UpgradeMode::Upgrade)
            } else {
                None
            },
            phased: match self.phased {
                PhasedArg::Include => opaas_resolve::Phased::Include,
                PhasedArg::Exclude => opaas_resolve::Phased::Exclude,
            },
            security_only: self.security_only,
            host: None,
        })
    }
}

pub fn baseline(t: &TargetArgs) -> Result<ExitCode> {
    let s = t.session()?;
    let u = s.universe()?;
    let b =
        opaas_resolve::Baseline::minimal(&u, &s.distro.pockets[0].suite, &s.distro.minimal_extra)?;
    for i in b.packages.values() {
        println!("{}={}", i.name, i.version);
    }
    if !t.s.quiet {
        eprintln!(
            "{} packages in the minimal baseline of {} {}",
            b.packages.len(),
            s.distro.id,
            t.arch
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn resolve(a: &ResolveArgs) -> Result<ExitCode> {
    let t0 = Instant::now();
    let Resolved {
        session,
        universe: u,
        result: res,
        warnings,
        ..
    } = opaas_engine::resolve(&a.t.settings(), &a.request()?)?;
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    let mut total = 0u64;
    if a.json {
        // the engine's package view, with the resolver's typed reason beside `why`
        let mut items = Vec::with_capacity(res.install.len());
        for c in &res.install {
            let info = opaas_engine::package_info(&u, c);
            total += info.size;
            let mut item = serde_json::to_value(&info)?;
            item["reason"] = serde_json::to_value(&c.reason)?;
            items.push(item);
        }
        let doc = serde_json::json!({"distro": session.distro.id, "arch": a.t.arch, "packages": items, "remove": res.remove, "kept_back": res.kept_back, "total_size": total});
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        for c in &res.install {
            let name = if c.arch == u.native_arch {
                c.name.clone()
            } else {
                format!("{}:{}", c.name, c.arch)
            };
            println!("{name}={}", c.version);
            if let Some(r) = c.pref {
                total += u
                    .paragraph(r)
                    .get("Size")
                    .and_then(|x| x.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
    }
    if a.explain {
        for c in &res.install {
            let up = c
                .upgrade_from
                .as_ref()
                .map(|f| format!(" (upgrade from {f})"))
                .unwrap_or_default();
            eprintln!("{} {}{up} <- {}", c.name, c.version, why(c));
        }
        for k in &res.kept_back {
            eprintln!(
                "{} {} kept back (candidate {}): apt-get upgrade would need new packages or removals",
                k.name, k.installed, k.candidate
            );
        }
    }
    for r in &res.remove {
        eprintln!(
            "warning: apt would remove installed package {r}; a bundle cannot remove packages"
        );
    }
    if !a.t.s.quiet {
        eprintln!(
            "{} packages, {} to download, resolved in {} ms",
            res.install.len(),
            human(total),
            t0.elapsed().as_millis()
        );
    }
    Ok(ExitCode::SUCCESS)
}
