//! The descriptor set served for reflection must describe exactly the API the crate
//! was generated from, and the generated messages must survive the wire.

use household_proto::FILE_DESCRIPTOR_SET;
use household_proto::v1::{
    self, Actor, Date, DateException, DowntimeWindow, Event, EventKind, ExtensionCredits, Policy,
    Weekday, WeekdayRule, actor, event, session_request,
};
use prost::Message;
use prost_types::{FileDescriptorSet, ServiceDescriptorProto};

fn descriptor_set() -> FileDescriptorSet {
    FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).expect("FILE_DESCRIPTOR_SET decodes")
}

fn service<'a>(set: &'a FileDescriptorSet, name: &str) -> &'a ServiceDescriptorProto {
    set.file
        .iter()
        .filter(|file| file.package() == "household.v1")
        .flat_map(|file| &file.service)
        .find(|service| service.name() == name)
        .unwrap_or_else(|| panic!("service household.v1.{name} missing from the descriptor set"))
}

fn method_names(service: &ServiceDescriptorProto) -> Vec<&str> {
    service.method.iter().map(|m| m.name()).collect()
}

#[test]
fn descriptor_set_holds_every_file_of_the_package() {
    let set = descriptor_set();
    let mut names: Vec<&str> = set.file.iter().map(|f| f.name()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "household/v1/admin.proto",
            "household/v1/agent.proto",
            "household/v1/common.proto",
            "household/v1/event.proto",
            "household/v1/guardian.proto",
        ]
    );
}

#[test]
fn guardian_service_has_every_guardian_rpc() {
    let set = descriptor_set();
    let household = service(&set, "Household");
    let methods = method_names(household);
    for rpc in [
        "ListChildren",
        "AddChild",
        "RenameChild",
        "RemoveChild",
        "ListDevices",
        "AddDevice",
        "RenameDevice",
        "RemoveDevice",
        "ListGuardians",
        "InviteGuardian",
        "InviteCredential",
        "GetStatus",
        "Watch",
        "GrantTime",
        "Lock",
        "Unlock",
        "GetPolicy",
        "SetPolicy",
        "ListTimeRequests",
        "ApproveTimeRequest",
        "DenyTimeRequest",
        "GetHistory",
        "GetReport",
        "ListCredentials",
        "RevokeCredential",
        "AdoptDevice",
    ] {
        assert!(
            methods.contains(&rpc),
            "Household.{rpc} missing: {methods:?}"
        );
    }
    let watch = household
        .method
        .iter()
        .find(|m| m.name() == "Watch")
        .unwrap();
    assert!(watch.server_streaming() && !watch.client_streaming());
    assert_eq!(watch.output_type(), ".household.v1.WatchResponse");
}

#[test]
fn agent_and_admin_services_have_their_rpcs() {
    let set = descriptor_set();
    let agent = service(&set, "Agent");
    assert_eq!(
        method_names(agent),
        ["Enroll", "RenewCertificate", "Session", "Adopt"]
    );
    let session = agent.method.iter().find(|m| m.name() == "Session").unwrap();
    assert!(session.client_streaming() && session.server_streaming());

    let admin = service(&set, "Admin");
    assert_eq!(
        method_names(admin),
        [
            "CreateInvite",
            "ListIdentities",
            "RevokeIdentity",
            "Backup",
            "GetStats",
            "ForgetChild"
        ]
    );
}

#[test]
fn descriptor_set_keeps_the_comments_for_grpcurl_describe() {
    let set = descriptor_set();
    let guardian = set
        .file
        .iter()
        .find(|f| f.name() == "household/v1/guardian.proto")
        .unwrap();
    let info = guardian
        .source_code_info
        .as_ref()
        .expect("source info kept");
    assert!(
        info.location
            .iter()
            .any(|l| l.leading_comments().contains("expected_revision")),
        "SetPolicy's comment about expected_revision is missing"
    );
}

