//! Compiles the protobuf definitions with protox (pure Rust, no system
//! `protoc`) and generates prost messages plus tonic clients and servers.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/ringkv/v1/kv.proto",
        "proto/ringkv/v1/admin.proto",
        "proto/ringkv/cluster/v1/cluster.proto",
        "proto/ringkv/cluster/v1/antientropy.proto",
        "proto/ringkv/cluster/v1/streaming.proto",
        "proto/ringkv/cluster/v1/gossip.proto",
    ];
    for file in &files {
        println!("cargo:rerun-if-changed={file}");
    }
    let fds = protox::compile(files, ["proto"])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("ringkv_descriptor.bin"), prost::Message::encode_to_vec(&fds))?;
    tonic_prost_build::configure().bytes(".").compile_fds(fds)?;
    Ok(())
}
