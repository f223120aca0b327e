//! `build` and `verify`: the product.

use crate::cmd_repo::human;
use crate::cmd_resolve::ResolveArgs;
use crate::common::user_err;
use anyhow::Result;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use opaas_bundle::Format;
use opaas_engine::{BuildProgress, Kind, Phase};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

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
    /// A flat repository that apt on the target trusts as it is, instead of the distribution's
    /// signed archive (for mirrors without a signature)
    #[arg(long)]
    pub unsigned: bool,
    /// Rebuild the bundle of an opaas.lock (`opaas lock`) byte for byte, without resolving:
    /// target, request and options come from the lock; fails naming every locked version the
    /// mirror no longer has
    #[arg(long, value_name = "FILE")]
    pub locked: Option<PathBuf>,
}

#[derive(Args, Clone, Debug)]
pub struct LockArgs {
    #[command(flatten)]
    pub r: ResolveArgs,
    /// Where to write the lockfile
    #[arg(short = 'o', long, default_value = "opaas.lock")]
    pub output: PathBuf,
    /// Lock an unsigned bundle (see `build --unsigned`)
    #[arg(long)]
    pub unsigned: bool,
}

/// `opaas lock`: resolves and writes opaas.lock (temp file + rename).
pub fn lock(a: &LockArgs) -> Result<ExitCode> {
    let mut settings = a.r.t.settings();
    settings.unsigned = a.unsigned;
    let text = opaas_engine::lock(
        &settings,
        &a.r.request()?,
        &Bars {
            bar: None,
            quiet: true,
            marks: std::sync::Mutex::new(Vec::new()),
        },
    )?;
    let dir = a
        .output
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".opaas.lock.tmp{}", std::process::id()));
    std::fs::write(&tmp, &text)
        .and_then(|_| std::fs::rename(&tmp, &a.output))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            anyhow::anyhow!("{}: {e}", a.output.display())
        })?;
    if !a.r.t.s.quiet {
        let lock = opaas_engine::parse_lock(&text)?;
        eprintln!(
            "locked {} packages for {} {} ({} bundle, indices as of {}) in {}",
            lock.packages.len(),
            lock.target.distro,
            lock.target.arch,
            if lock.options.signed {
                "signed"
            } else {
                "unsigned"
            },
            lock.options.created,
            a.output.display()
        );
    }
    println!("{}", a.output.display());
    Ok(ExitCode::SUCCESS)
}

/// Progress bars on a terminal; a few plain lines otherwise; nothing with --quiet.
struct Bars {
    bar: Option<ProgressBar>,
    quiet: bool,
    /// When each phase began (for the summary's "resolve …, download …, pack …").
    marks: std::sync::Mutex<Vec<(Phase, Instant)>>,
}

impl Bars {
    /// `(resolve, download, pack)` seconds of a build that started at `t0` and ended now
    /// (download and pack are absent when the build reused a bundle).
    fn phase_times(&self, t0: Instant) -> String {
        let marks = self.marks.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let at = |p: Phase| marks.iter().find(|(q, _)| *q == p).map(|(_, t)| *t);
        let end = Instant::now();
        let secs = |a: Instant, b: Instant| b.saturating_duration_since(a).as_secs_f64();
        let fetch = at(Phase::Downloading);
        let pack = at(Phase::Packing);
        let resolved = fetch.or(pack).unwrap_or(end);
        let mut parts = vec![format!("resolve {:.2} s", secs(t0, resolved))];
        if let Some(f) = fetch {
            parts.push(format!("download {:.2} s", secs(f, pack.unwrap_or(end))));
        }
        if let Some(p) = pack {
            parts.push(format!("pack {:.2} s", secs(p, end)));
        }
        parts.join(", ")
    }
}

