//! Sources in a cluster run once: each source that reads something (a file
//! to follow, a PBX to connect to) runs on the node holding its lease
//! (`lease.rs`, bucket `{stream}_leases`), with its checkpoint in the bucket
//! `{stream}_checkpoints`, so the node that takes it over resumes where the
//! last holder stopped. Hosted sources (HTTP routes that vendors post to)
//! run on every node: there is nothing to lease.
//!
//! On a clean stop a holder stops its source, then releases the lease so
//! another node takes over at once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use super::lease::{Holder, Lease, Tenure};
use super::{Cluster, ClusterSettings, bucket};
use crate::alert::Alerts;
use crate::clock::{Clock, WallClock};
use crate::hub::Hub;
use crate::shutdown::{self, Signal};
use crate::source::{Backoff, Checkpoints, Context, SourceConfig, SourceState, Sources, Status};

/// How long a stopped source may take to wind down before it is cancelled.
const STOP_WAIT: Duration = Duration::from_secs(1);

/// This node in the cluster, for placing sources.
#[derive(Debug, Clone)]
pub struct Placement {
    settings: ClusterSettings,
    node: String,
}

impl Placement {
    /// This node, listening on `listening`: named by `[cluster] node`, or
    /// by its host name and port (unique per process on a machine).
    pub fn new(settings: &ClusterSettings, listening: SocketAddr) -> Placement {
        let node = settings
            .node
            .clone()
            .unwrap_or_else(|| format!("{}-{}", host_name(), listening.port()));
        Placement {
            settings: settings.clone(),
            node,
        }
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Starts every source: hosted ones at once, the others each under its
    /// lease once the cluster is reached. The handles end when the server stops.
    pub fn start_all(
        self,
        configs: &[SourceConfig],
        hub: &Arc<Hub>,
        sources: &Sources,
        clock: (Clock, WallClock),
        shutdown: &Signal,
    ) -> Vec<JoinHandle<()>> {
        let mut leased = Vec::new();
        for config in configs {
            let Some(status) = sources.get(&config.name) else {
                continue;
            };
            if config.settings.hosted() {
                // Posted to, not run: starting marks it ready on this node.
                let context = Context::new(
                    hub.clone(),
                    status,
                    config.naming.clone(),
                    Checkpoints::new(None),
                    clock.clone(),
                    shutdown.clone(),
                );
                let _ = config.settings.start(context);
            } else {
                leased.push(Leased {
                    config: config.clone(),
                    status,
                });
            }
        }
        if leased.is_empty() {
            return Vec::new();
        }
        let node = Node {
            me: Holder::this_process(&self.node),
            hub: hub.clone(),
            clock,
            shutdown: shutdown.clone(),
        };
        vec![tokio::spawn(node.run(self.settings, leased))]
    }
}

/// The lease key of the alerts' sender: source names have no dot, so no
/// source's lease can share it.
const ALERTS_KEY: &str = "alerts.sender";

impl Placement {
    /// Sends alerts from one node of the cluster at a time: every node
    /// watches its rules, and this node sends only while it holds the
    /// alerts' lease (taken over like a source's when its holder dies).
    pub fn lead_alerts(&self, alerts: Arc<Alerts>, shutdown: &Signal) -> JoinHandle<()> {
        alerts.set_sending(false);
        let (settings, me) = (self.settings.clone(), Holder::this_process(&self.node));
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let mut backoff = Backoff::default();
            let leases = loop {
                match open(&settings).await {
                    Ok(buckets) => break buckets.leases,
                    Err(why) => tracing::warn!("alerts: cannot reach the cluster's leases: {why}"),
                }
                if !backoff.wait(shutdown.clone()).await {
                    return;
                }
            };
            let mut lease = Lease::new(leases, ALERTS_KEY, me);
            loop {
                let sending = matches!(lease.look().await, Tenure::Held);
                alerts.set_sending(sending);
                tokio::select! {
                    () = tokio::time::sleep(lease.next_look()) => {}
                    () = shutdown.clone().wait() => break,
                }
            }
            alerts.set_sending(false);
            lease.release().await;
        })
    }
}

/// A source that runs on one node at a time.
struct Leased {
    config: SourceConfig,
    status: Arc<Status>,
}

/// What every leased source of this node shares.
#[derive(Clone)]
struct Node {
    me: Holder,
    hub: Arc<Hub>,
    clock: (Clock, WallClock),
    shutdown: Signal,
}

/// The buckets a node needs for its sources.
struct Buckets {
    leases: async_nats::jetstream::kv::Store,
    checkpoints: Checkpoints,
}

