//! `wallboard serve`: [`Server::open`] opens the store and rebuilds the
//! board from it; [`Server::run`] wires the hub, the publisher, the sources
//! (the demo among them) and the web app onto a listener the caller bound,
//! and stops cleanly on a signal. `main` and the tests take this one path.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::alert::Alerts;
use crate::clock::{Clock, WallClock, system_clock};
use crate::cluster::placement::Placement;
use crate::config::Config;
use crate::hub::{Hub, StoreSettings};
use crate::journal::JournalError;
use crate::security::{ExposureError, check_exposure};
use crate::shutdown;
use crate::source::demo;
use crate::source::{self, Checkpoints, Sources};
use crate::web::{self, AppState};

/// How to serve.
#[derive(Clone)]
pub struct ServeOptions {
    /// The validated configuration.
    pub config: Config,
    /// Where "now" comes from.
    pub clock: Clock,
    /// The wall clock (tests inject their own).
    pub wall: WallClock,
    /// Run the built-in simulated call centre as an event source.
    pub demo: bool,
    /// The store's directory; `None` keeps everything in memory only.
    pub data_dir: Option<PathBuf>,
    /// Serve beyond loopback without tokens (`--insecure-open`).
    pub insecure_open: bool,
}

impl ServeOptions {
    /// Wall clock, no demo, no store.
    pub fn new(config: Config) -> ServeOptions {
        ServeOptions {
            config,
            clock: Clock::Wall,
            wall: system_clock(),
            demo: false,
            data_dir: None,
            insecure_open: false,
        }
    }
}

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The store cannot be opened or read.
    #[error(transparent)]
    Store(#[from] JournalError),
    /// Serving failed.
    #[error("serving: {0}")]
    Io(#[from] std::io::Error),
    /// No tokens, and the listener is not on loopback.
    #[error(transparent)]
    Exposed(#[from] ExposureError),
    /// The cluster (`[cluster]`) cannot be joined.
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
}

/// Refuses a listener beyond loopback without tokens (unless `insecure_open`, with a warning).
pub fn check_listener(listener: &TcpListener, options: &ServeOptions) -> Result<(), ServeError> {
    let addr = listener.local_addr()?;
    let auth = &options.config.security.auth;
    if check_exposure(addr, auth, options.insecure_open)? {
        tracing::warn!(
            "serving {addr} without tokens (--insecure-open): anyone who can reach it can read the board and post events"
        );
    }
    Ok(())
}

/// A server opened from its options (the board rebuilt from the store), not
/// yet listening. `main` and the tests both open one, then [`Server::run`] it.
pub struct Server {
    hub: Arc<Hub>,
    options: ServeOptions,
}

impl Server {
    /// Opens the store, if any, and rebuilds the board from it (on a blocking thread).
    pub async fn open(options: ServeOptions) -> Result<Server, ServeError> {
        let hub = match (&options.config.cluster, &options.data_dir) {
            (Some(cluster), Some(dir)) => {
                let store = StoreSettings {
                    dir: dir.clone(),
                    retention_days: options.config.retention_days,
                };
                let clock = (options.clock, options.wall.clone());
                let engine = options.config.engine.clone();
                crate::cluster::node::open_hub(cluster, engine, clock, store).await?
            }
            (Some(_), None) => return Err(crate::cluster::ClusterError::NoStore.into()),
            (None, _) => {
                let opening = options.clone();
                tokio::task::spawn_blocking(move || open_hub(&opening))
                    .await
                    .map_err(|e| std::io::Error::other(e.to_string()))??
            }
        };
        Ok(Server {
            hub: Arc::new(hub),
            options,
        })
    }

    /// The hub the server feeds and publishes.
    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// Starts the publisher and the configured sources and serves `listener`
    /// until `shutdown` resolves, then closes WebSockets and drains requests.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        check_listener(&listener, &self.options)?;
        serve_checked(listener, self.hub, self.options, shutdown).await
    }
}

/// Opens a server and runs it: [`Server::open`], then [`Server::run`]. The
/// listener is checked first, so an exposed one is refused before the store opens.
pub async fn run(
    listener: TcpListener,
    options: ServeOptions,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    check_listener(&listener, &options)?;
    Server::open(options).await?.run(listener, stop).await
}

/// Opens the hub: from the store when there is one (rebuilding the board).
fn open_hub(options: &ServeOptions) -> Result<Hub, JournalError> {
    let settings = options.config.engine.clone();
    match &options.data_dir {
        None => Ok(Hub::in_memory(
            settings,
            options.clock,
            options.wall.clone(),
        )),
        Some(dir) => Hub::open(
            settings,
            options.clock,
            options.wall.clone(),
            StoreSettings {
                dir: dir.clone(),
                retention_days: options.config.retention_days,
            },
        ),
    }
}

/// Serves once the listener has passed [`check_listener`].
async fn serve_checked(
    listener: TcpListener,
    hub: Arc<Hub>,
    options: ServeOptions,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let (trigger, signal) = shutdown::channel();
    let mut config = options.config;
    if options.demo {
        config.sources.push(demo::source_config());
    }
    let sources = Arc::new(Sources::new(&config.sources, (options.wall)()));
    let alerts = Arc::new(Alerts::new(config.alerts.clone()));
    let state = Arc::new(AppState {
        hub: hub.clone(),
        config: Arc::new(config),
        shutdown: signal.clone(),
        sources: sources.clone(),
        alerts,
    });
    hub.set_groups(state.config.boards.queue_groups());
    hub.set_sources(sources.clone(), options.wall.clone());
    hub.publish();
    let publisher = tokio::spawn(hub.clone().run_publisher(signal.clone().wait()));
    let mut alerting = state.alerts.start(hub.clone(), &signal);
    let checkpoints = Checkpoints::new(options.data_dir.as_deref());
    let clock = (options.clock, options.wall.clone());
    let placement = match &state.config.cluster {
        Some(cluster) => Some(Placement::new(cluster, listener.local_addr()?)),
        None => None,
    };
    if let Some(placement) = &placement
        && state.alerts.has_rules()
    {
        alerting.push(placement.lead_alerts(state.alerts.clone(), &signal));
    }
    let feeds = source::start_all(
        &state.config.sources,
        &hub,
        &sources,
        &checkpoints,
        clock,
        &signal,
        placement,
    );
    let limits = state.config.security.limits.clone();
    let stop = async move {
        stop.await;
        trigger.trip();
    };
    // Our own accept loop (not `axum::serve`): connection limits and a header read timeout.
    let result = web::conn::serve(listener, web::app(state), &limits, stop).await;
    let _ = publisher.await;
    for task in alerting {
        let _ = task.await;
    }
    for feed in feeds {
        let _ = feed.await;
    }
    Ok(result?)
}
