//! Everything the responder does with an untrusted datagram: open the seal
//! (base64, AES-CBC, padding, UTF-8) and parse commands and replies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fuzz_target!(|data: &[u8]| {
    static KEY: OnceLock<cst_legacy::Key> = OnceLock::new();
    let key = KEY.get_or_init(|| {
        "3F2A9C1B7D4E8A60"
            .parse::<cst_legacy::DeviceId>()
            .expect("a valid id")
            .key()
    });
    cst_legacy::fuzzing::datagram(key, data);
});
