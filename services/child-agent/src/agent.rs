//! The running agent: one ledger, meter and clock behind a mutex, shared by
//! the meter loop, the control socket and the legacy responder.
//!
//! Every action is decided by the ledger (that is, by `household-core`),
//! stored and flushed, and only then applied and answered — so whatever the
//! agent acknowledges survives a crash. Audit-only events (a legacy command
//! as received) change nothing in the rules; they are numbered at once and
//! stored with the next write. The methods block (mutex, disk): async callers
//! run them on tokio's blocking pool.

use std::collections::BTreeSet;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use household_core::{
    Actor, ChildState, CreditRefusal, CreditSize, DeviceId, Event, EventKind, InputError,
    LegacyOutcome, Policy, Status, WARNING_SECONDS, time::instant_from_unix_micros,
};
use jiff::{SignedDuration, Timestamp};
use tokio::sync::watch;

mod hub;

pub use hub::LinkView;

use crate::audit::AuditBudget;
use crate::clock::{AgentClock, Reading};
use crate::enforcer::{HookKind, Transition};
use crate::ledger::{Ledger, LegacyNote};
use crate::link::Link;
use crate::meter::Meter;
use crate::store::{Checkpoint, Store, StoreError};

/// How often the open usage interval is saved: a kill loses at most this
/// much real time of measurement.
pub const CHECKPOINT_EVERY: Duration = Duration::from_secs(2);
/// The child may ask for time at most this often: each request reaches every
/// guardian, and the control socket is open to the child.
pub const ASK_EVERY: Duration = Duration::from_secs(60);
/// First pause before a failed store write is tried again; it doubles up to
/// [`LAST_STORE_RETRY`].
const FIRST_STORE_RETRY: Duration = Duration::from_secs(1);
const LAST_STORE_RETRY: Duration = Duration::from_secs(30);

/// What can go wrong in an agent action.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Credit(#[from] CreditRefusal),
    #[error("minutes must be 5 or 10 (the sizes of self-serve credits), got {0}")]
    CreditSize(i64),
    #[error("the agent's state is unavailable after an earlier failure")]
    Poisoned,
    #[error(
        "more than {} legacy commands that change the budget within {:?}",
        crate::audit::ACTIONS_PER_WINDOW,
        crate::audit::WINDOW
    )]
    TooManyActions,
    #[error(
        "the device is not enrolled with a hub (child-agent enroll), so no guardian would see it"
    )]
    NotEnrolled,
    #[error("note must be at most {max} characters, got {got}")]
    NoteTooLong { max: usize, got: usize },
    #[error("note must not contain control characters")]
    NoteControl,
    #[error(
        "a request for time was made less than {:?} ago; wait for the answer",
        ASK_EVERY
    )]
    AskedRecently,
    #[error("the hub sent a budget that cannot be enforced: {0}")]
    Hub(String),
}

pub struct Agent {
    store: Store,
    device_id: String,
    inner: Mutex<Inner>,
    /// Woken when new outbox records are stored, for the hub session.
    outbox_ready: tokio::sync::Notify,
    transitions: watch::Sender<Option<Transition>>,
    /// The device's state on every change, for the session locker.
    state: watch::Sender<ChildState>,
    /// While unenrolled: the verification code shown for each hub heard, for
    /// `status` (see [`crate::adopt`]).
    pairing: std::sync::Mutex<Vec<Pairing>>,
}

/// The verification code an unenrolled agent shows for one hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pairing {
    /// The household of the hub the code is for.
    pub household_id: String,
    /// Six digits.
    pub code: String,
}

/// What is wrong with the agent right now, for `status` and the logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    /// The store refuses writes: measuring and enforcing go on in memory.
    pub store_error: Option<String>,
    /// The usage source cannot answer: the device counts as in use.
    pub source_error: Option<String>,
    /// The policy file was refused: the last good policy is enforced.
    pub policy_error: Option<String>,
}

impl Health {
    /// One line per problem, none when all is well.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(e) = &self.store_error {
            problems.push(format!("store failing (kept in memory, retried): {e}"));
        }
        if let Some(e) = &self.source_error {
            problems.push(format!("usage source failing (counted as in use): {e}"));
        }
        if let Some(e) = &self.policy_error {
            problems.push(e.clone());
        }
        problems
    }
}

struct Inner {
    ledger: Ledger,
    meter: Meter,
    clock: AgentClock,
    last_state: Option<ChildState>,
    last_checkpoint: Instant,
    /// Events already applied but not yet stored — usage the disk refused,
    /// legacy commands noted for audit; they go out with the next write.
    unsaved: Vec<Event>,
    health: Health,
    /// What of the legacy traffic may reach the store.
    audit: AuditBudget,
    /// While the store fails: when to try it again, and the pause after that.
    store_retry: Option<(Instant, Duration)>,
    /// When the child last asked for time.
    last_ask: Option<Instant>,
    /// The hub this device enrolled with; `None` while it runs on its own.
    pub(crate) link: Option<Link>,
}

impl Inner {
    /// A closed usage interval as an event: applied now, stored with the next
    /// write.
    fn record_usage(&mut self, interval: crate::meter::Interval) -> Result<(), AgentError> {
        let event = self.ledger.usage(interval)?;
        self.ledger.commit(std::slice::from_ref(&event));
        self.unsaved.push(event);
        Ok(())
    }

