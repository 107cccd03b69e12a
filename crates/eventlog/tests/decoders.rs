//! The disk decoders on damaged input: thousands of mutated blocks, WAL files and
//! manifest edits, built from valid encodings. They must reject or stop, never panic.
//! (The `cargo fuzz` targets in `fuzz/` drive the same entry points without a bound.)

use eventlog::fuzzing;
use eventlog::{Db, Durability, Options};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn mutate(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
    let mut v = base.to_vec();
    match rng.next() % 4 {
        0 => {
            for _ in 0..1 + rng.next() % 4 {
                if !v.is_empty() {
                    let at = (rng.next() % v.len() as u64) as usize;
                    v[at] ^= 1 << (rng.next() % 8);
                }
            }
        }
        1 => v.truncate((rng.next() % (v.len() as u64 + 1)) as usize),
        2 => {
            if !v.is_empty() {
                let at = (rng.next() % v.len() as u64) as usize;
                v[at] = rng.next() as u8;
            }
        }
        _ => v = (0..rng.next() % 300).map(|_| rng.next() as u8).collect(),
    }
    v
}

/// Valid files from a real database: (WAL bytes, table bytes).
fn real_files() -> (Vec<u8>, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        block_size_bytes: 256,
        ..Options::default()
    };
    let db = Db::open(dir.path(), opts.clone()).unwrap();
    for i in 0..200u32 {
        db.put(
            &i.to_be_bytes(),
            format!("value {i} value value").as_bytes(),
            Durability::Buffered,
        )
        .unwrap();
    }
    db.flush().unwrap();
    db.delete_range(
        &5u32.to_be_bytes(),
        &9u32.to_be_bytes(),
        Durability::Buffered,
    )
    .unwrap();
    db.put(b"k", b"v", Durability::Buffered).unwrap();
    drop(db);
    let mut wal = Vec::new();
    let mut table = Vec::new();
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let p = e.unwrap().path();
        match p.extension().and_then(|e| e.to_str()) {
            Some("log") => wal.extend(std::fs::read(&p).unwrap()),
            Some("sst") => table = std::fs::read(&p).unwrap(),
            _ => {}
        }
    }
    (wal, table)
}

#[test]
fn mutated_inputs_never_panic() {
    let (wal, table) = real_files();
    assert!(fuzzing::decode_wal(&wal) > 0, "the WAL seed decodes");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    // Stored blocks: the first data block of the table (offset 0, size unknown) — feed
    // prefixes so some are whole blocks with valid trailers.
    for _ in 0..4000 {
        let len = 1 + (rng.next() % 600) as usize;
        let base = &table[..len.min(table.len())];
        fuzzing::decode_block(base);
        fuzzing::decode_block(&mutate(&mut rng, base));
        fuzzing::decode_block_contents(mutate(&mut rng, base));
    }
    for _ in 0..4000 {
        let m = mutate(&mut rng, &wal);
        fuzzing::decode_wal(&m);
        fuzzing::decode_wal(&fuzzing::frame_record(&m[..m.len().min(200)]));
        fuzzing::decode_version_edit(&m[..m.len().min(100)]);
    }
}
