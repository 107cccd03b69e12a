//! The known-answer vectors made with Java's JCE, as the apps seal.
//!
//! `cst-legacy-vectors.json` beside this file is a verbatim copy of
//! `shared/protocols/cst-legacy-vectors.json`: CI builds a clone of this
//! repository alone, so the vectors travel with it. [`the_copy_is_verbatim`]
//! pins its SHA-256 to the one recorded when it was copied; a changed file
//! must come from the shared protocol folder again, with the new hash here.

use cst_legacy::DeviceId;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// SHA-256 of `shared/protocols/cst-legacy-vectors.json` as copied.
const VECTORS_SHA256: &str = "bf9ce80e6bb8a744e0628ded87885df83388bb25c7ee2de17cd1f34bd97b604b";
const VECTORS_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cst-legacy-vectors.json");

#[derive(Deserialize)]
struct Vectors {
    vectors: Vec<Vector>,
}

#[derive(Deserialize)]
struct Vector {
    device_id: String,
    key_hex: String,
    iv_hex: String,
    plaintext: String,
    base64_android_default: String,
}

fn vectors() -> Vec<Vector> {
    let text = std::fs::read_to_string(VECTORS_PATH).expect("vectors file");
    serde_json::from_str::<Vectors>(&text)
        .expect("vectors parse")
        .vectors
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

#[test]
fn the_copy_is_verbatim() {
    let bytes = std::fs::read(VECTORS_PATH).expect("vectors file");
    assert_eq!(hex(&Sha256::digest(&bytes)), VECTORS_SHA256);
}

#[test]
fn there_are_vectors() {
    assert_eq!(vectors().len(), 8);
}

#[test]
fn keys_are_the_first_half_of_sha256_of_the_id() {
    for v in vectors() {
        let id: DeviceId = v.device_id.parse().unwrap();
        assert_eq!(hex(id.key().bytes()), v.key_hex, "{}", v.device_id);
    }
}

#[test]
fn sealing_with_the_vector_iv_gives_the_apps_bytes() {
    for v in vectors() {
        let key = v.device_id.parse::<DeviceId>().unwrap().key();
        assert_eq!(
            key.seal_with_iv(&v.plaintext, unhex(&v.iv_hex)),
            v.base64_android_default,
            "{}",
            v.plaintext
        );
    }
}

#[test]
fn opening_the_apps_bytes_gives_the_plaintext_wrapped_or_not() {
    for v in vectors() {
        let key = v.device_id.parse::<DeviceId>().unwrap().key();
        assert_eq!(key.open(&v.base64_android_default).unwrap(), v.plaintext);
        let unwrapped: String = v.base64_android_default.split_whitespace().collect();
        assert_eq!(key.open(&unwrapped).unwrap(), v.plaintext);
        let crlf = v.base64_android_default.replace('\n', "\r\n");
        assert_eq!(key.open(&crlf).unwrap(), v.plaintext);
    }
}

#[test]
fn a_missing_padding_is_accepted_as_androids_decoder_accepts_it() {
    let mut padded = 0;
    for v in vectors() {
        let key = v.device_id.parse::<DeviceId>().unwrap().key();
        let compact: String = v.base64_android_default.split_whitespace().collect();
        let unpadded = compact.trim_end_matches('=');
        padded += usize::from(unpadded.len() != compact.len());
        assert_eq!(key.open(unpadded).unwrap(), v.plaintext, "{}", v.plaintext);
        assert_eq!(
            cst_legacy::seal::decode(unpadded).unwrap(),
            cst_legacy::seal::decode(&v.base64_android_default).unwrap(),
            "the same bytes, padded or not"
        );
    }
    assert!(padded > 0, "some vectors end in padding");
}

#[test]
fn a_random_iv_still_opens_and_differs_each_time() {
    let key = "3F2A9C1B7D4E8A60".parse::<DeviceId>().unwrap().key();
    let (a, b) = (key.seal("GET_TIME_LEFT"), key.seal("GET_TIME_LEFT"));
    assert_ne!(a, b);
    assert_eq!(key.open(&a).unwrap(), "GET_TIME_LEFT");
}
