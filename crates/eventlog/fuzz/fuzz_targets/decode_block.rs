//! Stored blocks (with trailer) and raw block contents must decode or fail cleanly.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    eventlog::fuzzing::decode_block(data);
    eventlog::fuzzing::decode_block_contents(data.to_vec());
});
