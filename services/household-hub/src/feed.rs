//! What the writer tells everyone who follows the household: each durable batch of
//! events with the statuses they changed, and the statuses the clock changed. One
//! `tokio::sync::broadcast` channel carries it in seq order to every watcher and every
//! agent session, so all of them see the same order. The channel is bounded: a reader
//! that falls behind it loses its place (and resyncs) instead of holding memory.

use std::collections::BTreeSet;

use household_proto::v1;
use jiff::Timestamp;

use crate::household::Household;

/// Items the feed holds for its slowest reader before that reader loses its place.
pub const FEED_CAPACITY: usize = 1024;

/// One step of the household's history as the feed tells it.
#[derive(Debug, Clone)]
pub struct FeedItem {
    /// Events of one durable batch, in seq order; empty for a clock-driven change.
    pub events: Vec<v1::Event>,
    /// The new status of every child these events (or the clock) concern.
    pub statuses: Vec<v1::ChildStatus>,
    /// The newest seq the household had when the statuses were computed.
    pub seq: u64,
}

impl FeedItem {
    /// The item for a durable batch: its events and the status of every child they
    /// touched, computed once per child however many events the batch held.
    pub fn after_events(household: &Household, events: Vec<v1::Event>, now: Timestamp) -> FeedItem {
        let children: BTreeSet<&str> = events
            .iter()
            .map(|e| e.child_id.as_str())
            .filter(|c| !c.is_empty())
            .collect();
        let statuses = children
            .into_iter()
            .filter_map(|child| household.child_status(child, now))
            .collect();
        FeedItem {
            events,
            statuses,
            seq: household.last_seq(),
        }
    }

    /// Whether anything in the item concerns `child_id`.
    pub fn concerns(&self, child_id: &str) -> bool {
        self.statuses.iter().any(|s| s.child_id == child_id)
            || self.events.iter().any(|e| e.child_id == child_id)
    }
}
