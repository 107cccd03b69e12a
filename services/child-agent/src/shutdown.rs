//! Stopping: one `watch` flag that every long-running task of the agent
//! listens to, set on SIGTERM or Ctrl-C.

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

/// Owns the stop flag; tasks hold receivers from [`Shutdown::subscribe`].
#[derive(Debug)]
pub struct Shutdown {
    sender: watch::Sender<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    pub fn new() -> Self {
        Self {
            sender: watch::channel(false).0,
        }
    }

    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.sender.subscribe()
    }

    /// Tells every subscriber to stop.
    pub fn trigger(&self) {
        self.sender.send_replace(true);
    }
}

/// Resolves on the first SIGTERM or SIGINT.
pub async fn signalled() -> std::io::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
    Ok(())
}

/// Resolves once `receiver` says stop (or its sender is gone).
pub async fn stopped(receiver: &mut watch::Receiver<bool>) {
    // An error means the sender was dropped, which also means stop.
    let _ = receiver.wait_for(|stop| *stop).await;
}
