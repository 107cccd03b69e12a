//! The hub's shared state, one [`Hub`] behind an `Arc` that every service holds: the
//! folded household, the log, the registry, the writer, the feed, the CA.

use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::Instant;

use household_proto::v1;
use jiff::Timestamp;
use tokio::sync::{broadcast, watch};

use crate::auth::Gate;
use crate::error::HubError;
use crate::feed::FeedItem;
use crate::household::Household;
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::sessions::Sessions;
use crate::shutdown::Shutdown;
use crate::store::EventStore;
use crate::trust::HouseholdCa;
use crate::writer::Writer;

/// Limits a hub enforces; the defaults suit a home.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Watch streams one guardian credential may hold open.
    pub watches_per_credential: usize,
    /// Idle time after which a Watch stream gets a heartbeat.
    pub watch_heartbeat: std::time::Duration,
    /// Idle time after which a Session stream gets a heartbeat.
    pub session_heartbeat: std::time::Duration,
    /// How long an issued client certificate is valid.
    pub certificate_validity: std::time::Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            watches_per_credential: 8,
            watch_heartbeat: std::time::Duration::from_secs(15),
            session_heartbeat: std::time::Duration::from_secs(10),
            certificate_validity: std::time::Duration::from_secs(365 * 24 * 3600),
        }
    }
}

/// Everything the services share.
pub struct Hub {
    pub household: Arc<RwLock<Household>>,
    pub store: Arc<EventStore>,
    pub registry: Arc<Registry>,
    pub writer: Writer,
    pub feed: broadcast::Sender<Arc<FeedItem>>,
    pub ca: HouseholdCa,
    pub gate: Arc<Gate>,
    pub metrics: Arc<Metrics>,
    pub sessions: Sessions,
    pub watchers: crate::service::watch::Watchers,
    pub limits: Limits,
    pub shutdown: Shutdown,
    /// Bumped whenever a credential is revoked, so open streams check theirs again.
    pub revocations: watch::Sender<u64>,
    pub started: Instant,
    pub household_id: String,
    pub data_dir: std::path::PathBuf,
    /// The child agents heard on the network (memory only).
    pub network: crate::network::Network,
    /// Guardians' adoptions waiting for their agents.
    pub adoptions: crate::adoption::Adoptions,
}

impl Hub {
    /// Read access to the folded household.
    pub fn read(&self) -> RwLockReadGuard<'_, Household> {
        self.household.read().unwrap_or_else(|p| p.into_inner())
    }

    /// A child's status now, or NOT_FOUND.
    pub fn child_status(&self, child_id: &str) -> Result<v1::ChildStatus, HubError> {
        self.read()
            .child_status(child_id, Timestamp::now())
            .ok_or_else(|| HubError::no_child(child_id))
    }

    /// Tells open streams that some credential was revoked.
    pub fn revoked(&self) {
        self.revocations.send_modify(|n| *n += 1);
    }

    /// Whether a credential still admits its holder (for streams that outlive a check).
    pub fn still_trusted(&self, credential_id: &str) -> bool {
        matches!(
            self.registry
                .authenticate(credential_id, Timestamp::now().as_microsecond()),
            Ok(Some(_))
        )
    }
}
