//! The household hub: the one server in the home that guardians and child agents talk
//! to. `docs/hub.md` says what it does; `DESIGN.md` where it sits.
//!
//! The rooms, in the order a request meets them: [`web`] (the browser's door: gRPC-Web,
//! same origin only), [`auth`] (who is calling, by certificate or [`token`]), [`service`]
//! (one file per gRPC service), [`writer`] (the one thread that changes anything),
//! [`household`] (the household folded in memory), [`store`] (the event log) and
//! [`registry`] (keys and credentials), [`feed`] (what watchers and sessions hear),
//! [`snapshot`] (the household kept beside the log, for a quick start), [`network`] (the
//! agents heard over mDNS) and [`adoption`] (guardians bringing them in).

pub mod admin_client;
pub mod adoption;
pub mod auth;
pub mod clock;
pub mod config;
pub mod error;
pub mod feed;
pub mod household;
pub mod hub;
pub mod ids;
pub mod invite;
pub mod legacy;
pub mod logging;
pub use household_client::mdns;
pub mod metrics;
pub mod network;
pub mod registry;
pub mod serve;
pub mod service;
pub mod sessions;
pub mod shutdown;
pub mod snapshot;
pub mod store;
pub mod token;
pub mod trust;
pub mod validate;
pub mod web;
pub mod web_assets;
pub mod writer;
