//! Shutdown: one trigger, any number of cloneable signals that resolve once it trips.

use tokio::sync::watch;

/// Resolves once the server is stopping; clone one per task.
#[derive(Clone)]
pub struct Signal(watch::Receiver<bool>);

/// Trips every [`Signal`] made with it.
pub struct Trigger(watch::Sender<bool>);

/// A connected trigger and signal.
pub fn channel() -> (Trigger, Signal) {
    let (tx, rx) = watch::channel(false);
    (Trigger(tx), Signal(rx))
}

impl Trigger {
    /// Tells every signal the server is stopping.
    pub fn trip(&self) {
        let _ = self.0.send(true);
    }
}

impl Signal {
    /// Resolves once tripped (or when the trigger is dropped).
    pub async fn wait(mut self) {
        let _ = self.0.wait_for(|stopping| *stopping).await;
    }
}
