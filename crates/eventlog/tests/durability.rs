//! Durability defects found in review, one test each: a damaged early WAL must not leave
//! a gap, a new WAL's name must be durable before a write in it is acknowledged, rotated
//! WALs must be closed when their memtable is flushed, and nothing may be acknowledged
//! that cannot be read back.

use std::path::Path;
use std::sync::Arc;

use eventlog::fs::power_loss::{Fate, PowerLossFs};
use eventlog::{
    Compression, Db, Direction, Durability, Error, MAX_BATCH_BYTES, Options, RecoveryMode,
};

fn key(i: u64) -> Vec<u8> {
    format!("key{i:04}").into_bytes()
}

fn keys(db: &Db) -> Vec<Vec<u8>> {
    db.iter(.., Direction::Forward)
        .unwrap()
        .map(|item| item.unwrap().0)
        .collect()
}

fn wal_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    v.sort();
    v
}

/// Keys 0–99 in one WAL file (one record each), keys 100–199 in the next, nothing in
/// tables; then one byte of key 50's record is flipped.
fn two_wals_the_first_damaged_at_key_50(dir: &Path) {
    for range in [0..100, 100..200] {
        let db = Db::open(dir, Options::default()).unwrap();
        for i in range {
            db.put(&key(i), b"value", Durability::Buffered).unwrap();
        }
        drop(db); // no close: the writes stay in the WAL
    }
    let wals = wal_files(dir);
    let first = wals
        .iter()
        .find(|p| std::fs::metadata(p).unwrap().len() > 0)
        .unwrap();
    let mut bytes = std::fs::read(first).unwrap();
    let record = bytes.len() / 100;
    bytes[50 * record + record / 2] ^= 0x40;
    std::fs::write(first, &bytes).unwrap();
}

#[test]
fn a_damaged_early_wal_ends_recovery_there_instead_of_leaving_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    two_wals_the_first_damaged_at_key_50(dir.path());

    let db = Db::open(dir.path(), Options::default()).unwrap();
    assert_eq!(keys(&db), (0..50).map(key).collect::<Vec<_>>());
    let report = db.recovery_report();
    assert_eq!(report.damaged_wals.len(), 1, "{report:?}");
    assert_eq!(report.dropped_wals.len(), 1, "{report:?}");
    assert_eq!(report.records_dropped, 100, "{report:?}");
    assert_eq!(report.dropped_sequences, Some((101, 200)), "{report:?}");

    // The later file is set aside: writing on and reopening does not bring it back
    // behind the gap.
    db.put(b"zz", b"after", Durability::Sync).unwrap();
    drop(db);
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let mut expected: Vec<_> = (0..50).map(key).collect();
    expected.push(b"zz".to_vec());
    assert_eq!(keys(&db), expected);
}

#[test]
fn strict_recovery_refuses_to_open_a_damaged_early_wal() {
    let dir = tempfile::tempdir().unwrap();
    two_wals_the_first_damaged_at_key_50(dir.path());
    let strict = Options {
        recovery_mode: RecoveryMode::Strict,
        ..Options::default()
    };
    match Db::open(dir.path(), strict.clone()) {
        Err(Error::Corruption { reason, .. }) => {
            assert!(reason.contains("100 whole records"), "{reason}");
            assert!(reason.contains("101..=200"), "{reason}");
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("strict recovery opened a database with a damaged WAL"),
    }
    // Nothing was changed: the default mode still finds (and recovers) the same.
    let db = Db::open(dir.path(), Options::default()).unwrap();
    assert_eq!(db.recovery_report().records_dropped, 100);
    drop(db);
    // Once point-in-time recovery has cut the history, strict opens it.
    Db::open(dir.path(), strict).unwrap();
}

#[test]
fn strict_recovery_accepts_a_torn_final_record() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    for i in 0..10 {
        db.put(&key(i), b"value", Durability::Buffered).unwrap();
    }
    drop(db);
    let wal = wal_files(dir.path()).pop().unwrap();
    let len = std::fs::metadata(&wal).unwrap().len();
    let f = std::fs::File::options().write(true).open(&wal).unwrap();
    f.set_len(len - 3).unwrap();
    let strict = Options {
        recovery_mode: RecoveryMode::Strict,
        ..Options::default()
    };
    let db = Db::open(dir.path(), strict).unwrap();
    assert_eq!(keys(&db), (0..9).map(key).collect::<Vec<_>>());
}

