//! Announcing the hub on the home network over mDNS, and finding it from a client.
//!
//! The hub announces itself as `<instance>._household-hub._tcp.local.` with three TXT
//! entries:
//!
//! | key   | value                                                    |
//! | ----- | -------------------------------------------------------- |
//! | `api` | `household.v1`, the API the hub speaks                   |
//! | `hh`  | the household's id, to tell two households apart         |
//! | `ca`  | SHA-256 of the household CA certificate, 64 lowercase hex |
//!
//! None of it is secret: a neighbour may see it all. The announcement only saves a new
//! client from typing an address; trust still comes from the pairing code, which carries
//! the same CA fingerprint, so a neighbour who announces a fake hub gains nothing.
//!
//! A hub with several networks (a router, a machine with Docker bridges) is usually meant
//! for one of them; [`AdvertiseSpec::interface`] keeps the announcement there.

pub mod agents;

use std::collections::BTreeMap;
use std::ffi::CString;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use household_proto::MDNS_SERVICE_TYPE;
use mdns_sd::{
    IfKind, RecvTimeoutError, ResolvedService, ServiceDaemon, ServiceEvent, ServiceInfo,
};
use tracing::{debug, info, warn};

/// The `api` TXT value: the API a hub announcing it speaks.
const API_VERSION: &str = "household.v1";
/// How long stopping waits for the daemon to send its goodbyes and exit. Stopping is on
/// the hub's way out, which must not hang on a stuck network.
const STOP_WAIT: Duration = Duration::from_secs(2);

/// Why announcing or browsing failed.
#[derive(Debug, thiserror::Error)]
pub enum MdnsError {
    /// The interface to announce or browse on does not exist on this machine.
    #[error("there is no network interface called {0:?}")]
    UnknownInterface(String),
    /// The mDNS daemon could not be started or configured.
    #[error("cannot start the mDNS responder: {0}")]
    Daemon(#[source] mdns_sd::Error),
    /// The announcement is not a valid DNS-SD record (a bad host name, a TXT value
    /// over 255 bytes).
    #[error("the hub's mDNS record is invalid: {0}")]
    Record(#[source] mdns_sd::Error),
    /// The daemon did not take the announcement.
    #[error("cannot announce the hub: {0}")]
    Announce(#[source] mdns_sd::Error),
    /// The daemon did not start browsing.
    #[error("cannot browse for hubs: {0}")]
    Browse(#[source] mdns_sd::Error),
    /// No hub of the household the pairing code names was heard.
    #[error(
        "no hub of this household answered on the network within {waited:?} \
         ({heard} other hub(s) heard); is the hub running, on this network? \
         (--hub HOST:PORT skips the search)"
    )]
    NoHub { heard: usize, waited: Duration },
}

/// What the hub announces, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdvertiseSpec {
    /// The one network interface to announce on (`"eth0"`); `None` for all of them.
    pub interface: Option<String>,
    /// The service instance name people see in a list of hubs (`"Household hub"`).
    pub instance_name: String,
    /// The host name the SRV record points at; must end in `.local.` (`"myhost.local."`).
    pub host_name: String,
    /// The hub's gRPC port.
    pub port: u16,
    /// The household's id, announced as `hh`.
    pub household_id: String,
    /// SHA-256 of the household CA certificate, 64 lowercase hex, announced as `ca`.
    pub ca_sha256_hex: String,
}

/// A hub heard on the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundHub {
    /// Where it can be reached, in ascending order.
    pub addresses: Vec<IpAddr>,
    /// Its gRPC port.
    pub port: u16,
    /// The household it serves (its `hh` TXT entry).
    pub household_id: String,
    /// Its CA fingerprint (its `ca` TXT entry). A client compares it with the pairing
    /// code before trusting the hub.
    pub ca_sha256_hex: String,
}

/// The hub's announcement while it lasts: dropping it (or calling
/// [`HubAdvertisement::stop`]) withdraws it and stops the mDNS daemon.
pub struct HubAdvertisement {
    responder: Responder,
    /// The DNS-SD name announced, which withdrawing it needs.
    fullname: String,
}

