//! Watch: one order for every watcher, resuming after a seq, and a watcher that never
//! reads, which must cost the hub nothing it cannot bound.

mod common;

use std::time::Duration;

use common::guardian;
use household_proto::v1::{self, watch_response::Item};
use tokio_stream::StreamExt;

type Client = v1::household_client::HouseholdClient<tonic::transport::Channel>;

async fn grant(client: &mut Client, child: &str, key: String) -> u64 {
    client
        .grant_time(v1::GrantTimeRequest {
            child_id: child.into(),
            minutes: 1,
            idempotency_key: key,
            note: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .event
        .unwrap()
        .seq
}

/// Reads items until an event with `seq` has been seen; returns the event seqs seen.
async fn events_until(stream: &mut tonic::Streaming<v1::WatchResponse>, seq: u64) -> Vec<u64> {
    let mut seen = Vec::new();
    while seen.last().is_none_or(|last| *last < seq) {
        let item = tokio::time::timeout(Duration::from_secs(20), stream.next())
            .await
            .expect("watch delivers in time")
            .expect("stream open")
            .expect("no error");
        if let Some(Item::Event(event)) = item.item {
            seen.push(event.seq);
        }
    }
    seen
}

async fn caught_up(stream: &mut tonic::Streaming<v1::WatchResponse>) -> (v1::CaughtUp, Vec<Item>) {
    let mut before = Vec::new();
    loop {
        let item = stream.next().await.unwrap().unwrap().item.unwrap();
        match item {
            Item::CaughtUp(c) => return (c, before),
            other => before.push(other),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_watchers_see_the_same_events_in_the_same_order() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, anna) = common::hub_with_guardian(dir.path()).await;
    let mut a = guardian(hub.addr, &anna).await;
    let mia = common::add_child(&mut a, "Mia").await;
    let leo = common::add_child(&mut a, "Leo").await;
    let mut watch_a = a
        .watch(v1::WatchRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut watch_b = a
        .clone()
        .watch(v1::WatchRequest::default())
        .await
        .unwrap()
        .into_inner();
    let (first_a, items) = caught_up(&mut watch_a).await;
    assert!(matches!(items[0], Item::Snapshot(_)));
    let (first_b, _) = caught_up(&mut watch_b).await;
    assert!(!first_a.resumed);

    // Two guardians' phones acting at once on two children.
    let tasks: Vec<_> = (0..4)
        .map(|t| {
            let mut client = a.clone();
            let child = if t % 2 == 0 { mia.clone() } else { leo.clone() };
            tokio::spawn(async move {
                let mut last = 0;
                for i in 0..25 {
                    last = last.max(grant(&mut client, &child, format!("t{t}-{i}")).await);
                }
                last
            })
        })
        .collect();
    let mut last = 0;
    for task in tasks {
        last = last.max(task.await.unwrap());
    }
    let seen_a = events_until(&mut watch_a, last).await;
    let seen_b = events_until(&mut watch_b, last).await;
    assert_eq!(seen_a, seen_b, "one order for everyone");
    assert!(
        seen_a.windows(2).all(|w| w[0] < w[1]),
        "strictly increasing"
    );
    assert_eq!(seen_a.len(), 100);
    assert!(seen_a[0] > first_a.seq.min(first_b.seq));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_watch_resumes_after_the_last_seq_it_saw() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, anna) = common::hub_with_guardian(dir.path()).await;
    let mut client = guardian(hub.addr, &anna).await;
    let mia = common::add_child(&mut client, "Mia").await;
    let mut watch = client
        .watch(v1::WatchRequest::default())
        .await
        .unwrap()
        .into_inner();
    let (caught, _) = caught_up(&mut watch).await;
    drop(watch);

    let mut granted = Vec::new();
    for i in 0..3 {
        granted.push(grant(&mut client, &mia, format!("r{i}")).await);
    }
    let mut watch = client
        .watch(v1::WatchRequest {
            resume_after_seq: Some(caught.seq),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let (resumed, items) = caught_up(&mut watch).await;
    assert!(resumed.resumed);
    let replayed: Vec<u64> = items
        .iter()
        .filter_map(|i| match i {
            Item::Event(e) if e.kind() == Some(v1::EventKind::TimeGranted) => Some(e.seq),
            _ => None,
        })
        .collect();
    assert_eq!(replayed, granted);
    assert!(
        items
            .iter()
            .any(|i| matches!(i, Item::Status(s) if s.child_id == mia))
    );
    assert!(!items.iter().any(|i| matches!(i, Item::Snapshot(_))));

    let err = client
        .watch(v1::WatchRequest {
            resume_after_seq: Some(resumed.seq + 100),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(common::reason(&err), "INVALID_FIELD");
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_watcher_that_never_reads_costs_bounded_memory_and_then_resyncs() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, anna) = common::hub_with_guardian(dir.path()).await;
    let mut client = guardian(hub.addr, &anna).await;
    let mia = common::add_child(&mut client, "Mia").await;
    // Its own connection with the protocol's smallest windows, so its unread stream
    // fills them after a few dozen items and the hub's side of it has to wait.
    let mut sleeper = v1::household_client::HouseholdClient::new(
        common::channel_with_window(hub.addr, &anna, 65_535).await,
    );
    let mut slow = sleeper
        .watch(v1::WatchRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut reader = client
        .watch(v1::WatchRequest::default())
        .await
        .unwrap()
        .into_inner();
    caught_up(&mut reader).await;
    // A watcher that keeps reading, on its own task, while the other one sleeps. It
    // stops once it has seen the seq it is told (via `target`) is the last.
    let (target, mut target_rx) = tokio::sync::watch::channel(u64::MAX);
    let reading = tokio::spawn(async move {
        let mut seen: Vec<u64> = Vec::new();
        loop {
            if seen.last().is_some_and(|last| *last >= *target_rx.borrow()) {
                return seen;
            }
            let item = tokio::select! {
                item = reader.next() => item,
                _ = target_rx.changed() => continue,
                () = tokio::time::sleep(Duration::from_secs(60)) => panic!("the reading watcher stalled"),
            };
            match item {
                Some(Ok(v1::WatchResponse {
                    item: Some(Item::Event(event)),
                })) => seen.push(event.seq),
                Some(Ok(v1::WatchResponse {
                    item: Some(Item::Snapshot(_)),
                })) => panic!("the reading watcher had to resync"),
                Some(Ok(_)) => {}
                other => panic!("the reading watcher stopped: {other:?}"),
            }
        }
    });

    for i in 0..500 {
        grant(&mut client, &mia, format!("warm-{i}")).await;
    }
    let warm = rss_kib(hub.child.id());
    let mut last = 0;
    for i in 0..2500 {
        last = grant(&mut client, &mia, format!("g-{i}")).await;
    }
    let after = rss_kib(hub.child.id());
    assert!(
        after < warm + 16 * 1024,
        "hub memory grew from {warm} KiB to {after} KiB while a watcher slept"
    );
    // The reader kept up the whole time and saw every grant.
    target.send_replace(last);
    let seen = reading.await.unwrap();
    assert_eq!(seen.last(), Some(&last));
    assert!(seen.len() >= 3000, "{} events", seen.len());

    // The sleeper wakes up: after what was buffered it gets a fresh snapshot, and that
    // snapshot covers the newest grant.
    let mut snapshots = 0;
    let resynced = loop {
        let item = tokio::time::timeout(Duration::from_secs(20), slow.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
            .item
            .unwrap();
        if let Item::Snapshot(snapshot) = item {
            snapshots += 1;
            if snapshots == 2 {
                break snapshot;
            }
        }
    };
    assert!(
        resynced.seq >= last,
        "the resync is current: {} < {last}",
        resynced.seq
    );
}
