//! What the writer tells everyone who follows the household: each durable batch of
//! events with the statuses they changed, and the statuses the clock changed. One
//! `tokio::sync::broadcast` channel carries it in seq order to every watcher and every
//! agent session, so all of them see the same order. The channel is bounded: a reader
//! that falls behind it loses its place (and resyncs) instead of holding memory. Its
//! bound is in items, and an item holds at most [`ITEM_EVENTS`] events (a batch is told
//! as several items when it is larger), so what the feed holds for its slowest reader
//! is bounded in events too: at most `FEED_CAPACITY × ITEM_EVENTS`.

use std::collections::BTreeSet;

use household_proto::v1;
use jiff::Timestamp;

use crate::household::Household;

/// Items the feed holds for its slowest reader before that reader loses its place.
pub const FEED_CAPACITY: usize = 128;
/// Most events in one item.
pub const ITEM_EVENTS: usize = 64;

/// One step of the household's history as the feed tells it.
#[derive(Debug, Clone)]
pub struct FeedItem {
    /// Events of one durable batch, in seq order; empty for a clock-driven change.
    pub events: Vec<v1::Event>,
    /// The new status of every child these events (or the clock) concern.
    pub statuses: Vec<v1::ChildStatus>,
    /// The newest seq the item covers: its last event's, or for the last item of a batch
    /// (and a clock-driven change) the household's newest when the statuses were
    /// computed.
    pub seq: u64,
}

impl FeedItem {
    /// The items for a durable batch: its events, [`ITEM_EVENTS`] at a time, the last
    /// item with the status of every child the batch touched (computed once per child
    /// however many events concern it), so the statuses follow all the events.
    pub fn for_batch(
        household: &Household,
        events: Vec<v1::Event>,
        now: Timestamp,
    ) -> Vec<FeedItem> {
        let children: BTreeSet<&str> = events
            .iter()
            .map(|e| e.child_id.as_str())
            .filter(|c| !c.is_empty())
            .collect();
        let statuses = children
            .into_iter()
            .filter_map(|child| household.child_status(child, now))
            .collect();
        let mut items: Vec<FeedItem> = events
            .chunks(ITEM_EVENTS)
            .map(|chunk| FeedItem {
                seq: chunk.last().map_or(0, |e| e.seq),
                events: chunk.to_vec(),
                statuses: Vec::new(),
            })
            .collect();
        if let Some(last) = items.last_mut() {
            last.statuses = statuses;
            last.seq = household.last_seq();
        }
        items
    }

    /// Whether anything in the item concerns `child_id`.
    pub fn concerns(&self, child_id: &str) -> bool {
        self.statuses.iter().any(|s| s.child_id == child_id)
            || self.events.iter().any(|e| e.child_id == child_id)
    }
}
