//! Where each source resumes after a restart (a file's identity and offset,
//! exits still waiting for their `ended`...): one small JSON file per source
//! in the data directory, replaced atomically, or memory without a store.
//! A checkpoint only ever trails what the store took, and deterministic
//! event ids drop whatever is read twice, so nothing counts twice or is lost.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::Value;

/// The checkpoints of every source.
#[derive(Debug, Clone, Default)]
pub struct Checkpoints {
    /// `DATA_DIR/sources`, or `None` to keep them in memory.
    dir: Option<PathBuf>,
    memory: Arc<Mutex<HashMap<String, Value>>>,
}

impl Checkpoints {
    /// Checkpoints kept in `data_dir/sources` (or memory when `None`).
    pub fn new(data_dir: Option<&std::path::Path>) -> Checkpoints {
        Checkpoints {
            dir: data_dir.map(|d| d.join("sources")),
            memory: Arc::default(),
        }
    }

    /// The checkpoint `source` saved last; `None` if none, or unreadable
    /// (logged: the source then starts as configured, and ids drop repeats).
    pub fn load(&self, source: &str) -> Option<Value> {
        let Some(dir) = &self.dir else {
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

    /// Saves `value` for `source`, durably: written, synced, then renamed
    /// over the old one, so a crash leaves the old or the new, never half.
    pub fn save(&self, source: &str, value: &Value) -> std::io::Result<()> {
        let Some(dir) = &self.dir else {
            self.memory().insert(source.to_owned(), value.clone());
            return Ok(());
        };
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

    fn memory(&self) -> std::sync::MutexGuard<'_, HashMap<String, Value>> {
        self.memory.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn saved_checkpoints_read_back_from_disk_and_memory() {
        let dir = std::env::temp_dir().join(format!("wb-checkpoint-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for store in [Checkpoints::new(Some(&dir)), Checkpoints::new(None)] {
            assert_eq!(store.load("pbx"), None);
            store.save("pbx", &json!({"offset": 10})).unwrap();
            store.save("pbx", &json!({"offset": 20})).unwrap();
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
