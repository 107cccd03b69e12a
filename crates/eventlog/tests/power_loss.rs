//! Power-loss simulation: random workloads run on [`PowerLossFs`], an in-memory disk that
//! forgets what was not synced, and the power is cut at a random file operation. After
//! each reboot:
//!
//! * the database opens and `verify` passes;
//! * every acknowledged `Sync` batch is there;
//! * the contents are exactly the state after some prefix of the batches (a batch that
//!   was never acknowledged may or may not be part of it);
//! * a `Sync` write made after recovery survives a second power cut, with the same
//!   prefix under it (nothing dropped by recovery comes back).
//!
//! A `SIGKILL` test (`crash.rs`) cannot find a missing sync: the kernel keeps what a
//! killed process wrote. This one can.
//!
//! The workloads mix `Sync` and `Buffered` batches of puts, deletes and range deletes with
//! flushes, full compactions, clean reopens and process crashes (reopening what a killed
//! process left in the page cache, as the power stays on).
//!
//! Bounded: `SEEDS` workloads of at most `STEPS` steps, each run once to the end and
//! `CUTS_PER_SEED` more times with the power cut at a random operation, so
//! `SEEDS × (CUTS_PER_SEED + 1)` = 1,000 power cuts. `EVENTLOG_POWER_CUTS_SEED` replays
//! one workload; `EVENTLOG_POWER_CUTS_SEEDS` changes how many run.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use eventlog::fs::power_loss::PowerLossFs;
use eventlog::{Db, Direction, Durability, Options, WriteBatch};

const SEEDS: u64 = 200;
const CUTS_PER_SEED: u64 = 4;
const STEPS: usize = 60;
const DIR: &str = "/db";
/// Holds the index of the last batch applied; no range delete covers it.
const MARKER: &[u8] = b"~batch";

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Debug, Clone)]
enum Op {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    DeleteRange(Vec<u8>, Vec<u8>),
}

#[derive(Debug, Clone)]
enum Step {
    Write(Vec<Op>, Durability),
    Flush,
    Compact,
    Reopen,
    /// The process dies (the database is dropped without closing) and starts again:
    /// what it wrote stays in the page cache, unsynced.
    ProcessCrash,
}

type State = BTreeMap<Vec<u8>, Vec<u8>>;

fn key(n: u64) -> Vec<u8> {
    format!("k{n:02}").into_bytes()
}

fn workload(seed: u64) -> Vec<Step> {
    let mut rng = Rng(seed);
    (0..STEPS)
        .map(|i| match rng.below(100) {
            0..=3 => Step::Flush,
            4..=5 => Step::Compact,
            6 => Step::Reopen,
            7..=8 => Step::ProcessCrash,
            _ => {
                let ops = (0..1 + rng.below(6))
                    .map(|j| match rng.below(20) {
                        0..=1 => Op::Delete(key(rng.below(40))),
                        2 => {
                            let a = rng.below(40);
                            Op::DeleteRange(key(a), key(a + 1 + rng.below(8)))
                        }
                        _ => {
                            let len = 1 + rng.below(300) as usize;
                            let mut v = format!("{seed}/{i}/{j}/").into_bytes();
                            v.resize(len.max(v.len()), b'a' + (i % 26) as u8);
                            Op::Put(key(rng.below(40)), v)
                        }
                    })
                    .collect();
                let durability = if rng.below(2) == 0 {
                    Durability::Sync
                } else {
                    Durability::Buffered
                };
                Step::Write(ops, durability)
            }
        })
        .collect()
}

fn options(fs: &Arc<PowerLossFs>) -> Options {
    // Tiny memtables and tables: WAL rotations, flushes, compactions and manifest edits
    // every few batches.
    Options {
        memtable_bytes: 4 << 10,
        block_size_bytes: 256,
        block_cache_bytes: 64 << 10,
        target_file_bytes: 4 << 10,
        level1_bytes: 16 << 10,
        l0_compaction_trigger: 2,
        compaction_bytes_per_second: 0,
        file_system: fs.clone(),
        ..Options::default()
    }
}

/// What the run before the power cut did.
struct History {
    /// `states[k]` is the contents after the first `k` batches.
    states: Vec<State>,
    /// Batches whose `write` returned, the last one `Sync`: all of them must survive.
    durable: usize,
    /// Batches handed to `write`, acknowledged or not.
    attempted: usize,
}

