//! The guardian API against the real binary: idempotent retries across a restart, the
//! policy revision guard, bad input, and grants that survive kill -9.

mod common;

use std::collections::BTreeMap;

use common::{Hub, enroll, guardian, reason};
use household_proto::v1;
use tonic::Code;

fn grant(child_id: &str, minutes: u32, key: &str) -> v1::GrantTimeRequest {
    v1::GrantTimeRequest {
        child_id: child_id.into(),
        minutes,
        idempotency_key: key.into(),
        note: String::new(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn retried_calls_act_once_also_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (mut hub, anna) = common::hub_with_guardian(dir.path()).await;
    let mut client = guardian(hub.addr, &anna).await;
    let mia = common::add_child(&mut client, "Mia").await;

    let first = client
        .grant_time(grant(&mia, 15, "tap-1"))
        .await
        .unwrap()
        .into_inner();
    assert!(!first.replayed);
    let allowance = first.status.as_ref().unwrap().allowance_seconds;
    let lock = client
        .lock(v1::LockRequest {
            target: Some(v1::lock_request::Target::ChildId(mia.clone())),
            reason: "dinner".into(),
            idempotency_key: "lock-1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let invite = client
        .invite_guardian(v1::InviteGuardianRequest {
            display_name: "Ben".into(),
            idempotency_key: "invite-ben".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();

    hub.terminate();
    let hub = Hub::start(dir.path());
    let mut client = guardian(hub.addr, &anna).await;

    let again = client
        .grant_time(grant(&mia, 15, "tap-1"))
        .await
        .unwrap()
        .into_inner();
    assert!(again.replayed, "the retry after a restart is a replay");
    assert_eq!(again.event, first.event, "the first result comes back");
    assert_eq!(
        again.status.unwrap().allowance_seconds,
        allowance,
        "nothing more granted"
    );

    let relock = client
        .lock(v1::LockRequest {
            target: Some(v1::lock_request::Target::ChildId(mia.clone())),
            reason: "dinner".into(),
            idempotency_key: "lock-1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(relock.replayed);
    assert_eq!(relock.event, lock.event);

    let reinvite = client
        .invite_guardian(v1::InviteGuardianRequest {
            display_name: "Ben".into(),
            idempotency_key: "invite-ben".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(reinvite.replayed);
    assert_eq!(
        reinvite.invite.as_ref().unwrap().pairing_code,
        invite.invite.as_ref().unwrap().pairing_code,
        "the same code, derived again, never stored"
    );
    enroll(hub.addr, &invite.invite.unwrap().pairing_code)
        .await
        .expect("the replayed code works once");
    let guardians = client
        .list_guardians(v1::ListGuardiansRequest {})
        .await
        .unwrap()
        .into_inner()
        .guardians;
    assert_eq!(guardians.len(), 2, "one Ben, not two: {guardians:?}");

    // The same key for a different request is refused and changes nothing.
    let err = client
        .grant_time(grant(&mia, 30, "tap-1"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    assert_eq!(reason(&err), "IDEMPOTENCY_KEY_REUSED");

    let grants = client
        .get_history(v1::GetHistoryRequest {
            child_id: mia.clone(),
            kinds: vec![v1::EventKind::TimeGranted as i32],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    assert_eq!(grants.len(), 1, "one grant in the log");

    // Keys are per guardian: Ben may use "tap-1" for his own grant.
    let ben_code = client
        .invite_guardian(v1::InviteGuardianRequest {
            display_name: "Grandma".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .invite
        .unwrap()
        .pairing_code;
    let grandma = enroll(hub.addr, &ben_code).await.unwrap();
    let mut grandmas = guardian(hub.addr, &grandma).await;
    let hers = grandmas
        .grant_time(grant(&mia, 5, "tap-1"))
        .await
        .unwrap()
        .into_inner();
    assert!(!hers.replayed);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stale_policy_revision_is_aborted_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, anna) = common::hub_with_guardian(dir.path()).await;
    let mut client = guardian(hub.addr, &anna).await;
    let mia = common::add_child(&mut client, "Mia").await;
    let policy = client
        .get_policy(v1::GetPolicyRequest {
            child_id: mia.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .policy
        .unwrap();
    assert_eq!(policy.revision, 1);

    // Without a revision and without force: refused, naming the field.
    let err = client
        .set_policy(v1::SetPolicyRequest {
            child_id: mia.clone(),
            policy: Some(policy.clone()),
            expected_revision: None,
            force: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("expected_revision"),
        "{}",
        err.message()
    );

    let mut edited = policy.clone();
    edited.grace_minutes = 5;
    let saved = client
        .set_policy(v1::SetPolicyRequest {
            child_id: mia.clone(),
            policy: Some(edited.clone()),
            expected_revision: Some(1),
            force: false,
        })
        .await
        .unwrap()
        .into_inner()
        .policy
        .unwrap();
    assert_eq!(saved.revision, 2);

    // Another guardian edits revision 1, which is stale now.
    edited.grace_minutes = 9;
    let err = client
        .set_policy(v1::SetPolicyRequest {
            child_id: mia.clone(),
            policy: Some(edited.clone()),
            expected_revision: Some(1),
            force: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Aborted);
    assert_eq!(reason(&err), "POLICY_REVISION_STALE");
    use tonic_types::StatusExt;
    let details = err.get_error_details();
    let info = details.error_info().unwrap();
    assert_eq!(info.metadata["current_revision"], "2");
    assert_eq!(info.metadata["updated_by_name"], "Anna");
    let now = client
        .get_policy(v1::GetPolicyRequest {
            child_id: mia.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .policy
        .unwrap();
    assert_eq!(
        (now.revision, now.grace_minutes),
        (2, 5),
        "nothing was written"
    );

    // force overwrites.
    let forced = client
        .set_policy(v1::SetPolicyRequest {
            child_id: mia.clone(),
            policy: Some(edited),
            expected_revision: None,
            force: true,
        })
        .await
        .unwrap()
        .into_inner()
        .policy
        .unwrap();
    assert_eq!((forced.revision, forced.grace_minutes), (3, 9));

    // An invalid policy names the field and the range.
    let mut bad = forced.clone();
    bad.grace_minutes = 31;
    let err = client
        .set_policy(v1::SetPolicyRequest {
            child_id: mia.clone(),
            policy: Some(bad),
            expected_revision: Some(3),
            force: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(reason(&err), "INVALID_FIELD");
    let details = err.get_error_details();
    let violation = &details.bad_request().unwrap().field_violations[0];
    assert!(violation.field.contains("grace_minutes"), "{violation:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_names_the_field_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, anna) = common::hub_with_guardian(dir.path()).await;
    let mut client = guardian(hub.addr, &anna).await;
    let mia = common::add_child(&mut client, "Mia").await;
    let cases: Vec<(v1::GrantTimeRequest, &str)> = vec![
        (grant(&mia, 0, "k1"), "minutes"),
        (grant(&mia, 1441, "k2"), "minutes"),
        (grant(&mia, 10, ""), "idempotency_key"),
        (grant(&mia, 10, "no spaces please"), "idempotency_key"),
    ];
    for (request, field) in cases {
        let err = client.grant_time(request).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{field}");
        assert!(err.message().contains(field), "{field}: {}", err.message());
    }
    let err = client
        .grant_time(grant("c-nobody", 10, "k3"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(reason(&err), "CHILD_NOT_FOUND");
    let err = client
        .add_child(v1::AddChildRequest {
            display_name: "mia".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::AlreadyExists,
        "names are unique ignoring case"
    );
    let history = client
        .get_history(v1::GetHistoryRequest::default())
        .await
        .unwrap()
        .into_inner()
        .events;
    assert!(
        history
            .iter()
            .all(|e| e.kind() != Some(v1::EventKind::TimeGranted)),
        "no refused call logged anything"
    );
}

/// Grants stream in while the hub is killed; every acknowledged grant is in the log
/// exactly once after the restart, and a retry of each changes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn every_acknowledged_grant_survives_kill_9_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let (mut hub, anna) = common::hub_with_guardian(dir.path()).await;
    let mut client = guardian(hub.addr, &anna).await;
    let mia = common::add_child(&mut client, "Mia").await;

    let (acked_tx, mut acked_rx) = tokio::sync::mpsc::unbounded_channel();
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let mut client = client.clone();
            let mia = mia.clone();
            let acked_tx = acked_tx.clone();
            tokio::spawn(async move {
                for i in 0..2_000 {
                    let key = format!("w{w}-{i}");
                    match client.grant_time(grant(&mia, 1, &key)).await {
                        Ok(response) => {
                            let seq = response.into_inner().event.unwrap().seq;
                            let _ = acked_tx.send((key, seq));
                        }
                        Err(_) => break,
                    }
                }
            })
        })
        .collect();
    drop(acked_tx);
    // Kill once a good number have been acknowledged.
    let mut acked = BTreeMap::new();
    while acked.len() < 300 {
        let (key, seq) = acked_rx.recv().await.expect("grants are acknowledged");
        acked.insert(key, seq);
    }
    hub.kill9();
    for writer in writers {
        let _ = writer.await;
    }
    while let Ok((key, seq)) = acked_rx.try_recv() {
        acked.insert(key, seq);
    }

    let hub = Hub::start(dir.path());
    let mut client = guardian(hub.addr, &anna).await;
    let mut logged: BTreeMap<String, u64> = BTreeMap::new();
    let mut token = String::new();
    loop {
        let page = client
            .get_history(v1::GetHistoryRequest {
                child_id: mia.clone(),
                kinds: vec![v1::EventKind::TimeGranted as i32],
                page_size: 1000,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        for event in page.events {
            let key = event.idempotency.unwrap().key;
            assert!(
                logged.insert(key.clone(), event.seq).is_none(),
                "{key} logged twice"
            );
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    for (key, seq) in &acked {
        assert_eq!(
            logged.get(key),
            Some(seq),
            "acknowledged grant {key} is missing"
        );
    }
    // A retry of an acknowledged grant, or of one whose answer was lost in the kill,
    // grants nothing new.
    let (key, seq) = acked.iter().next_back().unwrap();
    let retry = client
        .grant_time(grant(&mia, 1, key))
        .await
        .unwrap()
        .into_inner();
    assert!(retry.replayed);
    assert_eq!(retry.event.unwrap().seq, *seq);
}

/// Adoption without any agent on the network: nothing to adopt, bad input named, and an
/// agent's ask answered "not pending" without a credential; nothing is logged.
#[tokio::test(flavor = "multi_thread")]
async fn adopting_needs_an_agent_heard_and_its_code() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, anna) = common::hub_with_guardian(dir.path()).await;
    let mut client = guardian(hub.addr, &anna).await;
    let mia = common::add_child(&mut client, "Mia").await;
    let adopt = |host: &str, code: &str| v1::AdoptDeviceRequest {
        host: host.into(),
        child_id: mia.clone(),
        verification_code: code.into(),
        display_name: String::new(),
    };
    let err = client
        .adopt_device(adopt("tablet", "4 7 1 9 2 0"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    assert_eq!(reason(&err), "NETWORK_DEVICE_NOT_FOUND");
    for (host, code, field) in [
        ("tablet", "47192", "verification_code"),
        ("tablet", "47192x", "verification_code"),
        ("", "471920", "host"),
    ] {
        let err = client.adopt_device(adopt(host, code)).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{field}");
        assert!(err.message().contains(field), "{field}: {}", err.message());
    }
    let listed = client
        .list_devices(v1::ListDevicesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(listed.network_devices.is_empty(), "no mDNS, nobody heard");

    // An agent's ask, with no credential: nobody is adopting it.
    let ca_pem = hub
        .ca_for(&hub.invite("guardian", "Ben", None))
        .await
        .unwrap();
    let mut agent = household_proto::v1::agent_client::AgentClient::new(
        common::channel(hub.addr, &ca_pem, None).await,
    );
    let (_, csr_pem) = household_client::new_key_and_csr("tablet").unwrap();
    let offer = v1::AdoptRequest {
        csr_pem: csr_pem.clone(),
        hostname: "tablet".into(),
        platform: "linux".into(),
        agent_nonce: vec![7; 32],
        ..Default::default()
    };
    let answer = agent.adopt(offer.clone()).await.unwrap().into_inner();
    assert!(!answer.pending && answer.hub_proof.is_empty() && answer.enrollment.is_none());
    // An answer to no exchange is refused, and so is a short nonce or a bad CSR.
    let err = agent
        .adopt(v1::AdoptRequest {
            hub_nonce: vec![1; 32],
            agent_proof: vec![0; 32],
            ..offer.clone()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "NO_ADOPTION_EXCHANGE");
    for (request, field) in [
        (
            v1::AdoptRequest {
                agent_nonce: vec![7; 31],
                ..offer.clone()
            },
            "agent_nonce",
        ),
        (
            v1::AdoptRequest {
                csr_pem: "not a CSR".into(),
                ..offer.clone()
            },
            "csr_pem",
        ),
    ] {
        let err = agent.adopt(request).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{field}");
        assert!(err.message().contains(field), "{field}: {}", err.message());
    }
    let history = client
        .get_history(v1::GetHistoryRequest::default())
        .await
        .unwrap()
        .into_inner()
        .events;
    assert!(
        history
            .iter()
            .all(|e| e.kind() != Some(v1::EventKind::DeviceAdded)),
        "no device was added"
    );
}