#[test]
fn descriptor_set_matches_the_generated_enums() {
    // A stale descriptor set (one not rebuilt with the code) would disagree here.
    let set = descriptor_set();
    let event_kind = set
        .file
        .iter()
        .flat_map(|f| &f.enum_type)
        .find(|e| e.name() == "EventKind")
        .unwrap();
    for value in &event_kind.value {
        let generated = EventKind::from_str_name(value.name())
            .unwrap_or_else(|| panic!("{} not generated", value.name()));
        assert_eq!(generated as i32, value.number());
    }
    // And every payload case has a kind of its own.
    let event_message = set
        .file
        .iter()
        .flat_map(|f| &f.message_type)
        .find(|m| m.name() == "Event")
        .unwrap();
    let payload_cases = event_message
        .field
        .iter()
        .filter(|f| f.oneof_index.is_some())
        .count();
    assert_eq!(payload_cases + 1, event_kind.value.len());
}

fn sample_policy() -> Policy {
    let weekdays = (1..=7)
        .map(|day| WeekdayRule {
            weekday: day,
            daily_minutes: if day >= Weekday::Saturday as i32 {
                180
            } else {
                90
            },
            downtime_windows: vec![DowntimeWindow {
                start_minute_of_day: 20 * 60 + 30,
                end_minute_of_day: 7 * 60,
                label: "bedtime".into(),
            }],
        })
        .collect();
    Policy {
        revision: 7,
        time_zone: "Europe/Berlin".into(),
        weekdays,
        extension_credits_per_day: Some(ExtensionCredits {
            five_minute_count: 2,
            ten_minute_count: 1,
        }),
        grace_minutes: 3,
        exceptions: vec![DateException {
            date: Some(Date {
                year: 2025,
                month: 12,
                day: 31,
            }),
            daily_minutes: Some(0),
            skip_downtime: true,
            note: "New Year's Eve".into(),
        }],
        updated_unix_micros: 1_735_689_600_000_000,
        updated_by: Some(Actor {
            kind: Some(actor::Kind::GuardianId("g-anna".into())),
            credential_id: "3f1a".repeat(16),
        }),
    }
}

#[test]
fn policy_round_trips_including_an_explicit_zero_override() {
    let policy = sample_policy();
    let decoded = Policy::decode(policy.encode_to_vec().as_slice()).unwrap();
    assert_eq!(decoded, policy);
    // `optional` keeps "no minutes that day" apart from "no override".
    assert_eq!(decoded.exceptions[0].daily_minutes, Some(0));
    let mut without_override = policy;
    without_override.exceptions[0].daily_minutes = None;
    let decoded = Policy::decode(without_override.encode_to_vec().as_slice()).unwrap();
    assert_eq!(decoded.exceptions[0].daily_minutes, None);
}

#[test]
fn event_round_trips_and_knows_its_kind() {
    let event = Event {
        seq: 42,
        time_unix_micros: 1_735_689_600_123_456,
        actor: Some(Actor {
            kind: Some(actor::Kind::LegacyAddress("192.168.1.40:50123".into())),
            credential_id: String::new(),
        }),
        child_id: "c-mia".into(),
        device_id: "d-tablet".into(),
        idempotency: None,
        origin: Some(v1::OutboxOrigin {
            instance_id: "a1b2".into(),
            outbox_id: 9,
            recorded_unix_micros: 1_735_689_600_000_000,
        }),
        payload: Some(event::Payload::LegacyCommand(v1::LegacyCommand {
            path: v1::LegacyPath::AgentResponder as i32,
            peer_address: "192.168.1.40:50123".into(),
            command: v1::LegacyCommandKind::ExtendTime as i32,
            extend_minutes: 15,
            outcome: v1::LegacyOutcome::Applied as i32,
            reply: "TIME_EXTENDED|15 minutes added".into(),
        })),
    };
    let decoded = Event::decode(event.encode_to_vec().as_slice()).unwrap();
    assert_eq!(decoded, event);
    assert_eq!(decoded.kind(), Some(EventKind::LegacyCommand));
    assert_eq!(Event::default().kind(), None);
}