/// Runs `steps` until the first error (the power is gone) or the end.
fn run(fs: &Arc<PowerLossFs>, steps: &[Step]) -> History {
    let mut history = History {
        states: vec![State::new()],
        durable: 0,
        attempted: 0,
    };
    let Ok(mut db) = Db::open(DIR, options(fs)) else {
        return history;
    };
    for step in steps {
        let ok = match step {
            Step::Write(ops, durability) => {
                let index = history.attempted as u64;
                let mut batch = WriteBatch::new();
                let mut state = history.states[history.attempted].clone();
                for op in ops {
                    match op {
                        Op::Put(k, v) => {
                            batch.put(k, v);
                            state.insert(k.clone(), v.clone());
                        }
                        Op::Delete(k) => {
                            batch.delete(k);
                            state.remove(k);
                        }
                        Op::DeleteRange(a, b) => {
                            batch.delete_range(a, b);
                            state.retain(|k, _| k < a || k >= b);
                        }
                    }
                }
                batch.put(MARKER, &index.to_le_bytes());
                history.states.push(state);
                history.attempted += 1;
                let written = db.write(batch, *durability).is_ok();
                if written && *durability == Durability::Sync {
                    history.durable = history.attempted;
                }
                written
            }
            Step::Flush => db.flush().is_ok(),
            Step::Compact => db.compact_range(None, None).is_ok(),
            Step::Reopen => {
                let closed = db.close().is_ok();
                match Db::open(DIR, options(fs)) {
                    Ok(reopened) => {
                        db = reopened;
                        closed
                    }
                    Err(_) => return history,
                }
            }
            Step::ProcessCrash => {
                drop(db);
                match Db::open(DIR, options(fs)) {
                    Ok(reopened) => {
                        db = reopened;
                        true
                    }
                    Err(_) => return history,
                }
            }
        };
        if !ok {
            break;
        }
    }
    history
}

/// The contents of the database apart from the marker, and the number of batches the
/// marker says are applied.
fn contents(db: &Db) -> (State, usize) {
    let mut state = State::new();
    let mut applied = 0;
    for item in db.iter(.., Direction::Forward).expect("iterate") {
        let (k, v) = item.expect("read");
        if k == MARKER {
            let index = u64::from_le_bytes(v.as_slice().try_into().expect("marker"));
            applied = index as usize + 1;
        } else if !k.starts_with(b"~") {
            state.insert(k, v);
        }
    }
    (state, applied)
}

/// Reboots after the power cut and checks everything the module docs promise.
fn check_after_power_cut(fs: &Arc<PowerLossFs>, history: &History, what: &str) {
    let after = fs.cut_power();
    let db = Db::open(DIR, options(&after))
        .unwrap_or_else(|e| panic!("{what}: does not open after the power cut: {e}"));
    db.verify()
        .unwrap_or_else(|e| panic!("{what}: verify fails: {e}"));
    let (state, applied) = contents(&db);
    assert!(
        applied >= history.durable,
        "{what}: {} acknowledged batches (the last one Sync), only {applied} recovered; {:?}",
        history.durable,
        db.recovery_report()
    );
    assert!(
        applied <= history.attempted,
        "{what}: more batches than were written"
    );
    let expected = &history.states[applied];
    if &state != expected {
        let differ: Vec<String> = expected
            .keys()
            .chain(state.keys())
            .filter(|k| state.get(*k) != expected.get(*k))
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect();
        panic!(
            "{what}: the contents are not the state after batch {applied}: keys {differ:?} \
             differ; {:?}",
            db.recovery_report()
        );
    }
    // A Sync write after recovery survives the next power cut, on top of the same
    // prefix: what recovery dropped does not come back behind it.
    db.put(b"~after", b"1", Durability::Sync)
        .unwrap_or_else(|e| panic!("{what}: write after recovery fails: {e}"));
    let again = after.cut_power();
    drop(db);
    let db = Db::open(DIR, options(&again))
        .unwrap_or_else(|e| panic!("{what}: does not open after a second power cut: {e}"));
    assert_eq!(
        db.get(b"~after").expect("get"),
        Some(b"1".to_vec()),
        "{what}: the write after recovery is lost"
    );
    let (state_again, applied_again) = contents(&db);
    assert_eq!(
        (applied_again, &state_again),
        (applied, &state),
        "{what}: the second recovery differs from the first"
    );
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|s| s.parse().ok())
}

#[test]
fn acknowledged_writes_survive_power_cuts_and_recovery_is_a_prefix() {
    assert!(Path::new(DIR).is_absolute());
    let started = std::time::Instant::now();
    let base = env_u64("EVENTLOG_POWER_CUTS_BASE").unwrap_or(0x5eed);
    let seeds: Vec<u64> = match env_u64("EVENTLOG_POWER_CUTS_SEED") {
        Some(seed) => vec![seed],
        None => (0..env_u64("EVENTLOG_POWER_CUTS_SEEDS").unwrap_or(SEEDS))
            .map(|i| base + i)
            .collect(),
    };
    let mut cuts = 0u64;
    for &seed in &seeds {
        let steps = workload(seed);
        // Once to the end, cutting the power after the last step; that also counts the
        // operations, so the other cuts fall anywhere in the run.
        let fs = PowerLossFs::new(seed);
        let history = run(&fs, &steps);
        let operations = fs.operations();
        check_after_power_cut(&fs, &history, &format!("seed {seed}, cut at the end"));
        cuts += 1;
        let mut rng = Rng(seed ^ 0xc0ffee);
        for _ in 0..CUTS_PER_SEED {
            let at = 1 + rng.below(operations.max(1));
            let fs = PowerLossFs::new(seed.wrapping_mul(31).wrapping_add(at));
            fs.cut_power_at(at);
            let history = run(&fs, &steps);
            check_after_power_cut(
                &fs,
                &history,
                &format!("seed {seed}, cut at operation {at}"),
            );
            cuts += 1;
        }
    }
    eprintln!(
        "{cuts} power cuts over {} workloads in {:.1} s",
        seeds.len(),
        started.elapsed().as_secs_f64()
    );
    if seeds.len() as u64 == SEEDS {
        assert!(cuts >= 1000);
    }
}
