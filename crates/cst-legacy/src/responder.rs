//! The child's side: a UDP responder that answers discovery and sealed
//! commands, as the Android child app does, with hardening that keeps real
//! parent apps working.
//!
//! Per datagram, cheapest checks first: size, per-source rate limit, mode,
//! discovery, `CST_CMD:` prefix, opening the seal (failure: dropped
//! silently, as the Android child does), the replay window (keyed on the
//! decoded `IV ‖ ciphertext`, so re-wrapping a capture does not get it past),
//! parsing, and only then the [`Handler`]. Replies go to the request's source address and port.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::Instant;

pub use crate::guard::Digest;
use crate::guard::{GlobalRate, RateLimit, ReplayWindow};
use crate::message::{
    COMMAND_PREFIX, Command, DISCOVERY, DISCOVERY_REPLY, ErrorReply, MAX_DATAGRAM, REPLY_PREFIX,
    Reply,
};
use crate::seal::Key;

/// How much of the protocol the responder answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Discovery and every command.
    Full,
    /// Discovery and `GET_TIME_LEFT`. `LOCK_DEVICE` and `EXTEND_TIME` are
    /// answered with the protocol's failure replies, so the parent app shows
    /// a failure instead of waiting for a timeout.
    ReadOnly,
    /// Nothing is answered.
    Off,
}

/// What runs a command. The agent implements it with its live status.
///
/// The responder awaits each call before it reads the next datagram, so
/// calls come one at a time, in arrival order. Both methods return futures:
/// a handler whose work blocks (disk, a lock shared with other threads) must
/// move it off the runtime (e.g. `tokio::task::spawn_blocking`) and await it.
pub trait Handler: Send + Sync + 'static {
    /// Executes `command`, sent from `source`, and returns the reply.
    fn handle(&self, command: Command, source: SocketAddr) -> impl Future<Output = Reply> + Send;

    /// Whether commands from `source` may be carried out at all. A sealed
    /// command from a source it does not admit is answered with the
    /// command's failure reply and reported as [`Refusal::NotAdmitted`].
    /// The child agent admits no address of its own device, so a local user
    /// who learnt the key cannot grant themselves time. The default admits
    /// every source.
    fn admits(&self, source: SocketAddr) -> bool {
        let _ = source;
        true
    }

    /// Learns that a sealed command with `digest` was seen for the first
    /// time, before it is handled or refused: a handler that keeps the
    /// digests (see [`ResponderConfig::replay_seen`]) keeps the replay
    /// window across a restart. Calls come in arrival order; the default
    /// forgets.
    fn remember(&self, digest: Digest) -> impl Future<Output = ()> + Send {
        let _ = digest;
        async {}
    }

    /// Learns of a sealed command from `source` that opened (so it was
    /// sealed with this device's key) but was not executed; the reply has
    /// been decided already. Datagrams dropped before that point (oversized,
    /// rate-limited, undecryptable, replayed) are never reported: they stay
    /// cheap. The default ignores it.
    fn refused(&self, refusal: Refusal<'_>, source: SocketAddr) -> impl Future<Output = ()> + Send {
        let _ = (refusal, source);
        async {}
    }
}

/// Why a sealed command that opened was not executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal<'a> {
    /// A command the read-only mode does not run; answered with its failure
    /// reply.
    ReadOnly(Command),
    /// A text that is not a command; answered with `error`, as the Android
    /// child answers it.
    NotACommand { text: &'a str, error: ErrorReply },
    /// A command from a source the handler does not admit
    /// ([`Handler::admits`]); answered with the command's failure reply.
    NotAdmitted(Command),
}

impl Refusal<'_> {
    /// The reply the responder sends for it: for a command the read-only mode may not
    /// run, the failure reply the parent app already knows for that command.
    pub fn reply(&self) -> Reply {
        match self {
            Refusal::ReadOnly(Command::LockDevice) => Reply::LockFailed,
            Refusal::ReadOnly(_) => Reply::Error(ErrorReply::ProcessingFailed),
            Refusal::NotACommand { error, .. } => Reply::Error(*error),
            Refusal::NotAdmitted(command) => command.failure_reply(),
        }
    }
}

