//! Sealing: how the CST apps encrypt a command or reply.
//!
//! `sealed(text) = base64(IV ‖ AES-128-CBC-PKCS#7(key, IV, text))` with
//! `key = SHA-256(device ID)[..16]` and a fresh random IV. The base64 is
//! wrapped as Android's `Base64.DEFAULT` wraps it (76-character lines, each
//! ended by `\n`, the last one too); opening ignores `\n`, `\r` and spaces
//! and, like Android's decoder, accepts the `=` padding left off.
//!
//! The key derives from the device ID alone, which the child is shown: this
//! is obfuscation, not security. The responder's replay window and rate limit
//! (see [`crate::responder`]) are what we add on top.

use std::fmt;
use std::str::FromStr;

use aes::Aes128;
use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use sha2::{Digest, Sha256};

type Encryptor = cbc::Encryptor<Aes128>;
type Decryptor = cbc::Decryptor<Aes128>;

const IV_LEN: usize = 16;
const LINE_LEN: usize = 76;

/// Standard alphabet, `=` padding written; on reading, padding may be there
/// or not (`android.util.Base64.decode` accepts both), but trailing bits must
/// be zero, so one byte string has one spelling up to whitespace and padding.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A CST device ID: 16 hexadecimal digits, kept in upper case as the apps show it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct DeviceId(String);

/// A device ID that is not 16 hexadecimal digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("device_id must be 16 hexadecimal digits (0-9, A-F), got {0:?}")]
pub struct BadDeviceId(pub String);

impl FromStr for DeviceId {
    type Err = BadDeviceId;

    /// Accepts lower case too (a parent may type it so) and keeps it upper
    /// case: the key is derived from the upper-case text the child shows.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = s.trim();
        if trimmed.len() == 16 && trimmed.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Self(trimmed.to_ascii_uppercase()))
        } else {
            Err(BadDeviceId(s.to_owned()))
        }
    }
}

impl DeviceId {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The AES-128 key: the first 16 bytes of SHA-256 of the ID's text.
    pub fn key(&self) -> Key {
        let digest = Sha256::digest(self.0.as_bytes());
        let mut key = [0u8; 16];
        key.copy_from_slice(&digest[..16]);
        Key(key)
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceId({})", self.0)
    }
}

/// The AES key derived from a device ID; derive it once, seal many times.
#[derive(Clone, PartialEq, Eq)]
pub struct Key([u8; 16]);

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(..)")
    }
}

impl Key {
    pub fn bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// Seals `text` with a fresh random IV.
    pub fn seal(&self, text: &str) -> String {
        self.seal_with_iv(text, rand::random())
    }

    /// Seals `text` with the given IV: for known-answer tests only; real
    /// messages must use [`Key::seal`].
    pub fn seal_with_iv(&self, text: &str, iv: [u8; IV_LEN]) -> String {
        let ciphertext = Encryptor::new(&self.0.into(), &iv.into())
            .encrypt_padded_vec_mut::<Pkcs7>(text.as_bytes());
        let mut raw = Vec::with_capacity(IV_LEN + ciphertext.len());
        raw.extend_from_slice(&iv);
        raw.extend_from_slice(&ciphertext);
        wrap_base64(&BASE64.encode(raw))
    }

    /// Opens a sealed text: whitespace-tolerant base64, IV, AES-CBC, PKCS#7,
    /// UTF-8. Any failure is an [`OpenError`]; callers on the network drop
    /// such datagrams silently, as the Android child does.
    pub fn open(&self, sealed: &str) -> Result<String, OpenError> {
        self.open_raw(&decode(sealed)?)
    }

    /// Opens the bytes a sealed text carries (see [`decode`]): IV, AES-CBC,
    /// PKCS#7, UTF-8.
    pub fn open_raw(&self, raw: &[u8]) -> Result<String, OpenError> {
        if raw.len() < 2 * IV_LEN || !raw.len().is_multiple_of(IV_LEN) {
            return Err(OpenError::Length(raw.len()));
        }
        let (iv, ciphertext) = raw.split_at(IV_LEN);
        let iv: [u8; IV_LEN] = iv.try_into().map_err(|_| OpenError::Length(raw.len()))?;
        let plaintext = Decryptor::new(&self.0.into(), &iv.into())
            .decrypt_padded_vec_mut::<Pkcs7>(ciphertext)
            .map_err(|_| OpenError::Padding)?;
        String::from_utf8(plaintext).map_err(|_| OpenError::Utf8)
    }
}

/// The bytes a sealed text carries, `IV ‖ ciphertext`: the base64 decoded,
/// ignoring `\n`, `\r` and spaces, with or without `=` padding. Texts that
/// differ only in wrapping or padding give the same bytes, so these (not the
/// text) are what identifies a sealed message.
pub fn decode(sealed: &str) -> Result<Vec<u8>, OpenError> {
    let compact: Vec<u8> = sealed
        .bytes()
        .filter(|b| !matches!(b, b'\n' | b'\r' | b' '))
        .collect();
    BASE64.decode(compact).map_err(|_| OpenError::Base64)
}

/// Why a sealed text did not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("not base64")]
    Base64,
    #[error("{0} bytes after base64: not an IV and whole AES blocks")]
    Length(usize),
    #[error("bad padding (wrong key or damaged data)")]
    Padding,
    #[error("plaintext is not UTF-8")]
    Utf8,
}

/// Wraps base64 as `android.util.Base64.DEFAULT` does.
fn wrap_base64(encoded: &str) -> String {
    let mut out = String::with_capacity(encoded.len() + encoded.len() / LINE_LEN + 1);
    for line in encoded.as_bytes().chunks(LINE_LEN) {
        // base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out
}
