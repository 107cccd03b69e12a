//! Client certificates: issuing them from a CSR, and reading back whom they name.
//!
//! A client enrolls by sending a certificate signing request together with a pairing
//! code. The code (checked elsewhere) says who the client will be; the CSR contributes
//! its public key and nothing else. Whatever subject, names or extensions it asks for are
//! ignored, so a child cannot talk their way into a guardian's certificate by asking.

use std::time::Duration;

use rcgen::{
    CertificateParams, ExtendedKeyUsagePurpose, KeyUsagePurpose, SanType, SubjectPublicKeyInfo,
};
use x509_parser::certificate::X509Certificate;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::der_parser::oid::Oid;
use x509_parser::extensions::GeneralName;
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_NIST_EC_P521,
    OID_PKCS1_RSAENCRYPTION, OID_SIG_ED25519,
};
use x509_parser::prelude::FromDer as _;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo as X509PublicKeyInfo;

use super::ca::certificate_params;
use super::{ClientRole, ClientSubject, HouseholdCa, TrustError, sha256_hex};

/// Every identity URI starts with this scheme.
const IDENTITY_SCHEME: &str = "household";
/// The PEM labels a CSR may carry (the second is what older tools write).
const CSR_PEM_LABELS: [&str; 2] = ["CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"];

/// A client certificate, as the Enroll and RenewCertificate RPCs hand it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedClientCert {
    /// The client certificate, then the CA certificate, PEM.
    pub chain_pem: String,
    /// The client certificate alone, DER.
    pub cert_der: Vec<u8>,
    /// SHA-256 of `cert_der`, 64 lowercase hex digits: the credential's id, by which it
    /// is recorded in the event log and revoked.
    pub sha256_hex: String,
    /// When the certificate stops being valid, in microseconds since the Unix epoch.
    pub not_after_unix_micros: i64,
}

impl HouseholdCa {
    /// Issues a client certificate for `subject`, valid for `valid_for`, to the holder of
    /// the key in `csr_pem`.
    ///
    /// The CSR must carry an ECDSA P-256 or Ed25519 key, the two every client platform
    /// can make and rustls can verify cheaply, and its self-signature must verify, which
    /// shows the sender holds the private key. The certificate's common name is the
    /// identity id, its SAN URI is `household:<role>:<id>`, and it is good for client
    /// authentication only.
    pub fn sign_client_csr(
        &self,
        csr_pem: &str,
        subject: &ClientSubject,
        valid_for: Duration,
    ) -> Result<IssuedClientCert, TrustError> {
        check_identity_id(&subject.identity_id)?;
        let public_key = public_key_of_csr(csr_pem)?;

        let mut params = certificate_params(&subject.identity_id, valid_for);
        let uri = format!(
            "{IDENTITY_SCHEME}:{}:{}",
            subject.role.as_str(),
            subject.identity_id
        );
        params.subject_alt_names = vec![SanType::URI(uri.try_into()?)];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let not_after_unix_micros = unix_micros(&params);
        let cert = params.signed_by(&public_key, self.issuer())?;

        let cert_der = cert.der().to_vec();
        Ok(IssuedClientCert {
            chain_pem: format!("{}{}", cert.pem(), self.cert_pem()),
            sha256_hex: sha256_hex(&cert_der),
            cert_der,
            not_after_unix_micros,
        })
    }
}

/// Whom a peer's certificate speaks for, from its `household:<role>:<id>` SAN URI.
///
/// This only reads: the TLS layer has already checked that the certificate chains to the
/// household CA. A certificate with no such URI, or with more than one, names nobody.
pub fn subject_from_peer_cert(der: &[u8]) -> Result<ClientSubject, TrustError> {
    let no_identity = |why: &str| TrustError::NoPeerIdentity(why.to_owned());
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| TrustError::NoPeerIdentity(e.to_string()))?;
    let san = cert
        .subject_alternative_name()
        .map_err(|e| TrustError::NoPeerIdentity(e.to_string()))?
        .ok_or_else(|| no_identity("it has no subject alternative names"))?;
    let mut subjects = san
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::URI(uri) => parse_identity_uri(uri),
            _ => None,
        });
    let subject = subjects
        .next()
        .ok_or_else(|| no_identity("it has no household: URI"))?;
    if subjects.next().is_some() {
        return Err(no_identity("it has more than one household: URI"));
    }
    Ok(subject)
}

