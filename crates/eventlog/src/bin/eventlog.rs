//! Operator tool for an event log directory (opened read-only; stop the writer first).
//!
//! ```text
//! eventlog stats DIR
//! eventlog verify DIR
//! eventlog scan DIR [--from HEX] [--to HEX] [--limit N]
//! ```

use std::ops::Bound;
use std::process::ExitCode;

use eventlog::{Db, Direction, Options};

const USAGE: &str = "usage:\n  eventlog stats DIR\n  eventlog verify DIR\n  eventlog scan DIR [--from HEX] [--to HEX] [--limit N]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("eventlog: {message}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &[String]) -> Result<ExitCode, String> {
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return Ok(ExitCode::SUCCESS);
    }
    let (command, dir) = match args {
        [c, d, ..] => (c.as_str(), d.as_str()),
        _ => return Err(USAGE.to_string()),
    };
    if !matches!(command, "stats" | "verify" | "scan") {
        return Err(format!(
            "unknown command {command:?}; the commands are stats, verify and scan\n{USAGE}"
        ));
    }
    let db = Db::open_read_only(dir, Options::default())
        .map_err(|e| format!("cannot open the event log in {dir}: {e}"))?;
    match command {
        "stats" => {
            println!("{:#?}", db.stats());
            println!("{:#?}", db.recovery_report());
            Ok(ExitCode::SUCCESS)
        }
        "verify" => verify(&db),
        _ => scan(&db, &args[2..]),
    }
}

fn verify(db: &Db) -> Result<ExitCode, String> {
    let report = db.recovery_report();
    for (path, offset, reason) in &report.damaged_wals {
        println!("DAMAGED {} at offset {offset}: {reason}", path.display());
        println!(
            "  recovery stops there: {} bytes are not replayed",
            report.wal_bytes_dropped
        );
    }
    for path in &report.dropped_wals {
        println!("NOT REPLAYED {} (after the damage)", path.display());
    }
    if report.records_dropped > 0 {
        let sequences = report
            .dropped_sequences
            .map(|(a, b)| format!(", sequence numbers {a}..={b}"))
            .unwrap_or_default();
        println!(
            "  {} whole records in those files{sequences}",
            report.records_dropped
        );
    }
    println!(
        "WAL: {} files, {} whole records",
        report.wal_files_replayed, report.wal_records_replayed
    );
    match db.verify() {
        Ok(entries) => {
            println!("tables: {entries} entries, every block checksum verified");
            Ok(if report.damaged_wals.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Err(e) => {
            println!("DAMAGED {e}");
            Ok(ExitCode::from(1))
        }
    }
}

fn scan(db: &Db, flags: &[String]) -> Result<ExitCode, String> {
    let (mut from, mut to, mut limit) = (None, None, usize::MAX);
    let mut it = flags.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--from" => from = Some(parse_hex(value)?),
            "--to" => to = Some(parse_hex(value)?),
            "--limit" => {
                limit = value
                    .parse()
                    .map_err(|_| format!("--limit must be a count, got {value:?}"))?
            }
            other => return Err(format!("unknown flag {other:?}\n{USAGE}")),
        }
    }
    let lower = from.as_deref().map_or(Bound::Unbounded, Bound::Included);
    let upper = to.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
    let iter = db
        .iter((lower, upper), Direction::Forward)
        .map_err(|e| e.to_string())?;
    for item in iter.take(limit) {
        let (k, v) = item.map_err(|e| e.to_string())?;
        println!("{}\t{}", hex(&k), hex(&v));
    }
    Ok(ExitCode::SUCCESS)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_hex(s: &str) -> Result<Vec<u8>, String> {
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("{s:?} is not an even-length hex string"));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|e| e.to_string()))
        .collect()
}
