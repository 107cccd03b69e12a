//! Compiles `household/v1/*.proto` with protox (pure Rust, no system `protoc`),
//! generates the message types and tonic services, and writes the encoded
//! `FileDescriptorSet` that the hub serves through gRPC reflection.

use std::path::PathBuf;

use prost::Message;

/// Every file of the API, relative to the crate root (which is the include root, so
/// imports read `household/v1/common.proto`).
const PROTO_FILES: &[&str] = &[
    "household/v1/common.proto",
    "household/v1/event.proto",
    "household/v1/guardian.proto",
    "household/v1/agent.proto",
    "household/v1/admin.proto",
];

/// File name of the descriptor set in `OUT_DIR`; `src/lib.rs` includes it.
const DESCRIPTOR_FILE: &str = "household_v1_descriptor.bin";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let crate_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);

    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=household");
    for file in PROTO_FILES {
        println!("cargo:rerun-if-changed={file}");
    }

    // Source info stays in: it carries the comments into the generated docs and into
    // the reflection descriptors, so `grpcurl describe` shows them too.
    let fds = protox::compile(PROTO_FILES, [&crate_dir])?;

    std::fs::write(out_dir.join(DESCRIPTOR_FILE), fds.encode_to_vec())?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .codec_path("crate::codec::Codec")
        .compile_fds(fds)?;
    Ok(())
}
