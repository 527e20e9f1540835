//! wallboard: a real-time call-centre wallboard server.
//!
//! The domain, which knows no sockets and no clock:
//! - [`event`]: one input event and its parser; [`feed`]: batches of them.
//! - [`call`]: a call's sorted history and live state; [`outcome`]: the
//!   outcome and wait of a finished call.
//! - [`definition`]: outcome → box mappings; [`stats`]: tallies and figures.
//! - [`day`]: the site's days across DST; [`engine`]: all of it together.
//! - [`protocol`]: the board document's types; [`snapshot`]: builds it;
//!   [`patch`]: JSON Merge Patch;
//!   [`supervisor`]: the supervisor's detail (callers, agents), published apart.
//!
//! Around it:
//! - [`config`]: the TOML configuration; [`board`]: the TV boards in it;
//!   [`classify`]: the offline command.
//! - [`security`]: tokens, limits and the loopback-only default.
//! - [`clock`]: where "now" comes from (wall or feed) and how the engine follows it.
//! - [`pipeline`]: batch → durable in the log → applied in log order → the
//!   engine's changes handed on; [`journal`]: the SQLite store the board is
//!   rebuilt from (rebuild, pruning); [`maintenance`]: checking, backing up
//!   and rebuilding it; [`replay`]: sends a recorded feed to a server.
//! - [`publish`]: documents and their deltas, serialized once for every client;
//!   [`hub`]: the front the web layer and sources talk to.
//! - [`web`]: HTTP and WebSocket; [`server`]: wiring.
//! - [`source`]: the telephony feeds and the runtime they share;
//!   [`source::demo`]: the simulated call centre, one such source.

#![warn(missing_docs)]

pub mod board;
pub mod call;
pub mod classify;
pub mod clock;
pub mod config;
pub mod day;
pub mod definition;
pub mod engine;
pub mod event;
pub mod feed;
pub mod hub;
pub mod journal;
pub mod maintenance;
pub mod outcome;
pub mod patch;
pub mod pipeline;
pub mod protocol;
pub mod publish;
pub mod replay;
pub mod security;
pub mod server;
pub mod shutdown;
pub mod snapshot;
pub mod source;
pub mod stats;
pub mod supervisor;
pub mod web;
