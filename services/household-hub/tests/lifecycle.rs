//! The hub's life around its data: SIGTERM ends streams and exits cleanly and fast,
//! and a backup is a data directory that `serve` opens as it is.

mod common;

use std::time::Duration;

use common::{Hub, guardian};
use household_proto::v1;
use tokio_stream::StreamExt;
use tonic::Code;

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_ends_streams_with_unavailable_and_exits_0_within_5_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let (mut hub, anna) = common::hub_with_guardian(dir.path()).await;
    let mut client = guardian(hub.addr, &anna).await;
    let mut watch = client
        .watch(v1::WatchRequest::default())
        .await
        .unwrap()
        .into_inner();
    while let Some(item) = watch.next().await {
        if matches!(
            item.unwrap().item,
            Some(v1::watch_response::Item::CaughtUp(_))
        ) {
            break;
        }
    }
    let (status, took) = hub.terminate();
    assert!(status.success(), "exit status {status:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let end = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .expect("the stream ends");
    match end {
        Some(Err(status)) => assert_eq!(status.code(), Code::Unavailable, "{status:?}"),
        other => panic!("the watch should end with UNAVAILABLE, got {other:?}"),
    }
    assert!(!hub.admin_socket.exists(), "the admin socket is removed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_opens_as_a_data_directory_with_everything_in_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub");
    let (mut hub, anna) = common::hub_with_guardian(&data).await;
    let mut client = guardian(hub.addr, &anna).await;
    let mia = common::add_child(&mut client, "Mia").await;
    let granted = client
        .grant_time(v1::GrantTimeRequest {
            child_id: mia.clone(),
            minutes: 20,
            idempotency_key: "before-backup".into(),
            note: String::new(),
        })
        .await
        .unwrap()
        .into_inner();

    let backup = dir.path().join("backup");
    let output = std::process::Command::new(common::BIN)
        .args(["backup", "--to"])
        .arg(&backup)
        .arg("--admin-socket")
        .arg(&hub.admin_socket)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        printed.contains("restore: household-hub serve --data-dir"),
        "{printed}"
    );

    // A second backup to the same place is refused.
    let again = std::process::Command::new(common::BIN)
        .args(["backup", "--to"])
        .arg(&backup)
        .arg("--admin-socket")
        .arg(&hub.admin_socket)
        .output()
        .unwrap();
    assert!(!again.status.success());

    // Changes after the backup are not in it.
    client
        .grant_time(v1::GrantTimeRequest {
            child_id: mia.clone(),
            minutes: 5,
            idempotency_key: "after-backup".into(),
            note: String::new(),
        })
        .await
        .unwrap();
    hub.terminate();

    let restored = Hub::start(&backup);
    let mut client = guardian(restored.addr, &anna).await;
    let status = client
        .get_status(v1::GetStatusRequest {
            child_ids: vec![mia.clone()],
        })
        .await
        .unwrap()
        .into_inner()
        .children
        .remove(0);
    assert_eq!(
        status.allowance_seconds,
        granted.status.unwrap().allowance_seconds
    );
    // The key logged before the backup still replays after the restore.
    let retry = client
        .grant_time(v1::GrantTimeRequest {
            child_id: mia,
            minutes: 20,
            idempotency_key: "before-backup".into(),
            note: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(retry.replayed);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_socket_is_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(dir.path());
    let mode = std::fs::metadata(&hub.admin_socket)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "admin socket mode {mode:o}");
    let data_mode = std::fs::metadata(dir.path()).unwrap().permissions().mode();
    assert_eq!(data_mode & 0o077, 0, "data dir mode {data_mode:o}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rate_limit_refuses_with_a_retry_delay() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start_with(dir.path(), &["--rate-limit", "2"]);
    let code = hub.invite("guardian", "Anna", None);
    let anna = common::enroll(hub.addr, &code).await.unwrap();
    let mut client = guardian(hub.addr, &anna).await;
    let mut refused = None;
    for _ in 0..20 {
        if let Err(status) = client.list_children(v1::ListChildrenRequest {}).await {
            refused = Some(status);
            break;
        }
    }
    let status = refused.expect("20 calls at once exceed 2 per second");
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(common::reason(&status), "RATE_LIMITED");
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_rpcs_by_method_and_code() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let metrics = format!("127.0.0.1:{port}");
    let hub = Hub::start_with(dir.path(), &["--rate-limit", "0", "--metrics", &metrics]);
    let code = hub.invite("guardian", "Anna", None);
    let anna = common::enroll(hub.addr, &code).await.unwrap();
    let mut client = guardian(hub.addr, &anna).await;
    client
        .list_children(v1::ListChildrenRequest {})
        .await
        .unwrap();
    let _ = client
        .get_policy(v1::GetPolicyRequest {
            child_id: "c-nobody".into(),
        })
        .await;
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(&metrics).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.contains(
            "household_hub_rpcs_total{method=\"household.v1.Household/ListChildren\",code=\"Ok\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains("household_hub_rpcs_total{method=\"household.v1.Household/GetPolicy\",code=\"NotFound\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("household_hub_events_appended_total"),
        "{text}"
    );
    assert!(text.contains("household_hub_rebuild_seconds"), "{text}");
}
