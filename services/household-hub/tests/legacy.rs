//! The legacy bridge against a stand-in CST Android child (the `cst-legacy` responder
//! with the Android child's time rules) on loopback: the hub corrects what the child
//! shows both ways, forwards a lock at once, counts the use the child reports, and marks
//! the child offline when it stops answering.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Hub, guardian};
use cst_legacy::{Command, DeviceId, LegacyState, Mode, Reply, Responder, ResponderConfig};
use household_proto::v1;
use household_proto::v1::household_client::HouseholdClient;
use tonic::transport::Channel;

const CST_ID: &str = "0123456789ABCDEF";

/// An Android child's day, as `protocols/cst-legacy.md` describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Day {
    credit: i64,
    used: i64,
    locked: bool,
}

impl Day {
    fn remaining(&self) -> i64 {
        if self.locked {
            0
        } else {
            (self.credit - self.used).max(0)
        }
    }
}

struct AndroidChild {
    day: Mutex<Day>,
    /// Someone who knows the device ID answers every poll first, "BLOCKED".
    forged_blocked: std::sync::atomic::AtomicBool,
}

impl AndroidChild {
    fn day(&self) -> Day {
        *self.day.lock().unwrap()
    }

    fn use_minutes(&self, minutes: i64) {
        self.day.lock().unwrap().used += minutes;
    }
}

impl cst_legacy::Handler for AndroidChild {
    async fn handle(&self, command: Command, _source: SocketAddr) -> Reply {
        let mut day = self.day.lock().unwrap();
        match command {
            Command::GetTimeLeft
                if self
                    .forged_blocked
                    .load(std::sync::atomic::Ordering::Relaxed) =>
            {
                Reply::TimeLeft {
                    remaining_minutes: 0,
                    state: LegacyState::Blocked,
                    credit_minutes: day.credit,
                }
            }
            Command::GetTimeLeft => Reply::TimeLeft {
                remaining_minutes: day.remaining(),
                state: if day.remaining() == 0 {
                    LegacyState::Blocked
                } else {
                    LegacyState::Active
                },
                credit_minutes: day.credit,
            },
            Command::LockDevice => {
                day.locked = true;
                Reply::DeviceLocked
            }
            Command::ExtendTime { minutes } => {
                day.credit = day.used + i64::from(minutes);
                day.locked = false;
                Reply::TimeExtended { minutes }
            }
        }
    }
}

/// Starts the stand-in child on a free loopback port; dropping the sender stops it.
async fn android_child(
    day: Day,
) -> (
    Arc<AndroidChild>,
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
) {
    let child = Arc::new(AndroidChild {
        day: Mutex::new(day),
        forged_blocked: Default::default(),
    });
    let key = CST_ID.parse::<DeviceId>().unwrap().key();
    let responder = Responder::bind(
        "127.0.0.1:0".parse().unwrap(),
        ResponderConfig::new(key, Mode::Full),
        child.clone(),
    )
    .await
    .unwrap();
    let address = responder.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(responder.serve(async {
        let _ = stopped.await;
    }));
    (child, address, stop)
}

/// Waits up to 20 s for `check` to hold, trying every 100 ms.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(Instant::now() < deadline, "not within 20 s: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn device(client: &mut HouseholdClient<Channel>, device_id: &str) -> v1::Device {
    client
        .list_devices(v1::ListDevicesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .devices
        .into_iter()
        .find(|d| d.device_id == device_id)
        .unwrap()
}

async fn used_seconds(client: &mut HouseholdClient<Channel>, child: &str) -> i64 {
    client
        .get_status(v1::GetStatusRequest {
            child_ids: vec![child.into()],
        })
        .await
        .unwrap()
        .into_inner()
        .children[0]
        .used_seconds
}

