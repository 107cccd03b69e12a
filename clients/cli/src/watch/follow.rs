//! Following the hub's watch stream across outages.
//!
//! [`Follower::next`] hands out the stream's items one at a time. When the hub goes
//! away it says so once ([`Update::Lost`]), waits (1 s, doubling to 30 s), reconnects
//! and resumes after the last seq it handed out, so nothing is missed or seen twice.
//! `next` may be dropped at any await (the screen drops it for a key press): the
//! stream and the time to wait until live in the follower, not in the future.

use std::time::Duration;

use household_proto::v1::{self, watch_response::Item};
use tokio::time::Instant;
use tokio_stream::StreamExt as _;

use crate::hub::{CliError, Hub};

const FIRST_RETRY: Duration = Duration::from_secs(1);
const LAST_RETRY: Duration = Duration::from_secs(30);

/// Whether a failed call means the hub, or the way to it, went away: waited out, not
/// reported. A hub that stops answers UNAVAILABLE, but a connection cut mid-stream (a
/// killed hub, a pulled cable) surfaces as UNKNOWN or INTERNAL ("h2 protocol error"),
/// and a stalled one as CANCELLED or DEADLINE_EXCEEDED. The hub's refusals use other
/// codes (UNAUTHENTICATED, PERMISSION_DENIED, RESOURCE_EXHAUSTED, ...).
fn is_outage(status: &tonic::Status) -> bool {
    use tonic::Code;
    matches!(
        status.code(),
        Code::Unavailable
            | Code::Unknown
            | Code::Internal
            | Code::Cancelled
            | Code::DeadlineExceeded
    )
}

/// What the stream brought.
#[expect(
    clippy::large_enum_variant,
    reason = "one at a time, moved straight into the view or printed"
)]
pub enum Update {
    /// The next item, in seq order.
    Item(Item),
    /// The hub went away (or could not be reached); the next try is in `retry_in`.
    Lost { retry_in: Duration },
}

/// One guardian's watch on the hub, kept open.
pub struct Follower<'a> {
    hub: &'a mut Hub,
    stream: Option<tonic::Streaming<v1::WatchResponse>>,
    last_seq: Option<u64>,
    retry: Duration,
    /// When the stream was lost: not to reconnect before this.
    wait_until: Option<Instant>,
}

impl<'a> Follower<'a> {
    pub fn new(hub: &'a mut Hub) -> Follower<'a> {
        Follower {
            hub,
            stream: None,
            last_seq: None,
            retry: FIRST_RETRY,
            wait_until: None,
        }
    }

    /// The next item, or word that the hub is gone. Errors are the hub's refusals
    /// (a revoked credential, say); an outage is not an error.
    pub async fn next(&mut self) -> Result<Update, CliError> {
        loop {
            if let Some(stream) = &mut self.stream {
                match stream.next().await {
                    Some(Ok(message)) => {
                        if let Some(item) = message.item {
                            self.note_seq(&item);
                            return Ok(Update::Item(item));
                        }
                    }
                    Some(Err(status)) if !is_outage(&status) => {
                        self.stream = None;
                        return Err(self.hub.refused(status));
                    }
                    Some(Err(_)) | None => {
                        self.stream = None;
                        return Ok(self.lost());
                    }
                }
                continue;
            }
            if let Some(until) = self.wait_until {
                tokio::time::sleep_until(until).await;
                self.wait_until = None;
            }
            let request = v1::WatchRequest {
                resume_after_seq: self.last_seq,
                ..Default::default()
            };
            match self.hub.client.watch(request).await {
                Ok(stream) => {
                    self.stream = Some(stream.into_inner());
                    self.retry = FIRST_RETRY;
                }
                Err(status) if is_outage(&status) => {
                    return Ok(self.lost());
                }
                Err(status) => return Err(self.hub.refused(status)),
            }
        }
    }

    fn note_seq(&mut self, item: &Item) {
        match item {
            Item::Snapshot(snapshot) => self.last_seq = Some(snapshot.seq),
            Item::Event(event) => self.last_seq = Some(event.seq),
            Item::CaughtUp(caught_up) => self.last_seq = Some(caught_up.seq),
            Item::Status(_) | Item::Heartbeat(_) | Item::DeviceSeen(_) | Item::DeviceGone(_) => {}
        }
    }

    fn lost(&mut self) -> Update {
        let retry_in = self.retry;
        tracing::info!(?retry_in, "the hub is gone; reconnecting");
        self.wait_until = Some(Instant::now() + retry_in);
        self.retry = (self.retry * 2).min(LAST_RETRY);
        Update::Lost { retry_in }
    }
}
