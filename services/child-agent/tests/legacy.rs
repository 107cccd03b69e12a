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

    // Every executed command is in the store with the sender as actor.
    drop(agent);
    let log = home.command(&["log", "--limit", "100"]);
    let events: Vec<serde_json::Value> = String::from_utf8(log.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let legacy: Vec<&str> = events
        .iter()
        .filter(|e| e["kind"]["kind"] == "legacy_command")
        .map(|e| e["kind"]["command"].as_str().unwrap())
        .collect();
    assert_eq!(
        legacy,
        [
            "GET_TIME_LEFT",
            "EXTEND_TIME:30",
            "LOCK_DEVICE",
            "GET_TIME_LEFT",
            "EXTEND_TIME:5"
        ]
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

    let agent = home.start(1.0, &["--legacy-mode", "off"]);
    let to = SocketAddr::from(([127, 0, 0, 1], agent.port));
    let err = client::send_command(to, &key(&home), "GET_TIME_LEFT", Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Timeout { .. }));
}
