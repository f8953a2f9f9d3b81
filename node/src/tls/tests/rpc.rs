//! A gRPC round trip (tonic's health service on a TLS listener, a tonic
//! client through `ringkv_client::tls::TlsConnector`) and an HTTP round
//! trip (axum over the listener, a client trusting the CA).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use super::{listen, pki};
use crate::config::ClientAuth;
use crate::tls::{Alpn, MaybeTlsListener, TlsMetrics, TlsState};

#[tokio::test]
async fn grpc_round_trip_over_tls_and_plaintext_grpc_is_refused() {
    let pki = pki();
    let metrics = TlsMetrics::new();
    let state =
        TlsState::load(&pki.settings(&pki.node(), ClientAuth::None), &metrics).unwrap_or_else(|e| panic!("{e}"));
    let listener = MaybeTlsListener::Tls(listen(&state, Alpn::Grpc, &metrics).await);
    let port = listener.local_addr().unwrap_or_else(|e| panic!("{e}")).port();
    let (_reporter, health) = tonic_health::server::health_reporter();
    let stop = CancellationToken::new();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(health)
            .serve_with_incoming_shutdown(listener.into_incoming(), stop.clone().cancelled_owned()),
    );

    let channel = tonic::transport::Endpoint::from_shared(format!("https://localhost:{port}"))
        .unwrap_or_else(|e| panic!("{e}"))
        .connect_with_connector(pki.connector(None, b"h2"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let answer = HealthClient::new(channel).check(HealthCheckRequest { service: String::new() }).await;
    assert_eq!(answer.unwrap_or_else(|e| panic!("{e}")).into_inner().status, 1, "SERVING");

    let plain = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap_or_else(|e| panic!("{e}"))
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(5));
    let refused = match plain.connect().await {
        Ok(channel) => HealthClient::new(channel).check(HealthCheckRequest { service: String::new() }).await.is_err(),
        Err(_) => true,
    };
    assert!(refused, "a plaintext gRPC client was answered by a TLS port");
    stop.cancel();
    let _ = server.await;
}

#[tokio::test]
async fn http_round_trip_with_axum_over_tls() {
    let pki = pki();
    let metrics = TlsMetrics::new();
    let state =
        TlsState::load(&pki.settings(&pki.node(), ClientAuth::None), &metrics).unwrap_or_else(|e| panic!("{e}"));
    let listener = MaybeTlsListener::Tls(listen(&state, Alpn::Http1, &metrics).await);
    let port = listener.local_addr().unwrap_or_else(|e| panic!("{e}")).port();
    let app = axum::Router::new().route("/healthz", axum::routing::get(|| async { "ok over tls" }));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let mut stream =
        pki.connector(None, b"http/1.1").connect("localhost", port).await.unwrap_or_else(|e| panic!("{e}"));
    let request = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    stream.write_all(request).await.unwrap_or_else(|e| panic!("{e}"));
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    // rustls reports a peer closing without close_notify as an error; the body arrived before.
    drop(read);
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.ends_with("ok over tls"), "{text}");
    server.abort();
}