/// The public key of a CSR whose signature verifies and whose key the household accepts.
///
/// The CSR is read with x509-parser rather than rcgen's `CertificateSigningRequestParams`
/// for two reasons: rcgen infers the key's curve from the signature algorithm (so a P-384
/// key signed with SHA-256 would pass as P-256), and it refuses CSRs with extensions it
/// does not know, which we would ignore anyway.
/// SHA-256 of the public key in `csr_pem` (the raw key, as
/// [`household_client::adopt::key_sha256_hex`] computes it on the agent), once the CSR's
/// self-signature has shown that its sender holds the private key.
pub fn csr_key_sha256_hex(csr_pem: &str) -> Result<String, TrustError> {
    use rcgen::PublicKeyData as _;
    let public_key = public_key_of_csr(csr_pem)?;
    Ok(household_client::adopt::public_key_sha256_hex(
        public_key.der_bytes(),
    ))
}

fn public_key_of_csr(csr_pem: &str) -> Result<SubjectPublicKeyInfo, TrustError> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(csr_pem.as_bytes())
        .map_err(|e| TrustError::MalformedCsr(e.to_string()))?;
    if !CSR_PEM_LABELS.contains(&pem.label.as_str()) {
        return Err(TrustError::MalformedCsr(format!(
            "a PEM {:?} block, not a CERTIFICATE REQUEST",
            pem.label
        )));
    }
    let (_, csr) = X509CertificationRequest::from_der(&pem.contents)
        .map_err(|e| TrustError::MalformedCsr(e.to_string()))?;
    let key_info = &csr.certification_request_info.subject_pki;
    check_key_kind(key_info)?;
    csr.verify_signature()
        .map_err(|_| TrustError::CsrSignature)?;
    SubjectPublicKeyInfo::from_der(key_info.raw)
        .map_err(|e| TrustError::MalformedCsr(e.to_string()))
}

/// Accepts ECDSA P-256 and Ed25519 keys; names anything else for the error message.
fn check_key_kind(key_info: &X509PublicKeyInfo<'_>) -> Result<(), TrustError> {
    let algorithm = &key_info.algorithm.algorithm;
    if *algorithm == OID_SIG_ED25519 {
        return Ok(());
    }
    if *algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = key_info
            .algorithm
            .parameters
            .as_ref()
            .and_then(|parameters| Oid::try_from(parameters).ok());
        return match curve {
            Some(curve) if curve == OID_EC_P256 => Ok(()),
            Some(curve) if curve == OID_NIST_EC_P384 => Err(unsupported("ECDSA P-384")),
            Some(curve) if curve == OID_NIST_EC_P521 => Err(unsupported("ECDSA P-521")),
            Some(curve) => Err(unsupported(&format!("ECDSA on curve {curve}"))),
            None => Err(unsupported("ECDSA without a named curve")),
        };
    }
    if *algorithm == OID_PKCS1_RSAENCRYPTION {
        let bits = match key_info.parsed() {
            Ok(PublicKey::RSA(rsa)) => format!(" ({} bits)", rsa.key_size()),
            _ => String::new(),
        };
        return Err(unsupported(&format!("RSA{bits}")));
    }
    Err(unsupported(&format!("of algorithm {algorithm}")))
}

fn unsupported(what: &str) -> TrustError {
    TrustError::UnsupportedKey(what.to_owned())
}

/// Identity ids go into a URI and a common name unescaped, so they are kept to a
/// character set that needs no escaping in either. A ':' in particular would make
/// `household:device:a:b` ambiguous.
fn check_identity_id(id: &str) -> Result<(), TrustError> {
    let is_plain = !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if is_plain {
        Ok(())
    } else {
        Err(TrustError::InvalidIdentityId(id.to_owned()))
    }
}

/// `household:guardian:<id>` or `household:device:<id>`; `None` for any other URI.
fn parse_identity_uri(uri: &str) -> Option<ClientSubject> {
    let rest = uri.strip_prefix(IDENTITY_SCHEME)?.strip_prefix(':')?;
    let (role, identity_id) = rest.split_once(':')?;
    let role = match role {
        "guardian" => ClientRole::Guardian,
        "device" => ClientRole::Device,
        _ => return None,
    };
    check_identity_id(identity_id).ok()?;
    Some(ClientSubject {
        role,
        identity_id: identity_id.to_owned(),
    })
}

/// The certificate's end of validity, in whole seconds as X.509 writes it, as
/// microseconds since the epoch.
fn unix_micros(params: &CertificateParams) -> i64 {
    params.not_after.unix_timestamp().saturating_mul(1_000_000)
}
