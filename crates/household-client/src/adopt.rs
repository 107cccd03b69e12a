//! Adoption: a guardian brings an agent heard on the network into the household without
//! typing a pairing code on the child's device.
//!
//! The agent keeps a key (the one it will be enrolled with) and a secret of its own. For
//! each hub it hears it shows a six-digit **verification code**, an HMAC keyed with its
//! secret over the hub's CA fingerprint and its own key's fingerprint
//! ([`verification_code`]). The code exists only on the device's screen: neither the hub
//! nor anyone on the network can compute it, which is what makes typing it worth
//! something. A guardian reads it there and gives it to their hub
//! (`household devices adopt HOST --code …`).
//!
//! The agent polls the hubs it hears (`Agent.Adopt`), over TLS checked against the CA
//! fingerprint the hub announced. When a guardian is adopting it, the hub answers first
//! with a proof keyed with the code the guardian typed ([`proof`] for [`Side::Hub`]); the
//! agent checks it against its own code and only then answers with its proof
//! ([`Side::Agent`]), on which the hub signs the agent's CSR. So:
//!
//! - a hub whose guardian did not read the code off this device (a neighbour's) cannot
//!   make a proof the agent accepts, and learns nothing it could test guesses against
//!   offline: the agent never sends anything keyed with its code first;
//! - both proofs cover both nonces, the hub's CA fingerprint and the agent's key
//!   fingerprint, so a proof cannot be replayed into another exchange, to another hub,
//!   or for another key.

use household_proto::v1::{self, agent_client::AgentClient};
use rcgen::{KeyPair, PublicKeyData as _};
use sha2::{Digest, Sha256};

use crate::channel::connect;
use crate::pin::{PinError, household_ca_with_fingerprint};

/// Digits in a verification code.
pub const CODE_DIGITS: usize = 6;
/// Bytes in each side's nonce.
pub const NONCE_BYTES: usize = 32;
/// Domain separation for the code and each proof, so no one HMAC can stand for another.
const CODE_LABEL: &[u8] = b"household.v1 adoption code";
const HUB_LABEL: &[u8] = b"household.v1 adoption hub proof";
const AGENT_LABEL: &[u8] = b"household.v1 adoption agent proof";

/// Which side makes a proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The hub, keyed with the code the guardian typed; sent first.
    Hub,
    /// The agent, keyed with the code it shows; sent only after the hub's matched.
    Agent,
}

/// Everything an adoption's proofs cover.
#[derive(Debug, Clone, Copy)]
pub struct Exchange<'a> {
    /// The hub's CA fingerprint, 64 lowercase hex digits.
    pub ca_sha256_hex: &'a str,
    /// The agent's key fingerprint ([`key_sha256_hex`]).
    pub key_sha256_hex: &'a str,
    pub agent_nonce: &'a [u8],
    pub hub_nonce: &'a [u8],
}

