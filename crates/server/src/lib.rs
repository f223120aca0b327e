//! `opaas-server`: the OPaaS HTTP service behind `opaas serve`.
//!
//! The same engine as the CLI (`opaas_engine::{resolve, build, search}`) behind the API of
//! docs/API.md, as one process with embedded defaults:
//!
//! * [`api`]: axum routes, auth (optional bearer token), timeouts, body limits, the SSE stream;
//! * [`jobs`]: a persistent queue (SQLite, [`db`]) worked by a bounded pool; builds run on
//!   blocking threads and report through the engine's `BuildProgress` into a live snapshot, a
//!   broadcast per job, the job's log file and (throttled) the database;
//! * [`janitor`]: bundle expiry, the .deb cache's size cap (LRU), orphans, log pruning;
//! * [`ui`]: the web UI embedded from `web/dist`;
//! * [`guard`], [`conn`], [`caps`], [`uploads`]: the hardening of docs/SECURITY.md (Host and
//!   Origin checks, per-client limits, header timeouts and a connection limit, bounded output,
//!   uploads parsed on low-priority threads and stored outside the database).
//!
//! Data directory: `jobs.sqlite`, `bundles/<job>/{offline_pkg_….tar.gz,manifest.json}`,
//! `cache/` (indices and the shared content-addressed .deb store), `logs/opaas.<date>.log`,
//! `jobs/<job>.log`, `tmp/<job>/` (removed after every build and at start), `uploads/<sha256>.zst`
//! (uploaded status files of unfinished jobs).

pub mod api;
pub mod bundles;
pub mod caps;
pub mod config;
pub mod conn;
pub mod db;
pub mod error;
pub mod files;
pub mod guard;
pub mod health;
pub mod janitor;
mod jobrow;
pub mod jobs;
pub mod metrics;
pub mod model;
pub mod pg;
pub mod presets;
pub mod request;
pub mod reuse;
pub mod store;
pub mod targets;
mod ui;
pub mod universes;
pub mod uploads;

pub use config::{load_token, parse_duration, parse_size, ServerConfig, TokenError};

use anyhow::Context;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::watch;

/// The compiled-in OpenAPI document (its version set to this build's).
fn openapi_doc() -> anyhow::Result<serde_json::Value> {
    let mut v: serde_json::Value =
        serde_json::from_str(include_str!("../data/openapi.json")).context("data/openapi.json")?;
    v["info"]["version"] = serde_json::Value::String(env!("CARGO_PKG_VERSION").into());
    Ok(v)
}

/// A started service: state, workers and janitor running; [`Service::router`] serves it.
pub struct Service {
    state: api::AppState,
    stop: Arc<watch::Sender<bool>>,
    workers: Vec<tokio::task::JoinHandle<()>>,
    janitor: Option<tokio::task::JoinHandle<()>>,
}

