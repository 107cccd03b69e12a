//! Crash tests: a child process writes `Sync` batches and prints the id of each batch once
//! `write` returns; the parent kills it with SIGKILL at random moments, reopens the
//! database and checks that every acknowledged batch is there in full and that no batch
//! is there in part.
//!
//! The child is this same test binary, re-executed with `EVENTLOG_CRASH_DIR` set, running
//! only the `crash_writer_child` test.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use eventlog::{Db, Direction, Durability, Options, WriteBatch};

const DIR_ENV: &str = "EVENTLOG_CRASH_DIR";
const BASE_ENV: &str = "EVENTLOG_CRASH_BASE";
const WRITERS: u64 = 2;

fn options() -> Options {
    // Small memtables and tables so flushes, compactions and manifest edits happen
    // while the child is being killed.
    Options {
        memtable_bytes: 32 << 10,
        target_file_bytes: 16 << 10,
        level1_bytes: 64 << 10,
        l0_compaction_trigger: 2,
        ..Options::default()
    }
}

fn batch_len(id: u64) -> u64 {
    1 + id % 13
}

fn batch_key(id: u64, j: u64) -> Vec<u8> {
    format!("batch/{id:016}/{j:03}").into_bytes()
}

fn batch_value(id: u64, j: u64) -> Vec<u8> {
    let mut v = format!("{id}:{j}:").into_bytes();
    v.resize(120, b'0' + (id % 10) as u8);
    v
}

#[test]
fn crash_writer_child() {
    let Ok(dir) = std::env::var(DIR_ENV) else {
        eprintln!("skipped: this test is the crash test's child process and only runs under it");
        return;
    };
    let base: u64 = std::env::var(BASE_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let db = Db::open(&dir, options()).unwrap();
    let out = std::sync::Mutex::new(std::io::stdout());
    std::thread::scope(|s| {
        for w in 0..WRITERS {
            let db = db.clone();
            let out = &out;
            s.spawn(move || {
                // Bounded: the parent kills the child long before this ends.
                for i in 0..200_000u64 {
                    let id = base + i * WRITERS + w;
                    let mut b = WriteBatch::new();
                    for j in 0..batch_len(id) {
                        b.put(&batch_key(id, j), &batch_value(id, j));
                    }
                    db.write(b, Durability::Sync).unwrap();
                    let mut o = out.lock().unwrap();
                    writeln!(o, "ack {id}").unwrap();
                    o.flush().unwrap();
                }
            });
        }
    });
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Reads every batch in the database; fails on any partial batch or wrong value.
fn batches_present(db: &Db) -> BTreeSet<u64> {
    let mut counts: BTreeMap<u64, u64> = BTreeMap::new();
    for item in db.iter(.., Direction::Forward).unwrap() {
        let (k, v) = item.unwrap();
        let s = String::from_utf8(k).unwrap();
        let mut parts = s.split('/').skip(1);
        let id: u64 = parts.next().unwrap().parse().unwrap();
        let j: u64 = parts.next().unwrap().parse().unwrap();
        assert_eq!(
            v,
            batch_value(id, j),
            "wrong value for batch {id} entry {j}"
        );
        *counts.entry(id).or_default() += 1;
    }
    for (&id, &n) in &counts {
        assert_eq!(
            n,
            batch_len(id),
            "batch {id} is present in part ({n} of {} entries)",
            batch_len(id)
        );
    }
    counts.into_keys().collect()
}

#[test]
fn sigkill_keeps_every_acknowledged_batch_whole() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("crash test seed {seed}");
    let mut rng = Rng(seed);
    let mut acked: BTreeSet<u64> = BTreeSet::new();
    let runs = 24;
    for run in 0..runs {
        let base = run * 10_000_000;
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_writer_child",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(DIR_ENV, dir.path())
            .env(BASE_ENV, base.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        // Kill after a random number of acknowledgements (sometimes zero, i.e. during open).
        let wanted = match rng.next() % 5 {
            0 => 0,
            _ => 1 + rng.next() % 250,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut got = 0;
        while got < wanted && Instant::now() < deadline {
            let Some(line) = lines.next() else { break };
            let line = line.unwrap();
            if let Some(id) = line.strip_prefix("ack ") {
                acked.insert(id.parse().unwrap());
                got += 1;
            }
        }
        if wanted == 0 {
            std::thread::sleep(Duration::from_micros(rng.next() % 20_000));
        }
        child.kill().unwrap();
        // Acknowledgements already in the pipe count too: they were acknowledged.
        for line in lines {
            let Ok(line) = line else { break };
            if let Some(id) = line.strip_prefix("ack ") {
                acked.insert(id.parse().unwrap());
            }
        }
        child.wait().unwrap();
        let db = Db::open(dir.path(), options()).unwrap();
        let present = batches_present(&db);
        let missing: Vec<_> = acked.difference(&present).take(5).collect();
        assert!(
            missing.is_empty(),
            "run {run}: acknowledged batches lost: {missing:?} (seed {seed})"
        );
        db.verify().unwrap();
        // Half the time leave the WAL for the next child to replay and extend.
        if run % 2 == 0 {
            db.close().unwrap();
        } else {
            drop(db);
        }
    }
    eprintln!("{} batches acknowledged over {runs} runs", acked.len());
    assert!(
        acked.len() > 100,
        "only {} batches acknowledged over {runs} runs",
        acked.len()
    );
}
