//! WAL bytes, framed or as a bare payload, and manifest edits must decode or stop cleanly.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    eventlog::fuzzing::decode_wal(data);
    // The same bytes as the payload of a valid frame reach the operation decoder.
    eventlog::fuzzing::decode_wal(&eventlog::fuzzing::frame_record(data));
    eventlog::fuzzing::decode_version_edit(data);
});
