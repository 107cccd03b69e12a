//! `Household.Watch`: a snapshot (or the events after a resume point), `CaughtUp`, then
//! every change in seq order.
//!
//! Each watch is one task reading the shared feed and writing into a small bounded
//! channel that tonic drains into the HTTP/2 stream. A watcher that stops reading
//! blocks only its own task; once the feed has moved on by more than its capacity the
//! task has lost its place, and sends a fresh snapshot when the watcher reads again. So
//! a slow phone costs at most its channel and never slows the writer or another watcher.

use std::collections::{BTreeSet, HashMap};
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use household_proto::v1::{self, watch_response::Item};
use jiff::Timestamp;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use crate::auth::Principal;
use crate::error::HubError;
use crate::feed::FeedItem;
use crate::household::Household;
use crate::hub::Hub;

/// Messages a watch buffers for a caller who is not reading.
const WATCH_BUFFER: usize = 64;

/// Open watches per credential, so one credential cannot hold the hub's memory.
#[derive(Default)]
pub struct Watchers {
    open: Mutex<HashMap<String, usize>>,
}

/// One open watch; closing it (drop) frees its place.
struct WatchSlot {
    hub: Arc<Hub>,
    credential_id: String,
}

impl Watchers {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl WatchSlot {
    fn take(hub: &Arc<Hub>, credential_id: &str) -> Result<WatchSlot, HubError> {
        let limit = hub.limits.watches_per_credential;
        let mut open = hub.watchers.lock();
        let count = open.entry(credential_id.to_owned()).or_default();
        if *count >= limit {
            return Err(HubError::TooManyWatches { limit });
        }
        *count += 1;
        hub.metrics.watches.inc();
        Ok(WatchSlot {
            hub: hub.clone(),
            credential_id: credential_id.to_owned(),
        })
    }
}

impl Drop for WatchSlot {
    fn drop(&mut self) {
        let mut open = self.hub.watchers.lock();
        if let Some(count) = open.get_mut(&self.credential_id) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.credential_id);
            }
        }
        self.hub.metrics.watches.dec();
    }
}

/// What one watch wants to see.
struct Filter {
    /// Empty: the whole household.
    children: BTreeSet<String>,
    /// Empty: every kind.
    kinds: BTreeSet<i32>,
}

impl Filter {
    fn child(&self, child_id: &str) -> bool {
        self.children.is_empty() || self.children.contains(child_id)
    }

    fn event(&self, event: &v1::Event) -> bool {
        let child_ok = self.children.is_empty() || self.children.contains(&event.child_id);
        let kind_ok = self.kinds.is_empty()
            || event
                .kind()
                .is_some_and(|kind| self.kinds.contains(&(kind as i32)));
        child_ok && kind_ok
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<v1::WatchResponse, Status>> + Send>>;

/// Opens a watch for `principal`.
pub fn open(
    hub: Arc<Hub>,
    principal: Principal,
    request: v1::WatchRequest,
) -> Result<WatchStream, HubError> {
    let (_, credential_id) = principal.guardian()?;
    let credential_id = credential_id.to_owned();
    {
        let household = hub.read();
        for child in &request.child_ids {
            if household.child(child).is_none() {
                return Err(HubError::no_child(child));
            }
        }
        if let Some(after) = request.resume_after_seq
            && after > household.last_seq()
        {
            return Err(HubError::invalid(
                "resume_after_seq",
                format!("must be at most the newest seq, {}", household.last_seq()),
            ));
        }
    }
    let slot = WatchSlot::take(&hub, &credential_id)?;
    let filter = Filter {
        children: request.child_ids.iter().cloned().collect(),
        kinds: request.kinds.iter().copied().collect(),
    };
    // Subscribe before reading the household, so nothing falls between the two.
    let feed = hub.feed.subscribe();
    let (tx, rx) = mpsc::channel(WATCH_BUFFER);
    let watcher = Watcher {
        hub,
        filter,
        credential_id,
        tx,
        last_seq: 0,
        _slot: slot,
    };
    tokio::spawn(watcher.run(feed, request.resume_after_seq));
    Ok(Box::pin(ReceiverStream::new(rx)))
}

struct Watcher {
    hub: Arc<Hub>,
    filter: Filter,
    credential_id: String,
    tx: mpsc::Sender<Result<v1::WatchResponse, Status>>,
    /// The newest seq sent.
    last_seq: u64,
    _slot: WatchSlot,
}

/// Why a watch's task ended.
enum End {
    /// The caller went away.
    Gone,
    /// Tell the caller why, then end.
    Error(HubError),
}

impl From<mpsc::error::SendError<Result<v1::WatchResponse, Status>>> for End {
    fn from(_: mpsc::error::SendError<Result<v1::WatchResponse, Status>>) -> End {
        End::Gone
    }
}

impl Watcher {
    async fn run(mut self, mut feed: broadcast::Receiver<Arc<FeedItem>>, resume: Option<u64>) {
        let outcome = self.serve(&mut feed, resume).await;
        if let Err(End::Error(err)) = outcome {
            let _ = self.tx.send(Err(err.into())).await;
        }
    }

    async fn send(&mut self, item: Item) -> Result<(), End> {
        self.tx
            .send(Ok(v1::WatchResponse { item: Some(item) }))
            .await?;
        Ok(())
    }

    async fn serve(
        &mut self,
        feed: &mut broadcast::Receiver<Arc<FeedItem>>,
        resume: Option<u64>,
    ) -> Result<(), End> {
        match resume {
            Some(after) => self.replay(after).await?,
            None => self.snapshot().await?,
        }
        let mut shutdown = self.hub.shutdown.clone();
        let mut revocations = self.hub.revocations.subscribe();
        let heartbeat = self.hub.limits.watch_heartbeat;
        loop {
            let item = tokio::select! {
                item = feed.recv() => item,
                () = shutdown.wait() => return Err(End::Error(HubError::ShuttingDown)),
                () = self.tx.closed() => return Err(End::Gone),
                _ = revocations.changed() => {
                    if !self.hub.still_trusted(&self.credential_id) {
                        return Err(End::Error(HubError::CredentialInvalid));
                    }
                    continue;
                }
                () = tokio::time::sleep(heartbeat) => {
                    let seq = self.hub.read().last_seq();
                    self.send(Item::Heartbeat(v1::Heartbeat {
                        hub_time_unix_micros: Timestamp::now().as_microsecond(),
                        seq,
                    }))
                    .await?;
                    continue;
                }
            };
            match item {
                Ok(item) => self.forward(&item).await?,
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, "a watcher fell behind; sending a fresh snapshot");
                    self.snapshot().await?;
                }
                Err(broadcast::error::RecvError::Closed) => {
                    return Err(End::Error(HubError::ShuttingDown));
                }
            }
        }
    }

