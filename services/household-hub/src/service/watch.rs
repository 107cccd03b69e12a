//! `Household.Watch`: a snapshot (or the events after a resume point), `CaughtUp`, then
//! every change in seq order.
//!
//! A watch is a stream that tonic pulls from as the caller reads: each pull takes the
//! next step from the shared feed and turns it into messages. There is no task and no
//! buffer per watch beyond the messages of the one feed item being sent, so a thousand
//! idle watches cost little. A watcher that stops reading stops being pulled; once the
//! feed has moved on by more than its capacity the watch has lost its place, and sends a
//! fresh snapshot when the watcher reads again. So a slow phone never slows the writer
//! or another watcher.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use household_proto::v1::{self, watch_response::Item};
use jiff::Timestamp;
use tokio::sync::broadcast;
use tokio_stream::Stream;
use tonic::Status;

use crate::auth::Principal;
use crate::error::HubError;
use crate::feed::FeedItem;
use crate::household::Household;
use crate::hub::Hub;
use crate::network::NetworkChange;
use crate::shutdown::Shutdown;

/// Events read from the log per step of a replay.
const REPLAY_PAGE: usize = 256;

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
    // Agents on the network concern no child and are no logged kind: only a watch of
    // everything hears of them.
    let network =
        (filter.children.is_empty() && filter.kinds.is_empty()).then(|| hub.network.subscribe());
    let watcher = Watcher {
        shutdown: hub.shutdown.clone(),
        revocations: hub.revocations.subscribe(),
        hub,
        filter,
        credential_id,
        feed,
        network,
        phase: match request.resume_after_seq {
            Some(after) => Phase::Replay {
                newest: None,
                after,
            },
            None => Phase::Snapshot,
        },
        last_seq: 0,
        pending: VecDeque::new(),
        _slot: slot,
    };
    Ok(Box::pin(futures_util::stream::unfold(
        watcher,
        |mut watcher| async move {
            let message = watcher.next().await?;
            Some((message, watcher))
        },
    )))
}

/// Where a watch stands.
enum Phase {
    /// Next: a snapshot and CaughtUp.
    Snapshot,
    /// Replaying the log after `after` up to `newest` (the household's newest seq when
    /// the replay began), a page at a time.
    Replay { newest: Option<u64>, after: u64 },
    /// Following the feed.
    Live,
    /// The stream has ended (its last message, if any, is pending).
    Ended,
}

struct Watcher {
    hub: Arc<Hub>,
    filter: Filter,
    credential_id: String,
    feed: broadcast::Receiver<Arc<FeedItem>>,
    /// Agents seen and gone on the network; `None` for a filtered watch.
    network: Option<broadcast::Receiver<NetworkChange>>,
    shutdown: Shutdown,
    revocations: tokio::sync::watch::Receiver<u64>,
    phase: Phase,
    /// The newest seq sent (or queued in `pending`).
    last_seq: u64,
    /// Messages of the current step not yet pulled.
    pending: VecDeque<Result<Item, Status>>,
    _slot: WatchSlot,
}

impl Watcher {
    /// The next message, or `None` once the stream has ended.
    async fn next(&mut self) -> Option<Result<v1::WatchResponse, Status>> {
        loop {
            if let Some(message) = self.pending.pop_front() {
                return Some(message.map(|item| v1::WatchResponse { item: Some(item) }));
            }
            if let Err(err) = self.step().await {
                self.phase = Phase::Ended;
                self.pending.push_back(Err(err.into()));
            } else if matches!(self.phase, Phase::Ended) {
                return None;
            }
        }
    }

    /// Queues the messages of the watch's next step.
    async fn step(&mut self) -> Result<(), HubError> {
        match self.phase {
            Phase::Snapshot => {
                self.snapshot();
                self.phase = Phase::Live;
                Ok(())
            }
            Phase::Replay { newest, after } => {
                let newest = newest.unwrap_or_else(|| self.hub.read().last_seq());
                self.replay_page(after, newest)
            }
            Phase::Live => self.live().await,
            Phase::Ended => Ok(()),
        }
    }

    fn queue(&mut self, item: Item) {
        self.pending.push_back(Ok(item));
    }