impl Service {
    /// Opens the data directory (creating it), applies migrations, recovers jobs a crash left
    /// running, and starts the workers and the janitor.
    pub async fn start(cfg: ServerConfig) -> anyhow::Result<Service> {
        let cfg = Arc::new(cfg);
        {
            let c = Arc::clone(&cfg);
            tokio::task::spawn_blocking(move || c.create_dirs())
                .await?
                .context("creating the data directory")?;
        }
        let db = {
            let p = cfg.db_path();
            let url = cfg.database_url.clone();
            let lease = cfg.lease;
            tokio::task::spawn_blocking(move || store::open(url.as_deref(), &p, lease))
                .await?
                .with_context(|| match &cfg.database_url {
                    Some(_) => "opening the job database (--database)".to_string(),
                    None => format!("opening {}", cfg.db_path().display()),
                })?
        };
        let bundles = bundles::open(
            cfg.storage_url.as_deref(),
            &cfg.bundles_dir(),
            cfg.presign_downloads,
        )
        .context("opening the bundle storage (--storage)")?;
        tracing::info!(
            database = db.backend(),
            storage = bundles.backend(),
            "job and bundle stores"
        );
        let metrics = Arc::new(metrics::Metrics::default());
        let jobs = jobs::Jobs::new(
            Arc::clone(&cfg),
            db.clone(),
            Arc::clone(&bundles),
            Arc::clone(&metrics),
        );
        {
            let j = Arc::clone(&jobs);
            tokio::task::spawn_blocking(move || j.recover())
                .await?
                .context("recovering jobs")?;
        }
        let (stop_tx, stop_rx) = watch::channel(false);
        let health = Arc::new(health::Health::new(
            (bundles.backend() != "local").then(|| Arc::clone(&bundles)),
        ));
        health.probe(&db).await;
        let state = Arc::new(api::Inner {
            universes: Arc::new(universes::Universes::new(cfg.engine_settings(), 4)),
            presets: presets::Presets::builtin()?,
            previews: tokio::sync::Semaphore::new(4),
            limits: guard::ClientLimits::default(),
            heavy: uploads::Heavy::new(4, 2),
            shutdown: stop_rx.clone(),
            openapi: openapi_doc()?,
            cfg: Arc::clone(&cfg),
            db: db.clone(),
            jobs: Arc::clone(&jobs),
            metrics: Arc::clone(&metrics),
            health: Arc::clone(&health),
        });
        let mut workers = jobs.start_workers(cfg.workers, stop_rx.clone());
        {
            let db = db.clone();
            let stop = stop_rx.clone();
            workers.push(tokio::spawn(async move { health.run(db, stop).await }));
        }
        // uploads no job refers to any more, and vacuum (stops with the workers)
        workers.push(tokio::spawn(uploads::upkeep(
            Arc::clone(&cfg),
            db.clone(),
            stop_rx.clone(),
        )));
        let janitor = janitor::Janitor {
            cfg: Arc::clone(&cfg),
            db,
            bundles,
            metrics,
            build_lock: Arc::clone(&jobs.build_lock),
        };
        let janitor = Some(tokio::spawn(janitor.run(stop_rx)));
        Ok(Service {
            state,
            stop: Arc::new(stop_tx),
            workers,
            janitor,
        })
    }

    /// The HTTP application.
    pub fn router(&self) -> axum::Router {
        api::router(Arc::clone(&self.state))
    }

    pub fn config(&self) -> &ServerConfig {
        &self.state.cfg
    }

    /// A janitor on this service's state (tests run its passes directly).
    pub fn janitor(&self) -> janitor::Janitor {
        janitor::Janitor {
            cfg: Arc::clone(&self.state.cfg),
            db: self.state.db.clone(),
            bundles: Arc::clone(&self.state.jobs.bundles),
            metrics: Arc::clone(&self.state.metrics),
            build_lock: Arc::clone(&self.state.jobs.build_lock),
        }
    }

    /// Asks everything to stop: workers take no new job, running builds stop at their next
    /// check (their jobs go back to the queue), event streams close.
    pub fn signal_stop(&self) {
        let _ = self.stop.send(true);
        self.state.jobs.begin_shutdown();
    }

    /// Stops, waiting up to the configured grace for running builds.
    pub async fn shutdown(mut self) {
        self.signal_stop();
        let grace = self.state.cfg.shutdown_grace;
        let workers = std::mem::take(&mut self.workers);
        let all = futures_util::future::join_all(workers);
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!(
                "builds still running after {} s; they will be re-queued at the next start",
                grace.as_secs()
            );
        }
        if let Some(j) = self.janitor.take() {
            j.abort();
        }
    }
}

/// Serves on `listener` until `shutdown` completes, then stops gracefully (open connections
/// get the shutdown grace to finish).
pub async fn serve(
    cfg: ServerConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let svc = Service::start(cfg).await?;
    let app = svc.router();
    let grace = svc.config().shutdown_grace;
    let stop = Arc::clone(&svc.stop);
    let jobs = Arc::clone(&svc.state.jobs);
    let (fired_tx, mut fired_rx) = watch::channel(false);
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down");
        let _ = stop.send(true);
        jobs.begin_shutdown();
        let _ = fired_tx.send(true);
    };
    let hardening = svc.config().hardening.clone();
    let server = conn::serve(listener, app, &hardening, signal);
    let deadline = async move {
        while !*fired_rx.borrow() {
            if fired_rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        tokio::time::sleep(grace + std::time::Duration::from_secs(2)).await;
    };
    tokio::select! {
        r = server => r.context("serving")?,
        _ = deadline => tracing::warn!("connections still open after the grace period; closing them"),
    }
    svc.shutdown().await;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn signals() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!("cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// Colour on stderr only for a terminal (never in a redirected log, a journal or a pipe) and
/// not when `NO_COLOR` is set.
fn stderr_colour() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The file log's field formatter. tracing-subscriber keeps a span's formatted fields once per
/// formatter *type*; with the stderr layer's `DefaultFields` the file would reuse its coloured
/// text (the access log's `request{method=… path=…}` span), so the file has a type of its own.
#[derive(Default)]
struct PlainFields(tracing_subscriber::fmt::format::DefaultFields);

impl<'w> tracing_subscriber::fmt::FormatFields<'w> for PlainFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        writer: tracing_subscriber::fmt::format::Writer<'w>,
        fields: R,
    ) -> std::fmt::Result {
        self.0.format_fields(writer, fields)
    }
}