#[test]
fn a_sync_write_in_a_new_wal_survives_a_power_cut() {
    let fs = PowerLossFs::new(7);
    let options = |fs: &Arc<PowerLossFs>| Options {
        memtable_bytes: 4 << 10,
        file_system: fs.clone(),
        ..Options::default()
    };
    let db = Db::open("/db", options(&fs)).unwrap();
    // Keep the flush from syncing the directory on the write's behalf.
    fs.refuse_new_files_ending_with(".sst");
    db.put(b"big", &[7u8; 5000], Durability::Buffered).unwrap();
    // The memtable is full: this write freezes it and goes to a new WAL file.
    db.put(b"acknowledged", b"1", Durability::Sync).unwrap();
    fs.set_fate(Fate::Lost);
    let after = fs.cut_power();
    drop(db);
    let db = Db::open("/db", options(&after)).unwrap();
    assert_eq!(db.get(b"acknowledged").unwrap(), Some(b"1".to_vec()));
}

/// Descriptors of this process that point at deleted files in `dir`.
fn deleted_files_held_open(dir: &Path) -> Vec<String> {
    let dir = dir.canonicalize().unwrap();
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .map(|target| target.to_string_lossy().into_owned())
        .filter(|t| t.starts_with(&*dir.to_string_lossy()) && t.ends_with(" (deleted)"))
        .collect()
}

#[test]
fn flushed_wals_are_closed_with_buffered_writes_only() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        dir.path(),
        Options {
            memtable_bytes: 8 << 10,
            ..Options::default()
        },
    )
    .unwrap();
    for i in 0..400 {
        db.put(&key(i), &[b'v'; 100], Durability::Buffered).unwrap();
    }
    db.flush().unwrap();
    assert!(db.stats().flush_count >= 3);
    assert_eq!(deleted_files_held_open(dir.path()), Vec::<String>::new());
}

#[test]
fn a_batch_over_the_limit_is_refused_and_one_at_it_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        dir.path(),
        Options {
            compression: Compression::None,
            ..Options::default()
        },
    )
    .unwrap();
    let too_big = vec![1u8; 70 << 20];
    match db.put(b"too big", &too_big, Durability::Sync) {
        Err(Error::BatchTooLarge { bytes, limit }) => {
            assert_eq!(limit, MAX_BATCH_BYTES);
            assert!(bytes > limit);
        }
        other => panic!("a 70 MiB value was not refused: {other:?}"),
    }
    drop(too_big);
    // Tag, key length, key, value length: 1 + 1 + 3 + 4 bytes of a put.
    let largest = vec![2u8; MAX_BATCH_BYTES - 9];
    db.put(b"big", &largest, Durability::Sync).unwrap();
    db.put(b"small", b"1", Durability::Sync).unwrap();
    db.flush().unwrap();
    db.compact_range(None, None).unwrap();
    assert_eq!(db.get(b"big").unwrap().as_deref(), Some(&largest[..]));
    assert_eq!(db.get(b"small").unwrap(), Some(b"1".to_vec()));
    db.verify().unwrap();
}

#[test]
fn a_range_tombstone_leaves_with_its_data_even_if_nothing_else_compacts_there() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    for i in 0..1000 {
        db.put(&key(i), &[b'v'; 100], Durability::Buffered).unwrap();
    }
    db.flush().unwrap();
    db.delete_range(&key(0), &key(500), Durability::Sync)
        .unwrap();
    // Flushes the tombstone into the manifest, then compacts a range far from it.
    db.compact_range(Some(b"zzz"), Some(b"zzz")).unwrap();
    let stats = db.stats();
    assert_eq!(stats.range_tombstones, 0, "{stats:?}");
    assert_eq!(db.verify().unwrap(), 500);
    assert_eq!(keys(&db), (500..1000).map(key).collect::<Vec<_>>());
}
