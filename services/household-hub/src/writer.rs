//! The single writer: every change to the household goes through one thread, which
//! decides, assigns seqs, makes the events durable and only then answers and tells the
//! watchers.
//!
//! A change is a [`Job`]: a closure that looks at the [`Household`] and appends events
//! through a [`Txn`]. The thread runs the jobs waiting in its queue (up to
//! [`MAX_JOBS_PER_BATCH`], or until they appended about a thousand events) against the
//! same in-memory household, so each sees what the
//! ones before it appended, then writes all their events in one `fdatasync`ed batch
//! (group commit: many agents' usage reports cost one sync). Callers hear back only
//! after that sync; a failed write answers every job in the batch with the error and
//! rebuilds the household from the log, so nothing unacknowledged stays visible.
//! Between batches the writer takes the household's snapshots ([`crate::snapshot`]).

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;

use household_proto::v1;
use jiff::Timestamp;
use tokio::sync::{broadcast, oneshot};

use crate::error::HubError;
use crate::feed::FeedItem;
use crate::household::Household;
use crate::snapshot::SnapshotTaker;
use crate::store::EventStore;

/// Most jobs folded into one durable batch.
pub const MAX_JOBS_PER_BATCH: usize = 4096;
/// Events after which a batch takes no more jobs: what one batch holds in memory (its
/// events, the write to the log, the feed items) stays small however long the queue.
const MAX_EVENTS_PER_BATCH: usize = 1024;
/// Jobs that may wait for the writer before callers are told to slow down.
const QUEUE_CAPACITY: usize = 16384;

type Completion = Box<dyn FnOnce(Result<(), &HubError>) + Send>;
type Job = Box<dyn FnOnce(&mut Txn<'_>) -> Completion + Send>;

/// The events one batch appends, and the household they are applied to.
pub struct Txn<'a> {
    household: &'a mut Household,
    appended: Vec<v1::Event>,
    now: Timestamp,
    snapshot_now: bool,
}

impl Txn<'_> {
    /// The household, including what earlier jobs of this batch appended.
    pub fn household(&self) -> &Household {
        self.household
    }

    /// Mutable access for bookkeeping that has no event (outbox marks of refused
    /// records).
    pub fn household_mut(&mut self) -> &mut Household {
        self.household
    }

    /// The hub's clock for this batch: every event of it carries this time.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// Has a snapshot of the household taken after this batch and written before its
    /// callers hear back.
    pub fn snapshot_after(&mut self) {
        self.snapshot_now = true;
    }

    /// Appends an event: assigns the next seq and the batch's time, applies it to the
    /// household, and returns it as logged.
    pub fn append(&mut self, mut event: v1::Event) -> v1::Event {
        event.seq = self.household.last_seq() + 1;
        event.time_unix_micros = self.now.as_microsecond();
        self.household.apply(&event);
        self.appended.push(event.clone());
        event
    }
}

/// The handle RPCs use to submit changes.
#[derive(Clone)]
pub struct Writer {
    queue: SyncSender<Job>,
}

/// The writer thread, owned by the server, which stops it at shutdown.
pub struct WriterThread {
    handle: JoinHandle<()>,
}

impl WriterThread {
    /// Waits for the writer to finish the jobs already queued (once every [`Writer`] is
    /// dropped).
    pub fn join(self) {
        if self.handle.join().is_err() {
            tracing::error!("the writer thread panicked");
        }
    }
}

impl Writer {
    /// Starts the writer thread.
    pub fn start(
        household: Arc<RwLock<Household>>,
        store: Arc<EventStore>,
        feed: broadcast::Sender<Arc<FeedItem>>,
        appended_counter: impl Fn(u64) + Send + 'static,
        snapshots: SnapshotTaker,
    ) -> std::io::Result<(Writer, WriterThread)> {
        let (queue, jobs) = sync_channel(QUEUE_CAPACITY);
        let handle = std::thread::Builder::new()
            .name("hub-writer".into())
            .spawn(move || {
                run(
                    jobs,
                    &household,
                    &store,
                    &feed,
                    &appended_counter,
                    snapshots,
                )
            })?;
        Ok((Writer { queue }, WriterThread { handle }))
    }

    /// Runs `decide` on the writer thread and returns its result once the events it
    /// appended are durable.
    pub async fn write<R, F>(&self, decide: F) -> Result<R, HubError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Txn<'_>) -> Result<R, HubError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |txn| {
            let outcome = decide(txn);
            Box::new(move |durable: Result<(), &HubError>| {
                let result = match (durable, outcome) {
                    (Ok(()), outcome) => outcome,
                    (Err(err), _) => Err(HubError::Storage(err.to_string())),
                };
                let _ = tx.send(result);
            })
        });
        match self.queue.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(job)) => {
                // Back-pressure: wait for room off the runtime's threads.
                let queue = self.queue.clone();
                tokio::task::spawn_blocking(move || queue.send(job))
                    .await
                    .map_err(|_| HubError::ShuttingDown)?
                    .map_err(|_| HubError::ShuttingDown)?;
            }
            Err(TrySendError::Disconnected(_)) => return Err(HubError::ShuttingDown),
        }
        rx.await.map_err(|_| HubError::ShuttingDown)?
    }
}

fn run(
    jobs: Receiver<Job>,
    household: &RwLock<Household>,
    store: &EventStore,
    feed: &broadcast::Sender<Arc<FeedItem>>,
    appended_counter: &dyn Fn(u64),
    mut snapshots: SnapshotTaker,
) {
    while let Ok(first) = jobs.recv() {
        let mut guard = match household.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut txn = Txn {
            household: &mut guard,
            appended: Vec::new(),
            now: Timestamp::now(),
            snapshot_now: false,
        };
        let mut completions: Vec<Completion> = vec![first(&mut txn)];
        while completions.len() < MAX_JOBS_PER_BATCH && txn.appended.len() < MAX_EVENTS_PER_BATCH {
            match jobs.try_recv() {
                Ok(job) => completions.push(job(&mut txn)),
                Err(_) => break,
            }
        }
        let appended = std::mem::take(&mut txn.appended);
        let snapshot_now = txn.snapshot_now;
        let durable = if appended.is_empty() {
            Ok(())
        } else {
            store.append(&appended)
        };
        let mut snapshot = None;
        let item = match &durable {
            Ok(()) => {
                snapshot = snapshots.after_batch(&guard, snapshot_now);
                (!appended.is_empty()).then(|| {
                    appended_counter(appended.len() as u64);
                    FeedItem::for_batch(&guard, appended, Timestamp::now())
                })
            }
            Err(err) => {
                tracing::error!(error = %err, "a batch could not be made durable; rebuilding from the log");
                match snapshots.file().rebuild(store) {
                    Ok((rebuilt, _)) => *guard = rebuilt,
                    Err(err) => tracing::error!(error = %err, "rebuild failed"),
                }
                None
            }
        };
        drop(guard);
        if snapshot_now && let Some(written) = snapshot {
            written.wait();
        }
        for item in item.into_iter().flatten() {
            // No receiver is fine: nobody is watching.
            let _ = feed.send(Arc::new(item));
        }
        for complete in completions {
            complete(durable.as_ref().map(|_| ()));
        }
    }
    // Every writer is gone: the hub is stopping. A last snapshot makes the next start
    // fold nothing.
    let guard = match household.read() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    };
    let written = snapshots.after_batch(&guard, true);
    drop(guard);
    if let Some(written) = written {
        written.wait();
    }
    snapshots.finish();
}
