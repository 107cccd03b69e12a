//! An unmodified CST parent app's view of the agent: the legacy protocol on
//! loopback, driven by the `cst-legacy` client.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::Home;
use cst_legacy::client::{self, ClientError};
use cst_legacy::{DeviceId, Key, Reply};

fn key(home: &Home) -> Key {
    let out = home.command(&["show-id"]);
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse::<DeviceId>()
        .unwrap()
        .key()
}

async fn send(home: &Home, port: u16, command: &str) -> Result<Reply, ClientError> {
    let to = SocketAddr::from(([127, 0, 0, 1], port));
    client::send_command(to, &key(home), command, Duration::from_secs(5)).await
}

#[tokio::test(flavor = "multi_thread")]
async fn time_left_extend_and_lock_act_on_the_live_status() {
    let home = Home::new("timezone = \"UTC\"\ndaily_minutes = 60\ngrace_minutes = 0\n");
    let agent = home.start(1.0, &[]);

    let reply = send(&home, agent.port, "GET_TIME_LEFT").await.unwrap();
    assert_eq!(reply.to_string(), home.status().unwrap()["cst_time_left"]);
    assert_eq!(reply.to_string(), "TIME_LEFT|60|ACTIVE|60");

    let reply = send(&home, agent.port, "EXTEND_TIME:30").await.unwrap();
    assert_eq!(reply.to_string(), "TIME_EXTENDED|30 minutes added");
    assert_eq!(home.status().unwrap()["credit_minutes"], 90);

    let reply = send(&home, agent.port, "LOCK_DEVICE").await.unwrap();
    assert_eq!(reply.to_string(), "DEVICE_LOCKED|Device is now blocked");
    assert_eq!(home.status().unwrap()["state"], "LOCKED");
    let reply = send(&home, agent.port, "GET_TIME_LEFT").await.unwrap();
    assert!(reply.to_string().contains("|BLOCKED|"), "{reply}");

    // As on the Android child, an extension is what unblocks.
    send(&home, agent.port, "EXTEND_TIME:5").await.unwrap();
    assert_eq!(home.status().unwrap()["state"], "ACTIVE");

    let reply = send(&home, agent.port, "EXTEND_TIME:0").await.unwrap();
    assert_eq!(reply.to_string(), "ERROR|Invalid minutes. Must be 1-1440");

    // Every command is in the store with the sender as actor, the one that
    // was not a command too.
    assert!(agent.terminate());
    let events = log(&home);
    assert_eq!(
        legacy_commands(&events),
        [
            "GET_TIME_LEFT applied",
            "EXTEND_TIME:30 applied",
            "LOCK_DEVICE applied",
            "GET_TIME_LEFT applied",
            "EXTEND_TIME:5 applied",
            "EXTEND_TIME:0 rejected_invalid",
        ]
    );
    assert!(
        events
            .iter()
            .filter(|e| e["kind"]["kind"] == "legacy_command")
            .all(|e| e["actor"]["type"] == "legacy_address")
    );
    let grant = events
        .iter()
        .find(|e| e["kind"]["kind"] == "time_granted")
        .unwrap();
    assert_eq!(grant["actor"]["type"], "legacy_address");
    assert!(
        grant["actor"]["address"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
}

/// `child-agent log`: the stored events, oldest first.
fn log(home: &Home) -> Vec<serde_json::Value> {
    let out = home.command(&["log", "--limit", "100"]);
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Each recorded legacy command as "COMMAND outcome".
fn legacy_commands(events: &[serde_json::Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["kind"]["kind"] == "legacy_command")
        .map(|e| {
            let kind = &e["kind"];
            format!(
                "{} {}",
                kind["command"].as_str().unwrap(),
                kind["outcome"].as_str().unwrap()
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_acknowledged_extension_or_lock_survives_a_kill_9_at_once() {
    let home = Home::new("timezone = \"UTC\"\ndaily_minutes = 60\n");
    let agent = home.start(1.0, &[]);
    let reply = send(&home, agent.port, "EXTEND_TIME:30").await.unwrap();
    assert_eq!(reply, Reply::TimeExtended { minutes: 30 });
    let reply = send(&home, agent.port, "LOCK_DEVICE").await.unwrap();
    assert_eq!(reply, Reply::DeviceLocked);
    agent.kill9();
    let events = log(&home);
    assert_eq!(
        legacy_commands(&events),
        ["EXTEND_TIME:30 applied", "LOCK_DEVICE applied"]
    );
    let kinds: Vec<&str> = events
        .iter()
        .filter_map(|e| e["kind"]["kind"].as_str())
        .filter(|kind| *kind != "usage_reported")
        .collect();
    assert_eq!(
        kinds,
        ["legacy_command", "time_granted", "legacy_command", "locked"]
    );
    let status = home.status().unwrap();
    assert_eq!(status["credit_minutes"], 90);
    assert_eq!(status["state"], "LOCKED");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_unlock_hook_runs_after_a_legacy_extension() {
    let home = Home::new("timezone = \"UTC\"\ndaily_minutes = 1\ngrace_minutes = 0\n");
    let log = home.file("hooks.log");
    let on_lock = format!("echo lock >> {}", log.display());
    let on_unlock = format!(
        "echo \"unlock $CHILD_AGENT_REMAINING_MINUTES\" >> {}",
        log.display()
    );
    let agent = home.start(60.0, &["--on-lock", &on_lock, "--on-unlock", &on_unlock]);
    home.wait_for_line("hooks.log", "lock");
    let reply = send(&home, agent.port, "EXTEND_TIME:20").await.unwrap();
    assert_eq!(reply, Reply::TimeExtended { minutes: 20 });
    home.wait_for_line("hooks.log", "unlock 20");
}

#[tokio::test(flavor = "multi_thread")]
async fn read_only_and_off_modes() {
    let home = Home::new("timezone = \"UTC\"\n");
    let agent = home.start(1.0, &["--legacy-mode", "read-only"]);
    assert!(matches!(
        send(&home, agent.port, "GET_TIME_LEFT").await,
        Ok(Reply::TimeLeft { .. })
    ));
    assert_eq!(
        send(&home, agent.port, "LOCK_DEVICE").await.unwrap(),
        Reply::LockFailed
    );
    assert_eq!(
        home.status().unwrap()["state"],
        "ACTIVE",
        "nothing was locked"
    );
    assert!(agent.terminate());
    assert_eq!(
        legacy_commands(&log(&home)),
        ["GET_TIME_LEFT applied", "LOCK_DEVICE rejected_read_only"],
        "the refusal is recorded too"
    );

    let agent = home.start(1.0, &["--legacy-mode", "off"]);
    let to = SocketAddr::from(([127, 0, 0, 1], agent.port));
    let err = client::send_command(to, &key(&home), "GET_TIME_LEFT", Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Timeout { .. }));
}

/// A captured `EXTEND_TIME` sent again after the agent restarted (even
/// after a kill -9 right after it was answered) is still a replay.
#[tokio::test(flavor = "multi_thread")]
async fn the_replay_window_survives_a_restart() {
    let home = Home::new("timezone = \"UTC\"\ndaily_minutes = 60\n");
    let agent = home.start(1.0, &[]);
    let key = key(&home);
    let capture = format!("CST_CMD:{}", key.seal("EXTEND_TIME:30"));
    let exchange = |port: u16| {
        let capture = capture.clone();
        async move {
            let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            socket
                .send_to(capture.as_bytes(), ("127.0.0.1", port))
                .await
                .unwrap();
            let mut buffer = [0u8; 1100];
            tokio::time::timeout(Duration::from_secs(3), socket.recv_from(&mut buffer))
                .await
                .is_ok()
        }
    };
    assert!(exchange(agent.port).await, "the first one is answered");
    assert_eq!(home.status().unwrap()["credit_minutes"], 90);
    agent.kill9();
    let agent = home.start(1.0, &[]);
    assert!(
        !exchange(agent.port).await,
        "the replay is dropped unanswered"
    );
    assert_eq!(
        home.status().unwrap()["credit_minutes"],
        90,
        "and grants nothing"
    );
}