impl HubAdvertisement {
    /// Starts announcing the hub as `spec` says, until the returned value is dropped.
    ///
    /// The addresses announced are those of the chosen interface (all of them without
    /// one) and follow it as they change, so a hub on DHCP stays findable.
    ///
    /// mdns-sd joins the mDNS group on every interface while it starts, and leaves the
    /// ones not chosen a moment later; nothing is announced on them.
    pub fn start(spec: &AdvertiseSpec) -> Result<HubAdvertisement, MdnsError> {
        let responder = Responder::on(spec.interface.as_deref())?;
        let properties = [
            ("api", API_VERSION),
            ("hh", spec.household_id.as_str()),
            ("ca", spec.ca_sha256_hex.as_str()),
        ];
        let mut service = ServiceInfo::new(
            MDNS_SERVICE_TYPE,
            &spec.instance_name,
            &spec.host_name,
            (),
            spec.port,
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
            port = spec.port,
            interface = spec.interface.as_deref().unwrap_or("all"),
            "announcing the hub over mDNS"
        );
        Ok(HubAdvertisement {
            responder,
            fullname,
        })
    }

    /// Withdraws the announcement and stops the daemon; the same as dropping it, spelt
    /// out for the places where stopping is the point.
    pub fn stop(self) {
        drop(self);
    }
}

impl std::fmt::Debug for HubAdvertisement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubAdvertisement")
            .field("fullname", &self.fullname)
            .finish_non_exhaustive()
    }
}

impl Drop for HubAdvertisement {
    /// Sends the "goodbye" (the record with a zero TTL) so that clients forget the hub
    /// now rather than when their cache expires. The daemon itself is stopped after
    /// this, when `responder` is dropped.
    fn drop(&mut self) {
        match self.responder.daemon.unregister(&self.fullname) {
            Ok(status) => {
                if status.recv_timeout(STOP_WAIT).is_err() {
                    warn!(name = %self.fullname, "the mDNS daemon did not confirm the withdrawal");
                }
            }
            Err(e) => {
                warn!(name = %self.fullname, error = %e, "cannot withdraw the mDNS announcement")
            }
        }
        info!(name = %self.fullname, "stopped announcing the hub");
    }
}

/// Listens for hubs on `interface` (all interfaces for `None`) for `timeout`, and
/// returns every hub heard that speaks `household.v1`.
///
/// It listens for the whole `timeout` rather than stopping at the first answer, because
/// a home may hold more than one household and the caller picks by `hh` or `ca`.
pub fn browse_hubs(interface: Option<&str>, timeout: Duration) -> Result<Vec<FoundHub>, MdnsError> {
    let responder = Responder::on(interface)?;
    let events = responder
        .daemon
        .browse(MDNS_SERVICE_TYPE)
        .map_err(MdnsError::Browse)?;
    let deadline = Instant::now() + timeout;
    let mut hubs = BTreeMap::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match events.recv_timeout(left) {
            Ok(ServiceEvent::ServiceResolved(service)) => match FoundHub::from_record(&service) {
                Some(hub) => {
                    debug!(name = %service.fullname, ?hub, "heard a hub");
                    hubs.insert(service.fullname.clone(), hub);
                }
                None => {
                    debug!(name = %service.fullname, "ignoring an announcement of another API")
                }
            },
            Ok(ServiceEvent::ServiceRemoved(_, fullname)) => {
                hubs.remove(&fullname);
            }
            Ok(_) => {}
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
        }
    }
    if let Err(e) = responder.daemon.stop_browse(MDNS_SERVICE_TYPE) {
        debug!(error = %e, "cannot stop browsing; the daemon stops anyway");
    }
    Ok(hubs.into_values().collect())
}

