//! The household's own certificate authority, and everything the hub does with it.
//!
//! The hub makes one CA the first time it starts and keeps it for life: every guardian
//! and every device is enrolled against its fingerprint (the pairing code carries it), so
//! a new CA would orphan the whole household. From it the hub issues
//!
//! - its own **server certificate**, naming every address a client may dial, so clients
//!   verify the hub like any TLS server, but against the household CA alone;
//! - a **client certificate** for each guardian and device that enrolls. Its only claim
//!   that matters is one SAN URI, `household:guardian:<ID>` or `household:device:<ID>`:
//!   the role and the identity come from there, never from anything the client asked for.
//!
//! The files live in one directory:
//!
//! | file         | what                                   | mode |
//! | ------------ | -------------------------------------- | ---- |
//! | `ca.key`     | the CA's private key (PKCS#8 PEM)      | 0600 |
//! | `ca.pem`     | the CA certificate                     | 0644 |
//! | `server.key` | the hub's TLS key                      | 0600 |
//! | `server.pem` | the hub's certificate, then the CA's   | 0644 |
//!
//! Each is written whole or not at all (temporary file, fsync, rename, fsync of the
//! directory), so a crash never leaves half a key behind.
//!
//! One idea per file: [`ca`] keeps the authority, [`server_cert`] and [`client_cert`]
//! issue and read certificates, [`tls`] turns them into the TLS port's settings and
//! handshakes, and [`files`] writes them to disk. A guardian phone's other credential,
//! the bearer token, is [`crate::token`].

mod ca;
mod client_cert;
mod files;
mod server_cert;
pub mod tls;

#[cfg(test)]
mod tests;

use std::fmt;
use std::fmt::Write as _;
use std::path::PathBuf;

use sha2::{Digest, Sha256};

pub use ca::HouseholdCa;
pub use client_cert::{IssuedClientCert, csr_key_sha256_hex, subject_from_peer_cert};
pub use server_cert::{ServerCertificate, host_name};

/// Everything that can go wrong while keeping the CA or issuing and reading certificates.
///
/// The variants separate what the hub can blame on a client (a bad CSR, an unsupported
/// key, a certificate without an identity: the Enroll RPC answers `INVALID_ARGUMENT` or
/// `UNAUTHENTICATED`) from what is the hub's own trouble (files, permissions, a broken CA
/// directory), which must stop it rather than let it run with a guessed identity.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// Reading or writing one of the trust files failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done, in words: "read", "write", "create directory".
        action: &'static str,
        /// The file or directory it was done to.
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A private key file can be read by others than its owner. The child on the hub's
    /// own machine must not be able to copy the household's keys, so the hub refuses to
    /// use such a key rather than quietly fixing or ignoring it.
    #[error("{} is readable by others (mode {mode:o}); run chmod 600 on it", path.display())]
    KeyFileTooOpen {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// `ca.pem` exists but `ca.key` does not: the household's CA is damaged. Making a new
    /// one would orphan every enrolled guardian and device, so that is left to a human.
    #[error(
        "{} exists but its key {} is missing; restore it from a backup",
        certificate.display(),
        key.display()
    )]
    CaKeyMissing {
        /// The CA certificate that was found.
        certificate: PathBuf,
        /// The key that should be beside it.
        key: PathBuf,
    },
    /// A key file does not belong to the certificate beside it.
    #[error("{} does not hold the key of the certificate beside it", path.display())]
    KeyMismatch {
        /// The key file.
        path: PathBuf,
    },
    /// A certificate or key on disk could not be parsed.
    #[error("{} is not a valid {what}: {detail}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What it should have been: "certificate", "private key".
        what: &'static str,
        /// What the parser said.
        detail: String,
    },
    /// rcgen could not build or sign a certificate.
    #[error("cannot make a certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    /// A name asked for in the server certificate is neither an IP address nor a DNS name.
    #[error("{0:?} cannot be a server name: it must be an IP address or an ASCII host name")]
    InvalidServerName(String),
    /// An identity id cannot be written into a `household:<role>:<ID>` URI.
    #[error("{0:?} cannot be an identity id: use ASCII letters, digits, '-', '_' and '.'")]
    InvalidIdentityId(String),
    /// The certificate signing request is not PEM, not a CSR, or not DER inside.
    #[error("not a certificate signing request: {0}")]
    MalformedCsr(String),
    /// The CSR's self-signature does not verify: whoever sent it may not hold the key.
    #[error("the certificate signing request's signature does not verify")]
    CsrSignature,
    /// The CSR's key is of a kind the household does not issue certificates for.
    #[error("unsupported key {0}: use ECDSA P-256 or Ed25519")]
    UnsupportedKey(String),
    /// A peer's certificate could not be parsed, or names no household identity.
    #[error("the peer certificate carries no household identity: {0}")]
    NoPeerIdentity(String),
    /// The server's TLS settings could not be made from its certificate and key.
    #[error("cannot set up the server's TLS: {0}")]
    ServerTls(String),
}

/// Whether a client acts for a guardian or is a child's device. It decides which
/// services a client may call, so it comes only from the certificate the hub issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientRole {
    /// A guardian: may change budgets, grant time, answer requests.
    Guardian,
    /// A child's device: may report usage and ask for time.
    Device,
}

impl ClientRole {
    /// The word used for the role inside the SAN URI.
    fn as_str(self) -> &'static str {
        match self {
            ClientRole::Guardian => "guardian",
            ClientRole::Device => "device",
        }
    }
}

impl fmt::Display for ClientRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who a client certificate speaks for: a role and the identity's id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientSubject {
    /// Guardian or device.
    pub role: ClientRole,
    /// The guardian's or device's id, as the event log records it.
    pub identity_id: String,
}

/// SHA-256 of `bytes` as 64 lowercase hex digits: the form fingerprints take in pairing
/// codes, in mDNS TXT records and in the event log, so they can be compared as text.
pub fn sha256_hex(bytes: &[u8]) -> String {
    to_hex(&Sha256::digest(bytes))
}

/// Lowercase hex of `bytes`.
fn to_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut hex, byte| {
            // Writing to a String cannot fail.
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}
