//! A leader lease in a JetStream key-value bucket: which node runs a source.
//!
//! nats-server 2.9 has no per-key expiry, so a lease is a value naming its
//! holder (node and process), renewed every [`RENEW_EVERY`] by
//! compare-and-swap on its revision. Expiry is measured by each watching node
//! on its own monotonic clock, from when it first saw the current revision,
//! so no two machines' clocks need to agree: a watcher claims the lease (by
//! compare-and-swap on that revision) once it has not changed for [`LEASE`].
//!
//! A holder whose renewal fails, or who sees another holder, stops its source
//! at once; a renewal fails at most [`RENEW_EVERY`] + [`BUCKET_TIMEOUT`] after
//! the last one that worked, which is before any watcher may claim. A brief
//! double run (a process paused, a clock jump) is harmless anyway: event ids
//! are deterministic and the store drops what is read twice.
//!
//! The decision is pure ([`Watch::decide`]); [`Lease`] does the bucket's I/O.

use std::time::Duration;

use async_nats::jetstream::kv;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// How long a lease's revision must stand still before another node claims it.
pub const LEASE: Duration = Duration::from_secs(6);
/// How often the holder renews.
pub const RENEW_EVERY: Duration = Duration::from_secs(2);
/// How often a node that does not hold the lease looks at it.
pub const WATCH_EVERY: Duration = Duration::from_secs(1);
/// How long one read or write of the bucket may take before it counts as
/// failed. `RENEW_EVERY + BUCKET_TIMEOUT < LEASE`: a holder cut off from the
/// cluster has stopped before anyone claims.
pub const BUCKET_TIMEOUT: Duration = Duration::from_secs(2);

/// Who holds a lease: the node's name, and the process (so a node restarted
/// under the same name does not mistake its dead predecessor's lease for its own).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// The node's name (`[cluster] node`, or host name and port).
    pub node: String,
    /// This run of the process.
    pub process: String,
}

impl Holder {
    /// This process on node `node`: the process id and start time tell one
    /// run from the next.
    pub fn this_process(node: &str) -> Holder {
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        Holder {
            node: node.to_owned(),
            process: format!("{:x}-{started:x}", std::process::id()),
        }
    }
}

/// A lease as the bucket holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Current {
    /// Its revision (changes with every write).
    pub revision: u64,
    /// Its holder; `None` once released (a holder that stopped cleanly).
    pub holder: Option<Holder>,
}

impl Current {
    /// Reads a bucket entry; a value we cannot read counts as held by an
    /// unknown node (it expires like any other, rather than being taken at once).
    fn of(entry: &kv::Entry) -> Current {
        let holder = match entry.operation {
            kv::Operation::Put => serde_json::from_slice(&entry.value).unwrap_or_else(|_| {
                Some(Holder {
                    node: "unknown".to_owned(),
                    process: String::new(),
                })
            }),
            kv::Operation::Delete | kv::Operation::Purge => None,
        };
        Current {
            revision: entry.revision,
            holder,
        }
    }
}

/// What a node should do about a lease, having looked at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nobody ever held it: create it.
    Create,
    /// Released, or expired: claim it by compare-and-swap on `revision`.
    Claim {
        /// The revision seen.
        revision: u64,
    },
    /// This process holds it: renew by compare-and-swap on `revision`.
    Renew {
        /// The revision seen.
        revision: u64,
    },
    /// Another node holds it and renews it: stand by (and stop the source).
    StandBy {
        /// The holder's node.
        leader: String,
    },
}

/// What a node remembers between looks at a lease another node holds: the
/// revision it saw and when it first saw it (time since the watch began).
#[derive(Debug, Default)]
pub struct Watch {
    seen: Option<(u64, Duration)>,
}

impl Watch {
    /// Decides, for process `me`, what to do about the lease `current` at
    /// `now` (any monotonic time, the same origin at every call).
    pub fn decide(&mut self, me: &Holder, current: Option<&Current>, now: Duration) -> Decision {
        let Some(current) = current else {
            self.seen = None;
            return Decision::Create;
        };
        let revision = current.revision;
        let Some(holder) = &current.holder else {
            self.seen = None;
            return Decision::Claim { revision };
        };
        if holder == me {
            self.seen = None;
            return Decision::Renew { revision };
        }
        match self.seen {
            Some((seen, since)) if seen == revision => {
                if now.saturating_sub(since) >= LEASE {
                    return Decision::Claim { revision };
                }
            }
            _ => self.seen = Some((revision, now)),
        }
        Decision::StandBy {
            leader: holder.node.clone(),
        }
    }
}