impl BuildProgress for Bars {
    fn phase(&self, p: Phase) {
        self.marks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((p, Instant::now()));
        if self.quiet {
            return;
        }
        match (&self.bar, p) {
            (Some(b), Phase::Downloading) => b.set_message("downloading"),
            (Some(b), Phase::Packing) => b.finish_and_clear(),
            (None, p) => eprintln!(
                "{}",
                match p {
                    Phase::Resolving => "resolving …",
                    Phase::Downloading => "downloading …",
                    Phase::Packing => "writing the bundle …",
                }
            ),
            _ => {}
        }
    }
    fn download_start(&self, files: usize, bytes: u64) {
        if let Some(b) = &self.bar {
            b.set_length(bytes);
            b.set_message(format!("0/{files} packages"));
        }
    }
    fn download(&self, files_done: usize, bytes_done: u64) {
        if let Some(b) = &self.bar {
            b.set_position(bytes_done);
            b.set_message(format!("{files_done} packages"));
        }
    }
}

pub fn build(a: &BuildArgs) -> Result<ExitCode> {
    build_request(a, &a.r.request()?)
}

/// `build` of an engine request made elsewhere (`upgrade --from` makes its own).
pub fn build_request(a: &BuildArgs, req: &opaas_engine::Request) -> Result<ExitCode> {
    let locked = a.locked.clone();
    build_with(a, |settings, out, format, bars| match &locked {
        Some(f) => {
            let text = std::fs::read_to_string(f)
                .map_err(|e| user_err(Kind::BadInput, format!("--locked {}: {e}", f.display())))?;
            Ok(opaas_engine::build_locked(
                settings, &text, out, format, bars,
            )?)
        }
        None => Ok(opaas_engine::build(settings, req, out, format, bars)?),
    })
}

/// The engine's settings, progress bars and summary around one build made by `run` (a plain
/// build, a locked one, or a fleet's).
pub fn build_with(
    a: &BuildArgs,
    run: impl FnOnce(
        &opaas_engine::Settings,
        &Path,
        Format,
        &dyn opaas_engine::BuildProgress,
    ) -> Result<opaas_engine::Built>,
) -> Result<ExitCode> {
    let t0 = Instant::now();
    let format = Format::parse(&a.format).ok_or_else(|| {
        user_err(
            Kind::BadInput,
            format!("unknown --format '{}': use tar.gz or tar.zst", a.format),
        )
    })?;
    let quiet = a.r.t.s.quiet;
    let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
        let b = ProgressBar::new(0);
        b.set_style(
            ProgressStyle::with_template(
                "{bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {wide_msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    });
    let mut settings = a.r.t.settings();
    settings.jobs = a.jobs.max(1);
    let bars = Bars {
        bar,
        quiet,
        marks: std::sync::Mutex::new(Vec::new()),
    };
    settings.unsigned = a.unsigned;
    let built = run(&settings, &a.output, format, &bars)?;
    if built.reused && !quiet {
        eprintln!(
            "reusing {}, verified: {} ({} packages, {}; nothing downloaded or packed) in {:.1} s",
            built.file_name,
            built.reuse_check,
            built.package_count,
            human(built.size),
            t0.elapsed().as_secs_f64()
        );
    } else if !quiet {
        eprintln!(
            "{} packages ({}); downloaded {} ({} files, {} from cache); {} written in {:.1} s ({})",
            built.package_count,
            human(built.total_size),
            human(built.downloaded_bytes),
            built.downloads,
            built.cache_hits,
            human(built.size),
            t0.elapsed().as_secs_f64(),
            bars.phase_times(t0)
        );
    }
    if !quiet {
        // what README.txt tells the admin to compare, last on the terminal
        eprintln!("bundle   {}", built.path.display());
        eprintln!("size     {} ({} bytes)", human(built.size), built.size);
        eprintln!("packages {}", built.package_count);
        eprintln!("sha256   {}", built.sha256);
    }
    // stdout: the path alone, for scripts
    println!("{}", built.path.display());
    Ok(ExitCode::SUCCESS)
}

pub fn verify(path: &Path, keyrings: &[PathBuf], json: bool) -> Result<ExitCode> {
    let rep = opaas_engine::verify_bundle(path, keyrings)?;
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
        if rep.signed {
            for s in &rep.suites {
                println!(
                    "suite    {}: signed by {}; {} index file(s), {} .deb(s) checked against it",
                    s.suite,
                    s.signed_by.as_deref().unwrap_or("(no good signature)"),
                    s.indices,
                    s.debs
                );
            }
        } else {
            println!("unsigned bundle (built with --unsigned): only SHA256SUMS and the manifest vouch for it");
        }
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
