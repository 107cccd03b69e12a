//! The child agents heard on the home network over mDNS, enrolled or not: what
//! `ListDevices` shows below the household's devices and what `AdoptDevice` picks from,
//! with every change told live to watchers as `DeviceSeen` and `DeviceGone`.
//!
//! Sightings live in memory only, never in the event log. Anyone on the network can
//! announce anything, as often as they like; what they announce is a hint (adoption
//! still needs the code from the device's screen), and writing it down would let a
//! neighbour grow the household's history without end. So the table is bounded
//! ([`MAX_HEARD`] agents, names cut to 64 characters by the browser), an agent that
//! stops answering is dropped, and a hub restart starts it afresh: agents answer the
//! hub's first query within a second.
//!
//! Watchers are told of a change, not of every announcement: an agent heard again as it
//! was is told again only once a minute (its `last_seen` moves on), and all changes
//! together are held to [`CHANGES_PER_SECOND`], so a neighbour answering every query a
//! thousand times, or churning names, cannot flood the guardians' phones. A watcher
//! that misses a change still finds every agent in `ListDevices`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use household_client::mdns::agents::{AgentSighting, HeardAgent};
use household_proto::v1;
use jiff::Timestamp;
use tokio::sync::broadcast;

use crate::auth::RateLimiter;
use crate::error::HubError;

/// Most agents remembered at once. A home has a handful; past this, newly heard agents
/// are ignored (and logged) until some are gone, so a neighbour flooding the network
/// costs the hub a bounded table, not its memory.
pub const MAX_HEARD: usize = 256;
/// Changes held for watchers that read slowly; one that falls further behind misses
/// some (ListDevices has the whole list).
const CHANGES_CAPACITY: usize = 64;
/// Changes told to watchers per second, all agents together, after a burst of
/// [`CHANGES_BURST`]: a household's agents coming and going never get near it.
pub const CHANGES_PER_SECOND: f64 = 5.0;
const CHANGES_BURST: f64 = 64.0;
/// How often an agent heard again, unchanged, is told again (its `last_seen`).
const RETELL_UNCHANGED_MICROS: i64 = 60_000_000;

/// A change watchers hear of.
#[derive(Debug, Clone)]
pub enum NetworkChange {
    Seen(v1::NetworkDevice),
    Gone(v1::NetworkDevice),
}

/// One agent heard, with when.
#[derive(Debug, Clone)]
struct Heard {
    agent: HeardAgent,
    first_seen_unix_micros: i64,
    last_seen_unix_micros: i64,
    /// Adopted into this household by this hub since it was last announced: it is
    /// shown as this household's until it announces so itself.
    adopted: bool,
    /// What watchers were last told of it, `last_seen` zeroed, and when.
    told: Option<(v1::NetworkDevice, i64)>,
}

/// The table of agents heard, and the channel that tells watchers of changes.
pub struct Network {
    household_id: String,
    heard: Mutex<BTreeMap<String, Heard>>,
    changes: broadcast::Sender<NetworkChange>,
    limit: RateLimiter,
    /// Whether changes are being dropped by the limit now (logged once per spell).
    dropping: AtomicBool,
}