/// Where a node stands after a look at the lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tenure {
    /// This process holds the lease: run the source.
    Held,
    /// Another node holds it: do not run the source.
    StandBy {
        /// The holder's node.
        leader: String,
    },
    /// The bucket did not answer, or another node got there first: do not
    /// run the source; the next look tells.
    Unknown {
        /// Why.
        why: String,
    },
}

/// One source's lease, as this process sees and keeps it.
pub struct Lease {
    bucket: kv::Store,
    key: String,
    me: Holder,
    watch: Watch,
    /// The revision of our last write, while we hold the lease.
    held: Option<u64>,
    origin: Instant,
}

impl Lease {
    /// The lease `key` in `bucket`, for process `me`; not held yet.
    pub fn new(bucket: kv::Store, key: &str, me: Holder) -> Lease {
        Lease {
            bucket,
            key: key.to_owned(),
            me,
            watch: Watch::default(),
            held: None,
            origin: Instant::now(),
        }
    }

    /// Whether this process held the lease at the last look.
    pub fn held(&self) -> bool {
        self.held.is_some()
    }

    /// The wait before the next look: renewing, or watching.
    pub fn next_look(&self) -> Duration {
        match self.held {
            Some(_) => RENEW_EVERY,
            None => WATCH_EVERY,
        }
    }

    /// Looks at the lease once: renews it when held, otherwise reads it and
    /// claims it when it is free or expired.
    pub async fn look(&mut self) -> Tenure {
        if let Some(revision) = self.held.take() {
            // Any failure gives the lease up here and now; the next look
            // reads it again (it may still be ours if only the answer was lost).
            return match self.write(Some(revision)).await {
                Ok(revision) => self.hold(revision),
                Err(why) => Tenure::Unknown { why },
            };
        }
        let mut failed: Option<String> = None;
        loop {
            let entry = match within(self.bucket.entry(self.key.clone())).await {
                Ok(entry) => entry,
                Err(why) => return Tenure::Unknown { why },
            };
            let current = entry.as_ref().map(Current::of);
            let now = self.origin.elapsed();
            let expected = match (self.watch.decide(&self.me, current.as_ref(), now), &failed) {
                (Decision::StandBy { leader }, _) => return Tenure::StandBy { leader },
                // Our write landed, though its answer was lost.
                (Decision::Renew { revision }, Some(_)) => return self.hold(revision),
                (_, Some(why)) => return Tenure::Unknown { why: why.clone() },
                (Decision::Create, None) => None,
                (Decision::Claim { revision } | Decision::Renew { revision }, None) => {
                    Some(revision)
                }
            };
            match self.write(expected).await {
                Ok(revision) => return self.hold(revision),
                // Another node got there first, or no answer: the lease as
                // it is now tells which (once).
                Err(why) => failed = Some(why),
            }
        }
    }

    /// Gives the lease up, if held, so another node takes over at once
    /// rather than after [`LEASE`] (a clean stop).
    pub async fn release(&mut self) {
        let Some(revision) = self.held.take() else {
            return;
        };
        let released = serde_json::to_vec(&None::<Holder>).unwrap_or_default();
        let update = self.bucket.update(&self.key, released.into(), revision);
        if let Err(why) = within(update).await {
            tracing::warn!(source = %self.key, "could not release the lease: {why}");
        }
    }

    fn hold(&mut self, revision: u64) -> Tenure {
        self.held = Some(revision);
        Tenure::Held
    }

    /// Writes this process as the holder: a create when `expected` is
    /// `None`, else a compare-and-swap on that revision.
    async fn write(&self, expected: Option<u64>) -> Result<u64, String> {
        let value = serde_json::to_vec(&Some(&self.me)).unwrap_or_default();
        match expected {
            None => within(self.bucket.create(&self.key, value.into())).await,
            Some(revision) => within(self.bucket.update(&self.key, value.into(), revision)).await,
        }
    }
}

