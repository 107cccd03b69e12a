//! Child agents on the home network: an agent announcing itself, and the hub hearing
//! every agent there, enrolled or not.
//!
//! An agent announces `<host>-<key8>._household-agent._tcp.local.` (the key prefix
//! keeps two devices with one host name apart) with these TXT entries:
//!
//! | key   | value                                                              |
//! | ----- | ------------------------------------------------------------------ |
//! | `api` | `household.v1`                                                     |
//! | `hh`  | `unenrolled`, or the id of the household it belongs to             |
//! | `os`  | its platform, e.g. `linux`                                         |
//! | `cst` | the UDP port of its legacy CST responder, `0` when it has none      |
//! | `key` | SHA-256 of its public key, 64 lowercase hex digits                  |
//!
//! Never the CST device ID, which is the legacy protocol's key. The SRV record's port is
//! the legacy port (an agent listens on no TCP port at all).
//!
//! An unenrolled agent also browses for hubs on the same interface, to ask them whether
//! it is being adopted ([`crate::adopt`]).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use household_proto::{MDNS_AGENT_SERVICE_TYPE, MDNS_SERVICE_TYPE};
use mdns_sd::{IfKind, RecvTimeoutError, ResolvedService, ServiceEvent, ServiceInfo};
use tracing::{debug, info, warn};

use super::{API_VERSION, FoundHub, MdnsError, Responder, STOP_WAIT};

/// The `hh` value of an agent that belongs to no household.
pub const UNENROLLED: &str = "unenrolled";
/// Longest host name or platform taken from an announcement; longer ones are cut.
const MAX_NAME_CHARS: usize = 64;

/// What an agent announces, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSpec {
    /// The one interface to announce on; `None` for all of them.
    pub interface: Option<String>,
    /// The device's host name, without `.local.`.
    pub host_name: String,
    pub platform: String,
    /// The household it belongs to; `None` while unenrolled.
    pub household_id: Option<String>,
    /// SHA-256 of its public key, 64 lowercase hex digits.
    pub key_sha256_hex: String,
    /// Its legacy CST port; 0 when the responder is off.
    pub legacy_port: u16,
}

/// An agent as the hub heard it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeardAgent {
    /// The DNS-SD instance name, unique on the network.
    pub fullname: String,
    pub host_name: String,
    pub platform: String,
    /// Ascending, IPv4 first.
    pub addresses: Vec<IpAddr>,
    /// `None` while it belongs to no household.
    pub household_id: Option<String>,
    pub key_sha256_hex: String,
    pub legacy_port: u16,
}

/// What the hub's browser reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentSighting {
    /// An agent was heard, or what it announces changed.
    Heard(HeardAgent),
    /// The agent with this instance name said goodbye or stopped answering.
    Gone { fullname: String },
}

/// An agent's announcement (and, while it is unenrolled, its ear for hubs) while it
/// lasts: dropping it withdraws the announcement and stops the daemon.
pub struct AgentPresence {
    /// Always `Some` until dropped.
    responder: Option<Responder>,
    fullname: String,
    hubs: Arc<Mutex<BTreeMap<String, FoundHub>>>,
    listener: Option<JoinHandle<()>>,
}