    /// Waits for the next feed item (or a heartbeat, a revocation, the hub stopping).
    async fn live(&mut self) -> Result<(), HubError> {
        let heartbeat = self.hub.limits.watch_heartbeat;
        loop {
            let item = tokio::select! {
                item = self.feed.recv() => item,
                change = next_change(&mut self.network) => {
                    match change {
                        NetworkChange::Seen(device) => {
                            self.queue(Item::DeviceSeen(v1::DeviceSeen { device: Some(device) }));
                        }
                        NetworkChange::Gone(device) => {
                            self.queue(Item::DeviceGone(v1::DeviceGone {
                                device: Some(device),
                                reason: "no longer announced on the network".into(),
                            }));
                        }
                    }
                    return Ok(());
                }
                () = self.shutdown.wait() => return Err(HubError::ShuttingDown),
                _ = self.revocations.changed() => {
                    if !self.hub.still_trusted(&self.credential_id) {
                        return Err(HubError::CredentialInvalid);
                    }
                    continue;
                }
                () = tokio::time::sleep(heartbeat) => {
                    let seq = self.hub.read().last_seq();
                    self.queue(Item::Heartbeat(v1::Heartbeat {
                        hub_time_unix_micros: Timestamp::now().as_microsecond(),
                        seq,
                    }));
                    return Ok(());
                }
            };
            return match item {
                Ok(item) => {
                    self.forward(&item);
                    Ok(())
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, "a watcher fell behind; sending a fresh snapshot");
                    self.snapshot();
                    Ok(())
                }
                Err(broadcast::error::RecvError::Closed) => Err(HubError::ShuttingDown),
            };
        }
    }

    /// Queues a live feed item: its events the filter wants, then the statuses.
    fn forward(&mut self, item: &FeedItem) {
        for event in &item.events {
            if event.seq > self.last_seq && self.filter.event(event) {
                self.queue(Item::Event(event.clone()));
            }
        }
        if item.events.last().is_some_and(|e| e.seq <= self.last_seq) {
            // Already covered by a snapshot taken after it.
            return;
        }
        self.last_seq = self.last_seq.max(item.seq);
        for status in &item.statuses {
            if self.filter.child(&status.child_id) {
                self.queue(Item::Status(status.clone()));
            }
        }
    }

    /// Queues the whole watched household at one seq, then CaughtUp.
    fn snapshot(&mut self) {
        let snapshot = {
            let household = self.hub.read();
            snapshot_of(&household, &self.filter, Timestamp::now())
        };
        let seq = snapshot.seq;
        self.last_seq = seq;
        self.queue(Item::Snapshot(snapshot));
        self.queue(Item::CaughtUp(v1::CaughtUp {
            seq,
            resumed: false,
        }));
    }

    /// Queues one page of the events after `after` from the log; after the last page,
    /// each watched child's status and CaughtUp. The log is read in pages, so a long
    /// replay never holds a whole history.
    fn replay_page(&mut self, after: u64, newest: u64) -> Result<(), HubError> {
        let page: Vec<v1::Event> = if after < newest {
            self.hub
                .store
                .after(after)?
                .take(REPLAY_PAGE)
                .collect::<Result<_, _>>()?
        } else {
            Vec::new()
        };
        let last = page.last().map_or(newest, |e| e.seq.min(newest));
        for event in page.into_iter().filter(|e| e.seq <= newest) {
            if self.filter.event(&event) {
                self.queue(Item::Event(event));
            }
        }
        self.last_seq = last;
        if last < newest {
            self.phase = Phase::Replay {
                newest: Some(newest),
                after: last,
            };
            return Ok(());
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
            self.queue(Item::Status(status));
        }
        self.queue(Item::CaughtUp(v1::CaughtUp {
            seq: newest,
            resumed: true,
        }));
        self.phase = Phase::Live;
        Ok(())
    }
}

/// The next change on the network; never, for a watch that does not follow them. A
/// watcher that fell behind skips what it missed (ListDevices has the whole list).
async fn next_change(network: &mut Option<broadcast::Receiver<NetworkChange>>) -> NetworkChange {
    loop {
        let Some(receiver) = network.as_mut() else {
            return std::future::pending().await;
        };
        match receiver.recv().await {
            Ok(change) => return change,
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => *network = None,
        }
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
