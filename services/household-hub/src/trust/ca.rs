//! The household CA: made once, then loaded on every start.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SerialNumber,
};
use sha2::{Digest, Sha256};
use tracing::info;
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer as _;
use x509_parser::time::ASN1Time;

use super::{TrustError, files, to_hex};

/// The CA's private key, beside the certificate.
const CA_KEY_FILE: &str = "ca.key";
/// The CA certificate, the one every client pins.
const CA_CERT_FILE: &str = "ca.pem";
/// How long the CA lives. Replacing it means enrolling every guardian and device again,
/// so it should outlive the hardware it runs on.
const CA_VALIDITY: Duration = Duration::from_secs(20 * 365 * 24 * 60 * 60);
/// How far back a certificate's validity starts. Home machines' clocks drift, and a
/// certificate that is "not yet valid" on a slow clock locks a device out.
const CLOCK_SKEW_ALLOWANCE: Duration = Duration::from_secs(60 * 60);

/// The household's certificate authority: its certificate and the key that signs with it.
///
/// There is one per household, made by [`HouseholdCa::load_or_create`] the first time the
/// hub starts and loaded unchanged ever after, because every client pins its fingerprint.
pub struct HouseholdCa {
    cert_pem: String,
    cert_der: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
}

impl HouseholdCa {
    /// Loads the CA from `dir`, or makes it there if this is the hub's first start.
    ///
    /// `ca.key` alone (without `ca.pem`) is what a crash during the first start leaves:
    /// no certificate was ever shown to anyone, so a fresh CA replaces it. `ca.pem` alone
    /// is a damaged household and an error: see [`TrustError::CaKeyMissing`].
    pub fn load_or_create(dir: &Path) -> Result<HouseholdCa, TrustError> {
        files::ensure_directory(dir)?;
        let key_path = dir.join(CA_KEY_FILE);
        let cert_path = dir.join(CA_CERT_FILE);
        let key_pem = files::read_if_present(&key_path, files::read_private)?;
        let cert_pem = files::read_if_present(&cert_path, files::read_public)?;
        match (key_pem, cert_pem) {
            (Some(key_pem), Some(cert_pem)) => {
                let key = parse_key(&key_path, &key_pem)?;
                let ca = HouseholdCa::from_parts(key, cert_pem, &cert_path, &key_path)?;
                let sha256 = ca.sha256_hex();
                info!(path = %cert_path.display(), sha256, "loaded the household CA");
                Ok(ca)
            }
            (None, Some(_)) => Err(TrustError::CaKeyMissing {
                certificate: cert_path,
                key: key_path,
            }),
            (_, None) => {
                let ca = HouseholdCa::create(&key_path, &cert_path)?;
                let sha256 = ca.sha256_hex();
                info!(path = %cert_path.display(), sha256, "made the household CA");
                Ok(ca)
            }
        }
    }

    /// The CA certificate, PEM: what clients install as their only trust anchor.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate, DER: what the fingerprint is taken of.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// SHA-256 of the CA certificate's DER: the fingerprint a pairing code carries, so
    /// a new client can check the hub before it trusts anything the hub says.
    pub fn sha256(&self) -> [u8; 32] {
        Sha256::digest(&self.cert_der).into()
    }

    /// [`HouseholdCa::sha256`] as 64 lowercase hex digits.
    pub fn sha256_hex(&self) -> String {
        to_hex(&self.sha256())
    }

    /// Writes the CA's key and certificate into `dir` (made if missing), where
    /// [`HouseholdCa::load_or_create`] finds them again. Backups take this copy: the CA
    /// is the one part of a household that cannot be made again.
    pub fn copy_to(&self, dir: &Path) -> Result<(), TrustError> {
        files::ensure_directory(dir)?;
        files::write_private(&dir.join(CA_KEY_FILE), &self.issuer.key().serialize_pem())?;
        files::write_public(&dir.join(CA_CERT_FILE), &self.cert_pem)
    }

