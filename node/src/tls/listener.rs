//! [`TlsListener`]: wraps a bound `TcpListener`; every accepted connection
//! runs its handshake in its own task with a deadline, so one slow or
//! hostile client never blocks accepts. A failed handshake is logged with
//! the peer's address and reason and counted, never a panic. Each new
//! connection uses the [`TlsState`]'s current configuration.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};

use super::HandshakeRefusal;
use super::identity::{CertificateInfo, PeerIdentity};
use super::reload::{TlsMetrics, TlsState};

/// Handshakes running at once on one listener; more connections wait in the
/// kernel's accept queue.
const MAX_PENDING_HANDSHAKES: usize = 1024;

/// The application protocol a listener negotiates (ALPN).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Alpn {
    /// gRPC: `h2`.
    Grpc,
    /// HTTP/1.1 (the HTTP API).
    Http1,
    /// No ALPN (RESP).
    None,
}

impl Alpn {
    fn protocols(self) -> Vec<Vec<u8>> {
        match self {
            Self::Grpc => vec![b"h2".to_vec()],
            Self::Http1 => vec![b"http/1.1".to_vec()],
            Self::None => Vec::new(),
        }
    }
}

/// What a connection's handshake established, given to request handlers
/// (tonic puts it in each request's extensions).
#[derive(Debug, Clone)]
pub struct TlsConnectInfo {
    /// The client's address.
    pub remote_addr: SocketAddr,
    /// The listener's address.
    pub local_addr: SocketAddr,
    /// The client certificate's names, when it presented a verified one.
    pub peer: Option<Arc<PeerIdentity>>,
}

/// One accepted TLS connection.
#[derive(Debug)]
pub struct TlsConnection {
    stream: tokio_rustls::server::TlsStream<TcpStream>,
    info: TlsConnectInfo,
}

impl TlsConnection {
    /// Addresses and the client's verified identity.
    pub fn info(&self) -> &TlsConnectInfo {
        &self.info
    }
}

impl AsyncRead for TlsConnection {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConnection {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

impl tonic::transport::server::Connected for TlsConnection {
    type ConnectInfo = TlsConnectInfo;

    fn connect_info(&self) -> TlsConnectInfo {
        self.info.clone()
    }
}

/// Builds the acceptor of each new connection from the current material.
#[derive(Debug)]
pub struct TlsAcceptor {
    state: Arc<TlsState>,
    alpn: Alpn,
    handshake_timeout: Duration,
    metrics: TlsMetrics,
    /// The current configuration with this listener's ALPN, by generation.
    cache: Mutex<Option<(u64, Arc<ServerConfig>)>>,
}

impl TlsAcceptor {
    /// An acceptor serving `state`'s material with `alpn`; handshakes not
    /// done within `handshake_timeout` are dropped.
    pub fn new(state: Arc<TlsState>, alpn: Alpn, handshake_timeout: Duration, metrics: TlsMetrics) -> Self {
        Self { state, alpn, handshake_timeout, metrics, cache: Mutex::new(None) }
    }

    fn config(&self) -> Arc<ServerConfig> {
        let (generation, base) = self.state.server_config();
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        match &*cache {
            Some((g, config)) if *g == generation => Arc::clone(config),
            _ => {
                let mut config = (*base).clone();
                config.alpn_protocols = self.alpn.protocols();
                let config = Arc::new(config);
                *cache = Some((generation, Arc::clone(&config)));
                config
            }
        }
    }

    /// Runs one handshake; failures are logged and counted here.
    async fn handshake(&self, tcp: TcpStream, remote_addr: SocketAddr) -> Option<TlsConnection> {
        let local_addr = tcp.local_addr().ok()?;
        let acceptor = tokio_rustls::TlsAcceptor::from(self.config());
        let refusal = match tokio::time::timeout(self.handshake_timeout, acceptor.accept(tcp)).await {
            Ok(Ok(stream)) => {
                let peer = stream.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|leaf| {
                    // The verifier accepted it, so it parses; an odd extension only loses names.
                    Arc::new(CertificateInfo::parse(leaf).map(|i| i.identity).unwrap_or_default())
                });
                return Some(TlsConnection { stream, info: TlsConnectInfo { remote_addr, local_addr, peer } });
            }
            Ok(Err(e)) => HandshakeRefusal::classify(&e),
            Err(_) => HandshakeRefusal::Timeout,
        };
        let (code, label) = refusal.code();
        let listener = self.state.name();
        self.metrics.handshake_failures.with_label_values(&[listener, label]).inc();
        tracing::warn!(listener, peer = %remote_addr, code, reason = refusal.advice(), "TLS handshake refused");
        None
    }
}

/// A TLS listener: accepted, handshaken connections in accept order of
/// handshake completion.
#[derive(Debug)]
pub struct TlsListener {
    connections: mpsc::Receiver<TlsConnection>,
    local_addr: SocketAddr,
    task: JoinHandle<()>,
}

impl TlsListener {
    /// Starts accepting on `tcp` (already bound, so tests can use port 0).
    pub fn new(tcp: TcpListener, acceptor: TlsAcceptor) -> io::Result<Self> {
        let local_addr = tcp.local_addr()?;
        let (tx, connections) = mpsc::channel(64);
        let task = tokio::spawn(accept_loop(tcp, Arc::new(acceptor), tx));
        Ok(Self { connections, local_addr, task })
    }

    /// The next handshaken connection; `None` only if the accept loop ended.
    pub async fn accept(&mut self) -> Option<TlsConnection> {
        self.connections.recv().await
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        // Also drops the JoinSet of pending handshakes, aborting them.
        self.task.abort();
    }
}

async fn accept_loop(tcp: TcpListener, acceptor: Arc<TlsAcceptor>, tx: mpsc::Sender<TlsConnection>) {
    let mut handshakes = JoinSet::new();
    loop {
        tokio::select! {
            accepted = tcp.accept(), if handshakes.len() < MAX_PENDING_HANDSHAKES => match accepted {
                Ok((stream, remote_addr)) => {
                    let _ = stream.set_nodelay(true);
                    let acceptor = Arc::clone(&acceptor);
                    handshakes.spawn(async move { acceptor.handshake(stream, remote_addr).await });
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed on a TLS listener");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(done) = handshakes.join_next(), if !handshakes.is_empty() => {
                if let Ok(Some(connection)) = done
                    && tx.send(connection).await.is_err()
                {
                    return;
                }
            }
            () = tx.closed() => return,
        }
    }
}
