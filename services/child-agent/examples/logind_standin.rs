//! A stand-in logind on a private bus, for `tests/adversarial.sh`: the same
//! one the agent's tests use (`tests/common/logind.rs`), with two sessions —
//! `c1` of `nobody` (the child, uid 65534) and `p1` of uid 1000 (a parent),
//! both active and unlocked. It prints the bus address, then takes one
//! command per line on standard input and answers each with one line:
//!
//! * `unlock ID` — the session's owner unlocks it (`LockedHint` false);
//! * `show ID` — `locked=B lock_calls=N`.
//!
//! It ends, and takes its bus with it, when standard input closes.

#[path = "../tests/common/logind.rs"]
mod logind;

use std::io::{BufRead, Write};

use logind::{FakeSession, Logind};

fn main() {
    let sessions = vec![
        FakeSession::active("c1", 65534),
        FakeSession::active("p1", 1000),
    ];
    let logind = match Logind::start(sessions) {
        Ok(logind) => logind,
        Err(why) => {
            eprintln!("cannot start the stand-in logind: {why}");
            std::process::exit(2);
        }
    };
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{}", logind.address)
        .and_then(|()| out.flush())
        .is_err()
    {
        return;
    }
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { return };
        let words: Vec<&str> = line.split_whitespace().collect();
        let known = |id: &str| {
            logind
                .sessions
                .lock()
                .map(|s| s.iter().any(|s| s.id == id))
                .unwrap_or(false)
        };
        let answer = match words.as_slice() {
            ["unlock", id] if known(id) => {
                logind.set(id, |s| s.locked = false);
                "ok".to_owned()
            }
            ["show", id] if known(id) => {
                let session = logind.get(id);
                format!(
                    "locked={} lock_calls={}",
                    session.locked, session.lock_calls
                )
            }
            _ => format!("unknown command {line:?}: unlock ID or show ID, with ID c1 or p1"),
        };
        if writeln!(out, "{answer}")
            .and_then(|()| out.flush())
            .is_err()
        {
            return;
        }
    }
}
