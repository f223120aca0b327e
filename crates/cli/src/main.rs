//! `opaas`: the command-line front end. Thin by design: it parses arguments, builds the
//! repository target from configuration, calls the library crates and prints.

mod cmd_build;
mod cmd_repo;
mod cmd_resolve;
mod cmd_serve;
mod cmd_upgrade;
mod common;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "opaas",
    version,
    about = "OPaaS: offline package bundles for air-gapped Debian and Ubuntu servers"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// List the distros and architectures OPaaS knows.
    Distros,
    /// Show every place a mirror is looked for (flag, env, config, host APT sources, preset),
    /// what each holds and which is used; with nothing configured, what to set (exit 0).
    Mirrors {
        #[command(flatten)]
        t: common::TargetArgs,
        /// Machine-readable output (the same facts as the table)
        #[arg(long)]
        json: bool,
    },
    /// Fetch and verify the signed indices of a distro/arch into the cache.
    Update(common::TargetArgs),
    /// Show the candidate version of a package and every available version.
    Show {
        #[command(flatten)]
        t: common::TargetArgs,
        /// Package name
        package: String,
    },
    /// Search packages by name, provides and description; every word must match.
    ///
    /// Best first: the exact name, names starting with or holding the words, packages
    /// providing them, then summary and description matches; Priority breaks ties. Says on
    /// stderr how many matches the limit cut.
    Search {
        #[command(flatten)]
        t: common::TargetArgs,
        /// Maximum number of results
        #[arg(long, default_value_t = 30)]
        limit: usize,
        /// Search words (`web server` needs no quotes)
        #[arg(required = true, num_args = 1..)]
        words: Vec<String>,
    },
    /// Compute the packages `apt-get install` would download on the target.
    Resolve(cmd_resolve::ResolveArgs),
    /// Print the minimal baseline (what a minbase image has installed).
    Baseline(common::TargetArgs),
    /// Resolve, download and write an offline bundle (offline_pkg_….tar.gz); with --locked
    /// FILE, rebuild the bundle of an opaas.lock without resolving.
    Build(cmd_build::BuildArgs),
    /// Resolve and write opaas.lock (target, request, options, every package with its version,
    /// SHA-256 and filename, the signed Release dates): `build --locked` rebuilds it byte for byte.
    Lock(cmd_build::LockArgs),
    /// Print the collect script to run on an offline server (`sh collect.sh > HOST.opaas`).
    CollectScript,
    /// Plan (and with -o build) an upgrade bundle for a server from its collected file.
    Upgrade(Box<cmd_upgrade::UpgradeArgs>),
    /// Run the HTTP service: API, job queue, web UI (see docs/API.md).
    Serve(Box<cmd_serve::ServeArgs>),
    /// Check a bundle offline: structure, hashes and, in a signed bundle, the distribution's
    /// chain signature → index → .deb (tarball or unpacked directory).
    Verify {
        /// The bundle: its .tar.gz/.tar.zst, or the offline_pkg_… directory it unpacked to
        bundle: std::path::PathBuf,
        /// OpenPGP keyring(s) to check the signatures with, instead of the built-in Debian and
        /// Ubuntu archive keyrings
        #[arg(long)]
        keyring: Vec<std::path::PathBuf>,
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    // `build --locked FILE` takes the target and the request from the lock
    let matches = Cli::command()
        .mut_subcommand("build", |c| {
            c.mut_arg("distro", |a| a.required(false).default_value(""))
                .mut_arg("requests", |a| {
                    a.required(false).required_unless_present("locked")
                })
        })
        .get_matches();
    if let Some((_, sub)) = matches.subcommand() {
        note_default_arch(sub);
    }
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    if let Cmd::Build(a) = &cli.cmd {
        if a.locked.is_none() && a.r.t.distro.is_empty() {
            clap::Error::raw(
                clap::error::ErrorKind::MissingRequiredArgument,
                "the following required arguments were not provided:\n  --distro <DISTRO> (or --locked FILE)\n",
            )
            .exit();
        }
    }
    let target = match &cli.cmd {
        Cmd::Mirrors { t, .. } | Cmd::Update(t) | Cmd::Baseline(t) => Some(t.clone()),
        Cmd::Show { t, .. } | Cmd::Search { t, .. } => Some(t.clone()),
        Cmd::Resolve(a) => Some(a.t.clone()),
        Cmd::Build(a) => Some(a.r.t.clone()),
        Cmd::Lock(a) => Some(a.r.t.clone()),
        Cmd::Distros | Cmd::Serve(_) | Cmd::Verify { .. } | Cmd::CollectScript => None,
        Cmd::Upgrade(_) => None,
    };
    let r = match cli.cmd {
        Cmd::Distros => cmd_repo::distros(),
        Cmd::Mirrors { t, json } => cmd_repo::mirrors(&t, json),
        Cmd::Update(t) => cmd_repo::update(&t),
        Cmd::Show { t, package } => cmd_repo::show(&t, &package),
        Cmd::Search { t, limit, words } => cmd_repo::search(&t, &words.join(" "), limit),
        Cmd::Resolve(a) => cmd_resolve::resolve(&a),
        Cmd::Baseline(t) => cmd_resolve::baseline(&t),
        Cmd::Build(a) => cmd_build::build(&a),
        Cmd::Lock(a) => cmd_build::lock(&a),
        Cmd::CollectScript => cmd_upgrade::collect_script(),
        Cmd::Upgrade(a) => cmd_upgrade::upgrade(&a),
        Cmd::Verify {
            bundle,
            keyring,
            json,
        } => cmd_build::verify(&bundle, &keyring, json),
        Cmd::Serve(a) => cmd_serve::serve(&a),
    };
    match r {
        Ok(code) => code,
        Err(e) => {
            let e = common::with_hint(e, target.as_ref());
            eprintln!("error: {}", common::describe(&e));
            ExitCode::from(common::exit_code(&e))
        }
    }
}

/// `-a` defaults to the host's architecture: say so on stderr (unless `-q`), since the target
/// is usually another machine.
fn note_default_arch(sub: &ArgMatches) {
    if !sub.ids().any(|i| i.as_str() == "arch")
        || sub.value_source("arch") != Some(ValueSource::DefaultValue)
    {
        return;
    }
    let quiet = matches!(sub.try_get_one::<bool>("quiet"), Ok(Some(true)));
    if !quiet {
        eprintln!(
            "note: no -a/--arch given: targeting this host's architecture, {} (set -a or OPAAS_ARCH for another)",
            common::host_arch()
        );
    }
}