#[tokio::test(flavor = "multi_thread")]
async fn the_hub_keeps_an_android_child_in_step_with_the_household() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start_with(dir.path(), &["--rate-limit", "0", "--legacy-poll", "1"]);
    let code = hub.invite("guardian", "Anna", None);
    let anna = common::enroll(hub.addr, &code).await.unwrap();
    let mut client = guardian(hub.addr, &anna).await;
    let mia = common::add_child(&mut client, "Mia").await;
    let allowance_minutes = client
        .get_status(v1::GetStatusRequest {
            child_ids: vec![mia.clone()],
        })
        .await
        .unwrap()
        .into_inner()
        .children[0]
        .remaining_seconds
        / 60;

    // The tablet thinks it has 15 minutes left of 45, 30 used.
    let (tablet, address, stop) = android_child(Day {
        credit: 45,
        used: 30,
        locked: false,
    })
    .await;
    let device_id = client
        .add_device(v1::AddDeviceRequest {
            child_id: mia.clone(),
            display_name: "Mia's tablet".into(),
            kind: Some(v1::add_device_request::Kind::LegacyCst(
                v1::LegacyCstDeviceSpec {
                    address: address.to_string(),
                    cst_device_id: CST_ID.into(),
                },
            )),
            idempotency_key: "tablet".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .device
        .unwrap()
        .device_id;

    // The household gives more: the tablet is set to what the household says.
    eventually("the tablet shows the household's time", || async {
        let day = tablet.day();
        (day.remaining() - allowance_minutes).abs() <= 1 && day.credit > 45
    })
    .await;
    eventually("the tablet is online", || async {
        device(&mut client.clone(), &device_id).await.online
    })
    .await;

    // Use counted on the tablet reaches the child's one budget.
    tablet.use_minutes(10);
    eventually("the tablet's 10 minutes are charged", || async {
        used_seconds(&mut client.clone(), &mia).await >= 10 * 60
    })
    .await;

    // A lock reaches the tablet at once, not at the next poll only.
    client
        .lock(v1::LockRequest {
            target: Some(v1::lock_request::Target::ChildId(mia.clone())),
            idempotency_key: "lock".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    eventually("the tablet is locked", || async { tablet.day().locked }).await;

    // Every command the hub sent is in the history, with its outcome.
    let history = client
        .get_history(v1::GetHistoryRequest {
            child_id: mia.clone(),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    let sent: Vec<(i32, i32)> = history
        .iter()
        .filter_map(|e| match &e.payload {
            Some(v1::event::Payload::LegacyCommand(c))
                if c.path == v1::LegacyPath::HubBridge as i32 =>
            {
                Some((c.command, c.outcome))
            }
            _ => None,
        })
        .collect();
    let applied = v1::LegacyOutcome::Applied as i32;
    assert!(
        sent.contains(&(v1::LegacyCommandKind::ExtendTime as i32, applied)),
        "{sent:?}"
    );
    assert!(
        sent.contains(&(v1::LegacyCommandKind::LockDevice as i32, applied)),
        "{sent:?}"
    );

    // The tablet stops answering: offline after three unanswered polls.
    drop(stop);
    eventually("the tablet is offline", || async {
        !device(&mut client.clone(), &device_id).await.online
    })
    .await;
}

/// A forged "BLOCKED" answer to every poll does not keep a device the household
/// locks from being locked.
#[tokio::test(flavor = "multi_thread")]
async fn a_forged_blocked_answer_does_not_keep_the_lock_away() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start_with(dir.path(), &["--rate-limit", "0", "--legacy-poll", "1"]);
    let code = hub.invite("guardian", "Anna", None);
    let anna = common::enroll(hub.addr, &code).await.unwrap();
    let mut client = guardian(hub.addr, &anna).await;
    let mia = common::add_child(&mut client, "Mia").await;
    let (tablet, address, _stop) = android_child(Day {
        credit: 120,
        used: 0,
        locked: false,
    })
    .await;
    tablet
        .forged_blocked
        .store(true, std::sync::atomic::Ordering::Relaxed);
    client
        .add_device(v1::AddDeviceRequest {
            child_id: mia.clone(),
            display_name: "Mia's phone".into(),
            kind: Some(v1::add_device_request::Kind::LegacyCst(
                v1::LegacyCstDeviceSpec {
                    address: address.to_string(),
                    cst_device_id: CST_ID.into(),
                },
            )),
            idempotency_key: "phone".into(),
        })
        .await
        .unwrap();
    client
        .lock(v1::LockRequest {
            target: Some(v1::lock_request::Target::ChildId(mia.clone())),
            idempotency_key: "lock".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    eventually(
        "the phone is locked though every answer said BLOCKED",
        || async { tablet.day().locked },
    )
    .await;
}
