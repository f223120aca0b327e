//! `distros`, `mirrors`, `update`, `show`, `search`.

use crate::common::{user_err, TargetArgs};
use anyhow::Result;
use opaas_engine::Kind;
use opaas_repo::catalog;
use opaas_repo::store::UpdateProgress;
use opaas_repo::universe::Universe;
use std::process::ExitCode;
use std::time::Instant;

pub fn distros() -> Result<ExitCode> {
    println!(
        "{:<14} {:<10} {:<18} {:<34} ARCHITECTURES",
        "DISTRO", "CODENAME", "NAME", "SUPPORT"
    );
    for d in catalog::distros() {
        let mut arches: Vec<String> = d.architectures.clone();
        arches.extend(d.ports_architectures.iter().map(|a| format!("{a}(ports)")));
        println!(
            "{:<14} {:<10} {:<18} {:<34} {}",
            d.id,
            d.codename,
            d.name,
            d.support,
            arches.join(" ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Every place a mirror was looked for, then the mirrors used; with nothing configured, what to
/// set (and still exit 0: explaining mirrors is this command's job).
pub fn mirrors(t: &TargetArgs, json: bool) -> Result<ExitCode> {
    let (distro, trace) = opaas_engine::mirror_trace(&t.settings(), &t.distro, &t.arch)?;
    let presets: Vec<&str> = opaas_repo::mirrors::presets()
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    if json {
        return mirrors_json(t, distro, &trace, &presets);
    }
    println!("distro   {} ({}) {}", distro.id, distro.codename, t.arch);
    println!("family   {}", trace.family.key());
    let width = trace
        .main
        .iter()
        .chain(&trace.security)
        .map(|r| r.source.chars().count())
        .max()
        .unwrap_or(0);
    let ubuntu = trace.family != opaas_repo::catalog::Family::Debian;
    let mut missing = Vec::new();
    for (label, rows, how) in [
        ("main", &trace.main, &trace.how_main),
        ("security", &trace.security, &trace.how_security),
    ] {
        println!("{label} archive, sources tried in order:");
        let mut used = false;
        for r in rows.iter() {
            let state = match &r.url {
                Some(u) if !used => format!("{u}  <- used"),
                Some(u) => format!("{u}  (not used: an earlier source wins)"),
                None => r.note.clone(),
            };
            used |= r.url.is_some();
            println!("  {:<width$}  {state}", r.source);
        }
        if label == "security" && ubuntu {
            println!(
                "  {:<width$}  {}",
                "Ubuntu: fall back to the main mirror",
                if used { "not needed" } else { "yes" }
            );
            used = true;
        }
        if !used {
            missing.push((label, how));
        }
    }
    if !missing.is_empty() {
        println!();
        for (label, how) in missing {
            println!(
                "NOT CONFIGURED: no {label} archive mirror for {} {}. Set one of:\n  {how}",
                distro.id, t.arch
            );
        }
        println!("presets: {}", presets.join(", "));
        return Ok(ExitCode::SUCCESS);
    }
    let ctx = t.session()?;
    let m = &ctx.target.mirrors;
    println!("main     {}  [{}]", m.main.url, m.main.origin);
    println!("security {}  [{}]", m.security.url, m.security.origin);
    for p in &ctx.distro.pockets {
        let mm = m.for_archive(p.archive);
        println!(
            "  pocket {:<22} {}/dists/{}/  components: {}",
            p.suite,
            mm.url,
            p.suite,
            ctx.target.components.join(" ")
        );
    }
    println!("presets: {}", presets.join(", "));
    Ok(ExitCode::SUCCESS)
}

/// `opaas mirrors --json`: every source tried per archive, the one used (null when none), the
/// pockets with their index URLs (only when both archives are configured) and the presets.
fn mirrors_json(
    t: &TargetArgs,
    distro: &opaas_repo::catalog::Distro,
    trace: &opaas_repo::mirrors::Trace,
    presets: &[&str],
) -> Result<ExitCode> {
    let tried = |rows: &[opaas_repo::mirrors::Tried]| -> Vec<serde_json::Value> {
        rows.iter()
            .map(|r| serde_json::json!({"source": r.source, "url": r.url, "note": r.note}))
            .collect()
    };
    let mut doc = serde_json::json!({
        "distro": distro.id,
        "codename": distro.codename,
        "arch": t.arch,
        "family": trace.family.key(),
        "main": null,
        "security": null,
        "tried": {"main": tried(&trace.main), "security": tried(&trace.security)},
        "how": {"main": trace.how_main, "security": trace.how_security},
        "pockets": [],
        "presets": presets,
    });
    if let Ok(ctx) = t.session() {
        let m = &ctx.target.mirrors;
        doc["main"] = serde_json::json!({"url": m.main.url, "origin": m.main.origin.to_string()});
        doc["security"] =
            serde_json::json!({"url": m.security.url, "origin": m.security.origin.to_string()});
        doc["pockets"] = ctx
            .distro
            .pockets
            .iter()
            .map(|p| {
                serde_json::json!({
                    "suite": p.suite,
                    "url": format!("{}/dists/{}/", m.for_archive(p.archive).url, p.suite),
                    "components": ctx.target.components,
                })
            })
            .collect();
    }
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(ExitCode::SUCCESS)
}

struct Printer {
    quiet: bool,
}
impl UpdateProgress for Printer {
    fn file_done(&self, what: &str, bytes: u64, fetched: bool) {
        if !self.quiet {
            if fetched {
                eprintln!("  got  {what} ({})", human(bytes));
            } else {
                eprintln!("  hit  {what} (unchanged)");
            }
        }
    }
}

pub fn human(b: u64) -> String {
    if b >= 1 << 20 {
        format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64)
    } else if b >= 1 << 10 {
        format!("{:.1} KiB", b as f64 / 1024.0)
    } else {
        format!("{b} B")
    }
}

pub fn update(t: &TargetArgs) -> Result<ExitCode> {
    let ctx = t.session()?;
    let t0 = Instant::now();
    let r = ctx.update(&Printer { quiet: t.s.quiet })?;
    eprintln!(
        "{} {}: {} indices fetched ({}), {} unchanged, in {:.2} s; cache {}",
        ctx.distro.id,
        t.arch,
        r.indices_fetched,
        human(r.bytes_fetched),
        r.indices_unchanged,
        t0.elapsed().as_secs_f64(),
        ctx.cache.root().display()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn unknown_package(u: &Universe, name: &str, distro: &str, arch: &str) -> anyhow::Error {
    user_err(
        Kind::UnknownPackage,
        format!(
            "unknown package '{name}' for {distro} {arch}{}",
            opaas_resolve::suggest::hint(u, name)
        ),
    )
}

pub fn show(t: &TargetArgs, package: &str) -> Result<ExitCode> {
    let ctx = t.session()?;
    let u = ctx.universe()?;
    let (package, want) = match package.split_once('=') {
        Some((p, v)) => (p, Some(v)),
        None => (package, None),
    };
    let (name, arch) = match package.split_once(':') {
        Some((n, a)) => (n, a),
        None => (package, t.arch.as_str()),
    };
    let Some(mut cand) = u.candidate(name, arch, None) else {
        return Err(unknown_package(&u, name, &ctx.distro.id, arch));
    };
    if let Some(v) = want {
        let all = u.versions(name, arch);
        match all.iter().find(|c| c.version == v) {
            Some(c) => cand = c.clone(),
            None => {
                let avail: Vec<&str> = all.iter().map(|c| c.version).collect();
                return Err(user_err(
                    Kind::BadInput,
                    format!("{name} has no version {v}; available: {}", avail.join(", ")),
                ));
            }
        }
    }
    println!("{}", u.paragraph(cand.main).as_str());
    println!();
    println!("{name}:{arch}");
    println!(
        "  Candidate: {}",
        u.candidate(name, arch, None)
            .map_or("(none)", |c| c.version)
    );
    println!("  Versions:");
    for v in u.versions(name, arch) {
        let mark = if v.version == cand.version {
            "***"
        } else {
            "   "
        };
        println!(" {mark} {} {}", v.version, v.priority);
        for r in &v.refs {
            let s = u.source(*r);
            println!(
                "        {:>4} {} {}/{} {}",
                s.priority, s.mirror, s.suite, s.component, s.arch
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn search(t: &TargetArgs, term: &str, limit: usize) -> Result<ExitCode> {
    let ctx = t.session()?;
    let u = ctx.universe()?;
    let found = opaas_engine::search_counted(&u, term, limit);
    if found.total == 0 {
        eprintln!("no package matches '{term}'");
        return Ok(ExitCode::from(1));
    }
    for h in &found.hits {
        println!("{} {} - {}", h.name, h.version, h.summary);
    }
    let cut = found.total - found.hits.len();
    if cut > 0 {
        eprintln!(
            "{} of {} matches shown; {cut} more cut by --limit {limit}",
            found.hits.len(),
            found.total
        );
    }
    Ok(ExitCode::SUCCESS)
}
