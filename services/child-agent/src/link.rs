//! The agent's side of its hub, apart from the network: what enrolling stored,
//! the outbox records owed to the hub, and the budget it enforces from.
//!
//! Every event the agent stores that the hub must know of becomes an outbox
//! record in the same batch (usage, a credit spent, a legacy command and what
//! became of it); the record leaves the store only when the hub acknowledges
//! it. Until a budget includes a record, its effect on the time left (use
//! charged, time granted, a legacy lock) is counted on the device itself, so
//! enforcement never waits for the hub: see [`household_core::HeldBudget`].

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

use household_core::{
    Actor, CreditSize, Event, EventKind, HeldBudget, LegacyOutcome, LocalDay, LockInfo,
    SinceBudget, UsageSet, time::instant, zone_named,
};
use household_proto::v1::{self, outbox_item::Item};
use jiff::tz::TimeZone;
use prost::Message as _;
use serde::{Deserialize, Serialize};

use crate::meter::Interval;

/// The file `child-agent enroll` writes in the data directory.
pub const ENROLLMENT_FILE: &str = "enrollment.json";
/// How often an enrolled agent reports use while the device is in use.
pub const REPORT_EVERY: std::time::Duration = std::time::Duration::from_secs(5);
/// Commands remembered as carried out, so a resent one is not carried out twice.
const REMEMBERED_COMMANDS: usize = 256;

/// What enrolling stored: how to reach the hub, and who this device is there.
/// Owner-only: it holds the device's private key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrollment {
    /// The hub's `HOST:PORT` when the device enrolled.
    pub hub: String,
    /// SHA-256 of the household CA, from the pairing code: how the hub is found
    /// again by mDNS if its address changes.
    pub ca_sha256_hex: String,
    pub ca_pem: String,
    /// The device's certificate followed by the CA.
    pub chain_pem: String,
    pub key_pem: String,
    pub device_id: String,
    pub child_id: String,
    /// The device's name at the hub.
    pub device_name: String,
    /// The hub was found by mDNS (no `--hub`): it is looked for that way
    /// again if its address stops answering.
    #[serde(default)]
    pub found_by_mdns: bool,
    /// The network interface to look for the hub on, if one was named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mdns_interface: Option<String>,
    /// The household's id, which the agent announces over mDNS; absent in enrollments
    /// made before hubs told it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub household_id: Option<String>,
}

/// Why the enrollment file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum EnrollmentError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not an enrollment this agent can read: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Enrollment {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(ENROLLMENT_FILE)
    }

    /// The enrollment in `data_dir`, or `None` if the device never enrolled.
    pub fn load(data_dir: &Path) -> Result<Option<Enrollment>, EnrollmentError> {
        let path = Self::path(data_dir);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(EnrollmentError::Read { path, source }),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| EnrollmentError::Parse {
                path,
                message: e.to_string(),
            })
    }

    /// Writes the enrollment owner-only (0600), whole or not at all.
    pub fn save(&self, data_dir: &Path) -> Result<(), EnrollmentError> {
        serde_json::to_vec_pretty(self)
            .map_err(std::io::Error::other)
            .and_then(|text| crate::private_file::write(data_dir, ENROLLMENT_FILE, &text))
            .map_err(|source| EnrollmentError::Write {
                path: Self::path(data_dir),
                source,
            })
    }
}

/// What the agent keeps of its hub across runs, in its store.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LinkState {
    /// The last budget the hub sent, with the commands applied to it since.
    pub held: Option<HeldBudget>,
    /// The hub's clock minus the agent's, as of the last Welcome.
    pub offset_micros: i64,
    /// Ids of the commands carried out most recently.
    pub applied_commands: VecDeque<String>,
}

/// Whether the hub is reachable, for `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Connection {
    /// Not connected since the agent started.
    NotYet,
    /// In session since this agent time.
    Connected { since_unix_micros: i64 },
    /// Lost at this agent time.
    Offline { since_unix_micros: i64 },
}

/// One outbox record's effect on the time left, until a budget includes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Usage(Interval),
    Granted { at_micros: i64, seconds: i64 },
    Credit { at_micros: i64, size: CreditSize },
    LockedHere { at_micros: i64 },
    UnlockedHere,
}

/// The hub link's state while the agent runs.
#[derive(Debug)]
pub struct Link {
    /// The hub's address.
    pub hub: String,
    pub instance_id: String,
    pub state: LinkState,
    pub connection: Connection,
    next_outbox_id: u64,
    /// Effects of the records the held budget does not include, by outbox id.
    pending: BTreeMap<u64, Vec<Effect>>,
    /// Records acknowledged since the held budget: the next budget includes them.
    acknowledged: BTreeSet<u64>,
}