impl Node {
    /// Reaches the cluster (retrying until it answers), then runs every
    /// leased source's lease until the server stops.
    async fn run(self, settings: ClusterSettings, leased: Vec<Leased>) {
        let mut backoff = Backoff::default();
        let buckets = loop {
            match open(&settings).await {
                Ok(buckets) => break buckets,
                Err(why) => {
                    for source in &leased {
                        let now = self.now();
                        source
                            .status
                            .set_state(SourceState::Failed, Some(why.clone()), now);
                    }
                    if !backoff.wait(self.shutdown.clone()).await {
                        return;
                    }
                }
            }
        };
        let runs: Vec<_> = leased
            .into_iter()
            .map(|source| {
                let lease =
                    Lease::new(buckets.leases.clone(), &source.config.name, self.me.clone());
                tokio::spawn(
                    self.clone()
                        .lead(lease, buckets.checkpoints.clone(), source),
                )
            })
            .collect();
        for run in runs {
            let _ = run.await;
        }
    }

    /// Keeps one source's lease: runs the source while this process holds
    /// it, stops it at once when it does not; releases it on a clean stop.
    async fn lead(self, mut lease: Lease, checkpoints: Checkpoints, source: Leased) {
        let mut running: Option<Run> = None;
        loop {
            match lease.look().await {
                Tenure::Held if running.is_none() => {
                    running = self.start(&checkpoints, &source).await;
                }
                Tenure::Held => {}
                Tenure::StandBy { leader } => {
                    stop(running.take()).await;
                    source.status.stand_by(&leader, self.now());
                }
                Tenure::Unknown { why } => {
                    if running.is_some() {
                        tracing::warn!(source = %source.config.name, "lease not renewed, the source stops: {why}");
                    }
                    stop(running.take()).await;
                    if source.status.view().state != SourceState::Standby {
                        let why = format!("lease: {why}");
                        source
                            .status
                            .set_state(SourceState::Connecting, Some(why), self.now());
                    }
                }
            }
            tokio::select! {
                () = tokio::time::sleep(lease.next_look()) => {}
                () = self.shutdown.clone().wait() => break,
            }
        }
        stop(running.take()).await;
        lease.release().await;
    }

    /// Fetches the source's checkpoint and starts it under its own stop
    /// signal; `None` (retried at the next look) when the checkpoint cannot
    /// be read: starting without it would skip or reread what the last holder did.
    async fn start(&self, checkpoints: &Checkpoints, source: &Leased) -> Option<Run> {
        let name = &source.config.name;
        if let Err(e) = checkpoints.fetch(name).await {
            let now = self.now();
            source
                .status
                .set_state(SourceState::Failed, Some(e.to_string()), now);
            return None;
        }
        source.status.take_over(&self.me.node, self.now());
        let (trigger, signal) = shutdown::channel();
        let context = Context::new(
            self.hub.clone(),
            source.status.clone(),
            source.config.naming.clone(),
            checkpoints.clone(),
            self.clock.clone(),
            signal,
        );
        let task = source.config.settings.start(context)?;
        Some(Run { trigger, task })
    }

    fn now(&self) -> jiff::Timestamp {
        (self.clock.1)()
    }
}

/// A source running on this node.
struct Run {
    trigger: shutdown::Trigger,
    task: JoinHandle<()>,
}

/// Stops a running source: told to stop, then cancelled if it takes longer
/// than [`STOP_WAIT`] (a batch cut short is read again by the next holder).
async fn stop(run: Option<Run>) {
    let Some(Run { trigger, mut task }) = run else {
        return;
    };
    trigger.trip();
    if tokio::time::timeout(STOP_WAIT, &mut task).await.is_err() {
        task.abort();
        let _ = task.await;
    }
}

/// Connects and opens the lease and checkpoint buckets.
async fn open(settings: &ClusterSettings) -> Result<Buckets, String> {
    let cluster = Cluster::connect(settings)
        .await
        .map_err(|e| e.to_string())?;
    let (js, replicas) = (&cluster.jetstream, settings.replicas);
    let name = |what: &str| format!("{}_{what}", settings.stream);
    let leases = bucket(js, &name("leases"), replicas, Duration::ZERO)
        .await
        .map_err(|e| e.to_string())?;
    let checkpoints = bucket(js, &name("checkpoints"), replicas, Duration::ZERO)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Buckets {
        leases,
        checkpoints: Checkpoints::in_bucket(checkpoints),
    })
}

/// The machine's host name, or `node` when it cannot be read.
fn host_name() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|path| {
            let name = std::fs::read_to_string(path).ok()?;
            let name = name.trim();
            (!name.is_empty()).then(|| name.to_owned())
        })
        .unwrap_or_else(|| "node".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_is_named_by_the_config_or_by_host_and_port() {
        let config = crate::config::Config::parse(
            "[cluster]\nnats_urls = [\"nats://127.0.0.1:4222\"]\n",
            "t",
        )
        .unwrap();
        let settings = config.cluster.unwrap();
        let addr: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let node = Placement::new(&settings, addr);
        assert!(node.node().ends_with("-8080"), "{}", node.node());
        let named = ClusterSettings {
            node: Some("floor-2".into()),
            ..settings
        };
        assert_eq!(Placement::new(&named, addr).node(), "floor-2");
    }
}
