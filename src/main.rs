//! The `wallboard` command: parse the command line, set up logging, hand over to the library.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use wallboard::classify::{self, ClassifyOptions};
use wallboard::clock::Clock;
use wallboard::config::Config;
use wallboard::replay::ReplayOptions;
use wallboard::server::{ServeOptions, Server};
use wallboard::source::Format;

/// A real-time call-centre wallboard server.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// TOML configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Directory of the event store (created if missing).
        #[arg(long, default_value = "./data")]
        data_dir: PathBuf,
        /// Feed the built-in simulated call centre.
        #[arg(long)]
        demo: bool,
        /// Where "now" comes from: the machine's clock or the latest event time.
        #[arg(long, value_enum, default_value = "wall")]
        clock: Clock,
        /// Listen beyond loopback even though no tokens are configured (anyone may read and post).
        #[arg(long)]
        insecure_open: bool,
    },
    /// Send a recorded feed to a running server.
    Replay {
        /// NDJSON or JSON array file.
        file: PathBuf,
        /// The server's URL, e.g. http://127.0.0.1:8080.
        #[arg(long)]
        to: String,
        /// Pace by the events' own times, this many times real time.
        #[arg(long, conflicts_with = "max", default_value_t = 1.0)]
        speed: f64,
        /// Send as fast as the server accepts.
        #[arg(long)]
        max: bool,
        /// Ingest token (or WALLBOARD_TOKEN).
        #[arg(long, env = "WALLBOARD_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// The file's format: our events, or a telephony system's records.
        #[arg(long, value_enum, default_value = "events")]
        format: Format,
    },
    /// Check, back up or rebuild the event store.
    Store {
        #[command(subcommand)]
        action: StoreAction,
        /// Directory of the event store.
        #[arg(long, default_value = "./data", global = true)]
        data_dir: PathBuf,
    },
    /// Classify recorded events offline with the server's engine.
    Classify {
        /// Show only these definitions (repeatable; default all).
        #[arg(long = "definition", value_name = "NAME")]
        definitions: Vec<String>,
        /// One JSON line per finished call.
        #[arg(long)]
        calls: bool,
        /// Totals per local day.
        #[arg(long)]
        by_day: bool,
        /// Time zone of the days (default UTC).
        #[arg(long, value_name = "ZONE")]
        tz: Option<String>,
        /// TOML configuration file (definition settings).
        #[arg(long)]
        config: Option<PathBuf>,
        /// The files' format: our events, or a telephony system's records.
        #[arg(long, value_enum, default_value = "events")]
        format: Format,
        /// NDJSON or JSON array files; none or `-` reads standard input.
        files: Vec<PathBuf>,
    },
}

#[derive(Subcommand)]
enum StoreAction {
    /// Runs SQLite's quick_check; exits 1 when the store is damaged.
    Check,
    /// Copies the store to FILE with SQLite's online backup (safe while serving).
    Backup {
        /// The backup file to create.
        file: PathBuf,
    },
    /// Rebuilds a damaged store from every event still readable (stop the server first).
    Rebuild,
}

fn load_config(path: Option<&PathBuf>) -> anyhow::Result<Config> {
    match path {
        Some(path) => Ok(Config::load(path)?),
        None => Ok(Config::default()),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        // Colours only on a terminal: a log file or journal gets no escape bytes.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let result = match cli.command {
        Command::Replay {
            file,
            to,
            speed,
            max,
            token,
            format,
        } => replay(ReplayOptions {
            file,
            to,
            speed: (!max).then_some(speed),
            token,
            format,
        }),
        Command::Serve {
            config,
            listen,
            data_dir,
            demo,
            clock,
            insecure_open,
        } => serve(
            config.as_ref(),
            listen,
            data_dir,
            demo,
            clock,
            insecure_open,
        ),
        Command::Store { action, data_dir } => store(&action, &data_dir),
        Command::Classify {
            definitions,
            calls,
            by_day,
            tz,
            config,
            format,
            files,
        } => {
            let options = ClassifyOptions {
                definitions,
                calls,
                by_day,
                tz,
                files,
                format,
            };
            load_config(config.as_ref()).and_then(|config| {
                let mut out = std::io::BufWriter::new(std::io::stdout().lock());
                Ok(classify::run(&options, &config, &mut out)?)
            })
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wallboard: {}", message(&e));
            ExitCode::FAILURE
        }
    }
}

