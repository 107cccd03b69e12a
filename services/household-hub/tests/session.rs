//! The hub's half of a device's session, with a simulated agent: resends after a
//! reconnect count once, a new instance is not mistaken for an old one, commands and
//! budgets flow down.

mod common;

use std::time::Duration;

use common::{enroll, guardian};
use household_proto::v1::{
    self, outbox_item::Item, session_request::Message as Up, session_response::Message as Down,
};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

/// One open session: what the agent sends, and what the hub sent.
struct Session {
    up: mpsc::Sender<v1::SessionRequest>,
    down: tonic::Streaming<v1::SessionResponse>,
}

impl Session {
    async fn open(
        client: &mut v1::agent_client::AgentClient<tonic::transport::Channel>,
        hello: v1::Hello,
    ) -> Session {
        let (up, rx) = mpsc::channel(64);
        up.send(v1::SessionRequest {
            message: Some(Up::Hello(hello)),
        })
        .await
        .unwrap();
        let down = client
            .session(ReceiverStream::new(rx))
            .await
            .expect("session opens")
            .into_inner();
        Session { up, down }
    }

    async fn send(&self, record: v1::OutboxItem) {
        self.up
            .send(v1::SessionRequest {
                message: Some(Up::OutboxItem(record)),
            })
            .await
            .unwrap();
    }

    /// The next message from the hub that `pick` accepts, skipping the rest.
    async fn next<T>(&mut self, mut pick: impl FnMut(Down) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let message = tokio::time::timeout_at(deadline, self.down.next())
                .await
                .expect("the hub answers in time")
                .expect("the stream is open")
                .expect("no error");
            if let Some(found) = message.message.and_then(&mut pick) {
                return found;
            }
        }
    }

    /// Outbox ids acknowledged, until `want` have been.
    async fn acks(&mut self, want: usize) -> Vec<u64> {
        let mut acked = Vec::new();
        while acked.len() < want {
            let ack = self
                .next(|m| match m {
                    Down::OutboxAck(ack) => Some(ack),
                    _ => None,
                })
                .await;
            assert!(ack.rejected.is_empty(), "{:?}", ack.rejected);
            acked.extend(ack.outbox_ids);
        }
        acked
    }
}

fn usage(id: u64, start_s: i64, len_s: i64) -> v1::OutboxItem {
    v1::OutboxItem {
        outbox_id: id,
        recorded_unix_micros: (start_s + len_s) * 1_000_000,
        item: Some(Item::Usage(v1::UsageReport {
            start_unix_micros: start_s * 1_000_000,
            end_unix_micros: (start_s + len_s) * 1_000_000,
        })),
    }
}