/// Runs a bucket operation with [`BUCKET_TIMEOUT`].
async fn within<T, E: std::fmt::Display>(
    operation: impl Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(BUCKET_TIMEOUT, operation).await {
        Ok(Ok(done)) => Ok(done),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("the cluster did not answer in time".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(node: &str, process: &str) -> Holder {
        Holder {
            node: node.into(),
            process: process.into(),
        }
    }

    fn held(revision: u64, by: &Holder) -> Option<Current> {
        Some(Current {
            revision,
            holder: Some(by.clone()),
        })
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// Each look: (what the bucket holds, at second, what to do).
    type Look = (Option<Current>, u64, Decision);

    #[test]
    fn the_lease_is_renewed_taken_over_or_left_alone() {
        let me = holder("a", "1");
        let other = holder("b", "2");
        let my_old_self = holder("a", "0");
        let standby = |leader: &str| Decision::StandBy {
            leader: leader.into(),
        };
        let cases: &[(&str, Vec<Look>)] = &[
            ("nobody ever held it", vec![(None, 0, Decision::Create)]),
            (
                "released by a clean stop: at once",
                vec![(
                    Some(Current {
                        revision: 4,
                        holder: None,
                    }),
                    0,
                    Decision::Claim { revision: 4 },
                )],
            ),
            (
                "ours: renew, whatever the time",
                vec![
                    (held(3, &me), 0, Decision::Renew { revision: 3 }),
                    (held(3, &me), 100, Decision::Renew { revision: 3 }),
                ],
            ),
            (
                "another's, renewed: stand by for ever",
                vec![
                    (held(3, &other), 0, standby("b")),
                    (held(4, &other), 5, standby("b")),
                    (held(5, &other), 10, standby("b")),
                    (held(6, &other), 15, standby("b")),
                ],
            ),
            (
                "another's, no longer renewed: claimed after LEASE",
                vec![
                    (held(3, &other), 0, standby("b")),
                    (held(3, &other), 5, standby("b")),
                    (held(3, &other), 6, Decision::Claim { revision: 3 }),
                ],
            ),
            (
                "LEASE counts from when the revision was first seen",
                vec![
                    (held(3, &other), 0, standby("b")),
                    (held(4, &other), 5, standby("b")),
                    (held(4, &other), 10, standby("b")),
                    (held(4, &other), 11, Decision::Claim { revision: 4 }),
                ],
            ),
            (
                "our dead predecessor's (same node, another run) expires like any",
                vec![
                    (held(7, &my_old_self), 0, standby("a")),
                    (held(7, &my_old_self), 6, Decision::Claim { revision: 7 }),
                ],
            ),
            (
                "lost to another, then theirs expires",
                vec![
                    (held(3, &me), 0, Decision::Renew { revision: 3 }),
                    (held(5, &other), 2, standby("b")),
                    (held(5, &other), 7, standby("b")),
                    (held(5, &other), 8, Decision::Claim { revision: 5 }),
                ],
            ),
            (
                "someone else's claim in between starts the wait again",
                vec![
                    (held(3, &other), 0, standby("b")),
                    (held(4, &holder("c", "3")), 6, standby("c")),
                    (held(4, &holder("c", "3")), 11, standby("c")),
                    (
                        held(4, &holder("c", "3")),
                        12,
                        Decision::Claim { revision: 4 },
                    ),
                ],
            ),
        ];
        for (what, looks) in cases {
            let mut watch = Watch::default();
            for (i, (current, at, want)) in looks.iter().enumerate() {
                let got = watch.decide(&me, current.as_ref(), secs(*at));
                assert_eq!(&got, want, "{what}: look {i}");
            }
        }
    }

    /// The timing argument of the module: a holder cut off stops before any
    /// watcher may claim, and a takeover comes within a few seconds.
    #[test]
    fn a_cut_off_holder_stops_before_a_claim() {
        assert!(RENEW_EVERY + BUCKET_TIMEOUT < LEASE);
        assert!(LEASE + WATCH_EVERY <= Duration::from_secs(8));
    }

    #[test]
    fn a_released_or_unreadable_value_reads_as_such() {
        let released = serde_json::to_vec(&None::<Holder>).unwrap();
        assert_eq!(
            serde_json::from_slice::<Option<Holder>>(&released).unwrap(),
            None
        );
        let me = holder("a", "1");
        let mine = serde_json::to_vec(&Some(&me)).unwrap();
        assert_eq!(
            serde_json::from_slice::<Option<Holder>>(&mine).unwrap(),
            Some(me)
        );
        let a = Holder::this_process("a");
        assert_eq!(a.node, "a");
        assert!(!a.process.is_empty());
    }
}
