//! tonic's TLS settings for both ends of a household connection.
//!
//! Both ends trust the household CA and nothing else: no system roots, so a certificate
//! from any public CA is worth nothing here.

use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

use super::{HouseholdCa, ServerCertificate};

impl HouseholdCa {
    /// The hub's TLS settings: it presents `server`, and checks any client certificate
    /// against this CA.
    ///
    /// A client certificate is optional at the TLS layer because Enroll (the door in),
    /// health checks and reflection must work without one. Every other RPC checks for a
    /// certificate itself and reads the caller with
    /// [`subject_from_peer_cert`](super::subject_from_peer_cert); a certificate that
    /// does not chain to this CA still fails the handshake.
    pub fn tls_config(&self, server: &ServerCertificate) -> ServerTlsConfig {
        ServerTlsConfig::new()
            .identity(Identity::from_pem(&server.chain_pem, &server.key_pem))
            .client_ca_root(Certificate::from_pem(self.cert_pem()))
            .client_auth_optional(true)
    }
}

/// A client's TLS settings: trust `ca_pem` alone, expect the hub to be called `domain`,
/// and present `identity` (certificate chain PEM, key PEM) if there is one; there is
/// none before enrolling.
pub fn client_tls_config(
    ca_pem: &str,
    identity: Option<(&str, &str)>,
    domain: &str,
) -> ClientTlsConfig {
    let config = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .domain_name(domain);
    match identity {
        Some((chain_pem, key_pem)) => config.identity(Identity::from_pem(chain_pem, key_pem)),
        None => config,
    }
}