/// Settings of a responder.
#[derive(Debug, Clone)]
pub struct ResponderConfig {
    pub key: Key,
    pub mode: Mode,
    /// A sealed command seen again within this window is not executed again.
    pub replay_window: Duration,
    /// Most sealed commands remembered for the replay window.
    pub replay_capacity: usize,
    /// Commands an earlier run saw, with how long ago: the window starts
    /// with them (see [`Handler::remember`]).
    pub replay_seen: Vec<(Digest, Duration)>,
    /// Datagrams per second each source address may send, after its burst.
    pub rate_per_second: f64,
    pub rate_burst: u32,
    /// Most source addresses tracked by the rate limit.
    pub rate_sources: usize,
    /// Datagrams per second from all sources together, after their burst.
    pub global_rate_per_second: f64,
    pub global_rate_burst: u32,
}

impl ResponderConfig {
    /// Defaults that no real parent app comes near: a tap sends one
    /// datagram; the limit is 5 per second per address after a burst of 20,
    /// and 20 per second from all addresses together after a burst of 40.
    pub fn new(key: Key, mode: Mode) -> Self {
        Self {
            key,
            mode,
            replay_window: Duration::from_secs(600),
            replay_capacity: 4096,
            replay_seen: Vec::new(),
            rate_per_second: 5.0,
            rate_burst: 20,
            rate_sources: 1024,
            global_rate_per_second: 20.0,
            global_rate_burst: 40,
        }
    }
}

/// What the responder did with the datagrams it received.
#[derive(Debug, Default)]
pub struct Counters {
    pub received: AtomicU64,
    pub replied: AtomicU64,
    pub discovery: AtomicU64,
    pub executed: AtomicU64,
    pub refused_read_only: AtomicU64,
    /// Sealed commands from a source the handler does not admit.
    pub refused_source: AtomicU64,
    /// Opened, but not a command (answered with an `ERROR|…` reply).
    pub rejected: AtomicU64,
    pub dropped_oversized: AtomicU64,
    pub dropped_rate_limited: AtomicU64,
    /// Dropped by the limit on all sources together.
    pub dropped_global_rate: AtomicU64,
    pub dropped_off: AtomicU64,
    pub dropped_unknown: AtomicU64,
    pub dropped_undecryptable: AtomicU64,
    pub dropped_replayed: AtomicU64,
    /// Replay entries forgotten before their window ended, to stay bounded.
    pub replay_evicted: AtomicU64,
}

impl Counters {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

pub struct Responder<H> {
    socket: UdpSocket,
    config: ResponderConfig,
    handler: Arc<H>,
    counters: Arc<Counters>,
}

impl<H: Handler> Responder<H> {
    /// Binds `address` with broadcast enabled (discovery arrives as a broadcast).
    pub async fn bind(
        address: SocketAddr,
        config: ResponderConfig,
        handler: Arc<H>,
    ) -> io::Result<Self> {
        let socket = UdpSocket::bind(address).await?;
        Self::from_socket(socket, config, handler)
    }

