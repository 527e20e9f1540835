//! `wallboard serve`: wires the hub, the publisher, the demo feed and the web
//! app onto a listener the caller bound, and stops cleanly on a signal.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::config::Config;
use crate::hub::{Clock, Hub};
use crate::web::{self, AppState};
use crate::{demo, shutdown};

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The validated configuration.
    pub config: Config,
    /// Where "now" comes from.
    pub clock: Clock,
    /// Run the built-in simulated call centre as an event source.
    pub demo: bool,
}

/// Serves until `stop` resolves, then closes WebSockets and drains requests.
pub async fn run(
    listener: TcpListener,
    options: ServeOptions,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let hub = Arc::new(Hub::new(options.config.engine.clone(), options.clock));
    let (trigger, signal) = shutdown::channel();
    let state = Arc::new(AppState {
        hub: hub.clone(),
        config: Arc::new(options.config),
        shutdown: signal.clone(),
    });
    let publisher = tokio::spawn(hub.clone().run_publisher(signal.clone().wait()));
    if options.demo {
        tokio::spawn(demo::run(hub.clone(), signal.clone()));
    }
    let serve = axum::serve(listener, web::app(state)).with_graceful_shutdown(async move {
        stop.await;
        trigger.trip();
    });
    let result = serve.await;
    let _ = publisher.await;
    result
}
