use super::*;

fn sample() -> PairingCode {
    let mut secret = [0u8; SECRET_BYTES];
    let mut ca_sha256 = [0u8; CA_SHA256_BYTES];
    for (i, byte) in secret.iter_mut().enumerate() {
        *byte = u8::try_from(i * 17).unwrap();
    }
    for (i, byte) in ca_sha256.iter_mut().enumerate() {
        *byte = 255 - u8::try_from(i * 7).unwrap();
    }
    PairingCode::new(secret, ca_sha256)
}

#[test]
fn text_form_is_prefix_secret_and_fingerprint_in_lowercase_hex() {
    let text = sample().to_string();
    assert_eq!(
        text,
        "hh1.00112233445566778899aabbccddeeff.\
         fff8f1eae3dcd5cec7c0b9b2aba49d968f88817a736c655e575049423b342d26"
    );
    assert_eq!(text.len(), 3 + 1 + 32 + 1 + 64);
}

#[test]
fn parsing_the_text_form_gives_the_same_code() {
    let code = sample();
    let parsed: PairingCode = code.to_string().parse().unwrap();
    assert_eq!(parsed, code);
    assert_eq!(parsed.ca_sha256_hex(), to_hex(code.ca_sha256()));
}

#[test]
fn parsing_accepts_upper_case_and_surrounding_whitespace() {
    let code = sample();
    let shouted = format!("  {}\n", code.to_string().to_uppercase());
    assert_eq!(shouted.parse::<PairingCode>().unwrap(), code);
}

#[test]
fn parsing_names_what_is_wrong() {
    let good = sample().to_string();
    let parts: Vec<&str> = good.split('.').collect();

    assert_eq!(
        "hh1.abc".parse::<PairingCode>(),
        Err(PairingCodeError::PartCount { found: 2 })
    );
    assert_eq!(
        format!("hh2.{}.{}", parts[1], parts[2]).parse::<PairingCode>(),
        Err(PairingCodeError::Prefix {
            found: "hh2".into()
        })
    );
    assert_eq!(
        format!("hh1.{}.{}", &parts[1][1..], parts[2]).parse::<PairingCode>(),
        Err(PairingCodeError::Hex {
            part: "secret",
            expected_digits: 32,
            found_chars: 31
        })
    );
    let bad_digit = format!("hh1.{}.{}g", parts[1], &parts[2][1..]);
    assert_eq!(
        bad_digit.parse::<PairingCode>(),
        Err(PairingCodeError::Hex {
            part: "CA fingerprint",
            expected_digits: 64,
            found_chars: 64
        })
    );
    let non_ascii = format!("hh1.{}é.{}", &parts[1][2..], parts[2]);
    assert!(matches!(
        non_ascii.parse::<PairingCode>(),
        Err(PairingCodeError::Hex { part: "secret", .. })
    ));
}

#[test]
fn debug_output_hides_the_secret() {
    let code = sample();
    let debug = format!("{code:?}");
    assert!(!debug.contains(&to_hex(code.secret())), "{debug}");
    assert!(debug.contains(&code.ca_sha256_hex()), "{debug}");
}
