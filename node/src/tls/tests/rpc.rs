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

#[tokio::test]
async fn cluster_mutual_grpc_with_dev_certs_gives_the_peer_identity_to_requests() {
    use std::os::unix::fs::PermissionsExt;
    use std::sync::{Arc, Mutex};

    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let files =
        crate::tls::certs::write_dev_certs(dir.path(), &["node-1.test".into()]).unwrap_or_else(|e| panic!("{e}"));
    let mode = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.permissions().mode() & 0o777).unwrap_or(0);
    assert_eq!((mode(&files.node.1), mode(&files.client.1)), (0o600, 0o600), "keys are private");
    let config = crate::config::ClusterTlsConfig {
        enabled: true,
        cert_file: files.node.0.clone(),
        key_file: files.node.1.clone(),
        ca_file: files.ca.clone(),
        reload_interval_ms: 1000,
    };
    let settings = crate::tls::TlsSettings::cluster(&config).unwrap_or_else(|| panic!("enabled"));
    let metrics = TlsMetrics::new();
    let state = TlsState::load(&settings, &metrics).unwrap_or_else(|e| panic!("{e}"));
    let identity = state.certificate().identity;
    assert!(identity.dns_names.contains(&"node-1.test".to_owned()) && identity.dns_names.contains(&"localhost".into()));
    assert!(identity.ip_addresses.contains(&std::net::IpAddr::from([127, 0, 0, 1])));

    let listener = MaybeTlsListener::Tls(listen(&state, Alpn::Grpc, &metrics).await);
    let port = listener.local_addr().unwrap_or_else(|e| panic!("{e}")).port();
    let seen = Arc::new(Mutex::new(None));
    let record = Arc::clone(&seen);
    let (_reporter, health) = tonic_health::server::health_reporter();
    let health = tonic::service::interceptor::InterceptedService::new(health, move |req: tonic::Request<()>| {
        let info = req.extensions().get::<crate::tls::MaybeTlsConnectInfo>().cloned();
        let cn = info.and_then(|i| i.tls).and_then(|t| t.peer).and_then(|p| p.common_name.clone());
        *record.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = cn;
        Ok(req)
    });
    let stop = CancellationToken::new();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(health)
            .serve_with_incoming_shutdown(listener.into_incoming(), stop.clone().cancelled_owned()),
    );

    // The peer pool's way: the connector asks the reloaded state at each connect.
    let source = Arc::clone(&state);
    let connector = ringkv_client::tls::TlsConnector::dynamic(Arc::new(move || {
        source.client_config().unwrap_or_else(|| panic!("cluster material has a client config"))
    }));
    let channel = tonic::transport::Endpoint::from_shared(format!("https://127.0.0.1:{port}"))
        .unwrap_or_else(|e| panic!("{e}"))
        .connect_with_connector(connector)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let answer = HealthClient::new(channel).check(HealthCheckRequest { service: String::new() }).await;
    assert_eq!(answer.unwrap_or_else(|e| panic!("{e}")).into_inner().status, 1, "SERVING");
    let cn = seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    assert_eq!(cn.as_deref(), Some("ringkv-node"), "the request carries the client certificate's identity");
    stop.cancel();
    let _ = server.await;
}
