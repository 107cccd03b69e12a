//! The hub's life around its data: SIGTERM ends streams and exits cleanly and fast,
//! a start after a clean stop folds nothing (the snapshot holds everything) and after a
//! kill -9 only what followed the snapshot, and a backup is a data directory that
//! `serve` opens as it is, and `health` answers over the admin socket.

mod common;

use std::time::Duration;

use common::{Hub, guardian};
use household_proto::v1;
use household_proto::v1::household_client::HouseholdClient;
use tokio_stream::StreamExt;
use tonic::Code;
use tonic::transport::Channel;

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

/// A free loopback address for `--metrics`.
fn metrics_address() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("127.0.0.1:{port}")
}

/// The hub's `/metrics` page.
fn scrape(address: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    text
}

/// The value of a metric without labels.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
        .parse()
        .unwrap()
}

async fn grant(client: &mut HouseholdClient<Channel>, child: &str, key: &str) {
    client
        .grant_time(v1::GrantTimeRequest {
            child_id: child.into(),
            minutes: 10,
            idempotency_key: key.into(),
            note: String::new(),
        })
        .await
        .unwrap();
}

async fn granted_seconds(client: &mut HouseholdClient<Channel>, child: &str) -> i64 {
    let status = client
        .get_status(v1::GetStatusRequest {
            child_ids: vec![child.into()],
        })
        .await
        .unwrap()
        .into_inner();
    status.children[0].allowance_seconds
}

#[tokio::test(flavor = "multi_thread")]
async fn a_start_folds_only_what_the_snapshot_does_not_hold() {
    let dir = tempfile::tempdir().unwrap();
    let (mut hub, anna) = common::hub_with_guardian(dir.path()).await;
    let mut client = guardian(hub.addr, &anna).await;
    let mia = common::add_child(&mut client, "Mia").await;
    grant(&mut client, &mia, "first").await;
    let allowance = granted_seconds(&mut client, &mia).await;
    hub.terminate();
    assert!(dir.path().join("snapshot/household.json").is_file());

    // After a clean stop the snapshot holds everything.
    let address = metrics_address();
    let mut hub = Hub::start_with(dir.path(), &["--rate-limit", "0", "--metrics", &address]);
    let text = scrape(&address);
    assert_eq!(metric(&text, "household_hub_rebuild_events"), 0.0);
    let mut client = guardian(hub.addr, &anna).await;
    assert_eq!(granted_seconds(&mut client, &mia).await, allowance);

    // After a kill -9, the events since the snapshot are folded from the log.
    grant(&mut client, &mia, "second").await;
    grant(&mut client, &mia, "third").await;
    hub.kill9();
    let address = metrics_address();
    let hub = Hub::start_with(dir.path(), &["--rate-limit", "0", "--metrics", &address]);
    let folded = metric(&scrape(&address), "household_hub_rebuild_events");
    // The two grants, and the presence events of the start between.
    assert!((2.0..10.0).contains(&folded), "folded {folded}");
    let mut client = guardian(hub.addr, &anna).await;
    assert_eq!(
        granted_seconds(&mut client, &mia).await,
        allowance + 2 * 600
    );
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
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&backup).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "the backup is owner-only");

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
    let metrics = metrics_address();
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
    let text = scrape(&metrics);
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

#[tokio::test(flavor = "multi_thread")]
async fn a_forgotten_child_is_in_no_snapshot_and_stays_forgotten_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (mut hub, anna) = common::hub_with_guardian(dir.path()).await;
    let mut client = guardian(hub.addr, &anna).await;
    let mia = common::add_child(&mut client, "Mia").await;
    let leo = common::add_child(&mut client, "Leo").await;
    grant(&mut client, &mia, "for-mia").await;
    grant(&mut client, &leo, "for-leo").await;
    // A snapshot that holds Mia: the one a clean stop writes.
    hub.terminate();
    let mut hub = Hub::start(dir.path());
    let mut admin = household_hub::admin_client::connect(&hub.admin_socket)
        .await
        .unwrap();
    admin
        .forget_child(v1::ForgetChildRequest {
            child_id: mia.clone(),
        })
        .await
        .unwrap();
    let snapshot = std::fs::read_to_string(dir.path().join("snapshot/household.json")).unwrap();
    assert!(!snapshot.contains(&mia), "the snapshot still names {mia}");
    assert!(snapshot.contains(&leo));

    // Killed before any other snapshot: the start reads the one ForgetChild wrote.
    hub.kill9();
    let hub = Hub::start(dir.path());
    let mut client = guardian(hub.addr, &anna).await;
    let children = client
        .list_children(v1::ListChildrenRequest {})
        .await
        .unwrap()
        .into_inner()
        .children;
    let ids: Vec<&str> = children.iter().map(|c| c.child_id.as_str()).collect();
    assert_eq!(ids, [leo.as_str()]);
}

/// `household-hub health` answers from the admin socket: SERVING and exit 0 while the
/// hub serves, exit 1 once it is gone.
#[tokio::test(flavor = "multi_thread")]
async fn health_says_serving_over_the_admin_socket_and_fails_without_a_hub() {
    let dir = tempfile::tempdir().unwrap();
    let (mut hub, _anna) = common::hub_with_guardian(dir.path()).await;
    let health = |socket: &std::path::Path| {
        std::process::Command::new(common::BIN)
            .arg("health")
            .arg("--admin-socket")
            .arg(socket)
            .output()
            .unwrap()
    };
    let serving = health(&hub.admin_socket);
    assert!(serving.status.success(), "{serving:?}");
    assert_eq!(String::from_utf8_lossy(&serving.stdout).trim(), "SERVING");

    let socket = hub.admin_socket.clone();
    let (status, _) = hub.terminate();
    assert!(status.success());
    let gone = health(&socket);
    assert_eq!(gone.status.code(), Some(1), "{gone:?}");
}
