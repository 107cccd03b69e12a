//! Redeeming a pairing code for a client certificate.

use household_proto::pairing::PairingCode;
use household_proto::v1::{self, agent_client::AgentClient};
use rcgen::{CertificateParams, KeyPair, PKCS_ECDSA_P256_SHA256};

use crate::channel::connect;
use crate::pin::{PinError, household_ca};

/// What a client keeps after enrolling: everything it needs to reach the hub again.
#[derive(Debug, Clone)]
pub struct Credential {
    /// The household CA, PEM: the only certificate the client trusts.
    pub ca_pem: String,
    /// The client's certificate chain, PEM.
    pub chain_pem: String,
    /// The client's private key, PEM. It never left the client.
    pub key_pem: String,
}

/// Who the hub enrolled, with the credential.
#[derive(Debug, Clone)]
pub struct Enrollment {
    pub credential: Credential,
    /// The hub's answer: identity, household id, the guardian or device it made.
    pub response: v1::EnrollResponse,
}

/// What the client tells the hub about itself when it enrolls.
#[derive(Debug, Clone, Default)]
pub struct About {
    /// Its host name.
    pub hostname: String,
    /// e.g. `linux`.
    pub platform: String,
    /// The client's version.
    pub software_version: String,
    /// The role it enrolls as: a code for the other role is refused and stays unused.
    pub role: v1::Role,
}

/// Why enrolling failed.
#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    #[error("not a pairing code: {0}")]
    Code(#[from] household_proto::pairing::PairingCodeError),
    #[error(transparent)]
    Pin(#[from] PinError),
    #[error("connecting to the hub: {0}")]
    Connect(#[from] tonic::transport::Error),
    #[error("the hub refused: {}", .0.message())]
    Refused(tonic::Status),
    #[error("making a key: {0}")]
    Key(#[from] rcgen::Error),
    #[error("the hub's answer holds no certificate")]
    NoCertificate,
}

/// Redeems `code` at the hub at `address` (`HOST:PORT`): pins the household CA, makes
/// a key and a CSR, calls `Agent.Enroll`.
pub async fn enroll(address: &str, code: &str, about: &About) -> Result<Enrollment, EnrollError> {
    let parsed: PairingCode = code.trim().parse()?;
    let ca_pem = household_ca(address, &parsed).await?;
    let (key_pem, csr_pem) = new_key_and_csr(&about.hostname)?;
    let mut agent = AgentClient::new(connect(address, &ca_pem, None).await?);
    let response = agent
        .enroll(v1::EnrollRequest {
            pairing_code: code.trim().to_owned(),
            credential: Some(v1::enroll_request::Credential::CsrPem(csr_pem)),
            hostname: about.hostname.clone(),
            platform: about.platform.clone(),
            software_version: about.software_version.clone(),
            expected_role: about.role as i32,
        })
        .await
        .map_err(EnrollError::Refused)?
        .into_inner();
    let Some(v1::enroll_response::Credential::Certificate(certificate)) = &response.credential
    else {
        return Err(EnrollError::NoCertificate);
    };
    Ok(Enrollment {
        credential: Credential {
            ca_pem,
            chain_pem: certificate.certificate_chain_pem.clone(),
            key_pem,
        },
        response,
    })
}

/// A new ECDSA P-256 key and a CSR for it, both PEM. The common name is only a hint for
/// people reading the CSR; the hub ignores it.
pub fn new_key_and_csr(common_name: &str) -> Result<(String, String), rcgen::Error> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    let csr = params.serialize_request(&key)?;
    Ok((key.serialize_pem(), csr.pem()?))
}
