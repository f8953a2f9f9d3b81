//! "Maybe TLS": [`MaybeTlsListener`] and [`MaybeTlsStream`], so that a
//! server keeps one code path whether TLS is on or off. Usable as tonic's
//! incoming ([`MaybeTlsListener::into_incoming`]), by axum 0.8's `serve`
//! (it implements `axum::serve::Listener`) and by a plain accept loop.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use super::listener::{TlsConnectInfo, TlsConnection, TlsListener};

/// A listener with or without TLS.
#[derive(Debug)]
#[non_exhaustive]
pub enum MaybeTlsListener {
    /// TLS off.
    Plain(TcpListener),
    /// TLS on.
    Tls(TlsListener),
}

/// A connection with or without TLS.
#[derive(Debug)]
#[non_exhaustive]
pub enum MaybeTlsStream {
    /// TLS off.
    Plain(TcpStream),
    /// TLS on.
    Tls(Box<TlsConnection>),
}

impl MaybeTlsListener {
    /// The next connection and its peer address. A plain accept error (out
    /// of descriptors, ...) is returned; the TLS listener logs its own.
    pub async fn accept(&mut self) -> io::Result<(MaybeTlsStream, SocketAddr)> {
        match self {
            Self::Plain(tcp) => {
                let (stream, addr) = tcp.accept().await?;
                let _ = stream.set_nodelay(true);
                Ok((MaybeTlsStream::Plain(stream), addr))
            }
            Self::Tls(tls) => match tls.accept().await {
                Some(conn) => {
                    let addr = conn.info().remote_addr;
                    Ok((MaybeTlsStream::Tls(Box::new(conn)), addr))
                }
                None => Err(io::Error::other("the TLS accept loop ended")),
            },
        }
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Self::Plain(tcp) => tcp.local_addr(),
            Self::Tls(tls) => Ok(tls.local_addr()),
        }
    }

    /// The connections as a stream, for tonic's `serve_with_incoming*`.
    pub fn into_incoming(self) -> impl Stream<Item = io::Result<MaybeTlsStream>> + Send + 'static {
        futures::stream::unfold(self, |mut listener| async move {
            let next = listener.accept().await.map(|(stream, _)| stream);
            Some((next, listener))
        })
    }
}

impl axum::serve::Listener for MaybeTlsListener {
    type Io = MaybeTlsStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (MaybeTlsStream, SocketAddr) {
        loop {
            match MaybeTlsListener::accept(self).await {
                Ok(accepted) => return accepted,
                Err(e) => {
                    // As axum's own TcpListener impl: log, back off, go on.
                    tracing::warn!(error = %e, "accept failed on the HTTP listener");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        MaybeTlsListener::local_addr(self)
    }
}

impl MaybeTlsStream {
    /// The client's verified certificate identity (TLS with a client certificate only).
    pub fn tls_info(&self) -> Option<TlsConnectInfo> {
        match self {
            Self::Plain(_) => None,
            Self::Tls(conn) => Some(conn.info().clone()),
        }
    }
}

impl tonic::transport::server::Connected for MaybeTlsStream {
    /// `None` on plaintext connections (tonic still records the TCP addresses there).
    type ConnectInfo = MaybeTlsConnectInfo;

    fn connect_info(&self) -> MaybeTlsConnectInfo {
        match self {
            Self::Plain(tcp) => MaybeTlsConnectInfo { remote_addr: tcp.peer_addr().ok(), tls: None },
            Self::Tls(conn) => {
                MaybeTlsConnectInfo { remote_addr: Some(conn.info().remote_addr), tls: Some(conn.info().clone()) }
            }
        }
    }
}

/// What tonic puts in the request extensions of a [`MaybeTlsStream`].
#[derive(Debug, Clone)]
pub struct MaybeTlsConnectInfo {
    /// The client's address.
    pub remote_addr: Option<SocketAddr>,
    /// The TLS details (and client identity) when TLS is on.
    pub tls: Option<TlsConnectInfo>,
}

macro_rules! delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            MaybeTlsStream::Plain($s) => {
                let $s = Pin::new($s);
                $e
            }
            MaybeTlsStream::Tls($s) => {
                let $s = Pin::new(&mut **$s);
                $e
            }
        }
    };
}

impl AsyncRead for MaybeTlsStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_read(cx, buf))
    }
}

impl AsyncWrite for MaybeTlsStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        delegate!(self, s => s.poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_shutdown(cx))
    }
}
