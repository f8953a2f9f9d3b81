//! Component test of the client's TLS and token support: an in-process
//! fake KV server on the node's own TLS listener (`ringkv_node::tls`, dev
//! certificates from `tls::certs`) that records the `authorization`
//! metadata of each call and answers UNAUTHENTICATED without it. Proves:
//! `https://` + CA + token works and the token arrives; no token, a wrong
//! CA, a missing CA, plaintext to a TLS port and a missing client
//! certificate each fail with an error that says what to fix and never
//! shows the secret; kvctl's flag / file / env precedence and exit code 5.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Result, ensure};
use ringkv_client::proto::kv_server::{Kv, KvServer};
use ringkv_client::proto::*;
use ringkv_client::tls::ClientTlsFiles;
use ringkv_client::{Client, ClientError, ConnectionConfig, PutOptions, TlsProblem, Token};
use ringkv_e2e::kvctl_with_env;
use ringkv_node::config::ClientAuth;
use ringkv_node::tls::certs::{DevCertFiles, write_dev_certs};
use ringkv_node::tls::{Alpn, MaybeTlsListener, TlsAcceptor, TlsListener, TlsMetrics, TlsSettings, TlsState};
use tonic::{Request, Response, Status};

const SECRET: &str = "Zm9vYmFyYmF6cXV4LXNlY3JldA";

/// Records every call's `authorization` value; refuses calls without one.
#[derive(Debug, Default)]
struct RecordingKv {
    seen: Mutex<Vec<String>>,
}

type Reply<T> = Result<Response<T>, Status>;

impl RecordingKv {
    fn check<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let value = request.metadata().get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let Some(value) = value else {
            return Err(Status::unauthenticated("RKV-NO-CREDENTIALS: this call needs a bearer token"));
        };
        self.seen.lock().unwrap_or_else(PoisonError::into_inner).push(value);
        Ok(())
    }

    fn last(&self) -> Option<String> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner).last().cloned()
    }
}

fn unimplemented<T>() -> Reply<T> {
    Err(Status::unimplemented("fake"))
}

#[tonic::async_trait]
impl Kv for RecordingKv {
    async fn get(&self, request: Request<GetRequest>) -> Reply<GetResponse> {
        self.check(&request)?;
        let siblings = vec![Sibling { value: "v".into(), ..Default::default() }];
        Ok(Response::new(GetResponse { found: true, siblings, version: 1, ..Default::default() }))
    }
    async fn put(&self, request: Request<PutRequest>) -> Reply<PutResponse> {
        self.check(&request)?;
        Err(Status::permission_denied("RKV-PERMISSION-DENIED: user has no write role on keyspace default"))
    }
    async fn scan(&self, _: Request<ScanRequest>) -> Reply<ScanResponse> {
        unimplemented()
    }
    async fn touch(&self, _: Request<TouchRequest>) -> Reply<TouchResponse> {
        unimplemented()
    }
    async fn delete(&self, _: Request<DeleteRequest>) -> Reply<DeleteResponse> {
        unimplemented()
    }
    async fn batch_get(&self, _: Request<BatchGetRequest>) -> Reply<BatchGetResponse> {
        unimplemented()
    }
    async fn batch_write(&self, _: Request<BatchWriteRequest>) -> Reply<BatchWriteResponse> {
        unimplemented()
    }
    async fn compare_and_set(&self, _: Request<CompareAndSetRequest>) -> Reply<CompareAndSetResponse> {
        unimplemented()
    }
    async fn increment(&self, _: Request<IncrementRequest>) -> Reply<IncrementResponse> {
        unimplemented()
    }
    async fn list(&self, _: Request<ListRequest>) -> Reply<ListResponse> {
        unimplemented()
    }
}

/// A TLS server of a fresh [`RecordingKv`] with the dev node certificate.
struct Server {
    port: u16,
    kv: Arc<RecordingKv>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(files: &DevCertFiles, client_auth: ClientAuth) -> Result<Server> {
    let settings = TlsSettings {
        name: "client",
        cert_file: files.node.0.clone(),
        key_file: files.node.1.clone(),
        ca_file: Some(files.ca.clone()),
        client_auth,
        reload_interval: Duration::from_secs(60),
    };
    let metrics = TlsMetrics::new();
    let state = TlsState::load(&settings, &metrics)?;
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let acceptor = TlsAcceptor::new(state, Alpn::Grpc, Duration::from_secs(5), metrics);
    let listener = MaybeTlsListener::Tls(TlsListener::new(tcp, acceptor)?);
    let port = listener.local_addr()?.port();
    let kv = Arc::new(RecordingKv::default());
    let service = KvServer::from_arc(Arc::clone(&kv));
    let task = tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(listener.into_incoming())
            .await;
    });
    Ok(Server { port, kv, task })
}