impl AgentPresence {
    /// Announces the agent as `spec` says; with `browse_hubs`, also keeps a list of the
    /// hubs heard on the same interface ([`AgentPresence::hubs`]).
    pub fn start(spec: &AgentSpec, browse_hubs: bool) -> Result<AgentPresence, MdnsError> {
        let responder = Responder::on(spec.interface.as_deref())?;
        let legacy_port = spec.legacy_port.to_string();
        let properties = [
            ("api", API_VERSION),
            ("hh", spec.household_id.as_deref().unwrap_or(UNENROLLED)),
            ("os", spec.platform.as_str()),
            ("cst", legacy_port.as_str()),
            ("key", spec.key_sha256_hex.as_str()),
        ];
        let key_prefix = spec.key_sha256_hex.get(..8).unwrap_or("");
        let mut service = ServiceInfo::new(
            MDNS_AGENT_SERVICE_TYPE,
            &format!("{}-{key_prefix}", spec.host_name),
            &format!("{}.local.", spec.host_name),
            (),
            spec.legacy_port,
            &properties[..],
        )
        .map_err(MdnsError::Record)?
        .enable_addr_auto();
        if let Some(interface) = &spec.interface {
            service.set_interfaces(vec![IfKind::Name(interface.clone())]);
        }
        let fullname = service.get_fullname().to_owned();
        responder
            .daemon
            .register(service)
            .map_err(MdnsError::Announce)?;
        info!(
            name = %fullname,
            interface = spec.interface.as_deref().unwrap_or("all"),
            household = spec.household_id.as_deref().unwrap_or(UNENROLLED),
            "announcing the agent over mDNS"
        );
        let hubs = Arc::new(Mutex::new(BTreeMap::new()));
        let listener = if browse_hubs {
            let events = responder
                .daemon
                .browse(MDNS_SERVICE_TYPE)
                .map_err(MdnsError::Browse)?;
            let hubs = hubs.clone();
            Some(
                std::thread::Builder::new()
                    .name("mdns-hubs".into())
                    .spawn(move || {
                        // Ends when the daemon stops and drops its end of the channel.
                        while let Ok(event) = events.recv() {
                            let mut hubs = hubs.lock().unwrap_or_else(|p| p.into_inner());
                            match event {
                                ServiceEvent::ServiceResolved(service) => {
                                    if let Some(hub) = FoundHub::from_record(&service) {
                                        debug!(name = %service.fullname, ?hub, "heard a hub");
                                        hubs.insert(service.fullname.clone(), hub);
                                    }
                                }
                                ServiceEvent::ServiceRemoved(_, fullname) => {
                                    hubs.remove(&fullname);
                                }
                                _ => {}
                            }
                        }
                    })
                    .map_err(|e| MdnsError::Daemon(mdns_sd::Error::Msg(e.to_string())))?,
            )
        } else {
            None
        };
        Ok(AgentPresence {
            responder: Some(responder),
            fullname,
            hubs,
            listener,
        })
    }

    /// The hubs heard so far (empty unless started with `browse_hubs`).
    pub fn hubs(&self) -> Vec<FoundHub> {
        let hubs = self.hubs.lock().unwrap_or_else(|p| p.into_inner());
        hubs.values().cloned().collect()
    }
}

impl std::fmt::Debug for AgentPresence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentPresence")
            .field("fullname", &self.fullname)
            .finish_non_exhaustive()
    }
}

impl Drop for AgentPresence {
    /// Says goodbye, so hubs forget the agent now; then the daemon stops (when
    /// `responder` is dropped) and the hub list's thread with it.
    fn drop(&mut self) {
        let Some(responder) = self.responder.take() else {
            return;
        };
        match responder.daemon.unregister(&self.fullname) {
            Ok(status) => {
                if status.recv_timeout(STOP_WAIT).is_err() {
                    warn!(name = %self.fullname, "the mDNS daemon did not confirm the withdrawal");
                }
            }
            Err(e) => {
                warn!(name = %self.fullname, error = %e, "cannot withdraw the agent's announcement")
            }
        }
        if self.listener.is_some()
            && let Err(e) = responder.daemon.stop_browse(MDNS_SERVICE_TYPE)
        {
            debug!(error = %e, "cannot stop browsing; the daemon stops anyway");
        }
        // Stopping the daemon closes the hub list's channel, which ends its thread.
        drop(responder);
        if let Some(listener) = self.listener.take() {
            let _ = listener.join();
        }
        info!(name = %self.fullname, "stopped announcing the agent");
    }
}

/// The hub's ear for agents: a thread that hands every sighting to a callback until
/// dropped.
pub struct AgentBrowser {
    responder: Option<Responder>,
    listener: Option<JoinHandle<()>>,
}

