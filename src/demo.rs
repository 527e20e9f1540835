//! The built-in simulated call centre (`--demo`). (Being written.)

use std::sync::Arc;

use crate::hub::Hub;
use crate::shutdown::Signal;

/// Feeds simulated events into the hub until shutdown.
pub async fn run(hub: Arc<Hub>, shutdown: Signal) {
    let _ = hub;
    shutdown.wait().await;
}
