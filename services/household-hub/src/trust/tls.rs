//! The hub's end of TLS: its rustls settings, and the handshakes on the TLS port (the
//! client's end is `household_client::tls_config`).
//!
//! Both ends trust the household CA and nothing else: no system roots, so a certificate
//! from any public CA is worth nothing here.
//!
//! The hub does its handshakes itself rather than through tonic's `ServerTlsConfig`,
//! because that one offers only `h2` in ALPN, and rustls then refuses every client that
//! offers only `http/1.1` (a gRPC-Web client over HTTP/1.1) during the handshake. Here
//! ALPN offers both; tonic sees the finished TLS streams, with the client certificate
//! in their connection info as before.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;

use super::{HouseholdCa, ServerCertificate, TrustError};

/// How long a client may take over its handshake before the hub hangs up.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Finished handshakes waiting for the server to take them.
const ACCEPT_QUEUE: usize = 64;
/// The protocols ALPN offers: HTTP/2 for gRPC (and browsers), HTTP/1.1 for gRPC-Web
/// clients that cannot do HTTP/2.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

impl HouseholdCa {
    /// The hub's TLS settings: it presents `server`, and checks any client certificate
    /// against this CA.
    ///
    /// A client certificate is optional at the TLS layer because Enroll (the door in),
    /// health checks, reflection and the web app's bearer-token calls must work without
    /// one. The gate ([`crate::auth`]) decides per call what it needs; a certificate
    /// that does not chain to this CA still fails the handshake.
    pub fn server_tls(
        &self,
        server: &ServerCertificate,
    ) -> Result<Arc<rustls::ServerConfig>, TrustError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(self.cert_der().to_vec()))
            .map_err(|e| TrustError::ServerTls(format!("the CA certificate: {e}")))?;
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .allow_unauthenticated()
                .build()
                .map_err(|e| TrustError::ServerTls(format!("the client verifier: {e}")))?;
        let chain = x509_parser::pem::Pem::iter_from_buffer(server.chain_pem.as_bytes())
            .map(|block| {
                block
                    .map(|pem| CertificateDer::from(pem.contents))
                    .map_err(|e| TrustError::ServerTls(format!("the server chain: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (_, key) = x509_parser::pem::parse_x509_pem(server.key_pem.as_bytes())
            .map_err(|e| TrustError::ServerTls(format!("the server key: {e}")))?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.contents));
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|builder| {
                builder
                    .with_client_cert_verifier(verifier)
                    .with_single_cert(chain, key)
            })
            .map_err(|e| TrustError::ServerTls(e.to_string()))?;
        config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
    }
}

/// The TLS connections made on `listener`, for tonic's `serve_with_incoming`.
///
/// Each handshake runs in a task of its own, so a client that stalls holds up nobody
/// else, and gives up after [`HANDSHAKE_TIMEOUT`]. Failed handshakes (a stranger's
/// certificate, a port scan) are logged at debug and left out. Accepted sockets have
/// Nagle's algorithm off: small gRPC frames (a grant, a budget) go out at once instead
/// of waiting up to 40 ms for a delayed ACK. Dropping the stream (the server stopping)
/// closes the listener.
pub fn incoming(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
) -> ReceiverStream<io::Result<TlsStream<TcpStream>>> {
    let acceptor = TlsAcceptor::from(config);
    let (ready, stream) = mpsc::channel(ACCEPT_QUEUE);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = ready.closed() => return,
            };
            let (tcp, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors, say: wait a little rather than spin.
                    tracing::warn!(error = %err, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            if let Err(err) = tcp.set_nodelay(true) {
                tracing::debug!(%peer, error = %err, "could not turn Nagle's algorithm off");
            }
            let acceptor = acceptor.clone();
            let ready = ready.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => {
                        // The server stopped taking connections: the socket just closes.
                        let _ = ready.send(Ok(tls)).await;
                    }
                    Ok(Err(err)) => tracing::debug!(%peer, error = %err, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            });
        }
    });
    ReceiverStream::new(stream)
}
