//! The household API (`household.v1`): the one source of truth for what the hub,
//! the child agents and the guardian clients say to each other.
//!
//! The `.proto` files under `household/v1/` are compiled at build time (with protox,
//! so no system `protoc` is needed) into [`v1`]: the messages, the tonic servers the
//! hub implements and the clients the agent and the CLI use. The same build writes
//! [`FILE_DESCRIPTOR_SET`], which the hub hands to its reflection service so that
//! `grpcurl` works without any `.proto` file at hand.
//!
//! Besides the generated code this crate holds the few wire facts every side must
//! agree on: the pairing code format ([`pairing`]), the default port and the mDNS
//! service type.

#![deny(missing_docs)]

pub mod codec;
pub mod convert;
mod event_kind;
pub mod pairing;

/// Generated messages, enums, servers and clients of the `household.v1` package.
///
/// Every item's documentation comes from the comment in the `.proto` file; the gRPC
/// status codes each RPC returns are listed there.
pub mod v1 {
    // `SessionResponse` carries the whole `Budget` inline; boxing it would make every
    // reader of the generated types deal with `Box` for no measurable gain.
    #![allow(clippy::large_enum_variant)]
    tonic::include_proto!("household.v1");
}

/// The encoded `google.protobuf.FileDescriptorSet` of every `household.v1` file, with
/// comments. Register it with the reflection service
/// (`tonic_reflection::server::Builder::register_encoded_file_descriptor_set`).
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/household_v1_descriptor.bin"));

/// The hub's gRPC port unless configured otherwise: the guardian API, the agent
/// sessions and the web app all share it.
pub const DEFAULT_HUB_PORT: u16 = 7443;

/// The DNS-SD service type the hub announces over mDNS and agents and clients browse
/// for, in the fully qualified form mDNS libraries expect.
pub const MDNS_SERVICE_TYPE: &str = "_household-hub._tcp.local.";

/// The DNS-SD service type child agents announce themselves under, so the hub knows
/// every agent running on the home network (enrolled or not) and a guardian can adopt
/// one without typing a pairing code on it.
pub const MDNS_AGENT_SERVICE_TYPE: &str = "_household-agent._tcp.local.";
