//! `household legacy …` against an in-process CST child on loopback.

use std::net::SocketAddr;
use std::process::{Command as Process, Output};
use std::sync::Arc;

use cst_legacy::{
    Command, DeviceId, Handler, LegacyState, Mode, Reply, Responder, ResponderConfig,
};

const ID: &str = "A1B2C3D4E5F60718";

struct Child;

impl Handler for Child {
    async fn handle(&self, command: Command, _: SocketAddr) -> Reply {
        match command {
            Command::GetTimeLeft => Reply::TimeLeft {
                remaining_minutes: 42,
                state: LegacyState::Active,
                credit_minutes: 120,
            },
            Command::LockDevice => Reply::LockFailed,
            Command::ExtendTime { minutes } => Reply::TimeExtended { minutes },
        }
    }
}

/// A child on 0.0.0.0 (so loopback broadcasts reach it); returns its port.
async fn child() -> u16 {
    let key = ID.parse::<DeviceId>().unwrap().key();
    let responder = Responder::bind(
        "0.0.0.0:0".parse().unwrap(),
        ResponderConfig::new(key, Mode::Full),
        Arc::new(Child),
    )
    .await
    .unwrap();
    let port = responder.local_addr().unwrap().port();
    tokio::spawn(responder.serve(std::future::pending()));
    port
}

async fn household(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Process::new(env!("CARGO_BIN_EXE_household"))
            .args(args)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn send_args(port: u16, id: &str, command: &str) -> Vec<String> {
    [
        "legacy",
        "send",
        "--to",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--device-id",
        id,
        "--timeout",
        "2",
        command,
    ]
    .map(String::from)
    .to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn send_prints_the_reply_as_the_parent_app_does() {
    let port = child().await;
    let out = household(send_args(port, ID, "GET_TIME_LEFT")).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Time Left: 42 min (Total: 120 min) - Status: ACTIVE\n"
    );
    let out = household(send_args(port, &ID.to_lowercase(), "EXTEND_TIME:15")).await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "TIME_EXTENDED|15 minutes added\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn error_replies_and_timeouts_exit_non_zero() {
    let port = child().await;
    let out = household(send_args(port, ID, "LOCK_DEVICE")).await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("DEVICE_LOCKED|ERROR|Failed to lock device")
    );
    let out = household(send_args(port, ID, "EXTEND_TIME:9999")).await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("ERROR|Invalid minutes. Must be 1-1440"));
    // The wrong device ID: the child drops what it cannot open.
    let out = household(send_args(port, "0000000000000000", "GET_TIME_LEFT")).await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("no reply from 127.0.0.1"));
    let out = household(send_args(port, "XYZ", "GET_TIME_LEFT")).await;
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("device_id must be 16 hexadecimal digits")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn discover_lists_a_child_found_by_loopback_broadcast() {
    let port = child().await;
    let args = [
        "legacy",
        "discover",
        "--broadcast",
        "127.255.255.255",
        "--port",
        &port.to_string(),
        "--timeout",
        "0.5",
    ]
    .map(String::from)
    .to_vec();
    let out = household(args).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "127.0.0.1\n");
}