    /// The status now: from the hub's last budget and what the device did
    /// since when it has one, else from the device's own record.
    pub(crate) fn status(&self) -> Result<Status, AgentError> {
        let agent_now = self.clock.now_unix_micros();
        if let Some(link) = &self.link
            && let Some(held) = &link.state.held
        {
            let since = link.since_budget(&self.unsaved, self.meter.open(), held);
            let now = instant_from_unix_micros(link.hub_time(agent_now))?;
            return Ok(held.status_at(self.ledger.device(), now, &since)?);
        }
        Ok(self
            .ledger
            .status_at(instant_from_unix_micros(agent_now)?, self.meter.open()))
    }
}

/// Stores `events` with the outbox records they owe the hub, in one batch,
/// and then counts the records as pending.
fn persist(
    store: &Store,
    link: &mut Option<Link>,
    outbox_ready: &tokio::sync::Notify,
    events: &[Event],
    checkpoint: Option<&Checkpoint>,
) -> Result<(), StoreError> {
    use prost::Message as _;
    let records = link
        .as_ref()
        .map(|link| link.records_for(events))
        .unwrap_or_default();
    let encoded: Vec<(u64, Vec<u8>)> = records
        .iter()
        .map(|(id, record)| (*id, record.encode_to_vec()))
        .collect();
    store.append(events, &encoded, checkpoint)?;
    if let Some(link) = link
        && !records.is_empty()
    {
        link.accept(&records);
        outbox_ready.notify_one();
    }
    Ok(())
}

impl Agent {
    /// Opens the agent's state: replays stored events, closes the usage
    /// interval a kill left open, and starts the clock where it left off.
    pub fn open(
        store: Store,
        device_id: String,
        policy: Policy,
        speed: f64,
        clocks: Reading,
        hub: Option<String>,
    ) -> Result<Self, AgentError> {
        let checkpoint = store.checkpoint()?;
        let outbox_ready = tokio::sync::Notify::new();
        let mut link = match hub {
            Some(hub) => Some(Link::restore(
                hub,
                store.instance_id()?,
                store.link_state()?.unwrap_or_default(),
                store.next_outbox_id()?,
                &store.outbox()?,
            )),
            None => None,
        };
        let mut ledger = Ledger::new(policy, DeviceId::from(device_id.as_str()))?;
        // One event at a time from disk; only what today needs stays.
        store.for_each_event(|event| ledger.commit(std::slice::from_ref(&event)))?;
        let clock = AgentClock::start(speed, clocks, checkpoint.clock_unix_micros);
        if let Some(interval) = checkpoint.open_interval {
            let event = ledger.usage(interval)?;
            persist(
                &store,
                &mut link,
                &outbox_ready,
                std::slice::from_ref(&event),
                Some(&Checkpoint {
                    clock_unix_micros: clock.now_unix_micros(),
                    open_interval: None,
                }),
            )?;
            ledger.commit(&[event]);
        }
        ledger.forget_before_today(instant_from_unix_micros(clock.now_unix_micros())?);
        let agent = Self {
            store,
            device_id,
            inner: Mutex::new(Inner {
                ledger,
                meter: if link.is_some() {
                    Meter::reporting_every(crate::link::REPORT_EVERY)
                } else {
                    Meter::default()
                },
                clock,
                last_state: None,
                last_checkpoint: clocks.mono,
                unsaved: Vec::new(),
                health: Health::default(),
                audit: AuditBudget::new(clocks.mono),
                store_retry: None,
                last_ask: None,
                link,
            }),
            outbox_ready,
            transitions: watch::channel(None).0,
            state: watch::channel(ChildState::Active).0,
            pairing: std::sync::Mutex::new(Vec::new()),
        };
        // The state it starts in is the first transition: whoever subscribes
        // later finds it waiting (a device already out of time must lock).
        {
            let mut inner = agent.lock()?;
            agent.observe(&mut inner)?;
        }
        Ok(agent)
    }

    /// The codes to show for the hubs heard now (none once enrolled).
    pub fn set_pairing(&self, pairing: Vec<Pairing>) {
        *self.pairing.lock().unwrap_or_else(|p| p.into_inner()) = pairing;
    }

