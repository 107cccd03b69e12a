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

/// An Android child on a phone set to Arabic: it formats the numbers of
/// `TIME_LEFT` in Arabic-Indic digits. This one answers from its own
/// address (127.0.0.1) whatever address the command was sent to, and
/// records where each command came from.
async fn arabic_child() -> (u16, tokio::sync::mpsc::UnboundedReceiver<SocketAddr>) {
    let key = ID.parse::<DeviceId>().unwrap().key();
    let socket = tokio::net::UdpSocket::bind("0.0.0.0:0").await.unwrap();
    let port = socket.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut buffer = [0u8; 1100];
        // Bounded: a test sends only a few commands.
        for _ in 0..16 {
            let Ok((len, from)) = socket.recv_from(&mut buffer).await else {
                return;
            };
            let text = String::from_utf8_lossy(&buffer[..len]).into_owned();
            let Some(sealed) = text.strip_prefix("CST_CMD:") else {
                continue;
            };
            if key.open(sealed).is_err() {
                continue;
            }
            let _ = tx.send(from);
            let reply = format!("CST_RESP:{}", key.seal("TIME_LEFT|٧٨|ACTIVE|١٢٠"));
            let answer = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            answer.send_to(reply.as_bytes(), from).await.unwrap();
        }
    });
    (port, rx)
}

#[tokio::test(flavor = "multi_thread")]
async fn replies_in_other_digits_and_from_another_address_of_a_broadcast_target_are_read() {
    let (port, mut sources) = arabic_child().await;
    let mut args = send_args(port, ID, "GET_TIME_LEFT");
    args[3] = "127.255.255.255".into();
    args.splice(4..4, ["--from".to_owned(), "127.0.0.9".to_owned()]);
    let out = household(args).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Time Left: 78 min (Total: 120 min) - Status: ACTIVE\n"
    );
    let from = sources.recv().await.unwrap();
    assert_eq!(from.ip().to_string(), "127.0.0.9", "sent from --from");
}