impl Network {
    /// An empty table for the hub of `household_id`.
    pub fn new(household_id: String) -> Network {
        Network {
            household_id,
            heard: Mutex::new(BTreeMap::new()),
            changes: broadcast::channel(CHANGES_CAPACITY).0,
            limit: RateLimiter::new(CHANGES_PER_SECOND, CHANGES_BURST),
            dropping: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Heard>> {
        self.heard.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Follows the changes from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<NetworkChange> {
        self.changes.subscribe()
    }

    /// Takes one sighting from the browser.
    pub fn sighted(&self, sighting: AgentSighting) {
        let now = Timestamp::now().as_microsecond();
        let change = {
            let mut heard = self.lock();
            match sighting {
                AgentSighting::Heard(agent) => {
                    let full = heard.len() >= MAX_HEARD;
                    match heard.get_mut(&agent.fullname) {
                        Some(entry) => {
                            entry.adopted &= agent.household_id.is_none();
                            entry.agent = agent;
                            entry.last_seen_unix_micros = now;
                            self.worth_telling(entry, now).map(NetworkChange::Seen)
                        }
                        None if full => {
                            tracing::warn!(
                                name = %agent.fullname,
                                limit = MAX_HEARD,
                                "too many agents heard on the network; ignoring a new one"
                            );
                            None
                        }
                        None => {
                            let mut entry = Heard {
                                agent,
                                first_seen_unix_micros: now,
                                last_seen_unix_micros: now,
                                adopted: false,
                                told: None,
                            };
                            tracing::info!(
                                host = %entry.agent.host_name,
                                household = entry.agent.household_id.as_deref().unwrap_or("none"),
                                "an agent was heard on the network"
                            );
                            let change =
                                self.worth_telling(&mut entry, now).map(NetworkChange::Seen);
                            heard.insert(entry.agent.fullname.clone(), entry);
                            change
                        }
                    }
                }
                AgentSighting::Gone { fullname } => heard.remove(&fullname).map(|entry| {
                    tracing::info!(host = %entry.agent.host_name, "an agent left the network");
                    NetworkChange::Gone(self.describe(&entry))
                }),
            }
        };
        if let Some(change) = change {
            self.tell(change);
        }
    }

    /// What to tell watchers of `entry` just heard: its description if it changed
    /// (other than `last_seen`) or was last told a minute ago, else nothing.
    fn worth_telling(&self, entry: &mut Heard, now: i64) -> Option<v1::NetworkDevice> {
        let described = self.describe(entry);
        let plain = v1::NetworkDevice {
            last_seen_unix_micros: 0,
            ..described.clone()
        };
        if let Some((told, at)) = &entry.told
            && *told == plain
            && now - at < RETELL_UNCHANGED_MICROS
        {
            return None;
        }
        entry.told = Some((plain, now));
        Some(described)
    }

    /// Sends a change to the watchers, within [`CHANGES_PER_SECOND`].
    fn tell(&self, change: NetworkChange) {
        if self.limit.take("").is_err() {
            if !self.dropping.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    per_second = CHANGES_PER_SECOND,
                    "agents on the network change faster than watchers are told; \
                     some changes go untold (ListDevices has them all)"
                );
            }
            return;
        }
        self.dropping.store(false, Ordering::Relaxed);
        // Nobody watching is fine.
        let _ = self.changes.send(change);
    }

    /// Every agent heard, by host name.
    pub fn list(&self) -> Vec<v1::NetworkDevice> {
        let heard = self.lock();
        let mut devices: Vec<v1::NetworkDevice> =
            heard.values().map(|entry| self.describe(entry)).collect();
        devices.sort_by(|a, b| {
            (&a.host_name, &a.key_sha256_hex).cmp(&(&b.host_name, &b.key_sha256_hex))
        });
        devices
    }

    /// The one agent `host` names: its host name (case ignored), or a prefix of 8 or
    /// more hex digits of its key fingerprint.
    pub fn find(&self, host: &str) -> Result<HeardAgent, HubError> {
        let host = host.trim().trim_end_matches(".local").to_lowercase();
        let heard = self.lock();
        let by_key = host.len() >= 8 && host.bytes().all(|b| b.is_ascii_hexdigit());
        let matches: Vec<&Heard> = heard
            .values()
            .filter(|entry| {
                entry.agent.host_name.to_lowercase() == host
                    || (by_key && entry.agent.key_sha256_hex.starts_with(&host))
            })
            .collect();
        match matches.as_slice() {
            [] => Err(HubError::NoNetworkDevice {
                host: host.to_owned(),
            }),
            [one] => {
                if let Some(household) = &one.agent.household_id {
                    return Err(already_enrolled(&self.household_id, household));
                }
                if one.adopted {
                    return Err(already_enrolled(&self.household_id, &self.household_id));
                }
                Ok(one.agent.clone())
            }
            several => Err(HubError::invalid(
                "host",
                format!(
                    "names {} agents; name one by its key instead: {}",
                    several.len(),
                    several
                        .iter()
                        .map(|entry| entry.agent.key_sha256_hex.get(..12).unwrap_or(""))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }

    /// The agent with key `key_sha256_hex` was adopted: it is this household's from now
    /// on, even before it announces so, and a second adoption is refused.
    pub fn adopted(&self, key_sha256_hex: &str) {
        let change = {
            let mut heard = self.lock();
            heard
                .values_mut()
                .filter(|entry| entry.agent.key_sha256_hex == key_sha256_hex)
                .filter_map(|entry| {
                    entry.adopted = true;
                    // Forgotten what was told, so it is told now, and remembered.
                    entry.told = None;
                    self.worth_telling(entry, Timestamp::now().as_microsecond())
                        .map(NetworkChange::Seen)
                })
                .collect::<Vec<_>>()
        };
        // A guardian's own adoption is always told.
        for change in change {
            let _ = self.changes.send(change);
        }
    }

    fn describe(&self, entry: &Heard) -> v1::NetworkDevice {
        let agent = &entry.agent;
        let household_id = match (&agent.household_id, entry.adopted) {
            (Some(household), _) => household.clone(),
            (None, true) => self.household_id.clone(),
            (None, false) => String::new(),
        };
        v1::NetworkDevice {
            host_name: agent.host_name.clone(),
            platform: agent.platform.clone(),
            addresses: agent.addresses.iter().map(|a| a.to_string()).collect(),
            in_this_household: household_id == self.household_id,
            household_id,
            key_sha256_hex: agent.key_sha256_hex.clone(),
            legacy_port: u32::from(agent.legacy_port),
            first_seen_unix_micros: entry.first_seen_unix_micros,
            last_seen_unix_micros: entry.last_seen_unix_micros,
        }
    }
}

fn already_enrolled(ours: &str, theirs: &str) -> HubError {
    HubError::AdoptionRefused {
        reason: "ALREADY_ENROLLED",
        message: if theirs == ours {
            "the agent is already a device of this household".to_owned()
        } else {
            format!(
                "the agent belongs to another household ({theirs}); an enrolled agent is never \
                 adopted (it must be unenrolled on the device first, which needs its root)"
            )
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(n: usize, household: Option<&str>) -> HeardAgent {
        HeardAgent {
            fullname: format!("host{n}-00000000._household-agent._tcp.local."),
            host_name: format!("host{n}"),
            platform: "linux".into(),
            addresses: vec!["10.0.0.2".parse().unwrap()],
            household_id: household.map(str::to_owned),
            key_sha256_hex: format!("{n:04x}").repeat(16),
            legacy_port: 8888,
        }
    }

    #[test]
    fn sightings_are_bounded_and_told_to_watchers() {
        let network = Network::new("hh-ours".into());
        let mut changes = network.subscribe();
        network.sighted(AgentSighting::Heard(agent(0, None)));
        assert!(matches!(changes.try_recv(), Ok(NetworkChange::Seen(d)) if d.host_name == "host0"));
        for n in 1..MAX_HEARD + 10 {
            network.sighted(AgentSighting::Heard(agent(n, None)));
        }
        assert_eq!(network.list().len(), MAX_HEARD, "the table stops growing");
        network.sighted(AgentSighting::Gone {
            fullname: agent(0, None).fullname,
        });
        assert_eq!(network.list().len(), MAX_HEARD - 1);
        // Room again: a new agent is taken.
        network.sighted(AgentSighting::Heard(agent(MAX_HEARD + 20, None)));
        assert_eq!(network.list().len(), MAX_HEARD);
    }

    #[test]
    fn watchers_hear_changes_not_every_announcement_and_never_a_flood() {
        let network = Network::new("hh-ours".into());
        let mut changes = network.subscribe();
        network.sighted(AgentSighting::Heard(agent(0, None)));
        assert!(changes.try_recv().is_ok(), "a new agent is told");
        for _ in 0..1000 {
            network.sighted(AgentSighting::Heard(agent(0, None)));
        }
        assert!(changes.try_recv().is_err(), "the same agent again is not");
        let mut moved = agent(0, None);
        moved.addresses = vec!["10.0.0.3".parse().unwrap()];
        network.sighted(AgentSighting::Heard(moved));
        assert!(
            matches!(changes.try_recv(), Ok(NetworkChange::Seen(d)) if d.addresses == ["10.0.0.3"]),
            "a change is told"
        );
        // Names churned as fast as they can be: at most a burst gets through.
        let mut told = 0;
        for n in 1..2000 {
            network.sighted(AgentSighting::Heard(agent(n, None)));
            network.sighted(AgentSighting::Gone {
                fullname: agent(n, None).fullname,
            });
            while changes.try_recv().is_ok() {
                told += 1;
            }
        }
        assert!(
            (CHANGES_BURST as usize - 2..CHANGES_BURST as usize + 10).contains(&told),
            "{told} changes told"
        );
    }

    #[test]
    fn find_refuses_enrolled_adopted_unknown_and_ambiguous_agents() {
        let network = Network::new("hh-ours".into());
        network.sighted(AgentSighting::Heard(agent(1, None)));
        network.sighted(AgentSighting::Heard(agent(2, Some("hh-theirs"))));
        let mut twin = agent(3, None);
        twin.host_name = "host1".into();
        network.sighted(AgentSighting::Heard(twin));
        let ambiguous = network.find("HOST1").unwrap_err();
        assert!(
            ambiguous.to_string().contains("names 2 agents"),
            "{ambiguous}"
        );
        let key1 = agent(1, None).key_sha256_hex;
        let by_key = network.find(&key1[..16]).unwrap();
        assert_eq!(by_key.key_sha256_hex, key1);
        let theirs = network.find("host2").unwrap_err();
        assert!(theirs.to_string().contains("another household"), "{theirs}");
        assert!(matches!(
            network.find("nobody"),
            Err(HubError::NoNetworkDevice { .. })
        ));
        network.adopted(&key1);
        let again = network.find(&key1[..16]).unwrap_err();
        assert!(
            again
                .to_string()
                .contains("already a device of this household")
        );
        let listed = network.list();
        let ours = listed
            .iter()
            .find(|d| d.key_sha256_hex.ends_with('1'))
            .unwrap();
        assert!(ours.in_this_household && ours.household_id == "hh-ours");
    }
}