impl Link {
    /// The link as the store left it: its state, and the effects of every
    /// record still in the outbox.
    pub fn restore(
        hub: String,
        instance_id: String,
        state: LinkState,
        next_outbox_id: u64,
        outbox: &[(u64, Vec<u8>)],
    ) -> Link {
        let mut pending = BTreeMap::new();
        for (id, bytes) in outbox {
            match v1::OutboxItem::decode(bytes.as_slice()) {
                Ok(record) => {
                    pending.insert(*id, effects_of(&record));
                }
                Err(e) => tracing::error!(id, error = %e, "an outbox record cannot be read"),
            }
        }
        let next = next_outbox_id.max(outbox.last().map_or(1, |(id, _)| id + 1));
        Link {
            hub,
            instance_id,
            state,
            connection: Connection::NotYet,
            next_outbox_id: next,
            pending,
            acknowledged: BTreeSet::new(),
        }
    }

    /// The records `events` owe the hub, numbered from the next free id;
    /// [`Link::accept`] them once stored.
    pub fn records_for(&self, events: &[Event]) -> Vec<(u64, v1::OutboxItem)> {
        let zone = self.zone();
        events
            .iter()
            .filter_map(|e| record_of(e, &zone))
            .zip(self.next_outbox_id..)
            .map(|(mut record, id)| {
                record.outbox_id = id;
                (id, record)
            })
            .collect()
    }

    /// Takes stored records: their effects count until a budget includes them.
    pub fn accept(&mut self, records: &[(u64, v1::OutboxItem)]) {
        for (id, record) in records {
            self.pending.insert(*id, effects_of(record));
            self.next_outbox_id = self.next_outbox_id.max(id + 1);
        }
    }

    /// The hub stored (or refused for good) these records.
    pub fn acknowledged(&mut self, ids: impl IntoIterator<Item = u64>) {
        self.acknowledged.extend(ids);
    }

    /// A new budget: it includes every record acknowledged before it.
    pub fn new_budget(&mut self, held: HeldBudget) {
        for id in std::mem::take(&mut self.acknowledged) {
            self.pending.remove(&id);
        }
        self.state.held = Some(held);
    }

    /// Whether `command_id` was carried out already; remembers it if not.
    pub fn first_time(&mut self, command_id: &str) -> bool {
        if self
            .state
            .applied_commands
            .iter()
            .any(|id| id == command_id)
        {
            return false;
        }
        if self.state.applied_commands.len() >= REMEMBERED_COMMANDS {
            self.state.applied_commands.pop_front();
        }
        self.state.applied_commands.push_back(command_id.to_owned());
        true
    }

    /// A guardian's unlock lifts the locks the device set itself as well.
    pub fn forget_local_locks(&mut self) {
        for effects in self.pending.values_mut() {
            effects.retain(|e| !matches!(e, Effect::LockedHere { .. }));
        }
    }

    /// The child's time zone, by the held policy.
    fn zone(&self) -> TimeZone {
        self.state
            .held
            .as_ref()
            .and_then(|held| zone_named(&held.policy.time_zone).ok())
            .unwrap_or(TimeZone::UTC)
    }

    /// The agent time as the hub's clock reads it.
    pub fn hub_time(&self, agent_micros: i64) -> i64 {
        agent_micros.saturating_add(self.state.offset_micros)
    }

    /// What the device did that the held budget does not include: the stored
    /// records not yet in a budget, `unsaved` events, and the open interval,
    /// on the hub's clock.
    pub fn since_budget(
        &self,
        unsaved: &[Event],
        open: Option<Interval>,
        held: &HeldBudget,
    ) -> SinceBudget {
        let zone = zone_named(&held.policy.time_zone).unwrap_or(TimeZone::UTC);
        let mut since = SinceBudget {
            usage: UsageSet::new(),
            ..SinceBudget::default()
        };
        let hub_second = |micros: i64| self.hub_time(micros).div_euclid(1_000_000);
        let unsaved_effects: Vec<Effect> = unsaved
            .iter()
            .filter_map(|e| record_of(e, &zone))
            .flat_map(|r| effects_of(&r))
            .collect();
        let open_effect = open.map(Effect::Usage);
        let all = self
            .pending
            .values()
            .flatten()
            .chain(&unsaved_effects)
            .chain(&open_effect);
        for effect in all {
            match *effect {
                Effect::Usage(interval) => {
                    let start = hub_second(interval.start_unix_micros);
                    // Rounded up: a part second counts, on the side of less time.
                    let end = hub_second(interval.end_unix_micros + 999_999);
                    since.usage.insert(start, end);
                }
                Effect::Granted { at_micros, seconds } => {
                    since
                        .granted
                        .push((instant(hub_second(at_micros)), seconds));
                }
                Effect::Credit { at_micros, size } => {
                    since
                        .credits_spent
                        .push((instant(hub_second(at_micros)), size));
                }
                Effect::LockedHere { at_micros } => {
                    let at = hub_second(at_micros);
                    since.device_locks.push(LockInfo {
                        since: instant(at),
                        until: Some(instant(LocalDay::containing(at, &zone).end_second)),
                        reason: Some("locked from the CST parent app".into()),
                        by: Actor::System,
                        seq: 0,
                    });
                }
                Effect::UnlockedHere => {
                    since.device_locks.clear();
                    since.device_lock_lifted = true;
                }
            }
        }
        since
    }
}