fn ca_only(ca: &Path) -> ClientTlsFiles {
    ClientTlsFiles { ca_file: ca.to_path_buf(), cert_file: None, key_file: None }
}

fn token() -> Token {
    Token::new(&format!("alice.{SECRET}")).unwrap_or_else(|e| panic!("{e}"))
}

async fn connect(config: ConnectionConfig) -> Result<Client, ClientError> {
    config.builder().timeout(Duration::from_secs(5)).connect_timeout(Duration::from_secs(5)).connect().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_ca_and_token_sends_the_bearer_and_failures_say_what_to_fix() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let files = write_dev_certs(&dir.path().join("pki"), &[])?;
    let server = serve(&files, ClientAuth::None).await?;
    let https = format!("https://localhost:{}", server.port);

    let client = connect(ConnectionConfig::new(&https).with_tls(ca_only(&files.ca)).with_token(token())).await?;
    ensure!(client.get("k").await?.is_some(), "the fake always finds k");
    ensure!(server.kv.last() == Some(format!("Bearer alice.{SECRET}")), "server saw {:?}", server.kv.last());
    ensure!(!format!("{client:?}").contains(SECRET), "the secret is in the client's Debug");
    let denied = client.put("k", "v", PutOptions::default()).await.expect_err("the fake refuses puts");
    ensure!(matches!(denied, ClientError::AccessDenied { code: tonic::Code::PermissionDenied, .. }), "{denied}");
    ensure!(denied.to_string().contains("kvctl user grant") && !denied.to_string().contains(SECRET), "{denied}");

    let anonymous = connect(ConnectionConfig::new(&https).with_tls(ca_only(&files.ca))).await?;
    let err = anonymous.get("k").await.expect_err("no token");
    ensure!(matches!(err, ClientError::AccessDenied { code: tonic::Code::Unauthenticated, .. }), "{err}");
    ensure!(err.to_string().contains("--token"), "{err}");

    let other = write_dev_certs(&dir.path().join("other-pki"), &[])?;
    let err = connect(ConnectionConfig::new(&https).with_tls(ca_only(&other.ca))).await.expect_err("wrong CA");
    ensure!(matches!(&err, ClientError::Tls { problem: TlsProblem::UnknownCa, .. }), "{err}");
    ensure!(err.to_string().contains("--tls-ca") && err.to_string().contains("RKV-TLS-041"), "{err}");

    let err = connect(ConnectionConfig::new(&https)).await.expect_err("no CA");
    ensure!(matches!(err, ClientError::TlsNotConfigured { .. }) && err.to_string().contains("--tls-ca"), "{err}");

    let missing = ca_only(&dir.path().join("missing-ca.pem"));
    let err = connect(ConnectionConfig::new(&https).with_tls(missing)).await.expect_err("missing CA file");
    ensure!(err.to_string().contains("RKV-TLS-001") && err.to_string().contains("missing-ca.pem"), "{err}");

    // A plaintext client on the TLS port: refused at connect or at the first call.
    let plain = format!("127.0.0.1:{}", server.port);
    let result = match connect(ConnectionConfig::new(&plain).with_token(token())).await {
        Ok(client) => client.get("k").await.map(|_| ()),
        Err(err) => Err(err),
    };
    let err = result.expect_err("a plaintext client was answered by a TLS port");
    ensure!(!err.to_string().contains(SECRET), "{err}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_requiring_client_certificates_refuses_a_client_without_one() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let files = write_dev_certs(&dir.path().join("pki"), &[])?;
    let server = serve(&files, ClientAuth::Required).await?;
    let https = format!("https://localhost:{}", server.port);

    let result = match connect(ConnectionConfig::new(&https).with_tls(ca_only(&files.ca)).with_token(token())).await {
        Ok(client) => client.get("k").await.map(|_| ()),
        Err(err) => Err(err),
    };
    let err = result.expect_err("no client certificate");
    // TLS 1.3: the refusal comes as an alert after the client's handshake; hyper
    // sometimes reports only "connection closed", without the alert as a cause.
    if let ClientError::Tls { problem, .. } = &err {
        ensure!(*problem == TlsProblem::ClientCertificateRefused && err.to_string().contains("--tls-cert"), "{err}");
    }
    ensure!(server.kv.last().is_none(), "a call without a client certificate reached the service");

    let mutual = ClientTlsFiles {
        ca_file: files.ca.clone(),
        cert_file: Some(files.client.0.clone()),
        key_file: Some(files.client.1.clone()),
    };
    let client = connect(ConnectionConfig::new(&https).with_tls(mutual).with_token(token())).await?;
    ensure!(client.get("k").await?.is_some(), "mutual TLS get");
    Ok(())
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kvctl_flags_env_and_token_file_precedence_and_exit_codes() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let files = write_dev_certs(&dir.path().join("pki"), &[])?;
    let server = serve(&files, ClientAuth::None).await?;
    let https = format!("https://localhost:{}", server.port);
    let ca = path(&files.ca);
    let token_file: PathBuf = dir.path().join("token");
    std::fs::write(&token_file, format!("fromfile.{SECRET}\n"))?;
    let env_token = format!("fromenv.{SECRET}");

    let out = kvctl_with_env(
        &https,
        &["get", "k", "--token", &format!("fromflag.{SECRET}")],
        &[("RINGKV_TLS_CA", ca.as_str()), ("RINGKV_TOKEN", env_token.as_str())],
    )
    .await?;
    ensure!(out.success() && out.stdout == "v\n", "{out}");
    ensure!(server.kv.last() == Some(format!("Bearer fromflag.{SECRET}")), "flag beats env: {:?}", server.kv.last());

    let file = path(&token_file);
    let out = kvctl_with_env(
        &https,
        &["get", "k", "--token-file", &file],
        &[("RINGKV_TLS_CA", ca.as_str()), ("RINGKV_TOKEN", env_token.as_str())],
    )
    .await?;
    ensure!(out.success(), "{out}");
    ensure!(server.kv.last() == Some(format!("Bearer fromfile.{SECRET}")), "file beats env: {:?}", server.kv.last());

    let out = kvctl_with_env(&https, &["--tls-ca", &ca, "get", "k"], &[("RINGKV_TOKEN", env_token.as_str())]).await?;
    ensure!(out.success(), "{out}");
    ensure!(server.kv.last() == Some(format!("Bearer fromenv.{SECRET}")), "env token: {:?}", server.kv.last());

    let out = kvctl_with_env(&https, &["--tls-ca", &ca, "get", "k"], &[]).await?;
    ensure!(out.code == Some(5), "no token must exit 5 (access denied): {out}");
    ensure!(out.stderr.contains("--token") && out.stderr.contains("Unauthenticated"), "{out}");

    let out = kvctl_with_env(
        &https,
        &["put", "k", "v"],
        &[("RINGKV_TLS_CA", ca.as_str()), ("RINGKV_TOKEN", env_token.as_str())],
    )
    .await?;
    ensure!(out.code == Some(5) && out.stderr.contains("kvctl user grant"), "permission denied exits 5: {out}");
    ensure!(!out.stderr.contains(SECRET) && !out.stdout.contains(SECRET), "the secret leaked: {out}");

    let out = kvctl_with_env(&https, &["get", "k"], &[]).await?;
    ensure!(out.code == Some(2) && out.stderr.contains("--tls-ca"), "https without a CA is a usage error: {out}");
    let out = kvctl_with_env(&https, &["--token", "nodot", "--tls-ca", &ca, "get", "k"], &[]).await?;
    ensure!(out.code == Some(2) && out.stderr.contains("RKV-BAD-TOKEN") && !out.stderr.contains("nodot"), "{out}");
    let help = kvctl_with_env(&https, &["--help"], &[("RINGKV_TOKEN", env_token.as_str())]).await?;
    ensure!(help.success() && help.stdout.contains("--tls-ca") && !help.stdout.contains(SECRET), "{help}");
    Ok(())
}
