//! [`Client`] and [`ClientBuilder`]: the connection, request routing,
//! per-request timeouts and retries. The typed methods live in `kv.rs` and
//! `admin.rs` and all go through [`Client::unary`].
//!
//! Routing: the client holds a list of nodes and today sends every request
//! to the first one (any node coordinates any request). Token-aware routing
//! (sending a key straight to one of its replicas) and per-node pools will
//! replace [`Client::route`]; nothing else needs to change for that.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ringkv_proto::v1::Consistency;
use tonic::transport::Endpoint;
use tonic::{Request, Response, Status};

use crate::auth::Token;
use crate::connection::{AuthChannel, ConnectionConfig, TlsProblem};
use crate::endpoint::parse_endpoint;
use crate::error::ClientError;
use crate::retry::RetryPolicy;
use crate::tls::ClientTlsFiles;

/// Default per-request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Name of the keyspace that always exists.
pub const DEFAULT_KEYSPACE: &str = "default";

/// Whether an RPC may be sent again after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Idempotency {
    /// A read: resending cannot change anything.
    Read,
    /// A write: resending could apply it twice.
    Write,
}

/// Description of one RPC, for errors and the retry decision.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rpc {
    pub name: &'static str,
    pub idempotency: Idempotency,
}

/// One node the client can talk to.
#[derive(Debug, Clone)]
struct Node {
    /// `host:port`, for error messages.
    address: String,
    /// The connection, with the token interceptor.
    channel: AuthChannel,
}

/// A RingKV client. Cheap to clone: clones share the connection.
#[derive(Debug, Clone)]
pub struct Client {
    nodes: Arc<[Node]>,
    timeout: Duration,
    retry: RetryPolicy,
    keyspace: String,
    consistency: Option<Consistency>,
}

/// Configures and connects a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    connection: ConnectionConfig,
    timeout: Duration,
    connect_timeout: Duration,
    retry: RetryPolicy,
    keyspace: String,
    consistency: Option<Consistency>,
}

impl ClientBuilder {
    /// A builder for a client of the node at `endpoint` (`host:port`,
    /// `http://host:port` or `https://host:port`), with the defaults: 5 s
    /// timeouts, the default [`RetryPolicy`], keyspace `default`, the
    /// server's default consistency, no TLS files and no token.
    pub fn new(endpoint: impl Into<String>) -> Self {
        Self {
            connection: ConnectionConfig::new(endpoint),
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_TIMEOUT,
            retry: RetryPolicy::default(),
            keyspace: DEFAULT_KEYSPACE.to_owned(),
            consistency: None,
        }
    }

    /// Endpoint, TLS files and token all at once (replaces the endpoint given to `new`).
    pub fn connection(mut self, connection: ConnectionConfig) -> Self {
        self.connection = connection;
        self
    }

    /// CA (and optional client certificate) of `https://` endpoints.
    pub fn tls(mut self, files: ClientTlsFiles) -> Self {
        self.connection.tls = Some(files);
        self
    }

    /// Bearer token sent as `authorization: Bearer <token>` on every call.
    pub fn token(mut self, token: Token) -> Self {
        self.connection.token = Some(token);
        self
    }

    /// Timeout of each request attempt.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Timeout of opening the connection.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Retry policy of idempotent reads.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Keyspace of every request (default `default`).
    pub fn keyspace(mut self, keyspace: impl Into<String>) -> Self {
        self.keyspace = keyspace.into();
        self
    }

    /// Consistency of every request that takes one, unless overridden.
    pub fn consistency(mut self, consistency: Consistency) -> Self {
        self.consistency = Some(consistency);
        self
    }

    /// Validates the endpoint and opens the connection (TLS for `https://`).
    pub async fn connect(self) -> Result<Client, ClientError> {
        let parsed = parse_endpoint(&self.connection.endpoint)?;
        let invalid = |source: tonic::transport::Error| ClientError::InvalidEndpoint {
            endpoint: self.connection.endpoint.clone(),
            reason: source.to_string(),
        };
        let endpoint = Endpoint::from_shared(parsed.uri.clone())
            .map_err(invalid)?
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(10));
        let channel = self.connection.dial(endpoint, &parsed).await?;
        let node = Node { address: parsed.authority, channel };
        Ok(Client {
            nodes: Arc::from(vec![node]),
            timeout: self.timeout,
            retry: self.retry,
            keyspace: self.keyspace,
            consistency: self.consistency,
        })
    }
}

