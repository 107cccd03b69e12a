//! Model-based tests: random operations against the engine and a `BTreeMap`; every read
//! must agree.

use std::collections::BTreeMap;
use std::ops::Bound;

use eventlog::{Db, Direction, Durability, Options, WriteBatch};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Step {
    Put(u16, u8),
    Delete(u16),
    DeleteRange(u16, u16),
    Batch(Vec<(u16, Option<u8>)>),
    Bulk(u16, u16),
    Append(u16),
    Flush,
    Compact(Option<u16>, Option<u16>),
    Reopen,
    SnapshotCheck(u16, u8),
    Scan(u16, u16, bool),
}

fn key(k: u16) -> Vec<u8> {
    // Two prefixes so keys of different lengths interleave, like real prefixes do.
    if k.is_multiple_of(3) {
        format!("k{k:05}").into_bytes()
    } else {
        format!("k{k:05}/x").into_bytes()
    }
}

fn value(k: u16, v: u8) -> Vec<u8> {
    let mut out = format!("v{k}-{v}-").into_bytes();
    out.resize(40 + (v as usize % 80), b'a' + v % 26);
    out
}

fn step() -> impl Strategy<Value = Step> {
    let k = 0u16..400;
    prop_oneof![
        20 => (k.clone(), any::<u8>()).prop_map(|(k, v)| Step::Put(k, v)),
        5 => k.clone().prop_map(Step::Delete),
        2 => (k.clone(), 0u16..60).prop_map(|(a, n)| Step::DeleteRange(a, a + n)),
        5 => prop::collection::vec((k.clone(), prop::option::weighted(0.8, any::<u8>())), 1..20).prop_map(Step::Batch),
        4 => (k.clone(), 20u16..200).prop_map(|(a, n)| Step::Bulk(a, n)),
        4 => (50u16..300).prop_map(Step::Append),
        2 => Just(Step::Flush),
        1 => (prop::option::of(k.clone()), prop::option::of(k.clone())).prop_map(|(a, b)| Step::Compact(a, b)),
        1 => Just(Step::Reopen),
        2 => (k.clone(), any::<u8>()).prop_map(|(k, v)| Step::SnapshotCheck(k, v)),
        4 => (k.clone(), k, any::<bool>()).prop_map(|(a, b, r)| Step::Scan(a.min(b), a.max(b), r)),
    ]
}

fn options() -> Options {
    Options {
        memtable_bytes: 8 << 10,
        target_file_bytes: 8 << 10,
        level1_bytes: 16 << 10,
        level_size_multiplier: 2,
        block_size_bytes: 512,
        block_cache_bytes: 64 << 10,
        max_open_files: 16,
        ..Options::default()
    }
}

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