fn hello(instance: &str, unacked: Vec<u64>) -> v1::Hello {
    v1::Hello {
        unacked_outbox_ids: unacked,
        agent_time_unix_micros: jiff::Timestamp::now().as_microsecond(),
        software_version: "test".into(),
        platform: "linux".into(),
        budget_as_of_seq: 0,
        instance_id: instance.into(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn resends_after_a_reconnect_count_once() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, anna) = common::hub_with_guardian(dir.path()).await;
    let mut household = guardian(hub.addr, &anna).await;
    let mia = common::add_child(&mut household, "Mia").await;
    let code = hub.invite("device", "laptop", Some(&mia));
    let laptop = enroll(hub.addr, &code).await.unwrap();
    let mut agent = common::agent(hub.addr, &laptop).await;

    // Ten one-minute intervals, back to back, ending a little before now.
    let start = jiff::Timestamp::now().as_second() - 15 * 60;
    let mut session = Session::open(&mut agent, hello("inst-a", vec![])).await;
    let welcome = session
        .next(|m| match m {
            Down::Welcome(w) => Some(w),
            _ => None,
        })
        .await;
    assert_eq!(welcome.child_id, mia);
    let budget = session
        .next(|m| match m {
            Down::Budget(b) => Some(b),
            _ => None,
        })
        .await;
    assert_eq!(budget.used_seconds, 0);
    assert!(
        device_online(&mut household, &mia).await,
        "online while the session is open"
    );
    for id in 1..=10 {
        session
            .send(usage(id, start + (id as i64 - 1) * 60, 60))
            .await;
    }
    let acked = session.acks(10).await;
    assert_eq!(acked, (1..=10).collect::<Vec<_>>());
    drop(session);

    // The agent lost the acknowledgements of 6..10 and sends them again, then 11.
    let mut session = Session::open(&mut agent, hello("inst-a", (6..=10).collect())).await;
    let early = session.acks(5).await;
    assert_eq!(
        early,
        vec![6, 7, 8, 9, 10],
        "already stored, acknowledged at once"
    );
    for id in 6..=10 {
        session
            .send(usage(id, start + (id as i64 - 1) * 60, 60))
            .await;
    }
    session.send(usage(11, start + 10 * 60, 60)).await;
    let acked = session.acks(6).await;
    assert_eq!(acked, vec![6, 7, 8, 9, 10, 11]);

    let history = household
        .get_history(v1::GetHistoryRequest {
            child_id: mia.clone(),
            kinds: vec![v1::EventKind::UsageReported as i32],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    assert_eq!(history.len(), 11, "each record applied once");
    let status = household
        .get_status(v1::GetStatusRequest {
            child_ids: vec![mia.clone()],
        })
        .await
        .unwrap()
        .into_inner()
        .children
        .remove(0);
    // The child's day is the UTC day (the default policy); near midnight part of the use
    // fell on yesterday.
    let today_start = jiff::Timestamp::now().as_second().div_euclid(86_400) * 86_400;
    let counted_today = (start + 11 * 60).max(today_start) - start.max(today_start);
    assert_eq!(status.used_seconds, counted_today);

    // A new store is a new instance: its id 1 is new, not a resend.
    drop(session);
    let mut session = Session::open(&mut agent, hello("inst-b", vec![])).await;
    session.send(usage(1, start + 11 * 60, 60)).await;
    assert_eq!(session.acks(1).await, vec![1]);
    let history = household
        .get_history(v1::GetHistoryRequest {
            child_id: mia.clone(),
            kinds: vec![v1::EventKind::UsageReported as i32],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    assert_eq!(history.len(), 12);

    // A guardian's lock reaches the device as a command and a new budget.
    household
        .lock(v1::LockRequest {
            target: Some(v1::lock_request::Target::ChildId(mia.clone())),
            reason: "dinner".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let command = session
        .next(|m| match m {
            Down::Command(c) => Some(c),
            _ => None,
        })
        .await;
    assert!(matches!(command.action, Some(v1::command::Action::Lock(_))));
    let budget = session
        .next(|m| match m {
            Down::Budget(b) if b.state == v1::ScreenState::Locked as i32 => Some(b),
            _ => None,
        })
        .await;
    assert!(budget.child_lock.is_some());

    // The session ends: the device goes offline, as an event.
    drop(session);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while device_online(&mut household, &mia).await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "still online after the session ended"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn device_online(
    household: &mut v1::household_client::HouseholdClient<tonic::transport::Channel>,
    child_id: &str,
) -> bool {
    household
        .list_devices(v1::ListDevicesRequest {
            child_id: child_id.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .devices
        .iter()
        .any(|d| d.online)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_offline_request_counts_on_the_day_it_was_made_and_comes_back_by_origin() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, anna) = common::hub_with_guardian(dir.path()).await;
    let mut household = guardian(hub.addr, &anna).await;
    let mia = common::add_child(&mut household, "Mia").await;
    let code = hub.invite("device", "tablet", Some(&mia));
    let tablet = enroll(hub.addr, &code).await.unwrap();
    let mut agent = common::agent(hub.addr, &tablet).await;
    let mut session = Session::open(&mut agent, hello("inst-t", vec![])).await;

    let now = jiff::Timestamp::now().as_microsecond();
    let made_yesterday = now - 30 * 3600 * 1_000_000;
    session
        .send(v1::OutboxItem {
            outbox_id: 1,
            recorded_unix_micros: made_yesterday,
            item: Some(Item::TimeRequest(v1::TimeRequestSubmission {
                minutes: 20,
                note: "homework".into(),
            })),
        })
        .await;
    session
        .send(v1::OutboxItem {
            outbox_id: 2,
            recorded_unix_micros: now,
            item: Some(Item::TimeRequest(v1::TimeRequestSubmission {
                minutes: 10,
                note: "one more level".into(),
            })),
        })
        .await;
    assert_eq!(session.acks(2).await, vec![1, 2]);
    let update = session
        .next(|m| match m {
            Down::TimeRequestUpdate(r) if r.origin.as_ref().is_some_and(|o| o.outbox_id == 2) => {
                Some(r)
            }
            _ => None,
        })
        .await;
    assert_eq!(update.status, v1::TimeRequestStatus::Pending as i32);
    assert_eq!(update.origin.unwrap().instance_id, "inst-t");

    let requests = household
        .list_time_requests(v1::ListTimeRequestsRequest {
            child_id: mia.clone(),
            resolved_since_unix_micros: Some(0),
        })
        .await
        .unwrap()
        .into_inner()
        .requests;
    let old = requests.iter().find(|r| r.minutes == 20).unwrap();
    assert_eq!(
        old.status,
        v1::TimeRequestStatus::Expired as i32,
        "yesterday's request expired with its day"
    );
    // The agent's clock is corrected by the offset measured at Hello (here a few ms).
    assert!((old.requested_unix_micros - made_yesterday).abs() < 1_000_000);

    let approved = household
        .approve_time_request(v1::ApproveTimeRequestRequest {
            request_id: update.request_id.clone(),
            minutes: None,
            note: "ok".into(),
            idempotency_key: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        approved.request.unwrap().status,
        v1::TimeRequestStatus::Approved as i32
    );
    let resolved = session
        .next(|m| match m {
            Down::TimeRequestUpdate(r) if r.status == v1::TimeRequestStatus::Approved as i32 => {
                Some(r)
            }
            _ => None,
        })
        .await;
    assert_eq!(resolved.request_id, update.request_id);

    // The other guardian's later answer is refused; the first answer stands.
    let err = household
        .deny_time_request(v1::DenyTimeRequestRequest {
            request_id: update.request_id.clone(),
            note: String::new(),
            idempotency_key: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(common::reason(&err), "REQUEST_ALREADY_ANSWERED");
}
