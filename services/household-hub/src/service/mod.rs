//! The gRPC services, one file each, and the parts of the guardian service big enough
//! for their own room (Watch, history, reports).

pub mod admin;
pub mod agent;
pub mod call;
pub mod guardian;
pub mod history;
pub mod report;
pub mod session;
pub mod watch;
