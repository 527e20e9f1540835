//! The cluster's parts against real `nats-server` processes (`tests/natsd`).

mod natsd;

use std::time::Duration;

use async_nats::jetstream;
use wallboard::cluster::{Cluster, ClusterSettings};
use wallboard::config::Config;

/// The client and server speak the same JetStream: a three-server stream
/// with three replicas acknowledges, drops a repeated message id, and a
/// key-value bucket compares and swaps; publishing and swapping still work
/// with one of the three servers killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_on_a_three_server_cluster() {
    if !natsd::available() {
        return;
    }
    let mut nats = natsd::NatsCluster::start(3).await;
    let config = Config::parse(&nats.config_block(3), "test").expect("config");
    let settings: ClusterSettings = config.cluster.expect("cluster block");
    let cluster = Cluster::connect(&settings).await.expect("connect");
    let stream = cluster
        .jetstream
        .get_or_create_stream(jetstream::stream::Config {
            name: "smoke".into(),
            subjects: vec!["smoke.>".into()],
            num_replicas: 3,
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
        .await
        .expect("stream");
    let publish = |id: &'static str| {
        let js = cluster.jetstream.clone();
        async move {
            js.send_publish(
                "smoke.events",
                jetstream::message::PublishMessage::build()
                    .payload("x".into())
                    .message_id(id),
            )
            .await
            .expect("publish")
            .await
            .expect("ack")
        }
    };
    let first = publish("a").await;
    let again = publish("a").await;
    assert!(!first.duplicate && again.duplicate, "{first:?} {again:?}");
    // Placing three replicas needs three live servers, so the bucket is
    // made before one dies, as a node does at start.
    let kv = wallboard::cluster::bucket(&cluster.jetstream, "smoke", 3, Duration::ZERO)
        .await
        .expect("bucket");
    nats.kill(0);
    let mut acked = None;
    for _ in 0..100 {
        let js = cluster.jetstream.clone();
        let sent = js
            .send_publish(
                "smoke.events",
                jetstream::message::PublishMessage::build()
                    .payload("y".into())
                    .message_id("b"),
            )
            .await;
        if let Ok(future) = sent
            && let Ok(ack) = future.await
        {
            acked = Some(ack);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(acked.expect("acked with a server down").sequence, 2);
    let mut info = stream.clone();
    assert_eq!(info.info().await.expect("info").state.messages, 2);
    // The bucket's stream may have lost its leader with the server: until a
    // new one is elected a write finds no stream, so it is retried, and a
    // write whose answer was lost shows up as the entry already there.
    let mut revision = None;
    for _ in 0..100 {
        if let Ok(rev) = kv.create("lease", "n1".into()).await {
            revision = Some(rev);
            break;
        }
        if let Ok(Some(entry)) = kv.entry("lease").await {
            revision = Some(entry.revision);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let revision = revision.expect("a key created with a server down");
    assert!(kv.update("lease", "n2".into(), revision + 7).await.is_err());
    kv.update("lease", "n2".into(), revision)
        .await
        .expect("swap");
}
