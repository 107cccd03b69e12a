//! Stopping: one `watch` flag every long-running task of the hub listens to, set on
//! SIGTERM or Ctrl-C. Streams end with UNAVAILABLE when it flips.

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

/// Owns the stop flag.
#[derive(Debug)]
pub struct ShutdownSignal {
    sender: watch::Sender<bool>,
}

/// A task's view of the stop flag; cheap to clone.
#[derive(Debug, Clone)]
pub struct Shutdown {
    receiver: watch::Receiver<bool>,
}

impl Default for ShutdownSignal {
    fn default() -> Self {
        ShutdownSignal {
            sender: watch::channel(false).0,
        }
    }
}

impl ShutdownSignal {
    /// A receiver for one task.
    pub fn subscribe(&self) -> Shutdown {
        Shutdown {
            receiver: self.sender.subscribe(),
        }
    }

    /// Tells every task to stop.
    pub fn trigger(&self) {
        self.sender.send_replace(true);
    }
}

impl Shutdown {
    /// Resolves once the hub is stopping (or the signal's owner is gone).
    pub async fn wait(&mut self) {
        let _ = self.receiver.wait_for(|stop| *stop).await;
    }

    /// Whether the hub is stopping.
    pub fn is_stopping(&self) -> bool {
        *self.receiver.borrow()
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
