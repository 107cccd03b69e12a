//! `household` against a real hub process on loopback: pairing, status, children,
//! extend, lock and unlock, and the errors with their exit codes.

mod common;

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{CLI, Hub};

fn household(profile: &Path, args: &[&str]) -> Output {
    Command::new(CLI)
        .arg("--config")
        .arg(profile)
        .args(args)
        .env("RUST_LOG", "off")
        .output()
        .expect("run household")
}

fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn fails(output: &Output, code: i32, says: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(code), "{stderr}");
    assert!(stderr.contains(says), "expected {says:?} in: {stderr}");
}

fn status_json(profile: &Path) -> serde_json::Value {
    serde_json::from_str(&ok(household(profile, &["status", "--json"]))).unwrap()
}

#[test]
fn a_guardian_pairs_and_acts_from_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(&dir.path().join("hub"));
    let anna = dir.path().join("anna/profile.json");

    // Not paired yet.
    fails(&household(&anna, &["status"]), 3, "not paired");

    let code = hub.invite_guardian("Anna");
    let printed = ok(household(&anna, &["pair", &code, "--hub", &hub.address]));
    assert!(printed.contains("paired as Anna"), "{printed}");
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&anna).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the profile holds the key");
    // A used code does not pair twice.
    let again = dir.path().join("again.json");
    fails(
        &household(&again, &["pair", &code, "--hub", &hub.address]),
        1,
        "refused",
    );
    assert!(!again.exists());

    ok(household(&anna, &["children", "add", "Mia"]));
    let before = status_json(&anna);
    let mia = &before["children"][0];
    assert_eq!(mia["name"], "Mia");
    assert_eq!(mia["state"], "active");
    assert_eq!(mia["devices"], serde_json::json!([]));

    // Names are matched without regard to case.
    ok(household(
        &anna,
        &["extend", "mia", "30", "--note", "homework done"],
    ));
    let after = status_json(&anna);
    assert_eq!(
        after["children"][0]["allowance_seconds"].as_i64().unwrap(),
        mia["allowance_seconds"].as_i64().unwrap() + 30 * 60
    );

    // The hub's refusals are sentences that name the field; nothing changes.
    fails(&household(&anna, &["extend", "Mia", "0"]), 1, "minutes");
    // Adopting needs the code (asked for only at a terminal), and an agent heard on the
    // network: this hub runs without mDNS, so none is.
    fails(
        &household(&anna, &["devices", "adopt", "tablet", "--child", "Mia"]),
        2,
        "--code is required",
    );
    fails(
        &household(
            &anna,
            &[
                "devices", "adopt", "tablet", "--child", "Mia", "--code", "471920",
            ],
        ),
        1,
        "no agent called \"tablet\" was heard",
    );
    assert_eq!(
        status_json(&anna)["children"][0]["allowance_seconds"],
        after["children"][0]["allowance_seconds"]
    );
    fails(
        &household(&anna, &["extend", "Leo", "10"]),
        1,
        "the children are Mia",
    );
    fails(
        &household(&anna, &["extend", "Mia", "ten"]),
        2,
        "invalid value",
    );
    fails(
        &household(&anna, &["lock", "Mia", "--until", "teatime"]),
        2,
        "--until",
    );

    // Policy: read, change what the flags name, write back with the revision read.
    ok(household(
        &anna,
        &[
            "policy",
            "set",
            "Mia",
            "--daily",
            "all=60,sat=120",
            "--bedtime",
            "20:30-07:00",
            "--grace",
            "3m",
        ],
    ));
    let policy: serde_json::Value =
        serde_json::from_str(&ok(household(&anna, &["policy", "show", "Mia", "--json"]))).unwrap();
    assert_eq!(policy["daily_minutes"]["sat"], 120);
    assert_eq!(policy["daily_minutes"]["mon"], 60);
    assert_eq!(
        policy["downtime"]["wed"],
        serde_json::json!(["bedtime 20:30-07:00"])
    );
    assert_eq!(policy["grace_minutes"], 3);
    fails(
        &household(&anna, &["policy", "set", "Mia", "--daily", "mon=2000"]),
        1,
        "daily_minutes",
    );
    let unchanged: serde_json::Value =
        serde_json::from_str(&ok(household(&anna, &["policy", "show", "Mia", "--json"]))).unwrap();
    assert_eq!(unchanged["revision"], policy["revision"]);
    // No bedtime for the rest of the test, whatever the hour it runs at.
    ok(household(
        &anna,
        &["policy", "set", "Mia", "--bedtime", "none"],
    ));

    // One date's exception: today (in Mia's time zone) has 20 minutes, plus the grant.
    let weekday_allowance = status_json(&anna)["children"][0]["allowance_seconds"].clone();
    let printed = ok(household(
        &anna,
        &[
            "policy",
            "except",
            "Mia",
            "today",
            "--minutes",
            "20",
            "--note",
            "sick day",
        ],
    ));
    assert!(printed.contains(": 20 min; sick day"), "{printed}");
    assert_eq!(
        status_json(&anna)["children"][0]["allowance_seconds"],
        (20 + 30) * 60
    );
    ok(household(
        &anna,
        &[
            "policy",
            "except",
            "Mia",
            "2099-12-24",
            "--no-limit",
            "--no-bedtime",
        ],
    ));
    let policy: serde_json::Value =
        serde_json::from_str(&ok(household(&anna, &["policy", "show", "Mia", "--json"]))).unwrap();
    let exceptions = policy["exceptions"].as_array().unwrap();
    assert_eq!(exceptions.len(), 2, "{policy}");
    assert_eq!(exceptions[0]["daily_minutes"], 20);
    assert_eq!(exceptions[0]["note"], "sick day");
    assert_eq!(
        exceptions[1],
        serde_json::json!({"date": "2099-12-24", "daily_minutes": 1440,
                           "skip_downtime": true, "note": ""})
    );
    let printed = ok(household(
        &anna,
        &["policy", "except", "Mia", "today", "--remove"],
    ));
    assert!(printed.contains("weekday's rules apply"), "{printed}");
    assert_eq!(
        status_json(&anna)["children"][0]["allowance_seconds"],
        weekday_allowance
    );
    fails(
        &household(&anna, &["policy", "except", "Mia", "today", "--remove"]),
        1,
        "no exception on",
    );
    fails(
        &household(
            &anna,
            &["policy", "except", "Mia", "24.12.", "--minutes", "9"],
        ),
        2,
        "DATE must be a date like 2026-12-24",
    );
    fails(
        &household(&anna, &["policy", "except", "Mia", "2099-12-25"]),
        2,
        "--minutes N (0 to 1440), --no-limit or --no-downtime",
    );
    fails(
        &household(
            &anna,
            &["policy", "except", "Mia", "today", "--minutes", "1441"],
        ),
        2,
        "--minutes",
    );
    let unchanged: serde_json::Value =
        serde_json::from_str(&ok(household(&anna, &["policy", "show", "Mia", "--json"]))).unwrap();
    assert_eq!(
        unchanged["exceptions"].as_array().map(Vec::len),
        Some(1),
        "{unchanged}"
    );

    let report: serde_json::Value = serde_json::from_str(&ok(household(
        &anna,
        &["report", "Mia", "--days", "3", "--json"],
    )))
    .unwrap();
    assert_eq!(report["days"].as_array().unwrap().len(), 3);
    assert_eq!(report["total_used_seconds"], 0);
    fails(
        &household(&anna, &["report", "Mia", "--days", "0"]),
        2,
        "--days must be 1 to 93",
    );

    // History tells who did what.
    let history = ok(household(
        &anna,
        &["history", "Mia", "--kind", "time_granted", "--json"],
    ));
    let granted: serde_json::Value = serde_json::from_str(history.lines().next().unwrap()).unwrap();
    assert_eq!(granted["actor"], "Anna");
    assert_eq!(granted["summary"], "added 30 min for Mia");
    assert_eq!(history.lines().count(), 1, "{history}");
    fails(
        &household(&anna, &["history", "Mia", "--kind", "grant"]),
        1,
        "time_granted",
    );

    ok(household(&anna, &["lock", "Mia", "--until", "23:59"]));
    assert_eq!(status_json(&anna)["children"][0]["state"], "locked");
    ok(household(&anna, &["unlock", "Mia"]));
    assert_eq!(status_json(&anna)["children"][0]["state"], "active");

    // The hub is gone.
    drop(hub);
    fails(&household(&anna, &["status"]), 4, "cannot reach the hub");
}

