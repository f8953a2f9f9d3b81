//! Compiles the vendored etcd v3 protos (`proto/etcd/`, see its README) with
//! protox (pure Rust, no system `protoc`) into prost messages and a tonic
//! client for kvbench's etcd target (`bench::etcdpb`). Client only: kvbench
//! never serves etcd's API.

use std::error::Error;

fn main() -> Result<(), Box<dyn Error>> {
    let files = ["proto/etcd/api/etcdserverpb/rpc.proto", "proto/etcd/api/mvccpb/kv.proto"];
    for file in &files {
        println!("cargo:rerun-if-changed={file}");
    }
    let fds = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure().build_server(false).bytes(".").compile_fds(fds)?;
    Ok(())
}