/// The address (`IP:PORT`, IPv4 first) of the hub whose CA has the SHA-256
/// `ca_sha256_hex`, as announced on `interface` (all for `None`) within `timeout`.
///
/// The announcement is only a hint: whoever connects still checks the CA in the
/// hub's TLS chain against the same fingerprint.
pub fn find_hub(
    ca_sha256_hex: &str,
    interface: Option<&str>,
    timeout: Duration,
) -> Result<String, MdnsError> {
    let hubs = browse_hubs(interface, timeout)?;
    let heard = hubs.len();
    hubs.into_iter()
        .filter(|hub| hub.ca_sha256_hex.eq_ignore_ascii_case(ca_sha256_hex))
        .find_map(|hub| {
            let ip = hub
                .addresses
                .iter()
                .find(|a| a.is_ipv4())
                .or(hub.addresses.first())?;
            Some(std::net::SocketAddr::new(*ip, hub.port).to_string())
        })
        .ok_or(MdnsError::NoHub {
            heard,
            waited: timeout,
        })
}

impl FoundHub {
    /// Reads a resolved announcement; `None` if it lacks an entry or speaks another API.
    fn from_record(service: &ResolvedService) -> Option<FoundHub> {
        if service.get_property_val_str("api")? != API_VERSION {
            return None;
        }
        let mut addresses: Vec<IpAddr> = service
            .addresses
            .iter()
            .map(|scoped| scoped.to_ip_addr())
            .collect();
        addresses.sort();
        addresses.dedup();
        Some(FoundHub {
            addresses,
            port: service.port,
            household_id: service.get_property_val_str("hh")?.to_owned(),
            ca_sha256_hex: service.get_property_val_str("ca")?.to_owned(),
        })
    }
}

/// An mDNS daemon (a thread of mdns-sd's) limited to one interface or none, and shut
/// down when dropped, so that no announcement or browse leaves a thread behind.
struct Responder {
    daemon: ServiceDaemon,
}

impl Responder {
    /// Starts a daemon on `interface` alone, or on every interface for `None`.
    fn on(interface: Option<&str>) -> Result<Responder, MdnsError> {
        if let Some(name) = interface {
            check_interface_exists(name)?;
        }
        let responder = Responder {
            daemon: ServiceDaemon::new().map_err(MdnsError::Daemon)?,
        };
        if let Some(name) = interface {
            // Selections apply in order: first nothing, then the one interface.
            responder
                .daemon
                .disable_interface(IfKind::All)
                .and_then(|()| {
                    responder
                        .daemon
                        .enable_interface(IfKind::Name(name.to_owned()))
                })
                .map_err(MdnsError::Daemon)?;
        }
        Ok(responder)
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        match self.daemon.shutdown() {
            Ok(status) => {
                if status.recv_timeout(STOP_WAIT).is_err() {
                    warn!("the mDNS daemon did not stop in time; leaving it to exit on its own");
                }
            }
            Err(mdns_sd::Error::DaemonShutdown) => {}
            Err(e) => warn!(error = %e, "cannot stop the mDNS daemon"),
        }
    }
}

