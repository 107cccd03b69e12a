//! The known-answer vectors made with Java's JCE, as the apps seal.

use cst_legacy::DeviceId;
use serde::Deserialize;

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
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cst-legacy-vectors.json");
    let text = std::fs::read_to_string(path).expect("vectors file");
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
fn a_random_iv_still_opens_and_differs_each_time() {
    let key = "3F2A9C1B7D4E8A60".parse::<DeviceId>().unwrap().key();
    let (a, b) = (key.seal("GET_TIME_LEFT"), key.seal("GET_TIME_LEFT"));
    assert_ne!(a, b);
    assert_eq!(key.open(&a).unwrap(), "GET_TIME_LEFT");
}
