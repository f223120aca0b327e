//! `resolve` and `baseline`.

use crate::cmd_repo::{human, unknown_package};
use crate::common::{user_err, Ctx, TargetArgs};
use anyhow::Result;
use clap::Args;
use opaas_repo::universe::Universe;
use opaas_resolve::{Baseline, Options, Reason, Request, ResolveError};
use std::path::PathBuf;
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
    /// Print why each package is included
    #[arg(long)]
    pub explain: bool,
    /// Machine-readable output
    #[arg(long)]
    pub json: bool,
    /// Packages: pkg, pkg=VERSION, pkg/SUITE, pkg:ARCH
    #[arg(required = true)]
    pub requests: Vec<String>,
}

pub fn load_baseline(
    spec: &str,
    u: &Universe,
    distro: &opaas_repo::catalog::Distro,
) -> Result<Baseline> {
    let release_suite = distro.pockets[0].suite.as_str();
    Ok(match spec {
        "none" => Baseline::none(),
        "minimal" => Baseline::minimal(u, release_suite, &distro.minimal_extra)?,
        path => Baseline::from_status_file(&PathBuf::from(path), &u.native_arch)
            .map_err(|e| user_err(3, e.to_string()))?,
    })
}

pub fn baseline(t: &TargetArgs) -> Result<ExitCode> {
    let ctx = t.ctx()?;
    let u = ctx.universe(t.offline)?;
    let b = load_baseline("minimal", &u, ctx.distro)?;
    for i in b.packages.values() {
        println!("{}={}", i.name, i.version);
    }
    eprintln!(
        "{} packages in the minimal baseline of {} {}",
        b.packages.len(),
        ctx.distro.id,
        t.arch
    );
    Ok(ExitCode::SUCCESS)
}

/// A request resolved on its target: what `build` and `resolve` share.
pub struct Resolved {
    pub ctx: Ctx,
    pub universe: Universe,
    pub requests: Vec<Request>,
    pub result: opaas_resolve::Resolution,
}

pub fn resolve_request(a: &ResolveArgs) -> Result<Resolved> {
    let mut reqs = Vec::new();
    for r in &a.requests {
        reqs.push(Request::parse(r).map_err(|e| user_err(3, e.to_string()))?);
    }
    let extra: Vec<String> = reqs.iter().filter_map(|r| r.arch.clone()).collect();
    let ctx = a.t.ctx_with_arches(&extra)?;
    let u = ctx.universe(a.t.offline)?;
    let base = load_baseline(&a.baseline, &u, ctx.distro)?;
    let opts = Options {
        recommends: !a.no_recommends,
        ..Options::default()
    };
    let res = match opaas_resolve::resolve(&u, &base, &reqs, opts) {
        Ok(r) => r,
        Err(ResolveError::UnknownPackage { name, arch, .. }) => {
            return Err(unknown_package(&u, &name, &ctx.distro.id, &arch))
        }
        Err(e @ ResolveError::Unsatisfiable(_)) => return Err(user_err(7, e.to_string())),
        Err(e) => return Err(user_err(3, e.to_string())),
    };
    Ok(Resolved {
        ctx,
        universe: u,
        requests: reqs,
        result: res,
    })
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

pub fn resolve(a: &ResolveArgs) -> Result<ExitCode> {
    let t0 = Instant::now();
    let Resolved {
        ctx,
        universe: u,
        result: res,
        ..
    } = resolve_request(a)?;
    let mut total = 0u64;
    if a.json {
        let mut items = Vec::new();
        for c in &res.install {
            let (size, sha256, filename, pocket) = match c.pref {
                Some(r) => {
                    let p = u.paragraph(r);
                    let s = u.source(r);
                    (
                        p.get("Size")
                            .and_then(|x| x.parse::<u64>().ok())
                            .unwrap_or(0),
                        p.get("SHA256").unwrap_or("").to_string(),
                        p.get("Filename").unwrap_or("").to_string(),
                        format!("{}/{}", s.suite, s.component),
                    )
                }
                None => (0, String::new(), String::new(), String::new()),
            };
            total += size;
            items.push(serde_json::json!({
                "name": c.name, "version": c.version, "architecture": c.arch, "size": size, "sha256": sha256,
                "filename": filename, "pocket": pocket, "upgrade_from": c.upgrade_from, "why": c.reason,
            }));
        }
        let doc = serde_json::json!({"distro": ctx.distro.id, "arch": a.t.arch, "packages": items, "remove": res.remove, "total_size": total});
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
    }
    for r in &res.remove {
        eprintln!(
            "warning: apt would remove installed package {r}; a bundle cannot remove packages"
        );
    }
    if !a.t.quiet {
        eprintln!(
            "{} packages, {} to download, resolved in {} ms",
            res.install.len(),
            human(total),
            t0.elapsed().as_millis()
        );
    }
    Ok(ExitCode::SUCCESS)
}
