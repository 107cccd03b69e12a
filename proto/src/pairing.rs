//! The pairing code: what a new guardian or device is handed to join the household.
//!
//! A code carries two things. The one-time secret proves to the hub that the holder
//! was invited. The SHA-256 fingerprint of the household CA certificate lets the
//! holder check the hub before trusting it, so even the very first connection (the
//! `Agent.Enroll` call) cannot be intercepted by a machine posing as the hub.
//!
//! Text form: `hh1.SECRET.CA_SHA256`, with SECRET 32 lowercase hex digits (128 bits)
//! and CA_SHA256 64 lowercase hex digits. The `hh1` prefix names the format's version.
//! Parsing accepts upper case and surrounding whitespace, since people copy codes
//! out of terminals and chat messages.

use std::fmt;
use std::str::FromStr;

/// Prefix naming this version of the format.
const PREFIX: &str = "hh1";
/// Bytes of the one-time secret.
pub const SECRET_BYTES: usize = 16;
/// Bytes of the CA certificate fingerprint (SHA-256).
pub const CA_SHA256_BYTES: usize = 32;

/// A parsed pairing code. `Debug` hides the secret, so a code can be logged by
/// accident without giving the invitation away.
#[derive(Clone, PartialEq, Eq)]
pub struct PairingCode {
    secret: [u8; SECRET_BYTES],
    ca_sha256: [u8; CA_SHA256_BYTES],
}

/// Why a text is not a pairing code, naming the part that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PairingCodeError {
    /// The code does not have three dot-separated parts.
    #[error(
        "pairing code must have 3 parts separated by '.' (hh1.SECRET.CA_SHA256), found {found}"
    )]
    PartCount {
        /// How many parts there were.
        found: usize,
    },
    /// The first part is not a known format version.
    #[error("pairing code must start with \"hh1.\", found {found:?}")]
    Prefix {
        /// The prefix found (at most 16 characters of it).
        found: String,
    },
    /// A part has the wrong number of hex digits or a character that is not hex.
    #[error(
        "pairing code {part} must be exactly {expected_digits} hex digits (0-9, a-f), found {found_chars} characters"
    )]
    Hex {
        /// Which part: "secret" or "CA fingerprint".
        part: &'static str,
        /// How many hex digits that part must have.
        expected_digits: usize,
        /// How many characters it had.
        found_chars: usize,
    },
}

impl PairingCode {
    /// A code from its parts; the hub calls this with a fresh random secret and its
    /// CA certificate's SHA-256.
    pub const fn new(secret: [u8; SECRET_BYTES], ca_sha256: [u8; CA_SHA256_BYTES]) -> Self {
        Self { secret, ca_sha256 }
    }

    /// The one-time secret the hub checks (it stores only a hash of it).
    pub const fn secret(&self) -> &[u8; SECRET_BYTES] {
        &self.secret
    }

    /// SHA-256 of the household CA certificate (DER) the holder must see at the hub.
    pub const fn ca_sha256(&self) -> &[u8; CA_SHA256_BYTES] {
        &self.ca_sha256
    }

    /// The CA fingerprint as 64 lowercase hex digits, the form `PairingInvite` and
    /// `GetStatsResponse` show.
    pub fn ca_sha256_hex(&self) -> String {
        to_hex(&self.ca_sha256)
    }
}

impl fmt::Display for PairingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{PREFIX}.{}.{}",
            to_hex(&self.secret),
            to_hex(&self.ca_sha256)
        )
    }
}

impl fmt::Debug for PairingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PairingCode")
            .field("secret", &"<hidden>")
            .field("ca_sha256", &self.ca_sha256_hex())
            .finish()
    }
}

impl FromStr for PairingCode {
    type Err = PairingCodeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = text.trim().split('.').collect();
        let [prefix, secret, ca_sha256] = parts.as_slice() else {
            return Err(PairingCodeError::PartCount { found: parts.len() });
        };
        if !prefix.eq_ignore_ascii_case(PREFIX) {
            return Err(PairingCodeError::Prefix {
                found: prefix.chars().take(16).collect(),
            });
        }
        Ok(Self {
            secret: from_hex(secret, "secret")?,
            ca_sha256: from_hex(ca_sha256, "CA fingerprint")?,
        })
    }
}

/// Lowercase hex of `bytes`.
fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

/// Exactly `N` bytes from `2 * N` hex digits of either case.
fn from_hex<const N: usize>(text: &str, part: &'static str) -> Result<[u8; N], PairingCodeError> {
    let error = || PairingCodeError::Hex {
        part,
        expected_digits: N * 2,
        found_chars: text.chars().count(),
    };
    let digits = text.as_bytes();
    if digits.len() != N * 2 {
        return Err(error());
    }
    let mut bytes = [0u8; N];
    for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
        let high = hex_value(pair[0]).ok_or_else(error)?;
        let low = hex_value(pair[1]).ok_or_else(error)?;
        *byte = (high << 4) | low;
    }
    Ok(bytes)
}

/// The value of one hex digit of either case.
fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
