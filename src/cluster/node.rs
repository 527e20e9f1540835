//! Opening a node of a cluster: connect to NATS, open the stream, rebuild
//! the board from the node's own store (its cache of the stream), then
//! follow the stream from the sequence that store is applied through.

use std::time::Duration;

use super::stream::{self, StreamError};
use super::{Cluster, ClusterError, ClusterSettings};
use crate::engine::EngineSettings;
use crate::hub::{Clock, Hub, StoreSettings, WallClock};

/// Opens this node's hub in the cluster `settings` name, over its store.
pub async fn open_hub(
    settings: &ClusterSettings,
    engine: EngineSettings,
    clock: (Clock, WallClock),
    store: StoreSettings,
) -> Result<Hub, ClusterError> {
    let cluster = Cluster::connect(settings).await?;
    let max_age = Duration::from_secs(u64::from(store.retention_days) * 86_400);
    let (mut events, writer) = stream::open(
        &cluster.client,
        &settings.stream,
        settings.replicas,
        max_age,
    )
    .await?;
    let made = &events.cached_info().config;
    if made.num_replicas != settings.replicas
        || !made.subjects.contains(&stream::subject(&settings.stream))
    {
        // An existing stream is used as it is: changing it is the operator's call.
        tracing::warn!(
            "stream {} exists with {} replicas and subjects {:?}; [cluster] asks for {} replicas and {:?}",
            settings.stream,
            made.num_replicas,
            made.subjects,
            settings.replicas,
            stream::subject(&settings.stream)
        );
    }
    // Read before the store is: what the stream held then is what this node
    // must apply before it reports ready.
    let target = stream::last_sequence(&mut events).await?;
    let (clock, wall) = clock;
    let hub = tokio::task::spawn_blocking(move || {
        Hub::open_replicated(engine, clock, wall, store, writer)
    })
    .await
    // Opening panicked (a bug): as if the store had stopped.
    .map_err(|_| ClusterError::Store(crate::journal::JournalError::Stopped))??;
    let (applied, feed) = hub
        .pipeline()
        .take_feed()
        .expect("a replicated pipeline has a feed");
    if applied > target {
        // Refused, not logged: a node following from here would answer 200
        // for events it never applies.
        return Err(ClusterError::StoreAhead {
            stream: settings.stream.clone(),
            applied,
            last: target,
        });
    }
    tracing::info!(
        "following stream {} after seq {applied} (it ends at {target})",
        settings.stream
    );
    let follower = tokio::spawn(stream::follow(events, applied, feed));
    hub.pipeline().followed(follower.abort_handle(), target);
    Ok(hub)
}

impl From<StreamError> for ClusterError {
    fn from(e: StreamError) -> ClusterError {
        ClusterError::Stream(e)
    }
}