impl AgentBrowser {
    /// Browses for agents on `interface` (all for `None`), calling `sighted` with each
    /// change. Every `recheck` it asks each agent heard to answer again (RFC 6762
    /// §10.4); one that does not within `recheck` is reported gone. So an agent that
    /// vanished without a goodbye (pulled plug, killed) is gone within twice `recheck`,
    /// long before its records' own TTL (two minutes) would say so.
    pub fn start(
        interface: Option<&str>,
        recheck: Duration,
        mut sighted: impl FnMut(AgentSighting) + Send + 'static,
    ) -> Result<AgentBrowser, MdnsError> {
        let responder = Responder::on(interface)?;
        let events = responder
            .daemon
            .browse(MDNS_AGENT_SERVICE_TYPE)
            .map_err(MdnsError::Browse)?;
        let daemon = responder.daemon.clone();
        let listener = std::thread::Builder::new()
            .name("mdns-agents".into())
            .spawn(move || {
                let mut known: BTreeMap<String, ()> = BTreeMap::new();
                let mut next_check = Instant::now() + recheck;
                loop {
                    let wait = next_check.saturating_duration_since(Instant::now());
                    match events.recv_timeout(wait) {
                        Ok(ServiceEvent::ServiceResolved(service)) => {
                            match HeardAgent::from_record(&service) {
                                Some(agent) => {
                                    known.insert(agent.fullname.clone(), ());
                                    sighted(AgentSighting::Heard(agent));
                                }
                                None => debug!(
                                    name = %service.fullname,
                                    "ignoring an agent announcement that is not household.v1"
                                ),
                            }
                        }
                        Ok(ServiceEvent::ServiceRemoved(_, fullname)) => {
                            if known.remove(&fullname).is_some() {
                                sighted(AgentSighting::Gone { fullname });
                            }
                        }
                        Ok(_) => {}
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                    if Instant::now() >= next_check {
                        for fullname in known.keys() {
                            if let Err(e) = daemon.verify(fullname.clone(), recheck) {
                                debug!(error = %e, "cannot ask an agent to answer again");
                            }
                        }
                        next_check = Instant::now() + recheck;
                    }
                }
            })
            .map_err(|e| MdnsError::Daemon(mdns_sd::Error::Msg(e.to_string())))?;
        info!(
            interface = interface.unwrap_or("all"),
            "listening for child agents over mDNS"
        );
        Ok(AgentBrowser {
            responder: Some(responder),
            listener: Some(listener),
        })
    }
}

impl std::fmt::Debug for AgentBrowser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentBrowser").finish_non_exhaustive()
    }
}

impl Drop for AgentBrowser {
    fn drop(&mut self) {
        // Stopping the daemon closes the channel, which ends the thread.
        drop(self.responder.take());
        if let Some(listener) = self.listener.take() {
            let _ = listener.join();
        }
    }
}

impl HeardAgent {
    /// Reads a resolved announcement; `None` if an entry is missing or malformed, or it
    /// speaks another API. Whatever a neighbour announces is bounded here: names are
    /// cut to 64 characters and the key must be 64 hex digits.
    fn from_record(service: &ResolvedService) -> Option<HeardAgent> {
        if service.get_property_val_str("api")? != API_VERSION {
            return None;
        }
        let key = service.get_property_val_str("key")?.to_ascii_lowercase();
        if key.len() != 64 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let household = service.get_property_val_str("hh")?;
        if household.is_empty() || household.chars().count() > MAX_NAME_CHARS {
            return None;
        }
        let mut addresses: Vec<IpAddr> = service
            .addresses
            .iter()
            .map(|scoped| scoped.to_ip_addr())
            .collect();
        addresses.sort_by_key(|a| (a.is_ipv6(), *a));
        addresses.dedup();
        let host_name = service
            .host
            .trim_end_matches('.')
            .trim_end_matches(".local")
            .chars()
            .take(MAX_NAME_CHARS)
            .collect();
        Some(HeardAgent {
            fullname: service.fullname.clone(),
            host_name,
            platform: service
                .get_property_val_str("os")
                .unwrap_or_default()
                .chars()
                .take(MAX_NAME_CHARS)
                .collect(),
            addresses,
            household_id: (household != UNENROLLED).then(|| household.to_owned()),
            key_sha256_hex: key,
            legacy_port: service
                .get_property_val_str("cst")
                .and_then(|p| p.parse().ok())
                .unwrap_or(0),
        })
    }
}