#[test]
fn session_request_round_trips() {
    let request = v1::SessionRequest {
        message: Some(session_request::Message::OutboxItem(v1::OutboxItem {
            outbox_id: 17,
            recorded_unix_micros: 1_735_689_660_000_000,
            item: Some(v1::outbox_item::Item::Usage(v1::UsageReport {
                start_unix_micros: 1_735_689_600_000_000,
                end_unix_micros: 1_735_689_660_000_000,
            })),
        })),
    };
    let bytes = request.encode_to_vec();
    assert_eq!(
        v1::SessionRequest::decode(bytes.as_slice()).unwrap(),
        request
    );
    // A truncated message must not decode into something else.
    assert!(v1::SessionRequest::decode(&bytes[..bytes.len() - 1]).is_err());
}

/// Paths (as in `SourceCodeInfo`) of every message, field, oneof, enum, enum value,
/// service and method of `file`, each with a readable name.
fn documentable(file: &prost_types::FileDescriptorProto) -> Vec<(Vec<i32>, String)> {
    use prost_types::{DescriptorProto, EnumDescriptorProto};

    fn enum_paths(e: &EnumDescriptorProto, path: Vec<i32>, out: &mut Vec<(Vec<i32>, String)>) {
        out.push((path.clone(), format!("enum {}", e.name())));
        for (i, v) in e.value.iter().enumerate() {
            let mut p = path.clone();
            p.extend([2, i as i32]);
            out.push((p, format!("value {}", v.name())));
        }
    }

    fn message_paths(m: &DescriptorProto, path: Vec<i32>, out: &mut Vec<(Vec<i32>, String)>) {
        out.push((path.clone(), format!("message {}", m.name())));
        for (i, f) in m.field.iter().enumerate() {
            let mut p = path.clone();
            p.extend([2, i as i32]);
            out.push((p, format!("field {}.{}", m.name(), f.name())));
        }
        for (i, nested) in m.nested_type.iter().enumerate() {
            let mut p = path.clone();
            p.extend([3, i as i32]);
            message_paths(nested, p, out);
        }
        for (i, e) in m.enum_type.iter().enumerate() {
            let mut p = path.clone();
            p.extend([4, i as i32]);
            enum_paths(e, p, out);
        }
        for (i, o) in m.oneof_decl.iter().enumerate() {
            // `optional` fields come with a synthetic oneof of their own; the field's
            // comment is the documentation.
            let synthetic = m
                .field
                .iter()
                .any(|f| f.oneof_index == Some(i as i32) && f.proto3_optional());
            if synthetic {
                continue;
            }
            let mut p = path.clone();
            p.extend([8, i as i32]);
            out.push((p, format!("oneof {}.{}", m.name(), o.name())));
        }
    }

    let mut out = Vec::new();
    for (i, m) in file.message_type.iter().enumerate() {
        message_paths(m, vec![4, i as i32], &mut out);
    }
    for (i, e) in file.enum_type.iter().enumerate() {
        enum_paths(e, vec![5, i as i32], &mut out);
    }
    for (i, s) in file.service.iter().enumerate() {
        out.push((vec![6, i as i32], format!("service {}", s.name())));
        for (j, m) in s.method.iter().enumerate() {
            out.push((
                vec![6, i as i32, 2, j as i32],
                format!("rpc {}.{}", s.name(), m.name()),
            ));
        }
    }
    out
}

#[test]
fn every_service_rpc_message_field_and_enum_value_has_a_doc_comment() {
    let set = descriptor_set();
    let mut undocumented = Vec::new();
    for file in set.file.iter().filter(|f| f.package() == "household.v1") {
        let info = file.source_code_info.as_ref().expect("source info kept");
        let documented: std::collections::HashSet<&[i32]> = info
            .location
            .iter()
            .filter(|l| !l.leading_comments().trim().is_empty())
            .map(|l| l.path.as_slice())
            .collect();
        let elements = documentable(file);
        assert!(!elements.is_empty(), "{} declares nothing", file.name());
        for (path, what) in elements {
            if !documented.contains(path.as_slice()) {
                undocumented.push(format!("{}: {what}", file.name()));
            }
        }
    }
    assert!(
        undocumented.is_empty(),
        "without a doc comment:\n{}",
        undocumented.join("\n")
    );
}