/// The outbox record an event owes the hub, without its id; `None` for what
/// the hub learns otherwise (the grant or lock a legacy command caused is in
/// the command's report) or does not take from devices.
pub fn record_of(event: &Event, zone: &TimeZone) -> Option<v1::OutboxItem> {
    let item = match &event.kind {
        EventKind::UsageReported { start, end } => Item::Usage(v1::UsageReport {
            start_unix_micros: start.as_microsecond(),
            end_unix_micros: end.as_microsecond(),
        }),
        EventKind::ExtensionCreditSpent { size, spent_at } => {
            let at = spent_at.unwrap_or(event.at);
            Item::CreditSpent(v1::CreditSpend {
                minutes: u32::try_from(size.minutes()).unwrap_or(0),
                day: Some(household_proto::convert::date_to_proto(
                    at.to_zoned(zone.clone()).date(),
                )),
            })
        }
        EventKind::TimeRequested {
            minutes,
            note,
            requested_at,
            ..
        } => {
            return Some(v1::OutboxItem {
                outbox_id: 0,
                recorded_unix_micros: requested_at.unwrap_or(event.at).as_microsecond(),
                item: Some(Item::TimeRequest(v1::TimeRequestSubmission {
                    minutes: u32::try_from(*minutes).unwrap_or(0),
                    note: note.clone().unwrap_or_default(),
                })),
            });
        }
        EventKind::LegacyCommand {
            command,
            outcome,
            reply,
        } => {
            let (kind, minutes) = legacy_kind(command);
            Item::LegacyCommand(v1::LegacyCommandReport {
                peer_address: match &event.actor {
                    Actor::LegacyAddress { address } => address.clone(),
                    _ => String::new(),
                },
                command: kind as i32,
                extend_minutes: minutes,
                outcome: legacy_outcome(*outcome) as i32,
                reply: reply.clone(),
            })
        }
        _ => return None,
    };
    Some(v1::OutboxItem {
        outbox_id: 0,
        recorded_unix_micros: event.at.as_microsecond(),
        item: Some(item),
    })
}

/// What a record does to the time left, on the agent's clock.
fn effects_of(record: &v1::OutboxItem) -> Vec<Effect> {
    let at_micros = record.recorded_unix_micros;
    match &record.item {
        Some(Item::Usage(usage)) => vec![Effect::Usage(Interval {
            start_unix_micros: usage.start_unix_micros,
            end_unix_micros: usage.end_unix_micros,
        })],
        Some(Item::CreditSpent(spend)) => {
            let size = if spend.minutes == 10 {
                CreditSize::TenMinute
            } else {
                CreditSize::FiveMinute
            };
            vec![
                Effect::Credit { at_micros, size },
                Effect::Granted {
                    at_micros,
                    seconds: size.minutes() * 60,
                },
            ]
        }
        Some(Item::LegacyCommand(report))
            if report.outcome == v1::LegacyOutcome::Applied as i32 =>
        {
            match v1::LegacyCommandKind::try_from(report.command) {
                Ok(v1::LegacyCommandKind::ExtendTime) => vec![
                    Effect::UnlockedHere,
                    Effect::Granted {
                        at_micros,
                        seconds: i64::from(report.extend_minutes) * 60,
                    },
                ],
                Ok(v1::LegacyCommandKind::LockDevice) => vec![Effect::LockedHere { at_micros }],
                _ => Vec::new(),
            }
        }
        _ => Vec::new(),
    }
}

/// A legacy command's kind and, for `EXTEND_TIME:n`, its minutes.
fn legacy_kind(command: &str) -> (v1::LegacyCommandKind, u32) {
    match command {
        "GET_TIME_LEFT" => (v1::LegacyCommandKind::GetTimeLeft, 0),
        "LOCK_DEVICE" => (v1::LegacyCommandKind::LockDevice, 0),
        other => match other
            .strip_prefix("EXTEND_TIME:")
            .and_then(|n| n.parse::<u32>().ok())
        {
            Some(minutes) => (v1::LegacyCommandKind::ExtendTime, minutes),
            None => (v1::LegacyCommandKind::Unknown, 0),
        },
    }
}

fn legacy_outcome(outcome: LegacyOutcome) -> v1::LegacyOutcome {
    match outcome {
        LegacyOutcome::Applied => v1::LegacyOutcome::Applied,
        LegacyOutcome::RejectedReplay => v1::LegacyOutcome::RejectedReplay,
        LegacyOutcome::RejectedRateLimit => v1::LegacyOutcome::RejectedRateLimit,
        LegacyOutcome::RejectedReadOnly => v1::LegacyOutcome::RejectedReadOnly,
        LegacyOutcome::RejectedInvalid => v1::LegacyOutcome::RejectedInvalid,
        LegacyOutcome::Failed => v1::LegacyOutcome::Failed,
        LegacyOutcome::RejectedLocal => v1::LegacyOutcome::RejectedLocal,
    }
}