/// mdns-sd silently announces nowhere when the interface named does not exist; a typo
/// in the configuration should be an error at start instead.
fn check_interface_exists(name: &str) -> Result<(), MdnsError> {
    let unknown = || MdnsError::UnknownInterface(name.to_owned());
    let c_name = CString::new(name).map_err(|_| unknown())?;
    // SAFETY: `c_name` is a valid NUL-terminated string that outlives the call;
    // if_nametoindex only reads it.
    let index = unsafe { libc::if_nametoindex(c_name.as_ptr()) };
    if index == 0 { Err(unknown()) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    //! The one test announces on `lo` and browses on `lo`, inside a network namespace
    //! it makes for itself. Never on the host's own interfaces: mdns-sd joins the mDNS
    //! group on every interface while it starts, and the host's `lo` is not multicast
    //! capable anyway (changing that would change the machine). Needs root for the
    //! namespace; without it the test says why and skips. As root, a namespace that
    //! cannot be set up fails the test, so that CI (which runs as root) cannot skip.

    use std::process::Command;

    use super::*;

    /// Set in the copy of this test that runs inside the namespace.
    const IN_NAMESPACE: &str = "HOUSEHOLD_HUB_MDNS_TEST_IN_NAMESPACE";
    const TEST_NAME: &str = "mdns::tests::a_hub_announced_on_lo_is_found_on_lo";
    const CA_SHA256_HEX: &str = "3b9f1c0d2e9a7b45c3a1d2e3f405162738495a6b7c8d9e0f1a2b3c4d5e6f7a8b";

    #[test]
    fn a_hub_announced_on_lo_is_found_on_lo() {
        if std::env::var_os(IN_NAMESPACE).is_some() {
            return announce_and_browse_on_lo();
        }
        if let Some(why) = not_root() {
            println!("skipped: the test's network namespace needs root ({why})");
            return;
        }
        let namespace =
            Namespace::create().unwrap_or_else(|e| panic!("cannot set up the namespace: {e}"));
        let run = Command::new("ip")
            .args(["netns", "exec", &namespace.name])
            .arg(std::env::current_exe().unwrap())
            .args(["--exact", TEST_NAME, "--nocapture", "--test-threads", "1"])
            .env(IN_NAMESPACE, "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&run.stdout);
        print!("{stdout}");
        assert!(
            run.status.success(),
            "the namespaced run failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&run.stderr)
        );
        assert!(stdout.contains("FOUND household-test"), "{stdout}");
    }

    /// The test proper, run inside the namespace.
    fn announce_and_browse_on_lo() {
        let spec = AdvertiseSpec {
            interface: Some("lo".to_owned()),
            instance_name: "Test hub".to_owned(),
            host_name: "hub-test.local.".to_owned(),
            port: 7443,
            household_id: "household-test".to_owned(),
            ca_sha256_hex: CA_SHA256_HEX.to_owned(),
        };
        let announcement = HubAdvertisement::start(&spec).unwrap();
        let hubs = browse_hubs(Some("lo"), Duration::from_secs(5)).unwrap();
        let stopping = Instant::now();
        announcement.stop();
        assert!(stopping.elapsed() < 2 * STOP_WAIT + Duration::from_secs(1));

        let [hub] = hubs.as_slice() else {
            panic!("expected one hub, heard {hubs:?}");
        };
        assert_eq!(hub.port, 7443);
        assert_eq!(hub.household_id, "household-test");
        assert_eq!(hub.ca_sha256_hex, CA_SHA256_HEX);
        assert!(
            hub.addresses.iter().all(|address| address.is_loopback()) && !hub.addresses.is_empty(),
            "{:?}",
            hub.addresses
        );
        println!("FOUND {} at {:?}", hub.household_id, hub.addresses);
    }

    #[test]
    fn an_unknown_interface_is_an_error() {
        let error = browse_hubs(Some("no-such-if0"), Duration::ZERO).unwrap_err();
        assert!(matches!(error, MdnsError::UnknownInterface(_)), "{error}");
    }

    /// Why this process is not root, or `None` if it is.
    fn not_root() -> Option<String> {
        // SAFETY: geteuid(2) takes nothing and cannot fail.
        let euid = unsafe { libc::geteuid() };
        (euid != 0).then(|| format!("running as uid {euid}"))
    }

    /// A network namespace with only `lo`, up and multicast capable. Removed on drop.
    struct Namespace {
        name: String,
    }

    impl Namespace {
        fn create() -> Result<Self, String> {
            let namespace = Namespace {
                name: format!("hh-mdns-{}", std::process::id()),
            };
            ip(&["netns", "add", &namespace.name])?;
            ip(&["-n", &namespace.name, "link", "set", "lo", "up"])?;
            ip(&[
                "-n",
                &namespace.name,
                "link",
                "set",
                "lo",
                "multicast",
                "on",
            ])?;
            Ok(namespace)
        }
    }

    impl Drop for Namespace {
        fn drop(&mut self) {
            let _ = ip(&["netns", "del", &self.name]);
        }
    }

    fn ip(args: &[&str]) -> Result<(), String> {
        let out = Command::new("ip")
            .args(args)
            .output()
            .map_err(|e| format!("ip: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "ip {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }
}