    /// The codes shown now.
    pub fn pairing(&self) -> Vec<Pairing> {
        self.pairing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The CST device ID, which is also the legacy protocol's key.
    pub fn device_id(&self) -> &str {
        &self.device_id
    }

    /// Transitions for the enforcer to act on. The current value is the
    /// latest one — from the start, the state the agent started in — and
    /// the enforcer acts on it at once (see [`crate::enforcer::run`]).
    pub fn transitions(&self) -> watch::Receiver<Option<Transition>> {
        self.transitions.subscribe()
    }

    /// One meter sample: moves the clock, charges use, saves what must be
    /// saved, and tells the enforcer about a change of state.
    ///
    /// Enforcement never waits on the disk: a write that fails is logged,
    /// its events stay in memory (applied, and so enforced) and are tried
    /// again after 1 s, 2 s, … up to 30 s, and the state is checked all the
    /// same.
    pub fn tick(&self, active: bool, clocks: Reading) -> Result<Status, AgentError> {
        let mut inner = self.lock()?;
        let tick = inner.clock.tick(clocks);
        if let Some(interval) = inner.meter.record(tick, active) {
            inner.record_usage(interval)?;
            let now = now_of(&inner)?;
            inner.ledger.forget_before_today(now);
        }
        let summaries = inner.audit.roll(clocks.mono);
        Self::note_summaries(&mut inner, summaries)?;
        let due = match inner.store_retry {
            Some((at, _)) => clocks.mono >= at,
            None => {
                !inner.unsaved.is_empty()
                    || clocks.mono.duration_since(inner.last_checkpoint) >= CHECKPOINT_EVERY
            }
        };
        if due {
            let checkpoint = Checkpoint {
                clock_unix_micros: tick.now_unix_micros,
                open_interval: inner.meter.open(),
            };
            let written = self.save_unsaved(&mut inner, &checkpoint);
            inner.last_checkpoint = clocks.mono;
            match written {
                Ok(()) => {
                    if inner.store_retry.take().is_some() {
                        tracing::warn!("the store accepts writes again; nothing was lost");
                        if let Some(error) = inner.health.store_error.take() {
                            Self::raise(&mut inner, &format!("store failing: {error}"), true)?;
                        }
                    }
                }
                Err(e) => self.store_failed(&mut inner, &e, clocks.mono),
            }
        }
        self.observe(&mut inner)
    }

    /// Notes a failed write: logged loudly and raised for the guardians when
    /// it starts (the event waits in memory with the rest), retried later.
    fn store_failed(&self, inner: &mut Inner, error: &StoreError, now: Instant) {
        let pause = match inner.store_retry {
            None => {
                tracing::error!(
                    error = %error,
                    unsaved = inner.unsaved.len(),
                    "cannot write the store; measuring and enforcing go on in memory, retrying"
                );
                if let Err(e) = Self::raise(inner, &format!("store failing: {error}"), false) {
                    tracing::error!(error = %e, "cannot raise the store's trouble");
                }
                FIRST_STORE_RETRY
            }
            Some((_, pause)) => (pause * 2).min(LAST_STORE_RETRY),
        };
        inner.store_retry = Some((now + pause, pause));
        inner.health.store_error = Some(error.to_string());
    }

    /// What is wrong right now.
    pub fn health(&self) -> Result<Health, AgentError> {
        Ok(self.lock()?.health.clone())
    }

    /// Records trouble for the guardians (a `DeviceTrouble` event, stored
    /// with the next write), or its end.
    fn raise(inner: &mut Inner, trouble: &str, cleared: bool) -> Result<(), AgentError> {
        let now = now_of(inner)?;
        let event = inner.ledger.trouble(trouble, cleared, now);
        inner.ledger.commit(std::slice::from_ref(&event));
        inner.unsaved.push(event);
        Ok(())
    }

    /// The usage source's trouble (`Some`) or its recovery (`None`), raised
    /// for the guardians as well.
    pub fn set_source_error(&self, error: Option<String>) -> Result<(), AgentError> {
        let mut inner = self.lock()?;
        let (trouble, cleared) = match (&error, &inner.health.source_error) {
            (Some(now), _) => (format!("usage source failing: {now}"), false),
            (None, Some(before)) => (format!("usage source failing: {before}"), true),
            (None, None) => return Ok(()),
        };
        Self::raise(&mut inner, &trouble, cleared)?;
        inner.health.source_error = error;
        Ok(())
    }

    /// The policy file's trouble, shown until the agent runs with a good one.
    pub fn set_policy_error(&self, error: Option<String>) -> Result<(), AgentError> {
        let mut inner = self.lock()?;
        if let Some(trouble) = &error {
            Self::raise(&mut inner, trouble, false)?;
        }
        inner.health.policy_error = error;
        Ok(())
    }

    /// The device's state on every change: the session locker follows it.
    pub fn states(&self) -> watch::Receiver<ChildState> {
        self.state.subscribe()
    }

    /// The live status.
    pub fn status(&self) -> Result<Status, AgentError> {
        let inner = self.lock()?;
        inner.status()
    }

    /// The child spends a self-serve credit of 5 or 10 minutes.
    pub fn spend_credit(&self, minutes: i64) -> Result<Status, AgentError> {
        let size = match minutes {
            5 => CreditSize::FiveMinute,
            10 => CreditSize::TenMinute,
            other => return Err(AgentError::CreditSize(other)),
        };
        let mut inner = self.lock()?;
        let now = now_of(&inner)?;
        let held = inner.link.as_ref().and_then(|l| l.state.held.as_ref());
        let event = match held {
            // The hub's budget says what is left across the child's devices.
            Some(held) => {
                held.check_credit(&inner.status()?, size)?;
                inner.ledger.credit_spent(size, now)
            }
            None => inner.ledger.spend_credit(size, now, inner.meter.open())?,
        };
        self.record(&mut inner, &[event])
    }

    /// The child asks the guardians for more time: stored, and sent to the
    /// hub (now or once it is back), which shows it to every guardian. The
    /// request belongs to the day it was made, however late it arrives.
    pub fn ask_time(&self, minutes: i64, note: Option<String>) -> Result<Status, AgentError> {
        const MAX_NOTE: usize = 200;
        if let Some(got) = note.as_ref().map(|n| n.chars().count())
            && got > MAX_NOTE
        {
            return Err(AgentError::NoteTooLong { max: MAX_NOTE, got });
        }
        if note
            .as_deref()
            .is_some_and(|n| n.chars().any(char::is_control))
        {
            return Err(AgentError::NoteControl);
        }
        let mut inner = self.lock()?;
        if inner.link.is_none() {
            return Err(AgentError::NotEnrolled);
        }
        if inner.last_ask.is_some_and(|at| at.elapsed() < ASK_EVERY) {
            return Err(AgentError::AskedRecently);
        }
        let now = now_of(&inner)?;
        let event = inner.ledger.time_request(minutes, note, now)?;
        let status = self.record(&mut inner, &[event])?;
        inner.last_ask = Some(Instant::now());
        Ok(status)
    }

    /// Notes a legacy command that changes nothing (`GET_TIME_LEFT`, a
    /// refusal) for the audit trail. The event takes its place in the
    /// sequence now and is stored with the next write, at the latest the
    /// meter's next tick (within a quarter of a second), so it costs no flush
    /// of its own.
    ///
    /// Only so many are stored one by one (see [`crate::audit`]); the rest
    /// are counted and summed up when the minute ends.
    pub fn note_legacy_command(&self, note: &LegacyNote) -> Result<(), AgentError> {
        let mut inner = self.lock()?;
        let summaries = inner.audit.roll(Instant::now());
        Self::note_summaries(&mut inner, summaries)?;
        if inner.audit.admit_note(note) {
            Self::note(&mut inner, note)?;
        }
        Ok(())
    }

    fn note_summaries(inner: &mut Inner, summaries: Vec<LegacyNote>) -> Result<(), AgentError> {
        for summary in &summaries {
            tracing::warn!(command = %summary.command, outcome = ?summary.outcome, "legacy commands summed up");
            Self::note(inner, summary)?;
        }
        Ok(())
    }

    /// Numbers an audit event now; it is stored with the next write.
    fn note(inner: &mut Inner, note: &LegacyNote) -> Result<(), AgentError> {
        let now = now_of(inner)?;
        let event = inner.ledger.legacy_command(note, now);
        inner.ledger.commit(std::slice::from_ref(&event));
        inner.unsaved.push(event);
        Ok(())
    }

    /// A legacy `EXTEND_TIME:n`: "extend by `minutes`", which also lifts a
    /// lock of this device; see [`Agent::legacy_action`].
    pub fn legacy_extend(
        &self,
        minutes: i64,
        note: &LegacyNote,
        failure_reply: &str,
    ) -> Result<Status, AgentError> {
        self.legacy_action(note, failure_reply, |ledger, actor, now, open| {
            Ok(ledger.extend(minutes, actor, now, open)?)
        })
    }

    /// A legacy `LOCK_DEVICE`: locks this device until it is extended or
    /// unlocked; see [`Agent::legacy_action`].
    pub fn legacy_lock(
        &self,
        note: &LegacyNote,
        failure_reply: &str,
    ) -> Result<Status, AgentError> {
        self.legacy_action(note, failure_reply, |ledger, actor, now, _| {
            Ok(vec![ledger.lock_for_the_day(actor, now)?])
        })
    }

    /// Carries out a legacy command that changes the status. Its audit event
    /// (`note`, saying `Applied`) is numbered just before the grant or lock
    /// and stored in the same durable batch, before the reply is sent. If the
    /// rules refuse the action or the batch cannot be stored, the audit event
    /// says so instead (`RejectedInvalid` or `Failed`, with `failure_reply`)
    /// and waits for the next write.
    fn legacy_action(
        &self,
        note: &LegacyNote,
        failure_reply: &str,
        action: impl FnOnce(
            &Ledger,
            Actor,
            Timestamp,
            Option<crate::meter::Interval>,
        ) -> Result<Vec<Event>, AgentError>,
    ) -> Result<Status, AgentError> {
        let mut inner = self.lock()?;
        if !inner.audit.admit_action() {
            let refused = LegacyNote {
                outcome: LegacyOutcome::RejectedRateLimit,
                reply: failure_reply.to_owned(),
                ..note.clone()
            };
            if inner.audit.admit_note(&refused) {
                Self::note(&mut inner, &refused)?;
            }
            return Err(AgentError::TooManyActions);
        }
        let now = now_of(&inner)?;
        let audit = inner.ledger.legacy_command(note, now);
        let audit_seq = audit.seq;
        inner.ledger.commit(std::slice::from_ref(&audit));
        inner.unsaved.push(audit);
        let actor = Actor::LegacyAddress {
            address: note.address.clone(),
        };
        let open = inner.meter.open();
        let result = action(&inner.ledger, actor, now, open)
            .and_then(|events| self.record(&mut inner, &events));
        if let Err(error) = &result {
            let outcome = match error {
                AgentError::Input(_) => LegacyOutcome::RejectedInvalid,
                _ => LegacyOutcome::Failed,
            };
            let pending = inner.unsaved.iter_mut().find(|e| e.seq == audit_seq);
            if let Some(Event {
                kind:
                    EventKind::LegacyCommand {
                        outcome: o, reply, ..
                    },
                ..
            }) = pending
            {
                *o = outcome;
                failure_reply.clone_into(reply);
            }
        }
        result
    }

    /// Keeps a legacy command's digest for the replay window across restarts.
    pub fn remember_replay(&self, digest: [u8; 16], window: Duration) -> Result<(), AgentError> {
        let inner = self.lock()?;
        let now = inner.clock.now_unix_micros();
        let window = i64::try_from(window.as_micros()).unwrap_or(i64::MAX);
        self.store
            .remember_replay(digest, now, now.saturating_sub(window))?;
        Ok(())
    }

    /// The digests seen within `window` of now (by the agent clock, which
    /// never runs back across a restart), each with its age.
    pub fn recent_replays(
        &self,
        window: Duration,
    ) -> Result<Vec<([u8; 16], Duration)>, AgentError> {
        let now = self.lock()?.clock.now_unix_micros();
        let window_micros = i64::try_from(window.as_micros()).unwrap_or(i64::MAX);
        let seen = self
            .store
            .replays_since(now.saturating_sub(window_micros))?;
        Ok(seen
            .into_iter()
            .map(|(digest, at)| {
                let age = u64::try_from(now.saturating_sub(at)).unwrap_or(0);
                (digest, Duration::from_micros(age))
            })
            .collect())
    }

    /// Removes stored events older than `keep_days` days of agent time,
    /// except the locks still in force (so an old `LOCK_DEVICE` that nobody
    /// lifted still holds after a restart). Run at start; returns how many.
    pub fn prune_events(&self, keep_days: i64) -> Result<usize, AgentError> {
        let inner = self.lock()?;
        let now = now_of(&inner)?;
        let status = inner.ledger.status_at(now, inner.meter.open());
        let in_force: BTreeSet<u64> = status
            .lock
            .iter()
            .chain(status.device_locks.iter().map(|l| &l.lock))
            .map(|lock| lock.seq)
            .collect();
        let before = now
            .checked_sub(SignedDuration::from_hours(24 * keep_days))
            .unwrap_or(Timestamp::MIN);
        Ok(self.store.prune(before, &in_force)?)
    }

    /// The last `limit` stored events, oldest first.
    pub fn recent_events(&self, limit: usize) -> Result<Vec<Event>, AgentError> {
        Ok(self.store.recent_events(limit)?)
    }

    /// Stops measuring: the open interval becomes an event.
    pub fn close(&self) -> Result<(), AgentError> {
        let mut inner = self.lock()?;
        if let Some(interval) = inner.meter.close() {
            inner.record_usage(interval)?;
        }
        let checkpoint = Checkpoint {
            clock_unix_micros: inner.clock.now_unix_micros(),
            open_interval: None,
        };
        Ok(self.save_unsaved(&mut inner, &checkpoint)?)
    }

    /// Stores the events waiting in memory with `checkpoint`; if the store
    /// refuses, they go on waiting.
    fn save_unsaved(&self, inner: &mut Inner, checkpoint: &Checkpoint) -> Result<(), StoreError> {
        let unsaved = std::mem::take(&mut inner.unsaved);
        let written = persist(
            &self.store,
            &mut inner.link,
            &self.outbox_ready,
            &unsaved,
            Some(checkpoint),
        );
        if written.is_err() {
            inner.unsaved = unsaved;
        }
        written
    }

    /// Stores `events` (with any unsaved usage before them) and only then
    /// applies them: an action is acknowledged only once it is durable.
    ///
    /// Events that only restrict (a lock) are the exception: if the store
    /// fails they are applied all the same and kept in memory for the next
    /// write, so the device locks whatever the disk does.
    fn record(&self, inner: &mut Inner, events: &[Event]) -> Result<Status, AgentError> {
        let mut batch = std::mem::take(&mut inner.unsaved);
        batch.extend_from_slice(events);
        if let Err(e) = persist(
            &self.store,
            &mut inner.link,
            &self.outbox_ready,
            &batch,
            None,
        ) {
            let restricts_only = events
                .iter()
                .all(|e| matches!(e.kind, EventKind::Locked { .. }));
            if restricts_only {
                inner.ledger.commit(events);
                inner.unsaved = batch;
                self.store_failed(inner, &e, Instant::now());
                return self.observe(inner);
            }
            batch.truncate(batch.len() - events.len());
            inner.unsaved = batch;
            return Err(e.into());
        }
        inner.ledger.commit(events);
        self.observe(inner)
    }

    /// Locks this device until the end of the day because the day's use
    /// is not known (the store was lost): offline, today counts as spent.
    /// Kept in memory if it cannot be stored.
    pub fn lock_unknown_day(&self, reason: &str) -> Result<Status, AgentError> {
        let mut inner = self.lock()?;
        let now = now_of(&inner)?;
        let event = inner
            .ledger
            .lock_for_the_day_because(Actor::System, now, reason)?;
        self.record(&mut inner, &[event])
    }

    /// Reads the status and hands a change of state to the enforcer.
    fn observe(&self, inner: &mut Inner) -> Result<Status, AgentError> {
        let status = inner.status()?;
        let now = status.at;
        let state = status.state_on_device(inner.ledger.device());
        let bedtime_in = status
            .next_downtime_at
            .map(|at| at.duration_since(now))
            .filter(|left| !left.is_negative());
        // Bedtime soon warns like time running out.
        let seen = match bedtime_in {
            Some(left) if state == ChildState::Active && left.as_secs() <= WARNING_SECONDS => {
                ChildState::Warning
            }
            _ => state,
        };
        let hooks = hooks_for(inner.last_state, seen);
        if !hooks.is_empty() {
            if let Some(from) = inner.last_state {
                tracing::info!(?from, to = %seen, "state changed");
                // The hub hears of the use up to the change at once (with the next
                // write, within a tick), not at the end of the 5-second report.
                if inner.link.is_some()
                    && let Some(interval) = inner.meter.close()
                {
                    inner.record_usage(interval)?;
                }
            }
            let to_bedtime = bedtime_in.map_or(i64::MAX, |left| (left.as_secs() + 59) / 60);
            self.transitions.send_replace(Some(Transition {
                hooks,
                state: state.name(),
                remaining_minutes: status.remaining_minutes(),
                minutes_to_lock: if state.allows_use() {
                    status.remaining_minutes().min(to_bedtime)
                } else {
                    0
                },
            }));
        }
        inner.last_state = Some(seen);
        self.state
            .send_if_modified(|last| std::mem::replace(last, state) != state);
        Ok(status)
    }

    fn lock(&self) -> Result<MutexGuard<'_, Inner>, AgentError> {
        self.inner.lock().map_err(|_| AgentError::Poisoned)
    }

