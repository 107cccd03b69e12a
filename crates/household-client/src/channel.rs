//! TLS channels to the hub.

use std::time::Duration;

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// The name every hub's server certificate carries, whatever else it is called: clients
/// that reach it by an address or an mDNS name check the certificate against this one.
pub const HUB_NAME: &str = "localhost";

/// How long connecting may take before it fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A client's TLS settings: trust `ca_pem` alone (no system roots, so a certificate
/// from any public CA is worth nothing here), expect the hub's certificate to name
/// [`HUB_NAME`], and present `identity` (certificate chain PEM, key PEM) if there is
/// one; there is none before enrolling.
pub fn tls_config(ca_pem: &str, identity: Option<(&str, &str)>) -> ClientTlsConfig {
    let config = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .domain_name(HUB_NAME);
    match identity {
        Some((chain_pem, key_pem)) => config.identity(Identity::from_pem(chain_pem, key_pem)),
        None => config,
    }
}

/// A channel to the hub at `address` (`HOST:PORT`) with [`tls_config`].
pub async fn connect(
    address: &str,
    ca_pem: &str,
    identity: Option<(&str, &str)>,
) -> Result<Channel, tonic::transport::Error> {
    Endpoint::from_shared(format!("https://{address}"))?
        .tls_config(tls_config(ca_pem, identity))?
        .connect_timeout(CONNECT_TIMEOUT)
        .http2_keep_alive_interval(Duration::from_secs(20))
        .keep_alive_timeout(Duration::from_secs(10))
        .connect()
        .await
}
