//! The domain: events in, a state machine per call, outcomes, definitions,
//! tallies and the board document out. It knows no sockets, no files and no
//! clock: time comes in as a value, so it is tested with tables of journeys.
//! Its modules are re-exported at the crate root (`crate::event`), where the
//! rest of the server names them.
//!
//! - [`event`]: one input event and its parser; [`feed`]: batches of them.
//! - [`call`]: a call's sorted history and live state; [`outcome`]: the
//!   outcome and wait of a finished call.
//! - [`definition`]: outcome → box mappings; [`stats`]: tallies and figures.
//! - [`day`]: the site's days across DST; [`engine`]: all of it together.
//! - [`protocol`]: the board document's types; [`snapshot`]: builds it;
//!   [`patch`]: JSON Merge Patch; [`supervisor`]: the supervisor's detail
//!   (callers, agents), published apart; [`trends`]: past days summed up
//!   and today against a usual weekday.

pub mod call;
pub mod day;
pub mod definition;
pub mod engine;
pub mod event;
pub mod feed;
pub mod outcome;
pub mod patch;
pub mod protocol;
pub mod snapshot;
pub mod stats;
pub mod supervisor;
pub mod trends;