fn check_range(
    db_items: Vec<(Vec<u8>, Vec<u8>)>,
    model: &Model,
    lo: &[u8],
    hi: &[u8],
    reverse: bool,
) {
    let mut expected: Vec<_> = model
        .range::<[u8], _>((Bound::Included(lo), Bound::Excluded(hi)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if reverse {
        expected.reverse();
    }
    assert_eq!(
        db_items.len(),
        expected.len(),
        "range {lo:?}..{hi:?} reverse={reverse}"
    );
    assert_eq!(db_items, expected);
}

fn scan(db: &Db, lo: &[u8], hi: &[u8], reverse: bool) -> Vec<(Vec<u8>, Vec<u8>)> {
    let dir = if reverse {
        Direction::Reverse
    } else {
        Direction::Forward
    };
    db.iter((Bound::Included(lo), Bound::Excluded(hi)), dir)
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

fn run(steps: Vec<Step>) {
    let dir = tempfile::tempdir().unwrap();
    let mut db = Db::open(dir.path(), options()).unwrap();
    let mut model = Model::new();
    let mut next_append = 1000u16;
    for step in steps {
        match step {
            Step::Put(k, v) => {
                db.put(&key(k), &value(k, v), Durability::Buffered).unwrap();
                model.insert(key(k), value(k, v));
            }
            Step::Delete(k) => {
                db.delete(&key(k), Durability::Buffered).unwrap();
                model.remove(&key(k));
            }
            Step::DeleteRange(a, b) => {
                db.delete_range(&key(a), &key(b), Durability::Buffered)
                    .unwrap();
                let doomed: Vec<_> = model
                    .range(key(a)..key(b))
                    .map(|(k, _)| k.clone())
                    .collect();
                for d in doomed {
                    model.remove(&d);
                }
            }
            Step::Batch(ops) => {
                let mut b = WriteBatch::new();
                for (k, v) in ops {
                    match v {
                        Some(v) => {
                            b.put(&key(k), &value(k, v));
                            model.insert(key(k), value(k, v));
                        }
                        None => {
                            b.delete(&key(k));
                            model.remove(&key(k));
                        }
                    }
                }
                db.write(b, Durability::Sync).unwrap();
            }
            Step::Bulk(a, n) => {
                let mut b = WriteBatch::new();
                for k in a..a + n {
                    b.put(&key(k), &value(k, n as u8));
                    model.insert(key(k), value(k, n as u8));
                }
                db.write(b, Durability::Buffered).unwrap();
            }
            Step::Append(n) => {
                // Increasing keys, as time-ordered events arrive: the case for trivial moves.
                let mut b = WriteBatch::new();
                for k in next_append..next_append + n {
                    b.put(&key(k), &value(k, 1));
                    model.insert(key(k), value(k, 1));
                }
                next_append += n;
                db.write(b, Durability::Buffered).unwrap();
            }
            Step::Flush => db.flush().unwrap(),
            Step::Compact(a, b) => {
                let (a, b) = (a.map(key), b.map(key));
                db.compact_range(a.as_deref(), b.as_deref()).unwrap();
            }
            Step::Reopen => {
                drop(db);
                db = Db::open(dir.path(), options()).unwrap();
            }
            Step::SnapshotCheck(k, v) => {
                let snap = db.snapshot();
                let frozen = model.clone();
                db.put(&key(k), &value(k, v.wrapping_add(1)), Durability::Buffered)
                    .unwrap();
                db.delete(&key(k + 1), Durability::Buffered).unwrap();
                model.insert(key(k), value(k, v.wrapping_add(1)));
                model.remove(&key(k + 1));
                assert_eq!(snap.get(&key(k)).unwrap(), frozen.get(&key(k)).cloned());
                assert_eq!(
                    snap.get(&key(k + 1)).unwrap(),
                    frozen.get(&key(k + 1)).cloned()
                );
                let all: Vec<_> = snap
                    .iter(.., Direction::Forward)
                    .unwrap()
                    .map(|r| r.unwrap())
                    .collect();
                assert_eq!(
                    all,
                    frozen
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect::<Vec<_>>()
                );
            }
            Step::Scan(a, b, reverse) => {
                check_range(
                    scan(&db, &key(a), &key(b), reverse),
                    &model,
                    &key(a),
                    &key(b),
                    reverse,
                );
            }
        }
        for probe in [0u16, 7, 99, 200, 399, 1000, 1500, next_append - 1] {
            assert_eq!(
                db.get(&key(probe)).unwrap(),
                model.get(&key(probe)).cloned(),
                "get {probe}"
            );
        }
    }
    let all: Vec<_> = db
        .iter(.., Direction::Forward)
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(
        all,
        model
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<Vec<_>>()
    );
    let mut rev: Vec<_> = db
        .iter(.., Direction::Reverse)
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    rev.reverse();
    assert_eq!(rev, all);
    for k in (0..400u16).chain(1000..next_append) {
        assert_eq!(
            db.get(&key(k)).unwrap(),
            model.get(&key(k)).cloned(),
            "final get {k}"
        );
    }
    db.verify().unwrap();
    db.close().unwrap();
    let db = Db::open(dir.path(), options()).unwrap();
    let again: Vec<_> = db
        .iter(.., Direction::Forward)
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(again, all);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, max_shrink_iters: 200, ..ProptestConfig::default() })]

    #[test]
    fn engine_agrees_with_btreemap(steps in prop::collection::vec(step(), 1..120)) {
        run(steps);
    }
}
