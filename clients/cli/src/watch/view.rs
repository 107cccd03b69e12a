//! What the live screen shows, as plain data: the household as the watch stream last
//! told it.
//!
//! [`View::apply`] folds one update into the view and [`super::render::render`] draws
//! it; neither touches the terminal or the network, so both are tested with made-up
//! updates and ratatui's `TestBackend`.

use std::collections::VecDeque;
use std::time::Duration;

use household_proto::v1::{self, watch_response::Item};
use jiff::tz::TimeZone;

use super::events::{Names, summary};
use super::follow::Update;

/// Most recent happenings kept; a screen shows as many as fit.
const HAPPENINGS_KEPT: usize = 100;

/// The screen's state.
pub struct View {
    /// The hub's address, from the profile.
    pub hub: String,
    /// How the stream stands.
    pub link: Link,
    /// One row per child, in the household's order.
    pub children: Vec<ChildRow>,
    /// Requests for more time nobody answered yet, oldest first.
    pub pending: Vec<PendingRequest>,
    /// Who did what since the watch began, newest first (usage reports left out: they
    /// show as time left).
    pub happened: VecDeque<Happening>,
    /// The zone the times of happenings are shown in (this machine's).
    pub time_zone: TimeZone,
    names: Names,
}

/// How the stream stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// Nothing heard yet.
    Connecting,
    /// The hub is sending what happened while we were away.
    CatchingUp { seq: u64 },
    /// Up to date; every change shows as it happens.
    Live { seq: u64 },
    /// The hub went away; what is shown is what it said last.
    Lost { retry_in: Duration },
}

/// One child's line.
#[derive(Debug, Clone, PartialEq)]
pub struct ChildRow {
    pub child_id: String,
    pub name: String,
    /// A `v1::ScreenState`.
    pub state: i32,
    pub remaining_seconds: i64,
    pub allowance_seconds: i64,
    pub pending_requests: u32,
    pub devices: Vec<DeviceRow>,
    /// The last thing anyone did concerning this child since the watch began.
    pub last: Option<Happening>,
}

/// One of a child's devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRow {
    pub name: String,
    pub online: bool,
}

/// A request for more time waiting for a guardian.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRequest {
    pub request_id: String,
    pub child_id: String,
    pub minutes: u32,
    pub note: String,
}

/// Something someone did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Happening {
    pub time_unix_micros: i64,
    pub child_id: String,
    /// Who did it, by name.
    pub actor: String,
    /// What they did, in a few words.
    pub summary: String,
}

impl View {
    /// An empty view of the hub at `hub`, showing times in `time_zone`.
    pub fn new(hub: impl Into<String>, time_zone: TimeZone) -> View {
        View {
            hub: hub.into(),
            link: Link::Connecting,
            children: Vec::new(),
            pending: Vec::new(),
            happened: VecDeque::new(),
            time_zone,
            names: Names::default(),
        }
    }

    /// The name of the child with `child_id` (its id if unknown).
    pub fn child_name(&self, child_id: &str) -> String {
        self.names.child(child_id)
    }

    /// Folds one update from the stream into the view.
    pub fn apply(&mut self, update: Update) {
        match update {
            Update::Lost { retry_in } => self.link = Link::Lost { retry_in },
            Update::Item(item) => self.apply_item(item),
        }
    }

    fn apply_item(&mut self, item: Item) {
        self.names.note(&item);
        match item {
            Item::Snapshot(snapshot) => {
                let mut rows: Vec<ChildRow> = snapshot.statuses.iter().map(row_of).collect();
                for row in &mut rows {
                    row.last = self.row(&row.child_id).and_then(|old| old.last.clone());
                }
                self.children = rows;
                self.pending = snapshot
                    .pending_requests
                    .iter()
                    .map(|r| PendingRequest {
                        request_id: r.request_id.clone(),
                        child_id: r.child_id.clone(),
                        minutes: r.minutes,
                        note: r.note.clone(),
                    })
                    .collect();
                self.link = Link::CatchingUp { seq: snapshot.seq };
            }
            Item::Event(event) => {
                self.link = match self.link {
                    Link::Live { .. } => Link::Live { seq: event.seq },
                    _ => Link::CatchingUp { seq: event.seq },
                };
                self.apply_event(&event);
            }
            Item::Status(status) => {
                let mut row = row_of(&status);
                match self
                    .children
                    .iter_mut()
                    .find(|r| r.child_id == row.child_id)
                {
                    Some(old) => {
                        row.last = old.last.take();
                        *old = row;
                    }
                    None => self.children.push(row),
                }
            }
            Item::CaughtUp(caught_up) => self.link = Link::Live { seq: caught_up.seq },
            // The screen shows the household; `household devices list` the network.
            Item::Heartbeat(_) | Item::DeviceSeen(_) | Item::DeviceGone(_) => {}
        }
    }

    fn apply_event(&mut self, event: &v1::Event) {
        use v1::event::Payload;
        match &event.payload {
            // Use shows as time left; a line for each report would drown the rest.
            Some(Payload::UsageReported(_)) => return,
            Some(Payload::TimeRequested(request))
                if !self
                    .pending
                    .iter()
                    .any(|p| p.request_id == request.request_id) =>
            {
                self.pending.push(PendingRequest {
                    request_id: request.request_id.clone(),
                    child_id: event.child_id.clone(),
                    minutes: request.minutes,
                    note: request.note.clone(),
                });
            }
            Some(Payload::RequestResolved(resolved)) => {
                self.pending.retain(|p| p.request_id != resolved.request_id);
            }
            Some(Payload::ChildRemoved(_)) => {
                self.children.retain(|r| r.child_id != event.child_id);
                self.pending.retain(|p| p.child_id != event.child_id);
            }
            _ => {}
        }
        let happening = Happening {
            time_unix_micros: event.time_unix_micros,
            child_id: event.child_id.clone(),
            actor: self.names.actor(event.actor.as_ref()),
            summary: summary(&self.names, event),
        };
        if let Some(row) = self
            .children
            .iter_mut()
            .find(|r| r.child_id == event.child_id)
        {
            row.last = Some(happening.clone());
        }
        self.happened.push_front(happening);
        self.happened.truncate(HAPPENINGS_KEPT);
    }

    fn row(&self, child_id: &str) -> Option<&ChildRow> {
        self.children.iter().find(|r| r.child_id == child_id)
    }
}

fn row_of(status: &v1::ChildStatus) -> ChildRow {
    ChildRow {
        child_id: status.child_id.clone(),
        name: status.display_name.clone(),
        state: status.state,
        remaining_seconds: status.remaining_seconds,
        allowance_seconds: status.allowance_seconds,
        pending_requests: status.pending_request_count,
        devices: status
            .devices
            .iter()
            .map(|d| DeviceRow {
                name: d.display_name.clone(),
                online: d.online,
            })
            .collect(),
        last: None,
    }
}
