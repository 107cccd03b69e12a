use std::time::Duration;

use household_proto::v1::{self, watch_response::Item};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use super::render;
use crate::watch::follow::Update;
use crate::watch::view::{Link, View};

const MIA: &str = "c-3f9a1c07b2e4";
const TABLET: &str = "d-0c1d2e3f4a5b";
const ANNA: &str = "g-77aa00bb11cc";

/// The screen as text, one string per row.
fn screen(view: &View, width: u16, height: u16) -> Vec<String> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|frame| render(view, frame)).unwrap();
    let buffer = terminal.backend().buffer();
    buffer
        .content()
        .chunks(usize::from(buffer.area.width))
        .map(|row| row.iter().map(|cell| cell.symbol()).collect())
        .collect()
}

fn shows(screen: &[String], text: &str) -> bool {
    screen.iter().any(|row| row.contains(text))
}

fn status(state: v1::ScreenState, remaining_minutes: i64, online: bool) -> v1::ChildStatus {
    v1::ChildStatus {
        child_id: MIA.into(),
        display_name: "Mia".into(),
        state: state as i32,
        allowance_seconds: 120 * 60,
        remaining_seconds: remaining_minutes * 60,
        devices: vec![v1::DeviceStatus {
            device_id: TABLET.into(),
            display_name: "Tablet".into(),
            online,
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn snapshot() -> Item {
    Item::Snapshot(v1::Snapshot {
        seq: 41,
        children: vec![v1::Child {
            child_id: MIA.into(),
            display_name: "Mia".into(),
            ..Default::default()
        }],
        statuses: vec![status(v1::ScreenState::Active, 90, true)],
        guardians: vec![v1::Guardian {
            guardian_id: ANNA.into(),
            display_name: "Anna".into(),
            ..Default::default()
        }],
        ..Default::default()
    })
}

fn event(seq: u64, payload: v1::event::Payload) -> Item {
    Item::Event(v1::Event {
        seq,
        time_unix_micros: 1_764_695_000_000_000, // 17:03:20 UTC
        actor: Some(v1::Actor {
            kind: Some(v1::actor::Kind::GuardianId(ANNA.into())),
            ..Default::default()
        }),
        child_id: MIA.into(),
        payload: Some(payload),
        ..Default::default()
    })
}

fn view() -> View {
    let mut view = View::new("hub.local:7443", jiff::tz::TimeZone::UTC);
    view.apply(Update::Item(snapshot()));
    view.apply(Update::Item(Item::CaughtUp(v1::CaughtUp {
        seq: 41,
        ..Default::default()
    })));
    view
}

#[test]
fn the_screen_shows_each_child_with_state_time_left_and_devices() {
    let before = screen(
        &View::new("hub.local:7443", jiff::tz::TimeZone::UTC),
        100,
        20,
    );
    assert!(shows(&before, "connecting"), "{before:#?}");
    assert!(!shows(&before, "Mia"), "{before:#?}");

    let view = view();
    let after = screen(&view, 100, 20);
    assert!(shows(&after, "Household at hub.local:7443"), "{after:#?}");
    assert!(shows(&after, "live, seq 41"), "{after:#?}");
    let mia = after
        .iter()
        .find(|row| row.contains("Mia"))
        .expect("a row for Mia");
    assert!(mia.contains("active"), "{mia}");
    assert!(mia.contains("1 h 30 min of 2 h 00 min"), "{mia}");
    assert!(mia.contains("● Tablet"), "{mia}");
    assert!(
        shows(&after, "nothing yet since the watch began"),
        "{after:#?}"
    );
}

#[test]
fn an_event_and_the_status_after_it_change_the_screen() {
    let mut view = view();
    let before = screen(&view, 100, 20);

    view.apply(Update::Item(event(
        42,
        v1::event::Payload::TimeGranted(v1::TimeGranted {
            minutes: 15,
            ..Default::default()
        }),
    )));
    view.apply(Update::Item(Item::Status(status(
        v1::ScreenState::Active,
        105,
        false,
    ))));
    let after = screen(&view, 100, 20);
    assert_ne!(before, after);
    let mia = after
        .iter()
        .find(|row| row.contains("Mia") && row.contains("active"))
        .expect("a row for Mia");
    assert!(mia.contains("1 h 45 min of 2 h 00 min"), "{mia}");
    assert!(mia.contains("○ Tablet"), "offline now: {mia}");
    assert!(mia.contains("17:03 Anna: added 15 min for Mia"), "{mia}");
    assert!(!shows(&after, "1 h 30 min"), "{after:#?}");
    assert!(shows(&after, "live, seq 42"), "{after:#?}");
    // And in the list of what happened.
    assert!(
        after
            .iter()
            .filter(|row| row.contains("Anna: added 15 min for Mia"))
            .count()
            == 2,
        "{after:#?}"
    );

    // A lock turns the state and says who did it.
    view.apply(Update::Item(event(
        43,
        v1::event::Payload::Locked(v1::Locked::default()),
    )));
    view.apply(Update::Item(Item::Status(status(
        v1::ScreenState::Locked,
        105,
        false,
    ))));
    let locked = screen(&view, 100, 20);
    let mia = locked
        .iter()
        .find(|row| row.contains("Mia") && row.contains("locked"))
        .expect("Mia locked");
    assert!(mia.contains("Anna: locked Mia"), "{mia}");
}

#[test]
fn a_request_waits_until_it_is_answered() {
    let mut view = view();
    view.apply(Update::Item(event(
        42,
        v1::event::Payload::TimeRequested(v1::TimeRequested {
            request_id: "r-5b2c9e01aa17".into(),
            minutes: 20,
            note: "homework".into(),
            ..Default::default()
        }),
    )));
    let waiting = screen(&view, 100, 20);
    assert!(shows(&waiting, "Waiting for an answer"), "{waiting:#?}");
    assert!(
        shows(
            &waiting,
            "Mia asks for 20 min: homework  (household approve r-5b2c9e01aa17)"
        ),
        "{waiting:#?}"
    );

    view.apply(Update::Item(event(
        43,
        v1::event::Payload::RequestResolved(v1::RequestResolved {
            request_id: "r-5b2c9e01aa17".into(),
            ..Default::default()
        }),
    )));
    let answered = screen(&view, 100, 20);
    assert!(!shows(&answered, "Waiting for an answer"), "{answered:#?}");
    assert!(shows(&answered, "answered Mia's request"), "{answered:#?}");
}

#[test]
fn usage_reports_show_as_time_left_not_as_lines() {
    let mut view = view();
    view.apply(Update::Item(event(
        42,
        v1::event::Payload::UsageReported(v1::UsageReported::default()),
    )));
    assert!(view.happened.is_empty());
    assert_eq!(view.link, Link::Live { seq: 42 });
}

#[test]
fn a_lost_hub_is_said_and_the_last_word_stays() {
    let mut view = view();
    view.apply(Update::Lost {
        retry_in: Duration::from_secs(4),
    });
    let lost = screen(&view, 120, 20);
    assert!(
        shows(&lost, "the hub is unreachable; trying again in 4 s"),
        "{lost:#?}"
    );
    assert!(shows(&lost, "1 h 30 min of 2 h 00 min"), "{lost:#?}");

    // Resuming replays, then catches up.
    view.apply(Update::Item(event(
        42,
        v1::event::Payload::Unlocked(v1::Unlocked::default()),
    )));
    assert_eq!(view.link, Link::CatchingUp { seq: 42 });
    view.apply(Update::Item(Item::CaughtUp(v1::CaughtUp {
        seq: 42,
        ..Default::default()
    })));
    assert!(shows(&screen(&view, 100, 20), "live, seq 42"));
}

#[test]
fn a_removed_child_leaves_the_screen() {
    let mut view = view();
    view.apply(Update::Item(event(
        42,
        v1::event::Payload::ChildRemoved(v1::ChildRemoved::default()),
    )));
    let after = screen(&view, 100, 20);
    assert!(shows(&after, "no children yet"), "{after:#?}");
}
