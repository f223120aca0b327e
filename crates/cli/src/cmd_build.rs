//! `build` and `verify`: the product.

use crate::cmd_repo::human;
use crate::cmd_resolve::{resolve_request, why, ResolveArgs, Resolved};
use crate::common::user_err;
use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use opaas_bundle::{BundleDistro, BundleInput, BundlePackage, Format};
use opaas_fetch::{Cas, Item};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Instant, SystemTime};

#[derive(Args, Clone, Debug)]
pub struct BuildArgs {
    #[command(flatten)]
    pub r: ResolveArgs,
    /// Output directory for the bundle
    #[arg(short = 'o', long, default_value = ".")]
    pub output: PathBuf,
    /// Archive format: tar.gz or tar.zst
    #[arg(long, default_value = "tar.gz")]
    pub format: String,
    /// Parallel downloads
    #[arg(long, short = 'j', default_value_t = 8)]
    pub jobs: usize,
}

/// Progress bars on a terminal, nothing otherwise.
struct Bars {
    bar: Option<ProgressBar>,
}

impl opaas_fetch::Progress for Bars {
    fn start(&self, files: usize, bytes: u64) {
        if let Some(b) = &self.bar {
            b.set_length(bytes);
            b.set_message(format!("0/{files} packages"));
        }
    }
    fn bytes(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }
    fn file_done(&self, name: &str, _cached: bool) {
        if let Some(b) = &self.bar {
            b.set_message(name.to_string());
        }
    }
}

pub fn build(a: &BuildArgs) -> Result<ExitCode> {
    let t0 = Instant::now();
    let format = Format::parse(&a.format).ok_or_else(|| {
        user_err(
            3,
            format!("unknown --format '{}': use tar.gz or tar.zst", a.format),
        )
    })?;
    let Resolved {
        ctx,
        universe: u,
        requests,
        result,
    } = resolve_request(&a.r)?;
    let quiet = a.r.t.quiet;
    if !result.remove.is_empty() {
        return Err(user_err(
            7,
            format!(
                "apt would have to remove installed packages ({}); a bundle cannot do that",
                result.remove.join(", ")
            ),
        ));
    }
    // what to download, from the mirror that published it
    let mut items = Vec::new();
    let mut pkgs = Vec::new();
    for c in &result.install {
        let r = c.pref.ok_or_else(|| {
            user_err(
                7,
                format!("{} {} has no download source", c.name, c.version),
            )
        })?;
        let p = u.paragraph(r);
        let filename = p.get("Filename").unwrap_or("");
        let sha256 = p.get("SHA256").unwrap_or("").to_ascii_lowercase();
        let size: u64 = p.get("Size").and_then(|s| s.parse().ok()).unwrap_or(0);
        if filename.is_empty() || sha256.len() != 64 || size == 0 {
            return Err(user_err(
                4,
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
    if !quiet {
        eprintln!(
            "{} packages, {} to bundle; downloading …",
            items.len(),
            human(total)
        );
    }
    let cas = Cas::new(ctx.cache.root().parent().unwrap_or(Path::new(".")));
    let show = !quiet && std::io::stderr().is_terminal();
    let bar = show.then(|| {
        let b = ProgressBar::new(total);
        b.set_style(
            ProgressStyle::with_template(
                "{bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {wide_msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    });
    let opts = opaas_fetch::Options {
        jobs: a.jobs.max(1),
        ..opaas_fetch::Options::default()
    };
    let fetched = opaas_fetch::fetch_all(&cas, &items, &opts, &Bars { bar: bar.clone() })?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    for (p, path) in pkgs.iter_mut().zip(&fetched.paths) {
        p.path = path.clone();
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
    let baseline = if ["minimal", "none"].contains(&a.r.baseline.as_str()) {
        a.r.baseline.clone()
    } else {
        "status-file".to_string()
    };
    let mut log = format!(
        "opaas {} build\ndistro: {} ({})\narch: {}\nrequest: {}\nrecommends: {}\nbaseline: {}\nmirror: {}\nsecurity mirror: {}\nindices as of: {}\n\npackages ({}, {}):\n",
        env!("CARGO_PKG_VERSION"),
        ctx.distro.id,
        ctx.distro.codename,
        a.r.t.arch,
        a.r.requests.join(" "),
        !a.r.no_recommends,
        baseline,
        ctx.target.mirrors.main.url,
        ctx.target.mirrors.security.url,
        opaas_repo::release::format_rfc3339(newest),
        pkgs.len(),
        human(total)
    );
    for p in &pkgs {
        log.push_str(&format!(
            "  {} {} {} [{}] <- {}\n",
            p.name, p.version, p.arch, p.pocket, p.why
        ));
    }
    let os_id = match ctx.distro.family {
        opaas_repo::catalog::Family::Debian => "debian",
        _ => "ubuntu",
    };
    let input = BundleInput {
        distro: BundleDistro {
            id: ctx.distro.id.clone(),
            os_id: os_id.into(),
            codename: ctx.distro.codename.clone(),
        },
        arch: a.r.t.arch.clone(),
        request: requests
            .iter()
            .map(|r| match &r.arch {
                Some(x) => format!("{}:{x}", r.name),
                None => r.name.clone(),
            })
            .collect(),
        recommends: !a.r.no_recommends,
        baseline,
        packages: pkgs,
        created: opaas_repo::release::format_rfc3339(newest),
        created_epoch: epoch,
        created_rfc2822: opaas_repo::release::format_rfc2822(newest),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        build_log: log,
    };
    let out =
        opaas_bundle::write_bundle(&input, &a.output, format).context("writing the bundle")?;
    if !quiet {
        eprintln!(
            "downloaded {} ({} files, {} from cache) ; bundle written in {:.1} s",
            human(fetched.downloaded_bytes),
            fetched.downloads,
            fetched.cache_hits,
            t0.elapsed().as_secs_f64()
        );
    }
    println!("{}", out.display());
    Ok(ExitCode::SUCCESS)
}

pub fn verify(path: &Path, json: bool) -> Result<ExitCode> {
    let rep = opaas_bundle::verify(path)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rep)?);
    } else {
        println!("bundle   {}", rep.top);
        println!("target   {} {}", rep.distro, rep.arch);
        println!(
            "contents {} files, {} packages, {}",
            rep.files,
            rep.packages,
            human(rep.bytes)
        );
        for p in &rep.problems {
            println!("PROBLEM  {p}");
        }
        println!(
            "{}",
            if rep.problems.is_empty() {
                "OK"
            } else {
                "FAILED"
            }
        );
    }
    Ok(if rep.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(4)
    })
}
