//! Where each source resumes after a restart (a file's identity and offset,
//! exits still waiting for their `ended`...): one small JSON file per source
//! in the data directory, replaced atomically; or, in a cluster, one key per
//! source in a JetStream key-value bucket, so that whichever node takes the
//! source over resumes where the last one stopped; or memory without a store.
//! A checkpoint only ever trails what the store (or the cluster's log) took,
//! and deterministic event ids drop whatever is read twice, so nothing
//! counts twice or is lost.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::kv;
use serde_json::Value;

/// How long a read or write of the bucket may take before it counts as failed.
const BUCKET_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the checkpoints are kept.
#[derive(Debug, Clone)]
enum Keeping {
    Memory,
    /// `DATA_DIR/sources`.
    Dir(PathBuf),
    /// A cluster's bucket (boxed: a store is large); the memory map caches
    /// what was fetched or saved.
    Bucket(Box<kv::Store>),
}

/// The checkpoints of every source.
#[derive(Debug, Clone)]
pub struct Checkpoints {
    keeping: Keeping,
    memory: Arc<Mutex<HashMap<String, Value>>>,
}

impl Default for Checkpoints {
    fn default() -> Self {
        Checkpoints::new(None)
    }
}

/// Why a checkpoint could not be read from the cluster's bucket.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the checkpoint of {name} from the cluster: {message}")]
pub struct FetchError {
    /// The source's name.
    pub name: String,
    /// Why.
    pub message: String,
}

impl Checkpoints {
    /// Checkpoints kept in `data_dir/sources` (or memory when `None`).
    pub fn new(data_dir: Option<&std::path::Path>) -> Checkpoints {
        let keeping = match data_dir {
            Some(dir) => Keeping::Dir(dir.join("sources")),
            None => Keeping::Memory,
        };
        Checkpoints {
            keeping,
            memory: Arc::default(),
        }
    }

    /// Checkpoints kept in a cluster's key-value bucket, a key per source.
    /// [`Checkpoints::fetch`] a source's before starting it.
    pub fn in_bucket(bucket: kv::Store) -> Checkpoints {
        Checkpoints {
            keeping: Keeping::Bucket(Box::new(bucket)),
            memory: Arc::default(),
        }
    }

    /// Reads `source`'s checkpoint from the cluster's bucket, for
    /// [`Checkpoints::load`] (nothing to do for a file or memory). A node that
    /// takes a source over calls it first: the last holder saved there.
    pub async fn fetch(&self, source: &str) -> Result<(), FetchError> {
        let Keeping::Bucket(bucket) = &self.keeping else {
            return Ok(());
        };
        let failed = |message: String| FetchError {
            name: source.to_owned(),
            message,
        };
        let entry = tokio::time::timeout(BUCKET_TIMEOUT, bucket.get(source))
            .await
            .map_err(|_| failed("no answer in time".to_owned()))?
            .map_err(|e| failed(e.to_string()))?;
        let value = entry.and_then(|bytes| {
            serde_json::from_slice(&bytes)
                .inspect_err(|e| {
                    tracing::error!(
                        "source {source}: its checkpoint in the cluster is damaged: {e}"
                    );
                })
                .ok()
        });
        let mut memory = self.memory();
        match value {
            Some(value) => memory.insert(source.to_owned(), value),
            None => memory.remove(source),
        };
        Ok(())
    }

    /// The checkpoint `source` saved last (in a cluster: as fetched or saved
    /// by this node); `None` if none, or unreadable (logged: the source then
    /// starts as configured, and ids drop repeats).
    pub fn load(&self, source: &str) -> Option<Value> {
        let Keeping::Dir(dir) = &self.keeping else {
            return self.memory().get(source).cloned();
        };
        let path = dir.join(format!("{source}.json"));
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::error!("source {source}: cannot read {}: {e}", path.display());
                return None;
            }
        };
        serde_json::from_slice(&text)
            .inspect_err(|e| {
                tracing::error!("source {source}: {} is damaged: {e}", path.display());
            })
            .ok()
    }

    /// Saves `value` for `source` durably: a file written, synced, then
    /// renamed over the old one (a crash leaves the old or the new, never
    /// half), or a value the cluster acknowledged (stored on a quorum).
    pub async fn save(&self, source: &str, value: Value) -> std::io::Result<()> {
        match &self.keeping {
            Keeping::Memory => {
                self.memory().insert(source.to_owned(), value);
                Ok(())
            }
            Keeping::Dir(dir) => {
                let (dir, source) = (dir.clone(), source.to_owned());
                tokio::task::spawn_blocking(move || save_file(&dir, &source, &value))
                    .await
                    .map_err(std::io::Error::other)?
            }
            Keeping::Bucket(bucket) => {
                let bytes = value.to_string().into();
                tokio::time::timeout(BUCKET_TIMEOUT, bucket.put(source, bytes))
                    .await
                    .map_err(|_| std::io::Error::other("the cluster did not answer in time"))?
                    .map_err(std::io::Error::other)?;
                self.memory().insert(source.to_owned(), value);
                Ok(())
            }
        }
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, HashMap<String, Value>> {
        self.memory.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Writes `dir/source.json` atomically and durably.
fn save_file(dir: &std::path::Path, source: &str, value: &Value) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("{source}.json"));
    let partial = dir.join(format!("{source}.json.partial"));
    let mut file = std::fs::File::create(&partial)?;
    file.write_all(value.to_string().as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&partial, &path)?;
    // The rename itself is durable once the directory is synced.
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn saved_checkpoints_read_back_from_disk_and_memory() {
        let dir = std::env::temp_dir().join(format!("wb-checkpoint-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for store in [Checkpoints::new(Some(&dir)), Checkpoints::new(None)] {
            assert_eq!(store.load("pbx"), None);
            store.save("pbx", json!({"offset": 10})).await.unwrap();
            store.save("pbx", json!({"offset": 20})).await.unwrap();
            store.fetch("pbx").await.unwrap();
            assert_eq!(store.load("pbx"), Some(json!({"offset": 20})));
        }
        std::fs::write(dir.join("sources/bad.json"), b"{half").unwrap();
        assert_eq!(
            Checkpoints::new(Some(&dir)).load("bad"),
            None,
            "damaged: start afresh"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