    /// Runs `f` while holding the agent's state, as a slow store write does.
    #[cfg(test)]
    pub fn with_state_held<T>(&self, f: impl FnOnce() -> T) -> T {
        let _held = self.lock();
        f()
    }
}

fn now_of(inner: &Inner) -> Result<Timestamp, InputError> {
    instant_from_unix_micros(inner.clock.now_unix_micros())
}

/// Which hooks a change from `previous` to `next` calls for, in order: lock
/// or unlock when the device changes between usable and not, a warning when
/// a usable device is in WARNING or GRACE and was not before — after the
/// unlock, when it comes with one. At start (`previous` is `None`) the
/// device is put in the state it should be in, whatever happened while the
/// agent was down, and a device that starts in WARNING is warned.
pub fn hooks_for(previous: Option<ChildState>, next: ChildState) -> &'static [HookKind] {
    let warns = matches!(next, ChildState::Warning | ChildState::Grace);
    match previous {
        Some(previous) if previous == next => &[],
        Some(previous) if previous.allows_use() == next.allows_use() => {
            if warns {
                &[HookKind::Warning]
            } else {
                &[]
            }
        }
        _ if next.allows_use() => {
            if warns {
                &[HookKind::Unlock, HookKind::Warning]
            } else {
                &[HookKind::Unlock]
            }
        }
        _ => &[HookKind::Lock],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ChildState::*;

    const HOUR_MICROS: i64 = 3_600_000_000;

    /// Midnight UTC of a day in November 2023.
    const MIDNIGHT: i64 = 1_700_000_000 * 1_000_000 / (24 * HOUR_MICROS) * (24 * HOUR_MICROS);

    const ID: &str = "3F2A9C1B7D4E8A60";

    fn start_at(dir: &std::path::Path, wall_unix_micros: i64) -> (Agent, Reading) {
        start_with(dir, wall_unix_micros, Policy::default())
    }

    fn start_with(
        dir: &std::path::Path,
        wall_unix_micros: i64,
        policy: Policy,
    ) -> (Agent, Reading) {
        let store = Store::open(dir).unwrap();
        let r0 = Reading {
            mono: Instant::now(),
            boot: Duration::from_secs(1000),
            wall_unix_micros,
        };
        (
            Agent::open(store, ID.into(), policy, 1.0, r0, None).unwrap(),
            r0,
        )
    }

    #[test]
    fn wall_clock_jumps_do_not_change_used_time() {
        let dir = tempfile::tempdir().unwrap();
        // Noon, so that a jump of a few hours stays within the day.
        let noon = MIDNIGHT + 12 * HOUR_MICROS;
        let (agent, r0) = start_at(dir.path(), noon);
        let minute = Duration::from_secs(60);
        let used = |s: Status| s.used_seconds;
        let tick = |n: u32, wall: i64| agent.tick(true, r0.after(n * minute, wall)).unwrap();
        assert_eq!(used(tick(1, noon + 60_000_000)), 60);
        // The wall clock is set back five hours: one more measured minute.
        let back = noon - 5 * HOUR_MICROS;
        assert_eq!(used(tick(2, back)), 120);
        // And forward three hours: still one measured minute each.
        let forward = noon + 3 * HOUR_MICROS;
        assert_eq!(used(tick(3, forward)), 180);
        assert_eq!(used(tick(4, forward + 60_000_000)), 240);
    }

    #[test]
    fn a_forward_jump_across_midnight_brings_no_new_day() {
        let dir = tempfile::tempdir().unwrap();
        let late = MIDNIGHT + 23 * HOUR_MICROS;
        let (agent, r0) = start_at(dir.path(), late);
        let minute = Duration::from_secs(60);
        let first = agent
            .tick(true, r0.after(minute, late + 60_000_000))
            .unwrap();
        assert_eq!(first.used_seconds, 60);
        // The child sets the date a day ahead, to tomorrow 01:00.
        let tomorrow = late + 26 * HOUR_MICROS;
        let after = agent.tick(true, r0.after(2 * minute, tomorrow)).unwrap();
        assert_eq!(after.day, first.day, "still today");
        assert_eq!(after.used_seconds, 120, "today's use stands");
        assert_eq!(after.remaining_minutes(), first.remaining_minutes() - 1);
        // The real midnight, an hour on by the boot clock, does begin a new day.
        let next = agent
            .tick(true, r0.after(62 * minute, tomorrow + HOUR_MICROS))
            .unwrap();
        assert_ne!(next.day, first.day);
        assert_eq!(next.used_seconds, 120, "00:00 to 00:02 of the new day");
    }

    #[test]
    fn a_restart_with_the_clock_set_back_goes_on_from_the_saved_time() {
        let dir = tempfile::tempdir().unwrap();
        let late = MIDNIGHT + 23 * HOUR_MICROS;
        let (agent, r0) = start_at(dir.path(), late);
        let used = agent
            .tick(true, r0.after(Duration::from_secs(120), late + 120_000_000))
            .unwrap();
        agent.close().unwrap();
        drop(agent);
        // Rebooted with the clock a day back: the day is not played again.
        let (agent, _) = start_at(dir.path(), late - 24 * HOUR_MICROS);
        let status = agent.status().unwrap();
        assert_eq!(status.day, used.day);
        assert_eq!(status.used_seconds, 120);
    }

    #[test]
    fn old_events_are_pruned_but_a_lock_still_in_force_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let day = 24 * HOUR_MICROS;
        let then = MIDNIGHT - 40 * day + 12 * HOUR_MICROS;
        let note = |command: &str| LegacyNote {
            command: command.into(),
            address: "192.168.1.20:40123".into(),
            outcome: LegacyOutcome::Applied,
            reply: String::new(),
        };
        {
            let (agent, r0) = start_at(dir.path(), then);
            agent
                .tick(true, r0.after(Duration::from_secs(60), then))
                .unwrap();
            // A lock with no end, as a guardian's through a hub.
            {
                let mut inner = agent.lock().unwrap();
                let now = now_of(&inner).unwrap();
                let mut lock = inner.ledger.legacy_command(&note("LOCK_DEVICE"), now);
                lock.kind = EventKind::Locked {
                    device: Some(DeviceId::from(ID)),
                    until: None,
                    reason: None,
                };
                agent.record(&mut inner, &[lock]).unwrap();
            }
            agent.close().unwrap();
        }
        let now = MIDNIGHT + 12 * HOUR_MICROS;
        let (agent, _) = start_at(dir.path(), now);
        agent.note_legacy_command(&note("GET_TIME_LEFT")).unwrap();
        agent.close().unwrap();
        let before = agent.recent_events(100).unwrap();
        assert!(before.len() >= 3, "{before:?}");
        let pruned = agent.prune_events(30).unwrap();
        assert_eq!(pruned, before.len() - 2);
        let kinds: Vec<&'static str> = agent
            .recent_events(100)
            .unwrap()
            .iter()
            .map(|e| match e.kind {
                household_core::EventKind::Locked { .. } => "locked",
                household_core::EventKind::LegacyCommand { .. } => "legacy",
                _ => "other",
            })
            .collect();
        assert_eq!(kinds, ["locked", "legacy"], "the lock and today's event");
        drop(agent);
        // After a restart the forty-day-old lock still holds.
        let (agent, _) = start_at(dir.path(), now);
        let status = agent.status().unwrap();
        assert_eq!(
            status.state_on_device(&DeviceId::from(agent.device_id())),
            Locked
        );
        assert_eq!(status.used_seconds, 0);
    }

    #[test]
    fn the_state_it_starts_in_is_announced_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let policy = Policy {
            daily_minutes: household_core::DailyMinutes::every_day(0),
            grace_minutes: 0,
            ..Policy::default()
        };
        let reading = Reading::now();
        let agent = Agent::open(store, ID.into(), policy, 1.0, reading, None).unwrap();
        // Subscribed after opening, before any tick: the lock is waiting.
        let transitions = agent.transitions();
        let pending = transitions.borrow().clone();
        assert_eq!(
            pending,
            Some(Transition {
                hooks: &[HookKind::Lock],
                state: "BLOCKED",
                remaining_minutes: 0,
                minutes_to_lock: 0,
            })
        );
    }

    /// A failing disk stops nothing: the day runs out, the state turns
    /// BLOCKED and the lock is announced while every write fails; a legacy
    /// lock holds in memory; once the disk is back, nothing was lost.
    #[test]
    fn a_failing_store_does_not_keep_the_device_from_locking() {
        use std::sync::atomic::Ordering;
        let dir = tempfile::tempdir().unwrap();
        let noon = MIDNIGHT + 12 * HOUR_MICROS;
        let policy = Policy {
            daily_minutes: household_core::DailyMinutes::every_day(2),
            grace_minutes: 0,
            ..Policy::default()
        };
        let (agent, r0) = start_with(dir.path(), noon, policy);
        let transitions = agent.transitions();
        agent.store.fail_writes.store(true, Ordering::Relaxed);
        let minute = Duration::from_secs(60);
        let at = |n: u32| r0.after(n * minute, noon + i64::from(n) * 60_000_000);
        let first = agent.tick(true, at(1)).unwrap();
        assert_eq!(first.remaining_minutes(), 1);
        assert!(agent.health().unwrap().store_error.is_some());
        let out = agent.tick(true, at(2)).unwrap();
        assert_eq!(out.state_on_device(&DeviceId::from(ID)), Blocked);
        assert_eq!(
            transitions.borrow().as_ref().map(|t| t.hooks),
            Some(&[HookKind::Lock][..]),
            "the lock is announced although nothing could be stored"
        );
        // A grant cannot be acknowledged without being stored: refused.
        let refused = agent.spend_credit(5).unwrap_err();
        assert!(matches!(refused, AgentError::Store(_)), "{refused}");
        assert_eq!(agent.status().unwrap().remaining_minutes(), 0);
        // A legacy LOCK_DEVICE holds too, in memory.
        let note = LegacyNote {
            command: "LOCK_DEVICE".into(),
            address: "192.168.1.20:40123".into(),
            outcome: LegacyOutcome::Applied,
            reply: "DEVICE_LOCKED|Device is now blocked".into(),
        };
        let locked = agent
            .legacy_lock(&note, "DEVICE_LOCKED|ERROR|Failed to lock device")
            .unwrap();
        assert_eq!(locked.state_on_device(&DeviceId::from(ID)), Locked);
        // The disk comes back: the next retry stores everything.
        agent.store.fail_writes.store(false, Ordering::Relaxed);
        agent.tick(true, at(3)).unwrap();
        assert_eq!(agent.health().unwrap(), Health::default());
        agent.close().unwrap();
        // The guardians learn of it: the trouble, then its end.
        let troubles: Vec<(String, bool)> = agent
            .recent_events(100)
            .unwrap()
            .into_iter()
            .filter_map(|e| match e.kind {
                EventKind::DeviceTrouble {
                    trouble, cleared, ..
                } => Some((trouble, cleared)),
                _ => None,
            })
            .collect();
        assert_eq!(troubles.len(), 2, "{troubles:?}");
        assert!(troubles[0].0.contains("injected write failure") && !troubles[0].1);
        assert!(troubles[1].1, "cleared");
        drop(agent);
        let (agent, _) = start_at(dir.path(), noon + 3 * 60_000_000);
        let status = agent.status().unwrap();
        assert_eq!(status.used_seconds, 180);
        assert_eq!(status.state_on_device(&DeviceId::from(ID)), Locked);
    }

    /// Bedtime five minutes away warns, as the last five minutes of the day's
    /// time do, and a device that starts in WARNING is warned at once.
    #[test]
    fn a_device_is_warned_before_bedtime_and_when_it_starts_in_warning() {
        let dir = tempfile::tempdir().unwrap();
        // 20:50 UTC; bedtime at 21:00.
        let ten_to_nine = MIDNIGHT + 20 * HOUR_MICROS + 50 * 60_000_000;
        let policy: Policy = toml::from_str(
            "time_zone = \"UTC\"\n[[downtime]]\nstart = \"21:00\"\nend = \"07:00\"\n",
        )
        .unwrap();
        let (agent, r0) = start_with(dir.path(), ten_to_nine, policy);
        let transitions = agent.transitions();
        let hooks = || {
            transitions
                .borrow()
                .as_ref()
                .map(|t| (t.hooks, t.state, t.minutes_to_lock))
        };
        assert_eq!(hooks(), Some((&[HookKind::Unlock][..], "ACTIVE", 10)));
        let minute = Duration::from_secs(60);
        let at = |n: u32| r0.after(n * minute, ten_to_nine + i64::from(n) * 60_000_000);
        agent.tick(false, at(4)).unwrap();
        assert_eq!(
            hooks(),
            Some((&[HookKind::Unlock][..], "ACTIVE", 10)),
            "6 minutes to go"
        );
        agent.tick(false, at(5)).unwrap();
        assert_eq!(hooks(), Some((&[HookKind::Warning][..], "ACTIVE", 5)));
        agent.tick(false, at(10)).unwrap();
        assert_eq!(hooks(), Some((&[HookKind::Lock][..], "DOWNTIME", 0)));
        drop(agent);

        let dir = tempfile::tempdir().unwrap();
        let policy = Policy {
            daily_minutes: household_core::DailyMinutes::every_day(3),
            ..Policy::default()
        };
        let (agent, _) = start_with(dir.path(), MIDNIGHT + 12 * HOUR_MICROS, policy);
        let started = agent.transitions().borrow().as_ref().map(|t| t.hooks);
        assert_eq!(started, Some(&[HookKind::Unlock, HookKind::Warning][..]));
    }

    #[test]
    fn hooks_follow_the_usable_boundary_and_warn_inside_it() {
        use HookKind::{Lock, Unlock};
        assert_eq!(hooks_for(None, Active), [Unlock]);
        assert_eq!(hooks_for(None, Warning), [Unlock, HookKind::Warning]);
        assert_eq!(hooks_for(None, Blocked), [Lock]);
        assert_eq!(hooks_for(Some(Active), Active), []);
        assert_eq!(hooks_for(Some(Active), Warning), [HookKind::Warning]);
        assert_eq!(hooks_for(Some(Warning), Grace), [HookKind::Warning]);
        assert_eq!(hooks_for(Some(Grace), Blocked), [Lock]);
        assert_eq!(hooks_for(Some(Blocked), Locked), []);
        assert_eq!(
            hooks_for(Some(Blocked), Warning),
            [Unlock, HookKind::Warning]
        );
        assert_eq!(hooks_for(Some(Blocked), Active), [Unlock]);
        assert_eq!(hooks_for(Some(Warning), Active), []);
        assert_eq!(hooks_for(Some(Active), Downtime), [Lock]);
    }
}