    /// Sends a live feed item: its events the filter wants, then the statuses.
    async fn forward(&mut self, item: &FeedItem) -> Result<(), End> {
        for event in &item.events {
            if event.seq > self.last_seq && self.filter.event(event) {
                self.send(Item::Event(event.clone())).await?;
            }
        }
        if item.events.last().is_some_and(|e| e.seq <= self.last_seq) {
            // Already covered by a snapshot taken after it.
            return Ok(());
        }
        self.last_seq = self.last_seq.max(item.seq);
        for status in &item.statuses {
            if self.filter.child(&status.child_id) {
                self.send(Item::Status(status.clone())).await?;
            }
        }
        Ok(())
    }

    /// The whole watched household at one seq, then CaughtUp.
    async fn snapshot(&mut self) -> Result<(), End> {
        let snapshot = {
            let household = self.hub.read();
            snapshot_of(&household, &self.filter, Timestamp::now())
        };
        self.last_seq = snapshot.seq;
        let seq = snapshot.seq;
        self.send(Item::Snapshot(snapshot)).await?;
        self.send(Item::CaughtUp(v1::CaughtUp {
            seq,
            resumed: false,
        }))
        .await
    }

    /// The events after `after` from the log, each watched child's status, CaughtUp.
    async fn replay(&mut self, after: u64) -> Result<(), End> {
        let newest = self.hub.read().last_seq();
        self.last_seq = after;
        // The log is read in pages, so a long replay does not hold a whole history.
        while self.last_seq < newest {
            let page: Vec<v1::Event> = self
                .hub
                .store
                .after(self.last_seq)
                .map_err(End::Error)?
                .take(256)
                .collect::<Result<_, _>>()
                .map_err(End::Error)?;
            let Some(last) = page.last().map(|e| e.seq) else {
                break;
            };
            for event in page.into_iter().filter(|e| e.seq <= newest) {
                if self.filter.event(&event) {
                    self.send(Item::Event(event)).await?;
                }
            }
            self.last_seq = last.min(newest);
        }
        self.last_seq = newest;
        let statuses: Vec<v1::ChildStatus> = {
            let household = self.hub.read();
            let now = Timestamp::now();
            household
                .children()
                .filter(|c| self.filter.child(&c.child.child_id))
                .filter_map(|c| household.child_status(&c.child.child_id, now))
                .collect()
        };
        for status in statuses {
            self.send(Item::Status(status)).await?;
        }
        self.send(Item::CaughtUp(v1::CaughtUp {
            seq: newest,
            resumed: true,
        }))
        .await
    }
}

/// The household as one watch sees it now.
fn snapshot_of(household: &Household, filter: &Filter, now: Timestamp) -> v1::Snapshot {
    let children: Vec<v1::Child> = household
        .children()
        .filter(|c| filter.child(&c.child.child_id))
        .map(|c| c.child.clone())
        .collect();
    let devices = household
        .devices(None)
        .filter(|d| filter.child(&d.child_id))
        .cloned()
        .collect();
    let statuses = children
        .iter()
        .filter_map(|c| household.child_status(&c.child_id, now))
        .collect();
    let pending_requests = household
        .pending_requests(now)
        .into_iter()
        .filter(|r| filter.child(&r.child_id))
        .collect();
    v1::Snapshot {
        seq: household.last_seq(),
        children,
        devices,
        statuses,
        pending_requests,
        guardians: household.guardians().cloned().collect(),
    }
}
