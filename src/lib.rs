//! wallboard: a real-time call-centre wallboard server.
//!
//! Each folder is one layer:
//! - [`domain`]: events, the per-call state machine, outcomes, definitions,
//!   tallies and the board document; no sockets, no clock. Its modules are
//!   re-exported here ([`event`], [`engine`], [`snapshot`]...).
//! - [`pipeline`]: batch → durable in the log → applied in log order → the
//!   engine's changes handed on; [`journal`]: the SQLite store the board is
//!   rebuilt from (rebuild, pruning); [`maintenance`]: checking, backing up
//!   and rebuilding it.
//! - [`publish`]: documents and their deltas, serialized once for every
//!   client; [`hub`]: the front the web layer and sources talk to;
//!   [`summaries`]: the trends' cached daily summaries of past days.
//! - [`web`]: HTTP and WebSocket (routes, auth, limits, pages).
//! - [`alert`]: alert rules on the board's figures, sent to webhooks, Slack
//!   and Teams off the ingest path.
//! - [`source`]: the telephony feeds (Asterisk `queue_log` and AMI,
//!   FreeSWITCH, Amazon Connect, Twilio TaskRouter, the demo) and the runtime
//!   they share.
//! - [`config`]: the TOML configuration; [`board`]: the TV boards in it;
//!   [`security`]: tokens, limits and the loopback-only default.
//!
//! And the small pieces around them: [`clock`] (where "now" comes from),
//! [`server`] (wiring: `Server::open`, then `run`), [`shutdown`], and the
//! offline commands [`classify`] and [`replay`]; [`export`] writes a day's
//! calls as JSON or CSV.

#![warn(missing_docs)]

pub mod alert;
pub mod board;
pub mod classify;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod domain;
pub mod export;
pub mod hub;
pub mod journal;
pub mod maintenance;
pub mod pipeline;
pub mod publish;
pub mod replay;
pub mod security;
pub mod server;
pub mod shutdown;
pub mod source;
pub mod summaries;
pub mod web;

pub use domain::{
    call, day, definition, engine, event, feed, outcome, patch, protocol, snapshot, stats,
    supervisor, trends,
};
