//! systemd-logind over D-Bus on the system bus: the child's sessions, whether
//! one is in use, and locking them.
//!
//! Only the sessions of the child's user (`--child-user`) are looked at.
//! Each question is one `ListSessions` call and one `GetAll` per session of
//! the child, each bounded by [`CALL_TIMEOUT`]; no process is spawned. The
//! bus is the one `DBUS_SYSTEM_BUS_ADDRESS` names, else the standard
//! `/run/dbus/system_bus_socket`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;

use zbus::Connection;
use zbus::zvariant::{OwnedObjectPath, OwnedValue};

const DESTINATION: &str = "org.freedesktop.login1";
const MANAGER_PATH: &str = "/org/freedesktop/login1";
const MANAGER: &str = "org.freedesktop.login1.Manager";
const SESSION: &str = "org.freedesktop.login1.Session";
const PROPERTIES: &str = "org.freedesktop.DBus.Properties";

/// Longest wait for the bus or for one answer from logind.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// Why logind could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum LogindError {
    #[error("cannot reach the system bus: {0}")]
    Connect(zbus::Error),
    #[error("logind {method}: {source}")]
    Call {
        method: &'static str,
        source: zbus::Error,
    },
    #[error("logind did not answer {method} within {CALL_TIMEOUT:?}")]
    Timeout { method: &'static str },
    #[error("logind's {method} answer has an unexpected shape: {message}")]
    Shape {
        method: &'static str,
        message: String,
    },
}

/// One of the child's sessions, as logind describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: String,
    pub path: OwnedObjectPath,
    pub active: bool,
    /// `LockedHint`: the session's screen is locked.
    pub locked: bool,
    /// `IdleHint`: the desktop says nobody touched it for a while (read for
    /// the log; see [`Session::in_use`]).
    pub idle: bool,
    pub remote: bool,
    /// `user`, `greeter`, `lock-screen`, …
    pub class: String,
}

impl Session {
    /// Someone can use it: a local user session in the foreground, not
    /// locked. `IdleHint` is not believed: many desktops never set it, and
    /// the session's owner — the child — may set it at will; an unattended
    /// desktop counts until its screen locks.
    pub fn in_use(&self) -> bool {
        self.active && !self.locked && !self.remote && self.class == "user"
    }
}

/// logind, for one child's user. The bus connection is made at first use
/// and made again after a call fails — so an agent started before the bus,
/// or one whose bus restarted, carries on once the bus is there.
#[derive(Debug, Clone)]
pub struct Logind {
    connection: Arc<Mutex<Option<Connection>>>,
    uid: u32,
}

impl Logind {
    pub fn new(uid: u32) -> Self {
        Self {
            connection: Arc::default(),
            uid,
        }
    }

    /// Whether logind answers now.
    pub async fn check(&self) -> Result<(), LogindError> {
        self.list().await.map(|_| ())
    }

    async fn connection(&self) -> Result<Connection, LogindError> {
        let mut cached = self.connection.lock().await;
        if let Some(connection) = cached.as_ref() {
            return Ok(connection.clone());
        }
        let connection = tokio::time::timeout(CALL_TIMEOUT, Connection::system())
            .await
            .map_err(|_| LogindError::Timeout { method: "connect" })?
            .map_err(LogindError::Connect)?;
        *cached = Some(connection.clone());
        Ok(connection)
    }

    /// Drops the connection after a failed call; the next call connects anew.
    async fn forget_connection(&self) {
        *self.connection.lock().await = None;
    }

    /// The child's sessions, with their state.
    pub async fn child_sessions(&self) -> Result<Vec<Session>, LogindError> {
        let mut sessions = Vec::new();
        for (id, uid, _user, _seat, path) in self.list().await? {
            if uid != self.uid {
                continue;
            }
            let properties: HashMap<String, OwnedValue> = self
                .call(path.as_str(), PROPERTIES, "GetAll", &(SESSION,))
                .await?;
            let flag = |name: &str| {
                properties
                    .get(name)
                    .and_then(|v| bool::try_from(v).ok())
                    .unwrap_or(false)
            };
            let class = properties
                .get("Class")
                .and_then(|v| <&str>::try_from(v).ok())
                .unwrap_or_default()
                .to_owned();
            sessions.push(Session {
                active: flag("Active"),
                locked: flag("LockedHint"),
                idle: flag("IdleHint"),
                // A session whose locality is not known is not counted as local.
                remote: properties
                    .get("Remote")
                    .and_then(|v| bool::try_from(v).ok())
                    .unwrap_or(true),
                class,
                id,
                path,
            });
        }
        Ok(sessions)
    }

    /// Asks logind to lock `session` (its desktop shows the lock screen).
    pub async fn lock(&self, session: &Session) -> Result<(), LogindError> {
        self.call::<_, ()>(session.path.as_str(), SESSION, "Lock", &())
            .await
    }

    async fn list(
        &self,
    ) -> Result<Vec<(String, u32, String, String, OwnedObjectPath)>, LogindError> {
        self.call(MANAGER_PATH, MANAGER, "ListSessions", &()).await
    }

    async fn call<B, R>(
        &self,
        path: &str,
        interface: &str,
        method: &'static str,
        body: &B,
    ) -> Result<R, LogindError>
    where
        B: serde::Serialize + zbus::zvariant::DynamicType,
        R: for<'d> zbus::zvariant::DynamicDeserialize<'d>,
    {
        let connection = self.connection().await?;
        let reply = match tokio::time::timeout(
            CALL_TIMEOUT,
            connection.call_method(Some(DESTINATION), path, Some(interface), method, body),
        )
        .await
        {
            Ok(Ok(reply)) => reply,
            Ok(Err(source)) => {
                self.forget_connection().await;
                return Err(LogindError::Call { method, source });
            }
            Err(_) => {
                self.forget_connection().await;
                return Err(LogindError::Timeout { method });
            }
        };
        reply.body().deserialize().map_err(|e| LogindError::Shape {
            method,
            message: e.to_string(),
        })
    }
}