    pub fn from_socket(
        socket: UdpSocket,
        config: ResponderConfig,
        handler: Arc<H>,
    ) -> io::Result<Self> {
        socket.set_broadcast(true)?;
        Ok(Self {
            socket,
            config,
            handler,
            counters: Arc::default(),
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    pub fn counters(&self) -> Arc<Counters> {
        self.counters.clone()
    }

    /// Answers datagrams until `shutdown` resolves.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> io::Result<()> {
        let mut replays = ReplayWindow::new(self.config.replay_window, self.config.replay_capacity);
        replays.seed(&self.config.replay_seen, Instant::now());
        let mut rate = RateLimit::new(
            self.config.rate_per_second,
            self.config.rate_burst,
            self.config.rate_sources,
        );
        let mut global = GlobalRate::new(
            self.config.global_rate_per_second,
            self.config.global_rate_burst,
            Instant::now(),
        );
        // One byte more than the apps accept, to tell "too long" from "exactly 1024".
        let mut buffer = vec![0u8; MAX_DATAGRAM + 1];
        tokio::pin!(shutdown);
        loop {
            let (len, source) = tokio::select! {
                received = self.socket.recv_from(&mut buffer) => match received {
                    Ok(received) => received,
                    // ICMP errors from earlier replies surface here on some
                    // systems; they concern a peer, not this socket.
                    Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
                    Err(e) => return Err(e),
                },
                _ = &mut shutdown => return Ok(()),
            };
            let reply = self
                .answer(&buffer[..len], source, &mut replays, &mut rate, &mut global)
                .await;
            if let Some(reply) = reply {
                match self.socket.send_to(reply.as_bytes(), source).await {
                    Ok(_) => bump(&self.counters.replied),
                    Err(e) => tracing::debug!(%source, error = %e, "cannot send reply"),
                }
            }
        }
    }

    /// Decides what (if anything) to send back for one datagram.
    async fn answer(
        &self,
        datagram: &[u8],
        source: SocketAddr,
        replays: &mut ReplayWindow,
        rate: &mut RateLimit,
        global: &mut GlobalRate,
    ) -> Option<String> {
        let counters = &self.counters;
        bump(&counters.received);
        if datagram.len() > MAX_DATAGRAM {
            bump(&counters.dropped_oversized);
            return None;
        }
        let now = Instant::now();
        if !rate.allow(source.ip(), now) {
            bump(&counters.dropped_rate_limited);
            return None;
        }
        if !global.allow(now) {
            bump(&counters.dropped_global_rate);
            return None;
        }
        if self.config.mode == Mode::Off {
            bump(&counters.dropped_off);
            return None;
        }
        if datagram == DISCOVERY.as_bytes() {
            bump(&counters.discovery);
            return Some(DISCOVERY_REPLY.to_owned());
        }
        let Some(sealed) = datagram.strip_prefix(COMMAND_PREFIX.as_bytes()) else {
            bump(&counters.dropped_unknown);
            return None;
        };
        let Some((raw, text)) = std::str::from_utf8(sealed)
            .ok()
            .and_then(|sealed| crate::seal::decode(sealed).ok())
            .and_then(|raw| {
                let text = self.config.key.open_raw(&raw).ok()?;
                Some((raw, text))
            })
        else {
            bump(&counters.dropped_undecryptable);
            return None;
        };
        // Keyed on the decoded bytes, not the text: a capture re-wrapped,
        // with a newline dropped, a space added or the padding cut, is still
        // the same sealed command.
        let digest = crate::guard::digest(&raw);
        let (first, evicted) = replays.first_sight_of(digest, now);
        if evicted {
            bump(&counters.replay_evicted);
        }
        if !first {
            tracing::warn!(%source, "replayed legacy command dropped");
            bump(&counters.dropped_replayed);
            return None;
        }
        self.handler.remember(digest).await;
        let reply = match Command::parse(&text) {
            Err(error) => {
                bump(&counters.rejected);
                let refusal = Refusal::NotACommand { text: &text, error };
                let reply = refusal.reply();
                self.handler.refused(refusal, source).await;
                reply
            }
            Ok(command) if !self.handler.admits(source) => {
                bump(&counters.refused_source);
                let refusal = Refusal::NotAdmitted(command);
                let reply = refusal.reply();
                self.handler.refused(refusal, source).await;
                reply
            }
            Ok(command) if self.config.mode == Mode::ReadOnly && !command.is_read_only() => {
                bump(&counters.refused_read_only);
                let refusal = Refusal::ReadOnly(command);
                let reply = refusal.reply();
                self.handler.refused(refusal, source).await;
                reply
            }
            Ok(command) => {
                bump(&counters.executed);
                self.handler.handle(command, source).await
            }
        };
        Some(format!(
            "{REPLY_PREFIX}{}",
            self.config.key.seal(&reply.to_string())
        ))
    }
}
