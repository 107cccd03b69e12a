//! The child agent: meters use of a child's device, locks it when the day's
//! time is gone, answers the legacy CST parent app, and keeps a session with
//! the household hub once enrolled. The `child-agent` binary is its command
//! line; [`run::run_until`] runs an agent inside another program.

mod adopt;
mod agent;
mod announce;
mod audit;
pub mod client;
mod clock;
pub mod config;
mod control;
mod enforcer;
pub mod enroll;
mod hub_session;
mod identity;
mod ledger;
mod legacy;
mod link;
mod local_address;
mod logind;
mod meter;
mod open;
mod peer;
mod policy;
mod private_file;
pub mod run;
mod session_lock;
mod shutdown;
mod source;
mod store;