    /// What signs the certificates this CA issues.
    pub(super) fn issuer(&self) -> &Issuer<'static, KeyPair> {
        &self.issuer
    }

    /// Makes a new key and a self-signed CA certificate, and writes both: the key first,
    /// so that a certificate on disk always has its key beside it.
    fn create(key_path: &Path, cert_path: &Path) -> Result<HouseholdCa, TrustError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let short_id = to_hex(&rand::random::<[u8; 4]>());
        let mut params = certificate_params(&format!("Household CA {short_id}"), CA_VALIDITY);
        // Path length 0: the household CA signs hubs and clients, never other CAs.
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        // Self-signed: there is no other authority to point at.
        params.use_authority_key_identifier_extension = false;
        let cert = params.self_signed(&key)?;

        files::write_private(key_path, &key.serialize_pem())?;
        files::write_public(cert_path, &cert.pem())?;
        HouseholdCa::from_parts(key, cert.pem(), cert_path, key_path)
    }

    /// Puts a loaded or fresh key and certificate together, after checking that they
    /// belong together: a mismatched pair would sign certificates nobody can verify.
    fn from_parts(
        key: KeyPair,
        cert_pem: String,
        cert_path: &Path,
        key_path: &Path,
    ) -> Result<HouseholdCa, TrustError> {
        let cert_der = pem_contents(cert_path, &cert_pem, "certificate")?;
        let (_, cert) =
            X509Certificate::from_der(&cert_der).map_err(|e| unreadable(cert_path, e))?;
        if cert.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
            return Err(TrustError::KeyMismatch {
                path: key_path.to_owned(),
            });
        }
        let issuer = Issuer::from_ca_cert_der(&cert_der.as_slice().into(), key)
            .map_err(|e| unreadable(cert_path, e))?;
        Ok(HouseholdCa {
            cert_pem,
            cert_der,
            issuer,
        })
    }
}

impl fmt::Debug for HouseholdCa {
    /// Shows the fingerprint only: the key must never reach a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HouseholdCa")
            .field("sha256", &self.sha256_hex())
            .finish_non_exhaustive()
    }
}

/// What every certificate from the household CA starts with: the common name, a random
/// serial (so two certificates for the same key still differ), and a validity from a
/// little before now for `valid_for`, capped at the CA's own lifetime (a certificate that
/// outlives its CA is of no use, and the cap keeps the date arithmetic in range).
pub(super) fn certificate_params(common_name: &str, valid_for: Duration) -> CertificateParams {
    let now = ASN1Time::now().to_datetime();
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.not_before = now - CLOCK_SKEW_ALLOWANCE;
    params.not_after = now + valid_for.min(CA_VALIDITY);
    params.serial_number = Some(random_serial());
    params.use_authority_key_identifier_extension = true;
    params
}

/// A positive 16-byte serial number; RFC 5280 wants at most 20 bytes, positive.
fn random_serial() -> SerialNumber {
    let mut bytes = rand::random::<[u8; 16]>();
    bytes[0] &= 0x7f;
    SerialNumber::from_slice(&bytes)
}

/// Parses a PKCS#8 PEM private key read from `path`.
pub(super) fn parse_key(path: &Path, pem: &str) -> Result<KeyPair, TrustError> {
    KeyPair::from_pem(pem).map_err(|e| TrustError::Unreadable {
        path: path.to_owned(),
        what: "private key",
        detail: e.to_string(),
    })
}

/// The DER inside the first PEM block of `pem`, read from `path`.
pub(super) fn pem_contents(
    path: &Path,
    pem: &str,
    what: &'static str,
) -> Result<Vec<u8>, TrustError> {
    x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .map(|(_, block)| block.contents)
        .map_err(|e| TrustError::Unreadable {
            path: path.to_owned(),
            what,
            detail: e.to_string(),
        })
}

fn unreadable(path: &Path, detail: impl fmt::Display) -> TrustError {
    TrustError::Unreadable {
        path: path.to_owned(),
        what: "certificate",
        detail: detail.to_string(),
    }
}
