//! Torn and corrupt files: truncate or flip bytes in the WAL and in tables at random
//! offsets. Recovery keeps what is whole and reports the rest; reads never return wrong
//! data.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use eventlog::{Db, Direction, Durability, Error, Options, WriteBatch};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn seed() -> u64 {
    let s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("seed {s}");
    s
}

fn options() -> Options {
    Options {
        memtable_bytes: 4 << 20,
        block_size_bytes: 1024,
        ..Options::default()
    }
}

const BATCH: u64 = 7;

fn key(batch: u64, j: u64) -> Vec<u8> {
    format!("b{batch:06}/{j}").into_bytes()
}

fn value(batch: u64, j: u64) -> Vec<u8> {
    let mut v = format!("{batch}.{j}.").into_bytes();
    v.resize(60, b'v');
    v
}

/// Writes `n` batches of `BATCH` keys, leaving them in the WAL (no flush, no close).
fn write_batches(dir: &Path, n: u64) {
    let db = Db::open(dir, options()).unwrap();
    for b in 0..n {
        let mut wb = WriteBatch::new();
        for j in 0..BATCH {
            wb.put(&key(b, j), &value(b, j));
        }
        db.write(wb, Durability::Buffered).unwrap();
    }
    drop(db);
}

fn files_with(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

/// Every batch is whole or absent, and the present ones are a prefix `0..m`.
fn check_prefix(db: &Db) -> u64 {
    let mut seen: BTreeSet<u64> = BTreeSet::new();
    let mut count = std::collections::BTreeMap::<u64, u64>::new();
    for item in db.iter(.., Direction::Forward).unwrap() {
        let (k, v) = item.unwrap();
        if k.starts_with(b"z") {
            continue;
        }
        let s = String::from_utf8(k).unwrap();
        let (b, j) = s[1..].split_once('/').unwrap();
        let (b, j): (u64, u64) = (b.parse().unwrap(), j.parse().unwrap());
        assert_eq!(v, value(b, j), "wrong value read back");
        seen.insert(b);
        *count.entry(b).or_default() += 1;
    }
    for (b, n) in &count {
        assert_eq!(*n, BATCH, "batch {b} is present in part");
    }
    let m = seen.len() as u64;
    assert_eq!(seen, (0..m).collect(), "recovered batches are not a prefix");
    m
}

#[test]
fn truncated_wal_keeps_the_whole_prefix() {
    let mut rng = Rng(seed());
    for _ in 0..12 {
        let dir = tempfile::tempdir().unwrap();
        write_batches(dir.path(), 60);
        let wal = files_with(dir.path(), "log").pop().unwrap();
        let len = std::fs::metadata(&wal).unwrap().len();
        let cut = rng.next() % len;
        std::fs::File::options()
            .write(true)
            .open(&wal)
            .unwrap()
            .set_len(cut)
            .unwrap();
        let db = Db::open(dir.path(), options()).unwrap();
        let m = check_prefix(&db);
        let report = db.recovery_report();
        assert!(m < 60);
        assert_eq!(report.wal_records_replayed, m);
        if report.wal_bytes_dropped > 0 {
            assert_eq!(report.damaged_wals.len(), 1);
        }
        // Writing after recovery and reopening again loses nothing new.
        db.put(b"z-after", b"1", Durability::Sync).unwrap();
        drop(db);
        let db = Db::open(dir.path(), options()).unwrap();
        assert_eq!(check_prefix(&db), m);
        assert_eq!(db.get(b"z-after").unwrap(), Some(b"1".to_vec()));
    }
}

#[test]
fn flipped_wal_byte_never_yields_a_bad_batch() {
    let mut rng = Rng(seed());
    for _ in 0..12 {
        let dir = tempfile::tempdir().unwrap();
        write_batches(dir.path(), 60);
        let wal = files_with(dir.path(), "log").pop().unwrap();
        let mut bytes = std::fs::read(&wal).unwrap();
        let at = (rng.next() % bytes.len() as u64) as usize;
        bytes[at] ^= 1 << (rng.next() % 8);
        std::fs::write(&wal, &bytes).unwrap();
        let db = Db::open(dir.path(), options()).unwrap();
        let m = check_prefix(&db);
        assert!(m < 60, "a flipped bit went unnoticed");
        let report = db.recovery_report();
        assert_eq!(report.damaged_wals.len(), 1, "{report:?}");
        assert!(report.wal_bytes_dropped > 0);
    }
}

/// Builds a database whose data sits in tables only.
fn tables_only(dir: &Path) {
    write_batches(dir, 300);
    let db = Db::open(dir, options()).unwrap();
    db.compact_range(None, None).unwrap();
    db.close().unwrap();
}

#[test]
fn flipped_table_byte_is_reported_never_misread() {
    let mut rng = Rng(seed());
    for round in 0..10 {
        let dir = tempfile::tempdir().unwrap();
        tables_only(dir.path());
        let tables = files_with(dir.path(), "sst");
        let table = &tables[(rng.next() % tables.len() as u64) as usize];
        let mut bytes = std::fs::read(table).unwrap();
        let at = (rng.next() % bytes.len() as u64) as usize;
        bytes[at] ^= 1 << (rng.next() % 8);
        std::fs::write(table, &bytes).unwrap();

        let db = Db::open(dir.path(), options()).unwrap();
        match db.verify() {
            Err(Error::Corruption { path, .. }) => assert_eq!(&path, table, "round {round}"),
            other => panic!(
                "round {round}: flip at {at} of {} not detected: {other:?}",
                table.display()
            ),
        }
        // Point reads: the right value, or an error; never a wrong value.
        for b in 0..300 {
            for j in 0..BATCH {
                match db.get(&key(b, j)) {
                    Ok(Some(v)) => assert_eq!(v, value(b, j)),
                    Ok(None) => panic!("round {round}: key {b}/{j} silently missing"),
                    Err(e) => assert!(e.is_corruption(), "{e}"),
                }
            }
        }
        // Scans: correct items up to an error (which may come at the first seek).
        let iter = match db.iter(.., Direction::Forward) {
            Ok(iter) => iter,
            Err(e) => {
                assert!(e.is_corruption(), "{e}");
                continue;
            }
        };
        for item in iter {
            match item {
                Ok((k, v)) => {
                    let s = String::from_utf8(k).unwrap();
                    let (b, j) = s[1..].split_once('/').unwrap();
                    assert_eq!(v, value(b.parse().unwrap(), j.parse().unwrap()));
                }
                Err(e) => {
                    assert!(e.is_corruption());
                    break;
                }
            }
        }
    }
}

#[test]
fn truncated_table_is_reported_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    tables_only(dir.path());
    let table = files_with(dir.path(), "sst").pop().unwrap();
    let len = std::fs::metadata(&table).unwrap().len();
    std::fs::File::options()
        .write(true)
        .open(&table)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let db = Db::open(dir.path(), options()).unwrap();
    match db.verify() {
        Err(Error::Corruption { path, .. }) => assert_eq!(path, table),
        other => panic!("truncated table not detected: {other:?}"),
    }
}