#[test]
fn two_guardians_see_each_others_actions_in_watch_json() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(&dir.path().join("hub"));
    let anna = dir.path().join("anna.json");
    let dad = dir.path().join("dad.json");
    ok(household(
        &anna,
        &["pair", &hub.invite_guardian("Anna"), "--hub", &hub.address],
    ));
    ok(household(
        &dad,
        &["pair", &hub.invite_guardian("Dad"), "--hub", &hub.address],
    ));
    ok(household(&anna, &["children", "add", "Mia"]));

    let mut watch = WatchJson::start(&dad);
    let mut next = || watch.next();
    let snapshot = next();
    assert_eq!(snapshot["type"], "snapshot");
    assert_eq!(snapshot["children"][0]["name"], "Mia");
    assert_eq!(next()["type"], "caught_up");

    ok(household(&anna, &["extend", "Mia", "15"]));
    let event = next();
    assert_eq!(event["type"], "event");
    assert_eq!(event["kind"], "time_granted");
    assert_eq!(event["actor"], "Anna");
    assert_eq!(event["summary"], "added 15 min for Mia");
    let status = next();
    assert_eq!(status["type"], "status");
    assert_eq!(status["name"], "Mia");
}

/// `household watch --json` in the background, read a line at a time.
struct WatchJson {
    process: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl WatchJson {
    fn start(profile: &Path) -> WatchJson {
        let mut process = Command::new(CLI)
            .arg("--config")
            .arg(profile)
            .args(["watch", "--json"])
            .env("RUST_LOG", "off")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let (lines_tx, lines) = std::sync::mpsc::channel();
        let stdout = process.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        WatchJson { process, lines }
    }

    /// The next line, parsed; panics after 20 s of silence or when watch exits.
    fn next(&mut self) -> serde_json::Value {
        let line = self
            .lines
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("a line from watch within 20 s (did it exit?)");
        serde_json::from_str(&line).unwrap()
    }
}

impl Drop for WatchJson {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// A hub killed mid-stream cuts the connection without a gRPC status (the client
/// sees UNKNOWN, not UNAVAILABLE): the watch waits it out, reconnects, and goes on
/// after the last event it printed.
#[test]
fn watch_json_rides_out_a_kill_9_of_the_hub() {
    let dir = tempfile::tempdir().unwrap();
    let mut hub = Hub::start(&dir.path().join("hub"));
    let anna = dir.path().join("anna.json");
    ok(household(
        &anna,
        &["pair", &hub.invite_guardian("Anna"), "--hub", &hub.address],
    ));
    ok(household(&anna, &["children", "add", "Mia"]));
    let mut watch = WatchJson::start(&anna);
    assert_eq!(watch.next()["type"], "snapshot");
    assert_eq!(watch.next()["type"], "caught_up");
    ok(household(&anna, &["extend", "Mia", "15"]));
    let before = watch.next();
    assert_eq!(before["summary"], "added 15 min for Mia");

    hub.kill9_and_restart();
    ok(household(&anna, &["extend", "Mia", "20"]));
    let after = loop {
        let line = watch.next();
        if line["type"] == "event" {
            break line;
        }
    };
    assert_eq!(
        after["summary"], "added 20 min for Mia",
        "nothing missed or repeated"
    );
    assert!(after["seq"].as_u64() > before["seq"].as_u64());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_childs_request_is_listed_and_answered_once() {
    use household_proto::v1::{self, outbox_item::Item, session_request::Message as Up};

    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(&dir.path().join("hub"));
    let anna = dir.path().join("anna.json");
    ok(household(
        &anna,
        &["pair", &hub.invite_guardian("Anna"), "--hub", &hub.address],
    ));
    ok(household(&anna, &["children", "add", "Mia"]));
    let children: serde_json::Value =
        serde_json::from_str(&ok(household(&anna, &["children", "list", "--json"]))).unwrap();
    let mia = children["children"][0]["child_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Mia's tablet asks for 20 minutes through its session.
    let code = hub.invite(&["--role", "device", "--name", "tablet", "--child", &mia]);
    let tablet = household_client::enroll(&hub.address, &code, &household_client::About::default())
        .await
        .unwrap()
        .credential;
    let channel = household_client::connect(
        &hub.address,
        &tablet.ca_pem,
        Some((&tablet.chain_pem, &tablet.key_pem)),
    )
    .await
    .unwrap();
    let (up, rx) = tokio::sync::mpsc::channel(8);
    for message in [
        Up::Hello(v1::Hello {
            instance_id: "tablet-1".into(),
            agent_time_unix_micros: jiff::Timestamp::now().as_microsecond(),
            ..Default::default()
        }),
        Up::OutboxItem(v1::OutboxItem {
            outbox_id: 1,
            recorded_unix_micros: jiff::Timestamp::now().as_microsecond(),
            item: Some(Item::TimeRequest(v1::TimeRequestSubmission {
                minutes: 20,
                note: "homework".into(),
            })),
        }),
    ] {
        up.send(v1::SessionRequest {
            message: Some(message),
        })
        .await
        .unwrap();
    }
    let _session = v1::agent_client::AgentClient::new(channel)
        .session(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap();

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let request_id = loop {
        let listed: serde_json::Value =
            serde_json::from_str(&ok(household(&anna, &["requests", "--json"]))).unwrap();
        if let Some(id) = listed["requests"][0]["request_id"].as_str() {
            assert_eq!(listed["requests"][0]["minutes"], 20);
            assert_eq!(listed["requests"][0]["child"], "Mia");
            break id.to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the request is listed within 20 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let printed = ok(household(&anna, &["approve", &request_id, "15"]));
    assert!(printed.contains("15 min"), "{printed}");
    // The first answer wins.
    fails(
        &household(&anna, &["deny", &request_id]),
        1,
        "already approved with 15 minutes by Anna",
    );
    let listed: serde_json::Value =
        serde_json::from_str(&ok(household(&anna, &["requests", "--json"]))).unwrap();
    assert_eq!(listed["requests"], serde_json::json!([]));
}

#[test]
fn a_guardian_invites_another_and_revokes_a_lost_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(&dir.path().join("hub"));
    let anna = dir.path().join("anna.json");
    let dad = dir.path().join("dad.json");
    ok(household(
        &anna,
        &["pair", &hub.invite_guardian("Anna"), "--hub", &hub.address],
    ));

    let printed = ok(household(&anna, &["invite", "guardian", "Dad", "--qr"]));
    assert!(printed.contains("pairing code for Dad"), "{printed}");
    let lines: Vec<&str> = printed.lines().collect();
    // The CA fingerprint, grouped as the phone's page shows it, from the code itself.
    let code = lines[lines.len() - 1].trim();
    let ca = code.rsplit('.').next().unwrap().to_ascii_uppercase();
    let grouped: Vec<String> = ca
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    assert_eq!(
        lines[1],
        format!("household CA fingerprint (SHA-256): {}", grouped.join(" ")),
        "{printed}"
    );
    // The QR code between the heading and the code's text: half blocks in a square.
    let picture = &lines[2..lines.len() - 2];
    // Below it, what it encodes: the web app's pairing page, the code in the fragment.
    let code = printed.lines().last().unwrap().trim();
    assert_eq!(
        lines[lines.len() - 2],
        format!("or open on the phone: https://{}/pair#{code}", hub.address),
        "{printed}"
    );
    assert!(picture.len() >= 12, "{printed}");
    assert!(
        picture
            .iter()
            .all(|l| l.chars().count() == 2 * picture.len() - 1
                || l.chars().count() == 2 * picture.len()),
        "{printed}"
    );
    assert!(
        picture
            .iter()
            .all(|l| l.chars().all(|c| " ▀▄█".contains(c))),
        "{printed}"
    );
    assert!(picture.iter().any(|l| l.contains('█')), "{printed}");
    let code = printed.lines().last().unwrap().trim();
    ok(household(&dad, &["pair", code, "--hub", &hub.address]));
    ok(household(&dad, &["status"]));

    // Anna's own second terminal (or phone) joins as Anna herself.
    let printed = ok(household(&anna, &["invite", "phone", "--qr"]));
    assert!(
        printed.contains("or open on the phone: https://"),
        "{printed}"
    );
    let code = printed.lines().last().unwrap().trim();
    let laptop = dir.path().join("anna-laptop.json");
    ok(household(&laptop, &["pair", code, "--hub", &hub.address]));

    let listed: serde_json::Value =
        serde_json::from_str(&ok(household(&anna, &["credentials", "list", "--json"]))).unwrap();
    let identities = listed["identities"].as_array().unwrap();
    let dad_id = identities
        .iter()
        .find(|i| i["name"] == "Dad")
        .map(|i| i["identity_id"].as_str().unwrap().to_owned())
        .expect("Dad is listed");
    let anna_id = identities
        .iter()
        .find(|i| i["name"] == "Anna")
        .map(|i| i["identity_id"].as_str().unwrap().to_owned())
        .expect("Anna is listed");
    let annas: Vec<_> = identities.iter().filter(|i| i["name"] == "Anna").collect();
    assert_eq!(annas.len(), 1, "{listed}");
    assert_eq!(
        annas[0]["credentials"].as_array().unwrap().len(),
        2,
        "{listed}"
    );
    ok(household(&laptop, &["status"]));

    // This terminal cannot cut itself off.
    fails(
        &household(&anna, &["credentials", "revoke", &anna_id]),
        1,
        "this terminal",
    );
    ok(household(&anna, &["credentials", "revoke", &dad_id]));
    fails(&household(&dad, &["status"]), 1, "the hub refused");

    // A device invite names the child.
    ok(household(&anna, &["children", "add", "Mia"]));
    let printed = ok(household(
        &anna,
        &["invite", "device", "--child", "Mia", "--qr"],
    ));
    assert!(printed.contains('▀'), "{printed}");
    assert!(
        printed.contains("pairing code for Mia's device"),
        "{printed}"
    );
    assert!(
        printed.lines().last().unwrap().starts_with("hh1."),
        "{printed}"
    );
}

#[test]
fn completions_and_the_manual_come_from_the_same_definitions() {
    let profile = Path::new("/nonexistent/profile.json");
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let script = ok(household(profile, &["completions", shell]));
        assert!(script.contains("extend"), "{shell}: {script}");
    }
    let manual = ok(household(profile, &["man"]));
    assert!(manual.starts_with(".ie"), "{manual}");
    assert!(manual.contains("Exit codes"), "{manual}");
    fails(
        &household(profile, &["completions", "tcsh"]),
        2,
        "invalid value",
    );
}

/// The watch screen in a pseudo-terminal: it draws the household, redraws in place when
/// another command acts, and gives the terminal back when `q` is pressed. Piped, the
/// same command prints lines.
#[test]
fn watch_on_a_terminal_redraws_in_place_and_piped_prints_lines() {
    use std::io::{Read as _, Write as _};
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    use portable_pty::{CommandBuilder, PtySize, native_pty_system};

    const ROWS: u16 = 24;
    const COLUMNS: u16 = 100;

    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(&dir.path().join("hub"));
    let anna = dir.path().join("anna.json");
    ok(household(
        &anna,
        &["pair", &hub.invite_guardian("Anna"), "--hub", &hub.address],
    ));
    ok(household(&anna, &["children", "add", "Mia"]));

    // Piped: lines, as before the screen existed.
    let mut piped = Command::new(CLI)
        .arg("--config")
        .arg(&anna)
        .arg("watch")
        .env("RUST_LOG", "off")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(piped.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let _ = piped.kill();
    let _ = piped.wait();
    assert_eq!(first.trim_end(), "Mia: active, 2 h 00 min left");

    let pty = native_pty_system()
        .openpty(PtySize {
            rows: ROWS,
            cols: COLUMNS,
            pixel_width: 0,
            pixel_height: 0,
        })
        .unwrap();
    let mut command = CommandBuilder::new(CLI);
    command.arg("--config");
    command.arg(&anna);
    command.arg("watch");
    command.env("RUST_LOG", "off");
    command.env("TERM", "xterm-256color");
    command.cwd(dir.path());
    let mut watch = pty.slave.spawn_command(command).unwrap();
    drop(pty.slave);
    let mut keys = pty.master.take_writer().unwrap();
    let mut output = pty.master.try_clone_reader().unwrap();
    let (bytes_tx, bytes) = mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        while let Ok(n) = output.read(&mut buffer) {
            if n == 0 || bytes_tx.send(buffer[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut terminal = vt100::Parser::new(
        std::num::NonZeroU16::new(ROWS).unwrap(),
        std::num::NonZeroU16::new(COLUMNS).unwrap(),
        0,
    );
    // Feeds the terminal what the program wrote until the screen passes `check`.
    let mut wait_for = |what: &str, check: &dyn Fn(&vt100::Screen) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !check(terminal.screen()) {
            let left = deadline.saturating_duration_since(Instant::now());
            match bytes.recv_timeout(left) {
                Ok(chunk) => terminal.process(&chunk),
                Err(_) => panic!(
                    "{what} within 20 s; the screen:\n{}",
                    terminal.screen().contents()
                ),
            }
        }
        terminal.screen().contents()
    };

    let first = wait_for("Mia on a live screen", &|screen| {
        let text = screen.contents();
        screen.alternate_screen()
            && text.contains("live, seq")
            && text.contains("Mia")
            && text.contains("2 h 00 min of 2 h 00 min")
    });
    assert!(first.contains("active"), "{first}");
    assert!(
        first.contains("nothing yet since the watch began"),
        "{first}"
    );

    ok(household(&anna, &["extend", "Mia", "15"]));
    let second = wait_for("the grant on the screen", &|screen| {
        let text = screen.contents();
        text.contains("2 h 15 min of 2 h 15 min") && text.contains("Anna: added 15 min for Mia")
    });
    // Redrawn in place: the old figure is gone, nothing scrolled, one heading.
    assert!(!second.contains("2 h 00 min"), "{second}");
    assert_eq!(second.matches("Household at").count(), 1, "{second}");
    assert!(second.starts_with("Household at"), "{second}");

    keys.write_all(b"q").unwrap();
    keys.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = watch.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "watch still running 10 s after q"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    // What it wrote last: the terminal is given back.
    while let Ok(chunk) = bytes.recv_timeout(Duration::from_millis(500)) {
        terminal.process(&chunk);
    }
    assert!(!terminal.screen().alternate_screen());
    assert!(!terminal.screen().hide_cursor());
}
