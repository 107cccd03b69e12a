//! The kinds of event household-core folds are the kinds the API's log holds, under the
//! same names: `EventKind::UsageReported` is `EVENT_KIND_USAGE_REPORTED`, and so on.

use std::collections::BTreeSet;

use household_core::*;
use jiff::Timestamp;

/// The `household.v1.EventKind` names, lowercased, without `EVENT_KIND_UNSPECIFIED`.
fn api_kinds() -> BTreeSet<String> {
    include_str!("../../../proto/household/v1/event.proto")
        .lines()
        .map(str::trim)
        .filter_map(|line| line.strip_prefix("EVENT_KIND_"))
        .filter_map(|rest| rest.split_once(" = "))
        .map(|(name, _)| name.to_lowercase())
        .filter(|name| name != "unspecified")
        .collect()
}

/// One event of every kind. The match has no catch-all, so a new kind does not compile
/// until it is listed here (and then must be in the proto too).
fn one_of_each() -> Vec<EventKind> {
    let t = Timestamp::UNIX_EPOCH;
    let device = DeviceId::from("tablet");
    let kinds = vec![
        EventKind::UsageReported { start: t, end: t },
        EventKind::TimeGranted {
            minutes: 5,
            granted_at: None,
        },
        EventKind::Locked {
            device: None,
            until: None,
            reason: None,
        },
        EventKind::Unlocked {
            device: None,
            until: None,
        },
        EventKind::PolicyChanged {
            policy: Policy::default(),
        },
        EventKind::TimeRequested {
            request_id: RequestId::from("r"),
            minutes: 5,
            note: None,
            requested_at: None,
        },
        EventKind::RequestResolved {
            request_id: RequestId::from("r"),
            answer: Answer::Denied,
        },
        EventKind::ExtensionCreditSpent {
            size: CreditSize::FiveMinute,
            spent_at: None,
        },
        EventKind::DeviceEnrolled {
            device: device.clone(),
        },
        EventKind::DeviceOnline {
            device: device.clone(),
        },
        EventKind::DeviceOffline {
            device: device.clone(),
        },
        EventKind::LegacyCommand {
            command: "GET_TIME_LEFT".into(),
            outcome: household_core::LegacyOutcome::Applied,
            reply: String::new(),
        },
        EventKind::ChildAdded {
            display_name: "Mia".into(),
        },
        EventKind::ChildRenamed {
            display_name: "Mia K.".into(),
            previous_display_name: "Mia".into(),
        },
        EventKind::ChildRemoved {
            history_forgotten: true,
        },
        EventKind::DeviceAdded {
            device: device.clone(),
            display_name: "Tablet".into(),
            legacy_address: None,
        },
        EventKind::DeviceRenamed {
            device: device.clone(),
            display_name: "Mia's tablet".into(),
            previous_display_name: "Tablet".into(),
        },
        EventKind::DeviceRemoved {
            device: device.clone(),
        },
        EventKind::GuardianEnrolled {
            display_name: "Grandma".into(),
        },
        EventKind::IdentityRevoked {
            identity: Identity::Device { id: device },
            credential_id: None,
        },
        EventKind::GuardianInvited {
            guardian: GuardianId::from("grandma"),
            display_name: "Grandma".into(),
        },
        EventKind::DeviceTrouble {
            device: DeviceId::from("tablet"),
            trouble: "store failing: No space left on device".into(),
            cleared: false,
        },
    ];
    for kind in &kinds {
        match kind {
            EventKind::UsageReported { .. }
            | EventKind::TimeGranted { .. }
            | EventKind::Locked { .. }
            | EventKind::Unlocked { .. }
            | EventKind::PolicyChanged { .. }
            | EventKind::TimeRequested { .. }
            | EventKind::RequestResolved { .. }
            | EventKind::ExtensionCreditSpent { .. }
            | EventKind::DeviceEnrolled { .. }
            | EventKind::DeviceOnline { .. }
            | EventKind::DeviceOffline { .. }
            | EventKind::LegacyCommand { .. }
            | EventKind::ChildAdded { .. }
            | EventKind::ChildRenamed { .. }
            | EventKind::ChildRemoved { .. }
            | EventKind::DeviceAdded { .. }
            | EventKind::DeviceRenamed { .. }
            | EventKind::DeviceRemoved { .. }
            | EventKind::GuardianEnrolled { .. }
            | EventKind::IdentityRevoked { .. }
            | EventKind::GuardianInvited { .. }
            | EventKind::DeviceTrouble { .. } => {}
        }
    }
    kinds
}

#[test]
fn core_has_every_kind_of_the_api_under_the_same_name() {
    let kinds = one_of_each();
    let names: BTreeSet<String> = kinds
        .iter()
        .map(|kind| {
            let json = serde_json::to_value(kind).unwrap();
            json["kind"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        names.len(),
        kinds.len(),
        "two kinds share a name: {names:?}"
    );
    assert_eq!(names, api_kinds());
}

#[test]
fn every_kind_survives_json_and_only_registry_wide_ones_are_household_wide() {
    for kind in one_of_each() {
        let event = if kind.is_household_wide() {
            Event::household_wide(1, Timestamp::UNIX_EPOCH, Actor::System, kind)
        } else {
            Event::new(
                1,
                Timestamp::UNIX_EPOCH,
                Actor::System,
                ChildId::from("mia"),
                kind,
            )
        };
        let back: Event = serde_json::from_str(&serde_json::to_string(&event).unwrap()).unwrap();
        assert_eq!(back, event);
        assert_eq!(event.child.0.is_empty(), event.kind.is_household_wide());
    }
    let wide: Vec<String> = one_of_each()
        .into_iter()
        .filter(EventKind::is_household_wide)
        .map(|k| {
            serde_json::to_value(&k).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        wide,
        ["guardian_enrolled", "identity_revoked", "guardian_invited"]
    );
}

#[test]
fn a_legacy_command_stored_without_an_outcome_reads_as_applied() {
    let kind: EventKind =
        serde_json::from_str(r#"{"kind":"legacy_command","command":"GET_TIME_LEFT"}"#).unwrap();
    assert_eq!(
        kind,
        EventKind::LegacyCommand {
            command: "GET_TIME_LEFT".into(),
            outcome: LegacyOutcome::Applied,
            reply: String::new(),
        }
    );
}

#[test]
fn events_stored_before_unlock_until_and_request_times_read_as_before() {
    // An agent's store and the hub's log hold events written before these fields
    // existed: they read as a plain unlock and a request dated when it was logged.
    let kind: EventKind = serde_json::from_str(r#"{"kind":"unlocked"}"#).unwrap();
    assert_eq!(
        kind,
        EventKind::Unlocked {
            device: None,
            until: None
        }
    );
    let kind: EventKind =
        serde_json::from_str(r#"{"kind":"time_requested","request_id":"r1","minutes":15}"#)
            .unwrap();
    assert_eq!(
        kind,
        EventKind::TimeRequested {
            request_id: RequestId::from("r1"),
            minutes: 15,
            note: None,
            requested_at: None,
        }
    );
    // And the new fields survive the trip.
    let until: Timestamp = "2025-06-02T18:30:00Z".parse().unwrap();
    let kind = EventKind::Unlocked {
        device: None,
        until: Some(until),
    };
    let json = serde_json::to_string(&kind).unwrap();
    assert_eq!(
        json,
        r#"{"kind":"unlocked","until":"2025-06-02T18:30:00Z"}"#
    );
    assert_eq!(serde_json::from_str::<EventKind>(&json).unwrap(), kind);
}