/// The service log: stderr plus `<data>/logs/opaas.<date>.log`, rotated daily, the newest
/// `keep` files kept. `OPAAS_LOG` sets the filter (default `info`). Keep the guard alive.
pub fn init_logging(
    cfg: &ServerConfig,
) -> anyhow::Result<tracing_appender::non_blocking::WorkerGuard> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let dir = cfg.logs_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    janitor::prune_logs(&dir, cfg.log_keep);
    let appender = tracing_appender::rolling::RollingFileAppender::builder()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix("opaas")
        .filename_suffix("log")
        .max_log_files(cfg.log_keep.max(1))
        .build(&dir)
        .with_context(|| format!("opening the service log in {}", dir.display()))?;
    let (file, guard) = tracing_appender::non_blocking(appender);
    let filter = |default: &str| {
        tracing_subscriber::EnvFilter::try_from_env("OPAAS_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default))
    };
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(stderr_colour())
                .with_writer(std::io::stderr)
                .with_filter(filter("info")),
        )
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .fmt_fields(PlainFields::default())
                .with_writer(file)
                .with_filter(filter("info")),
        )
        .try_init();
    Ok(guard)
}

/// `opaas serve`: logging, a runtime, the listener, signals. Prints the URL on stdout once it
/// listens (`listening on http://…`).
pub fn run(cfg: ServerConfig) -> anyhow::Result<()> {
    let _guard = init_logging(&cfg)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("opaas-serve")
        .build()
        .context("starting the runtime")?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .with_context(|| format!("cannot listen on {}", cfg.listen))?;
        let addr = listener.local_addr()?;
        if cfg.token.is_none() {
            tracing::warn!(
                "no OPAAS_TOKEN (or --token) is set: the API is open to anyone who can reach {addr}"
            );
        }
        tracing::info!(
            %addr,
            data_dir = %cfg.data_dir.display(),
            workers = cfg.workers,
            "opaas serve {}",
            env!("CARGO_PKG_VERSION")
        );
        {
            use std::io::Write;
            let mut out = std::io::stdout();
            let _ = writeln!(out, "listening on http://{addr}");
            let _ = out.flush();
        }
        serve(cfg, listener, signals()).await
    })
}

#[cfg(test)]
mod log_tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::layer::SubscriberExt;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::ErrorKind::Other)?
                .extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl Buf {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().expect("lock")).into_owned()
        }
    }

    /// A coloured terminal layer and a plain file layer over one span: what the file gets.
    fn file_text(plain_fields: bool) -> String {
        let (tty, file) = (Buf::default(), Buf::default());
        let (t, f) = (tty.clone(), file.clone());
        let coloured = tracing_subscriber::fmt::layer()
            .with_ansi(true)
            .with_writer(move || t.clone());
        let base = tracing_subscriber::registry().with(coloured);
        let emit = || {
            let span = tracing::info_span!("request", method = "POST", path = "/api/jobs");
            let _e = span.enter();
            tracing::info!(status = 202, "request");
        };
        if plain_fields {
            let sub = base.with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .fmt_fields(super::PlainFields::default())
                    .with_writer(move || f.clone()),
            );
            tracing::subscriber::with_default(sub, emit);
        } else {
            let sub = base.with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_writer(move || f.clone()),
            );
            tracing::subscriber::with_default(sub, emit);
        }
        assert!(tty.text().contains('\u{1b}'), "{:?}", tty.text());
        file.text()
    }

    #[test]
    fn the_log_file_gets_no_colour_codes_from_the_terminal_layer() {
        let plain = file_text(true);
        assert!(
            plain.contains("path=\"/api/jobs\"") || plain.contains("path=/api/jobs"),
            "{plain:?}"
        );
        assert!(!plain.contains('\u{1b}'), "{plain:?}");
        // what PlainFields prevents: the span's fields formatted once, in colour, for both
        assert!(file_text(false).contains('\u{1b}'));
    }
}
