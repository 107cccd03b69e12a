//! The household hub: the one server in the home that guardians and child agents
//! talk to. See `docs/hub.md` for what it does and `DESIGN.md` for where it sits.

pub mod mdns;
pub mod trust;