impl Client {
    /// Connects to the node at `endpoint` (`host:port`, `http://host:port`
    /// or `https://host:port`, the last needing [`ClientBuilder::tls`])
    /// with the default settings; see [`ClientBuilder`] for the others.
    pub async fn connect(endpoint: &str) -> Result<Client, ClientError> {
        ClientBuilder::new(endpoint).connect().await
    }

    /// A builder for a client of the node at `endpoint`; add TLS files and
    /// a token with [`ClientBuilder::tls`] and [`ClientBuilder::token`].
    pub fn builder(endpoint: impl Into<String>) -> ClientBuilder {
        ClientBuilder::new(endpoint)
    }

    /// A client of the same connection that works in another keyspace.
    pub fn with_keyspace(&self, keyspace: impl Into<String>) -> Client {
        Client { keyspace: keyspace.into(), ..self.clone() }
    }

    /// A client of the same connection with another default consistency
    /// (`None`: the keyspace's, then the cluster's default).
    pub fn with_consistency(&self, consistency: Option<Consistency>) -> Client {
        Client { consistency, ..self.clone() }
    }

    /// The keyspace of this client's requests.
    pub fn keyspace(&self) -> &str {
        &self.keyspace
    }

    /// `host:port` of the node requests are sent to.
    pub fn endpoint(&self) -> &str {
        &self.route().address
    }

    pub(crate) fn consistency(&self) -> Option<Consistency> {
        self.consistency
    }

    /// The node a request goes to. Today: always the first (and only) node;
    /// the seam for token-aware routing.
    fn route(&self) -> &Node {
        // `connect` is the only constructor and always creates one node.
        &self.nodes[0]
    }

    /// The channel of the node requests go to, with its address (for streaming RPCs).
    pub(crate) fn channel(&self) -> (AuthChannel, &str) {
        let node = self.route();
        (node.channel.clone(), &node.address)
    }

    /// The per-request timeout.
    pub(crate) fn request_timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends one unary RPC: `call` is given a channel and a fresh request
    /// per attempt. Each attempt is bounded by the timeout; reads are
    /// retried on `UNAVAILABLE` per the [`RetryPolicy`].
    pub(crate) async fn unary<M, T, F, Fut>(&self, rpc: Rpc, message: M, call: F) -> Result<T, ClientError>
    where
        M: Clone,
        F: Fn(AuthChannel, Request<M>) -> Fut,
        Fut: Future<Output = Result<Response<T>, Status>>,
    {
        let node = self.route();
        let mut retry = 0;
        loop {
            let mut request = Request::new(message.clone());
            request.set_timeout(self.timeout);
            let attempt = tokio::time::timeout(self.timeout, call(node.channel.clone(), request));
            let error = match attempt.await {
                Ok(Ok(response)) => return Ok(response.into_inner()),
                // TLS 1.3 clients learn that their certificate was refused on the first call.
                Ok(Err(status)) => match TlsProblem::find(&status) {
                    Some(problem) => ClientError::Tls { endpoint: node.address.clone(), problem },
                    None if !is_local_timeout(&status) => ClientError::from_status(rpc.name, &node.address, &status),
                    None => self.timed_out(rpc, node),
                },
                Err(_) => self.timed_out(rpc, node),
            };
            let may_retry = rpc.idempotency == Idempotency::Read && error.is_unavailable();
            if !may_retry || retry >= self.retry.max_retries {
                return Err(error);
            }
            tokio::time::sleep(self.retry.backoff(retry)).await;
            retry += 1;
        }
    }
}

impl Client {
    fn timed_out(&self, rpc: Rpc, node: &Node) -> ClientError {
        ClientError::Timeout { rpc: rpc.name, endpoint: node.address.clone(), after: self.timeout }
    }
}

/// True when tonic itself gave up on the `grpc-timeout` we set: it reports
/// that as `CANCELLED` caused by [`tonic::TimeoutExpired`], racing our own
/// timer; both mean the same thing to the caller.
fn is_local_timeout(status: &Status) -> bool {
    let mut source = std::error::Error::source(status);
    while let Some(cause) = source {
        if cause.is::<tonic::TimeoutExpired>() {
            return true;
        }
        source = cause.source();
    }
    false
}
