//! The messages a WebSocket client receives, as serde types. They are built
//! once per version and shared by every client as bytes (see [`super::Feed`]).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One message from the server on `/ws` or `/ws/supervisor`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ServerMessage {
    /// The whole document at `seq`: sent first, and again to a client that fell behind.
    Snapshot {
        /// The last delta folded into the document.
        seq: u64,
        /// The board (on `/ws`), with its own `seq`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        board: Option<Value>,
        /// The supervisor's detail (on `/ws/supervisor`), with its own `seq`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<Value>,
    },
    /// A JSON Merge Patch (RFC 7396) taking the document from `seq - 1` to `seq`.
    Delta {
        /// The document's new seq.
        seq: u64,
        /// The patch.
        patch: Value,
    },
}

/// The snapshot message of the document serialized as `json` under `key`,
/// built without parsing the document again (equal to [`ServerMessage::Snapshot`]).
pub fn snapshot_text(key: &str, seq: u64, json: &str) -> String {
    format!(r#"{{"type":"snapshot","seq":{seq},"{key}":{json}}}"#)
}

/// The delta message to `seq`.
pub fn delta_text(seq: u64, patch: Value) -> String {
    serde_json::to_string(&ServerMessage::Delta { seq, patch }).expect("JSON values serialize")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_texts_are_the_serde_messages() {
        let snapshot = snapshot_text("board", 3, r#"{"seq":3,"day":"2026-11-20"}"#);
        assert_eq!(
            serde_json::from_str::<ServerMessage>(&snapshot).unwrap(),
            ServerMessage::Snapshot {
                seq: 3,
                board: Some(json!({"seq": 3, "day": "2026-11-20"})),
                detail: None
            }
        );
        let delta = delta_text(4, json!({"day": null}));
        assert_eq!(delta, r#"{"type":"delta","seq":4,"patch":{"day":null}}"#);
        assert_eq!(
            serde_json::from_str::<ServerMessage>(&delta).unwrap(),
            ServerMessage::Delta {
                seq: 4,
                patch: json!({"day": null})
            }
        );
    }
}
