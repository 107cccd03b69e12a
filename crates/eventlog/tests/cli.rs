//! The operator binary against a real directory.

use std::process::Command;
use std::sync::{Mutex, MutexGuard};

use eventlog::{Db, Durability, Options};

/// Held by each test for its whole run. A child process started by one test holds a
/// copy of every descriptor the test process has open, between its fork and its exec,
/// the database's lock file included: a test that closes a database and opens it again
/// while another test starts a process can find it locked for that instant.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

/// Exit code and standard output.
fn run(args: &[&str]) -> (i32, String) {
    let (code, stdout, _) = run_full(args);
    (code, stdout)
}

/// Exit code, standard output and standard error.
fn run_full(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_eventlog"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn stats_verify_scan() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    for i in 0..100u8 {
        db.put(&[i], &[i, i], Durability::Buffered).unwrap();
    }
    db.flush().unwrap();
    db.put(&[200], b"in-wal", Durability::Sync).unwrap();
    db.close().unwrap();
    let d = dir.path().to_str().unwrap();

    let (code, out) = run(&["stats", d]);
    assert_eq!(code, 0);
    assert!(out.contains("tables_per_level"), "{out}");

    let (code, out) = run(&["verify", d]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("101 entries"), "{out}");

    let (code, out) = run(&["scan", d, "--from", "05", "--to", "08"]);
    assert_eq!(code, 0);
    assert_eq!(out, "05\t0505\n06\t0606\n07\t0707\n");
    let (_, out) = run(&["scan", d, "--limit", "2"]);
    assert_eq!(out.lines().count(), 2);

    // Damage a table: verify must say so and fail.
    let sst = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "sst"))
        .unwrap();
    let mut bytes = std::fs::read(&sst).unwrap();
    bytes[3] ^= 0xff;
    std::fs::write(&sst, bytes).unwrap();
    let (code, out) = run(&["verify", d]);
    assert_eq!(code, 1);
    assert!(out.contains("DAMAGED") && out.contains(".sst"), "{out}");

    let (code, _) = run(&["scan", d, "--from", "zz"]);
    assert_eq!(code, 2);
}

#[test]
fn help_and_bad_commands() {
    let _serial = one_at_a_time();
    let (code, out) = run(&["--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("eventlog scan DIR"), "{out}");
    let (code, out) = run(&["scan", "--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("--limit N"), "{out}");

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let (code, _, stderr) = run_full(&["compact", d]);
    assert_eq!(code, 2);
    assert!(stderr.contains("stats, verify and scan"), "{stderr}");
    // An unknown command must not create a database where there was none.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

    let missing = dir.path().join("missing");
    let (code, _, stderr) = run_full(&["stats", missing.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(stderr.contains("missing"), "{stderr}");
}

#[test]
fn verify_reports_what_recovery_would_drop() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    // Two WAL files of 20 one-key records each; then the first is damaged at record 5.
    for round in 0..2u8 {
        let db = Db::open(dir.path(), Options::default()).unwrap();
        for i in 0..20u8 {
            db.put(&[round, i], b"value", Durability::Buffered).unwrap();
        }
        drop(db);
    }
    let mut wals: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .filter(|p| std::fs::metadata(p).unwrap().len() > 0)
        .collect();
    wals.sort();
    let mut bytes = std::fs::read(&wals[0]).unwrap();
    let record = bytes.len() / 20;
    bytes[5 * record + record / 2] ^= 0x40;
    std::fs::write(&wals[0], &bytes).unwrap();

    let d = dir.path().to_str().unwrap();
    let (code, out) = run(&["verify", d]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("DAMAGED"), "{out}");
    assert!(out.contains("NOT REPLAYED"), "{out}");
    assert!(
        out.contains("20 whole records in those files, sequence numbers 21..=40"),
        "{out}"
    );
}
