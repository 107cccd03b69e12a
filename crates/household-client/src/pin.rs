//! The household CA, taken from the hub's own TLS chain and checked against the pairing
//! code before anything is trusted.
//!
//! The handshake here accepts whatever chain the hub presents, only to read it: nothing
//! is sent over it. The certificate whose SHA-256 the pairing code names is the
//! household CA; every later connection trusts that CA alone and verifies the hub's
//! certificate against it in full, so a stranger who presents a copy of the (public)
//! CA certificate still fails there.

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use household_proto::pairing::PairingCode;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};

use crate::channel::HUB_NAME;

/// Why the household CA could not be read from the hub.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error("cannot reach the hub at {address}: {source}")]
    Unreachable {
        address: String,
        source: std::io::Error,
    },
    #[error("TLS handshake with {address} failed: {source}")]
    Handshake {
        address: String,
        source: std::io::Error,
    },
    #[error(
        "the hub at {address} is not the household of this pairing code: no certificate in its chain has the fingerprint {expected}"
    )]
    WrongHousehold { address: String, expected: String },
    #[error("TLS setup: {0}")]
    Tls(#[from] rustls::Error),
}

/// Connects to `address` (`HOST:PORT`), reads the hub's chain and returns the household
/// CA (PEM) if the chain holds the certificate `code` names.
pub async fn household_ca(address: &str, code: &PairingCode) -> Result<String, PinError> {
    household_ca_with_fingerprint(address, &code.ca_sha256_hex()).await
}

/// Connects to `address` (`HOST:PORT`), reads the hub's chain and returns the certificate
/// (PEM) whose SHA-256 is `ca_sha256_hex`, if the chain holds it: for a hub known by the
/// fingerprint it announced over mDNS rather than by a pairing code.
pub async fn household_ca_with_fingerprint(
    address: &str,
    ca_sha256_hex: &str,
) -> Result<String, PinError> {
    let seen = Arc::new(Mutex::new(Vec::<Vec<u8>>::new()));
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .dangerous()
    .with_custom_certificate_verifier(Arc::new(ReadChain { seen: seen.clone() }))
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(address)
        .await
        .map_err(|source| PinError::Unreachable {
            address: address.to_owned(),
            source,
        })?;
    let name = ServerName::try_from(HUB_NAME).map_err(|e| rustls::Error::General(e.to_string()))?;
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|source| PinError::Handshake {
            address: address.to_owned(),
            source,
        })?;
    let chain = seen.lock().map(|c| c.clone()).unwrap_or_default();
    let expected = ca_sha256_hex.to_ascii_lowercase();
    chain
        .iter()
        .find(|der| hex(&Sha256::digest(der)) == expected)
        .map(|der| pem(der))
        .ok_or_else(|| PinError::WrongHousehold {
            address: address.to_owned(),
            expected,
        })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn pem(der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// Accepts any chain and keeps it: used only to read the chain, never to trust it.
#[derive(Debug)]
struct ReadChain {
    seen: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl ServerCertVerifier for ReadChain {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mut seen = self
            .seen
            .lock()
            .map_err(|_| rustls::Error::General("poisoned".into()))?;
        seen.push(end_entity.to_vec());
        seen.extend(intermediates.iter().map(|c| c.to_vec()));
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}
