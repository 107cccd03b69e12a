//! tonic's TLS settings for the hub's end of a household connection (the client's end
//! is `household_client::tls_config`).
//!
//! Both ends trust the household CA and nothing else: no system roots, so a certificate
//! from any public CA is worth nothing here.

use tonic::transport::{Certificate, Identity, ServerTlsConfig};

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