/// Why an agent's ask of a hub failed.
#[derive(Debug, thiserror::Error)]
pub enum AdoptError {
    #[error(transparent)]
    Pin(#[from] PinError),
    #[error("connecting to the hub: {0}")]
    Connect(#[from] tonic::transport::Error),
    #[error("the hub refused: {}", .0.message())]
    Refused(tonic::Status),
    /// The hub's proof was made with another code than the one this device shows: its
    /// guardian typed a wrong code, or it is not a hub whose guardian saw this screen.
    #[error("the hub's proof does not match this device's verification code")]
    CodeMismatch,
    #[error("the hub answered the adoption without an enrollment")]
    NoEnrollment,
}

/// What the agent tells a hub about itself when it asks.
#[derive(Debug, Clone)]
pub struct Offer {
    /// A CSR for the agent's adoption key (PEM).
    pub csr_pem: String,
    pub hostname: String,
    pub platform: String,
    pub software_version: String,
}

/// SHA-256 of a key's public half (the raw key, as a CSR or certificate carries it), 64
/// lowercase hex digits: what an agent announces instead of anything that identifies the
/// device to a CST parent app.
pub fn key_sha256_hex(key_pem: &str) -> Result<String, rcgen::Error> {
    let key = KeyPair::from_pem(key_pem)?;
    Ok(public_key_sha256_hex(key.der_bytes()))
}

/// SHA-256 of a raw public key, 64 lowercase hex digits.
pub fn public_key_sha256_hex(public_key: &[u8]) -> String {
    hex(&Sha256::digest(public_key))
}

/// The code this agent shows for the hub with CA `ca_sha256_hex`: six decimal digits
/// of an HMAC keyed with the agent's `secret`.
pub fn verification_code(secret: &[u8], ca_sha256_hex: &str, key_sha256_hex: &str) -> String {
    let mac = hmac_sha256(
        secret,
        &[
            CODE_LABEL,
            ca_sha256_hex.as_bytes(),
            key_sha256_hex.as_bytes(),
        ],
    );
    let number = u64::from_be_bytes(mac[..8].try_into().unwrap_or_default()) % 1_000_000;
    format!("{number:06}")
}

/// The code as a person types it (`"471 920"`, `"4 7 1 9 2 0"`) in its plain form,
/// or `None` if it is not six digits.
pub fn normalize_code(text: &str) -> Option<String> {
    let digits: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    (digits.len() == CODE_DIGITS && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}

/// The code as the agent shows it: digits apart, easy to read aloud ("4 7 1 9 2 0").
pub fn spaced(code: &str) -> String {
    code.chars().map(String::from).collect::<Vec<_>>().join(" ")
}

/// One side's proof that it holds `code`, over everything the exchange is about.
pub fn proof(side: Side, code: &str, exchange: &Exchange<'_>) -> [u8; 32] {
    let label = match side {
        Side::Hub => HUB_LABEL,
        Side::Agent => AGENT_LABEL,
    };
    hmac_sha256(
        code.as_bytes(),
        &[
            label,
            exchange.ca_sha256_hex.as_bytes(),
            exchange.key_sha256_hex.as_bytes(),
            exchange.agent_nonce,
            exchange.hub_nonce,
        ],
    )
}

/// Compares two proofs in time that does not depend on where they differ.
pub fn proofs_equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Asks the hub at `address` (announcing CA `ca_sha256_hex`) whether a guardian is
/// adopting this agent, and goes through with it if so: `Ok(None)` when nobody is,
/// `Ok(Some(enrollment))` once enrolled with the key `offer.csr_pem` is for.
///
/// The hub's chain must hold the announced CA, and every later byte goes over a channel
/// that trusts that CA alone. A hub whose proof does not match `code` is told so (the
/// adoption fails there) and the error is [`AdoptError::CodeMismatch`].
pub async fn ask(
    address: &str,
    ca_sha256_hex: &str,
    key_sha256_hex: &str,
    code: &str,
    offer: &Offer,
) -> Result<Option<v1::EnrollResponse>, AdoptError> {
    let ca_pem = household_ca_with_fingerprint(address, ca_sha256_hex).await?;
    let mut hub = AgentClient::new(connect(address, &ca_pem, None).await?);
    let agent_nonce: [u8; NONCE_BYTES] = rand_bytes();
    let request = v1::AdoptRequest {
        csr_pem: offer.csr_pem.clone(),
        hostname: offer.hostname.clone(),
        platform: offer.platform.clone(),
        software_version: offer.software_version.clone(),
        agent_nonce: agent_nonce.to_vec(),
        ..Default::default()
    };
    let answer = hub
        .adopt(request.clone())
        .await
        .map_err(AdoptError::Refused)?
        .into_inner();
    if !answer.pending {
        return Ok(None);
    }
    let exchange = Exchange {
        ca_sha256_hex,
        key_sha256_hex,
        agent_nonce: &agent_nonce,
        hub_nonce: &answer.hub_nonce,
    };
    let expected = proof(Side::Hub, code, &exchange);
    if !proofs_equal(&expected, &answer.hub_proof) {
        let refusal = v1::AdoptRequest {
            hub_nonce: answer.hub_nonce.clone(),
            refused: true,
            ..request
        };
        // The hub learns of the mismatch so its guardian hears at once; whether it
        // listens changes nothing here.
        let _ = hub.adopt(refusal).await;
        return Err(AdoptError::CodeMismatch);
    }
    let confirmation = v1::AdoptRequest {
        hub_nonce: answer.hub_nonce.clone(),
        agent_proof: proof(Side::Agent, code, &exchange).to_vec(),
        ..request
    };
    let adopted = hub
        .adopt(confirmation)
        .await
        .map_err(AdoptError::Refused)?
        .into_inner();
    adopted.enrollment.map(Some).ok_or(AdoptError::NoEnrollment)
}

/// `N` random bytes from a generator seeded by the operating system.
pub fn rand_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::Rng::fill(&mut rand::rng(), &mut bytes[..]);
    bytes
}

/// HMAC-SHA256 (RFC 2104) of `parts`, each preceded by its length so that ("ab", "c")
/// and ("a", "bc") differ.
fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut message = Vec::new();
    for part in parts {
        message.extend_from_slice(&(part.len() as u64).to_be_bytes());
        message.extend_from_slice(part);
    }
    hmac(key, &message)
}

/// HMAC-SHA256 (RFC 2104).
fn hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(message);
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CA: &str = "3b9f1c0d2e9a7b45c3a1d2e3f405162738495a6b7c8d9e0f1a2b3c4d5e6f7a8b";
    const KEY: &str = "0f1a2b3c4d5e6f7a8b3b9f1c0d2e9a7b45c3a1d2e3f405162738495a6b7c8d9e";

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test cases 2 (a short key) and 6 (a key longer than a block).
        assert_eq!(
            hex(&hmac(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex(&hmac(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
        assert_ne!(
            hmac_sha256(b"k", &[b"ab", b"c"]),
            hmac_sha256(b"k", &[b"a", b"bc"])
        );
    }

    #[test]
    fn the_code_depends_on_the_secret_the_hub_and_the_key() {
        let code = verification_code(b"secret one", CA, KEY);
        assert_eq!(normalize_code(&code).as_deref(), Some(code.as_str()));
        assert_eq!(code, verification_code(b"secret one", CA, KEY), "stable");
        let other_hub = verification_code(b"secret one", KEY, KEY);
        let other_secret = verification_code(b"secret two", CA, KEY);
        assert!(code != other_hub && code != other_secret);
        assert_eq!(spaced("471920"), "4 7 1 9 2 0");
        assert_eq!(normalize_code("4 7 1 9 2 0").as_deref(), Some("471920"));
        assert_eq!(normalize_code("47192"), None);
        assert_eq!(normalize_code("47192x"), None);
    }

    #[test]
    fn proofs_match_only_for_the_same_code_side_and_exchange() {
        let exchange = Exchange {
            ca_sha256_hex: CA,
            key_sha256_hex: KEY,
            agent_nonce: &[1; NONCE_BYTES],
            hub_nonce: &[2; NONCE_BYTES],
        };
        let hub = proof(Side::Hub, "471920", &exchange);
        assert!(proofs_equal(&hub, &proof(Side::Hub, "471920", &exchange)));
        assert!(!proofs_equal(&hub, &proof(Side::Hub, "471921", &exchange)));
        assert!(!proofs_equal(
            &hub,
            &proof(Side::Agent, "471920", &exchange)
        ));
        let replayed = Exchange {
            hub_nonce: &[3; NONCE_BYTES],
            ..exchange
        };
        assert!(!proofs_equal(&hub, &proof(Side::Hub, "471920", &replayed)));
        assert!(!proofs_equal(&hub, &hub[..31]));
    }

    #[test]
    fn a_key_fingerprint_is_of_its_public_half() {
        let (key_pem, _) = crate::new_key_and_csr("test").unwrap();
        let fingerprint = key_sha256_hex(&key_pem).unwrap();
        assert_eq!(fingerprint.len(), 64);
        let key = KeyPair::from_pem(&key_pem).unwrap();
        assert_eq!(fingerprint, public_key_sha256_hex(key.der_bytes()));
    }
}