fn serve(
    config: Option<&PathBuf>,
    listen: SocketAddr,
    data_dir: PathBuf,
    demo: bool,
    clock: Clock,
    insecure_open: bool,
) -> anyhow::Result<()> {
    let mut config = load_config(config)?;
    fit_descriptor_limit(&mut config);
    // Before opening anything: refuse an open board beyond loopback.
    wallboard::security::check_exposure(listen, &config.security.auth, insecure_open)?;
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(async move {
        let options = ServeOptions {
            clock,
            demo,
            data_dir: Some(data_dir),
            insecure_open,
            ..ServeOptions::new(config)
        };
        // Rebuild from the store before listening: a board that answers is a complete one.
        let server = Server::open(options).await?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        let demo_note = if demo { " (demo feed running)" } else { "" };
        println!("wallboard: the board is at http://{addr}/{demo_note}");
        server.run(listener, stop_signal()).await?;
        Ok(())
    })
}

/// Raises the soft descriptor limit to the hard one and, if that is still too
/// few for `limits.max_connections`, lowers the limit with a warning: past
/// the descriptors, connections would hang unanswered (`accept` fails).
fn fit_descriptor_limit(config: &mut Config) {
    let limits = &mut config.security.limits;
    let Some((soft, hard)) = nofile_limit() else {
        return;
    };
    let mut plan = wallboard::security::plan_descriptors(limits.max_connections, soft, hard);
    if plan.soft != soft && !set_nofile_limit(plan.soft, hard) {
        plan = wallboard::security::plan_descriptors(limits.max_connections, soft, soft);
    }
    if plan.max_connections < limits.max_connections {
        tracing::warn!(
            "limits.max_connections is {} but the process may open only {} files \
             (ulimit -n); allowing {} connections",
            limits.max_connections,
            plan.soft,
            plan.max_connections
        );
        limits.max_connections = plan.max_connections;
    }
}

/// The soft and hard `RLIMIT_NOFILE` (libc directly: two calls, and libc is
/// already in the build through tokio; `RLIM_INFINITY` reads as `u64::MAX`).
#[cfg(unix)]
fn nofile_limit() -> Option<(u64, u64)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own and reads nothing else.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    let value = |v: libc::rlim_t| {
        if v == libc::RLIM_INFINITY {
            u64::MAX
        } else {
            v
        }
    };
    ok.then(|| (value(limit.rlim_cur), value(limit.rlim_max)))
}

#[cfg(not(unix))]
fn nofile_limit() -> Option<(u64, u64)> {
    None
}

/// Sets the soft `RLIMIT_NOFILE`; whether it took.
#[cfg(unix)]
fn set_nofile_limit(soft: u64, hard: u64) -> bool {
    let as_rlim = |v: u64| {
        if v == u64::MAX {
            libc::RLIM_INFINITY
        } else {
            v
        }
    };
    let limit = libc::rlimit {
        rlim_cur: as_rlim(soft),
        rlim_max: as_rlim(hard),
    };
    // SAFETY: setrlimit only reads the struct we pass.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 }
}

#[cfg(not(unix))]
fn set_nofile_limit(_soft: u64, _hard: u64) -> bool {
    false
}

fn store(action: &StoreAction, dir: &std::path::Path) -> anyhow::Result<()> {
    use wallboard::maintenance;
    match action {
        StoreAction::Check => {
            let report = maintenance::check(dir)?;
            let took = report.took.as_secs_f64();
            match report.problem {
                None => println!("{}: ok (quick_check in {took:.2} s)", report.path.display()),
                Some(problem) => anyhow::bail!(
                    "{} is damaged: {problem}\nRestore a backup, or run `wallboard store rebuild --data-dir {}`",
                    report.path.display(),
                    dir.display()
                ),
            }
        }
        StoreAction::Backup { file } => {
            maintenance::backup(dir, file)?;
            println!("backed up {} to {}", dir.display(), file.display());
        }
        StoreAction::Rebuild => {
            let r = maintenance::rebuild(dir)?;
            println!(
                "rebuilt {}: {} events kept, {} unreadable (lost), {} repeated ids dropped; the damaged file is {}",
                dir.display(),
                r.kept,
                r.unreadable,
                r.repeated,
                r.damaged_copy.display()
            );
        }
    }
    Ok(())
}

fn replay(options: ReplayOptions) -> anyhow::Result<()> {
    if options.speed.is_some_and(|s| !(s.is_finite() && s > 0.0)) {
        anyhow::bail!("--speed must be a positive number");
    }
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(wallboard::replay::run(&options))?;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn stop_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("stopping");
}

/// The error and its causes, each once: our errors already name their cause.
fn message(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text = format!("{text}: {cause}");
        }
    }
    text
}
