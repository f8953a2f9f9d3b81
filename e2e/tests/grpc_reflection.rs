//! gRPC server reflection is served in both versions: `grpc.reflection.v1`
//! and the older `grpc.reflection.v1alpha` that grpcurl 1.8,
//! Postman and other clients still use. Each lists the node's services and
//! resolves one of them to its file descriptor.

use anyhow::{Context as _, Result, ensure};
use ringkv_e2e::{NodeOptions, NodeProcess};
use tonic_reflection::pb::{v1, v1alpha};

/// Services every node serves and reflection must name.
const SERVICES: [&str; 2] = ["ringkv.v1.KV", "ringkv.v1.Admin"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_answers_v1alpha_and_v1_clients() -> Result<()> {
    use v1alpha::server_reflection_request::MessageRequest as AlphaAsk;
    use v1alpha::server_reflection_response::MessageResponse as AlphaAnswer;

    let dir = tempfile::tempdir()?;
    let node = NodeProcess::start(NodeOptions::new(dir.path().join("data"))).await?;

    let channel = tonic::transport::Endpoint::from_shared(node.grpc_endpoint())?.connect().await?;
    let mut alpha = v1alpha::server_reflection_client::ServerReflectionClient::new(channel.clone());
    let ask = |m| v1alpha::ServerReflectionRequest { host: String::new(), message_request: Some(m) };
    let asks =
        vec![ask(AlphaAsk::ListServices(String::new())), ask(AlphaAsk::FileContainingSymbol("ringkv.v1.KV".into()))];
    let mut answers =
        alpha.server_reflection_info(tokio_stream::iter(asks)).await.context("v1alpha call")?.into_inner();
    let listed = match answers.message().await?.and_then(|r| r.message_response) {
        Some(AlphaAnswer::ListServicesResponse(list)) => list.service.into_iter().map(|s| s.name).collect::<Vec<_>>(),
        other => anyhow::bail!("v1alpha list_services answered {other:?}"),
    };
    for service in SERVICES {
        ensure!(listed.iter().any(|s| s == service), "v1alpha lists {listed:?}, without {service}");
    }
    match answers.message().await?.and_then(|r| r.message_response) {
        Some(AlphaAnswer::FileDescriptorResponse(files)) => ensure!(!files.file_descriptor_proto.is_empty()),
        other => anyhow::bail!("v1alpha file_containing_symbol answered {other:?}"),
    }

    let mut current = v1::server_reflection_client::ServerReflectionClient::new(channel);
    let list = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(String::new())),
    };
    let mut answers = current.server_reflection_info(tokio_stream::iter([list])).await.context("v1 call")?.into_inner();
    match answers.message().await?.and_then(|r| r.message_response) {
        Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) => {
            ensure!(list.service.iter().any(|s| s.name == "ringkv.v1.KV"), "v1 lists {list:?}");
        }
        other => anyhow::bail!("v1 list_services answered {other:?}"),
    }
    Ok(())
}
