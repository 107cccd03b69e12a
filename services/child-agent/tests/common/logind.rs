//! A stand-in for systemd-logind on a private D-Bus bus that the test
//! starts (`dbus-daemon --session`) and stops: the sessions a test sets up,
//! `ListSessions`, the session properties the agent reads, and `Lock`,
//! which sets `LockedHint` (as a desktop's lock screen does) and is counted.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use zbus::zvariant::OwnedObjectPath;

/// One session as the stand-in reports it.
#[derive(Debug, Clone)]
pub struct FakeSession {
    pub id: String,
    pub uid: u32,
    pub active: bool,
    pub locked: bool,
    pub idle: bool,
    pub remote: bool,
    pub class: String,
    /// How often `Lock` was called on it.
    pub lock_calls: u32,
    /// `Lock` answers with an error (as logind does when not allowed).
    pub lock_fails: bool,
}

impl FakeSession {
    /// A local, active, unlocked user session of `uid`.
    pub fn active(id: &str, uid: u32) -> Self {
        Self {
            id: id.into(),
            uid,
            active: true,
            locked: false,
            idle: false,
            remote: false,
            class: "user".into(),
            lock_calls: 0,
            lock_fails: false,
        }
    }

    fn path(&self) -> OwnedObjectPath {
        OwnedObjectPath::try_from(format!("/org/freedesktop/login1/session/{}", self.id)).unwrap()
    }
}

type Sessions = Arc<Mutex<Vec<FakeSession>>>;

struct Manager {
    sessions: Sessions,
}

#[zbus::interface(name = "org.freedesktop.login1.Manager")]
impl Manager {
    fn list_sessions(&self) -> Vec<(String, u32, String, String, OwnedObjectPath)> {
        let sessions = self.sessions.lock().unwrap();
        sessions
            .iter()
            .map(|s| {
                (
                    s.id.clone(),
                    s.uid,
                    format!("user{}", s.uid),
                    "seat0".into(),
                    s.path(),
                )
            })
            .collect()
    }
}

struct SessionObject {
    id: String,
    sessions: Sessions,
}

impl SessionObject {
    fn with<T>(&self, f: impl FnOnce(&mut FakeSession) -> T) -> T {
        let mut sessions = self.sessions.lock().unwrap();
        let session = sessions.iter_mut().find(|s| s.id == self.id).unwrap();
        f(session)
    }
}

#[zbus::interface(name = "org.freedesktop.login1.Session")]
impl SessionObject {
    fn lock(&self) -> zbus::fdo::Result<()> {
        self.with(|s| {
            s.lock_calls += 1;
            if s.lock_fails {
                return Err(zbus::fdo::Error::AccessDenied("not allowed".into()));
            }
            s.locked = true;
            Ok(())
        })
    }

    #[zbus(property)]
    fn active(&self) -> bool {
        self.with(|s| s.active)
    }

    #[zbus(property)]
    fn locked_hint(&self) -> bool {
        self.with(|s| s.locked)
    }

    #[zbus(property)]
    fn idle_hint(&self) -> bool {
        self.with(|s| s.idle)
    }

    #[zbus(property)]
    fn remote(&self) -> bool {
        self.with(|s| s.remote)
    }

    #[zbus(property)]
    fn class(&self) -> String {
        self.with(|s| s.class.clone())
    }
}

/// The private bus and the stand-in on it; both end when this is dropped.
pub struct Logind {
    pub address: String,
    pub sessions: Sessions,
    bus: Child,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Logind {
    /// Starts a bus and the stand-in with `sessions`. `Err` says why it
    /// cannot run here (no dbus-daemon), for the test to print and skip.
    pub fn start(sessions: Vec<FakeSession>) -> Result<Self, String> {
        let mut bus = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .arg("--address=unix:tmpdir=/tmp")
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start dbus-daemon: {e}"))?;
        let mut line = String::new();
        BufReader::new(bus.stdout.take().unwrap())
            .read_line(&mut line)
            .map_err(|e| format!("dbus-daemon printed no address: {e}"))?;
        let address = line.trim().to_owned();
        let sessions: Sessions = Arc::new(Mutex::new(sessions));
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = {
            let (address, sessions) = (address.clone(), sessions.clone());
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async move {
                    let connection = serve(&address, sessions).await;
                    ready_tx.send(connection.is_ok()).unwrap();
                    let _ = stopped.await;
                    drop(connection);
                });
            })
        };
        let ready = ready_rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .unwrap_or(false);
        let logind = Self {
            address,
            sessions,
            bus,
            stop: Some(stop),
            thread: Some(thread),
        };
        assert!(
            ready,
            "the stand-in logind could not take its name on the bus"
        );
        Ok(logind)
    }

    /// Changes the session `id`.
    pub fn set(&self, id: &str, f: impl FnOnce(&mut FakeSession)) {
        let mut sessions = self.sessions.lock().unwrap();
        f(sessions.iter_mut().find(|s| s.id == id).unwrap());
    }

    pub fn get(&self, id: &str) -> FakeSession {
        let sessions = self.sessions.lock().unwrap();
        sessions.iter().find(|s| s.id == id).unwrap().clone()
    }
}

async fn serve(address: &str, sessions: Sessions) -> zbus::Result<zbus::Connection> {
    let mut builder = zbus::connection::Builder::address(address)?
        .name("org.freedesktop.login1")?
        .serve_at(
            "/org/freedesktop/login1",
            Manager {
                sessions: sessions.clone(),
            },
        )?;
    let ids: Vec<(String, OwnedObjectPath)> = sessions
        .lock()
        .unwrap()
        .iter()
        .map(|s| (s.id.clone(), s.path()))
        .collect();
    for (id, path) in ids {
        builder = builder.serve_at(
            path,
            SessionObject {
                id,
                sessions: sessions.clone(),
            },
        )?;
    }
    builder.build().await
}

impl Drop for Logind {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = self.bus.kill();
        let _ = self.bus.wait();
    }
}
