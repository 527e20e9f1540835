//! Real `nats-server` processes for the cluster tests: a JetStream cluster
//! of N servers on loopback ports, each with its own store directory, that a
//! test can kill and restart. Skipped with a note where `nats-server` is not
//! installed, unless `WALLBOARD_REQUIRE_NATS=1` (as in CI) makes that a failure.

// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian's package puts the server.
const NATS_SERVER: &str = "nats-server";

/// Whether the tests can run; prints why not, and fails when CI requires them.
pub fn available() -> bool {
    let found = Command::new(NATS_SERVER)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        let required = std::env::var("WALLBOARD_REQUIRE_NATS").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "cluster tests required but nats-server is not installed (apt-get install nats-server)"
        );
        eprintln!(
            "cluster tests skipped: nats-server is not installed (apt-get install nats-server)"
        );
    }
    found
}

/// A free loopback port (bound then released: another process could take it
/// in between, which on a test machine is rare enough).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// One server of the cluster.
struct Node {
    name: String,
    client_port: u16,
    cluster_port: u16,
    store: PathBuf,
    process: Option<Child>,
}

/// A JetStream cluster of loopback servers; killed when dropped.
pub struct NatsCluster {
    nodes: Vec<Node>,
    _dir: tempdir::Dir,
}

impl NatsCluster {
    /// Starts `size` servers (1 gives a plain JetStream server) and waits
    /// until every one accepts clients and JetStream has a meta leader.
    pub async fn start(size: usize) -> NatsCluster {
        let dir = tempdir::Dir::new("natsd");
        let nodes = (0..size)
            .map(|i| Node {
                name: format!("n{i}"),
                client_port: free_port(),
                cluster_port: free_port(),
                store: dir.path().join(format!("n{i}")),
                process: None,
            })
            .collect();
        let mut cluster = NatsCluster { nodes, _dir: dir };
        for i in 0..size {
            cluster.spawn(i);
        }
        cluster.wait_ready().await;
        cluster
    }

    /// The client URLs of every server, for `[cluster] nats_urls`.
    pub fn urls(&self) -> Vec<String> {
        (0..self.nodes.len()).map(|i| self.url(i)).collect()
    }

    /// The client URL of server `i`.
    pub fn url(&self, i: usize) -> String {
        format!("nats://127.0.0.1:{}", self.nodes[i].client_port)
    }

    /// The `[cluster]` block for a wallboard node using this cluster.
    pub fn config_block(&self, replicas: usize) -> String {
        let urls: Vec<String> = self.urls().iter().map(|u| format!("{u:?}")).collect();
        format!(
            "[cluster]\nnats_urls = [{}]\nreplicas = {replicas}\n",
            urls.join(", ")
        )
    }

    /// Kills server `i` with SIGKILL (its store stays for a restart).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].process.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts server `i` again on the same ports and store, and waits until
    /// the cluster is ready again.
    pub async fn restart(&mut self, i: usize) {
        self.kill(i);
        self.spawn(i);
        self.wait_ready().await;
    }

    fn spawn(&mut self, i: usize) {
        let routes: Vec<String> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, n)| format!("nats://127.0.0.1:{}", n.cluster_port))
            .collect();
        let node = &self.nodes[i];
        let mut command = Command::new(NATS_SERVER);
        command
            .args(["-a", "127.0.0.1", "-p", &node.client_port.to_string()])
            .args(["-js", "-sd", &node.store.display().to_string()])
            .args(["-n", &node.name]);
        if self.nodes.len() > 1 {
            command
                .args(["--cluster_name", "wallboard-test"])
                .args([
                    "--cluster",
                    &format!("nats://127.0.0.1:{}", node.cluster_port),
                ])
                .args(["--routes", &routes.join(",")]);
        }
        let log = std::fs::File::create(node.store.with_extension("log")).expect("log file");
        let child = command
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("nats-server starts");
        self.nodes[i].process = Some(child);
    }

    /// Waits until every running server answers and JetStream answers a
    /// stream request (which needs a meta leader in a cluster).
    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        for i in 0..self.nodes.len() {
            if self.nodes[i].process.is_none() {
                continue;
            }
            loop {
                let why =
                    match async_nats::connect(self.url(i)).await {
                        Ok(client) => {
                            let js = async_nats::jetstream::new(client);
                            // A stream that does not exist: "not found" is an
                            // answer from JetStream, so a meta leader is up.
                            match js.get_stream("wallboard-readiness-probe").await {
                                Err(e)
                                    if matches!(
                                    e.kind(),
                                    async_nats::jetstream::context::GetStreamErrorKind::JetStream(_)
                                ) =>
                                {
                                    break;
                                }
                                Ok(_) => break,
                                Err(e) => format!("JetStream: {e}"),
                            }
                        }
                        Err(e) => format!("connect: {e}"),
                    };
                assert!(
                    Instant::now() < deadline,
                    "nats-server {i} not ready in 30 s ({why}); its log: {}",
                    self.log(i)
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    /// Server `i`'s log, for failure messages.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.nodes[i].store.with_extension("log")).unwrap_or_default()
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

/// A temporary directory removed when dropped (std has none).
pub mod tempdir {
    use super::*;

    /// The directory.
    pub struct Dir(PathBuf);

    impl Dir {
        /// A fresh directory under the system's temporary directory.
        pub fn new(prefix: &str) -> Dir {
            static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let path =
                std::env::temp_dir().join(format!("wallboard-{prefix}-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).expect("temp dir");
            Dir(path)
        }

        /// Its path.
        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
