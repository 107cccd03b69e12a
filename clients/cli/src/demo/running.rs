//! The hub and the child agents the demo runs inside this process, and their stopping.
//!
//! [`Running`] owns every task it starts from the moment it starts it, so however the
//! demo ends (the watch left, Ctrl-C in the middle of the start-up, a part failing),
//! [`Running::stop`] stops the agents first (each saves its last use), then the hub,
//! and waits for them before the directory they live in is removed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use child_agent::config::AgentConfig;
use household_hub::config::{ServeArgs, ServeConfig};
use tokio::sync::{oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};

/// How long the agents, and then the hub, may take to stop.
const STOP_WITHIN: Duration = Duration::from_secs(10);

/// The hub as the rest of the demo reaches it.
pub struct HubAddress {
    /// `127.0.0.1:PORT`, for `--hub`.
    pub address: String,
    pub admin_socket: PathBuf,
}

/// Everything the demo started and has not stopped yet.
pub struct Running {
    hub: Option<HubTask>,
    agents: JoinSet<anyhow::Result<()>>,
    stop_agents: watch::Sender<bool>,
}

struct HubTask {
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Default for Running {
    fn default() -> Running {
        Running {
            hub: None,
            agents: JoinSet::new(),
            stop_agents: watch::Sender::new(false),
        }
    }
}

impl Running {
    /// Starts a hub with its data in `data_dir`, listening on 127.0.0.1 on a port the
    /// system picks, without mDNS and without polling legacy devices; returns once it
    /// serves.
    pub async fn start_hub(&mut self, data_dir: &Path) -> anyhow::Result<HubAddress> {
        let config = ServeConfig::resolve(ServeArgs {
            data_dir: Some(data_dir.to_owned()),
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            no_mdns: true,
            legacy_poll: Some(0),
            ..ServeArgs::default()
        })?;
        let admin_socket = config.admin_socket.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let (serving, listening) = oneshot::channel();
        let task = tokio::spawn(household_hub::serve::serve_until(
            config,
            async {
                // Told to stop, or the demo is gone: either way, stop.
                let _ = stopped.await;
                Ok(())
            },
            move |address| {
                let _ = serving.send(address);
            },
        ));
        let hub = self.hub.insert(HubTask { stop, task });
        match listening.await {
            Ok(address) => Ok(HubAddress {
                address: address.to_string(),
                admin_socket,
            }),
            // It ended before it served: say why.
            Err(_) => Err(ended("the hub", (&mut hub.task).await)),
        }
    }

    /// Starts a child agent; it runs until [`Running::stop`].
    pub fn start_agent(&mut self, config: AgentConfig) {
        let mut stop = self.stop_agents.subscribe();
        self.agents
            .spawn(child_agent::run::run_until(config, async move {
                let _ = stop.wait_for(|stop| *stop).await;
                Ok(())
            }));
    }

    /// Waits until a part stops by itself, which it should not: why it did.
    pub async fn failed(&mut self) -> anyhow::Error {
        let Running { hub, agents, .. } = self;
        let agent = async {
            match agents.join_next().await {
                Some(ended_agent) => ended("a child agent", ended_agent),
                None => std::future::pending().await,
            }
        };
        let hub = async {
            match hub {
                Some(running) => {
                    let ended_hub = (&mut running.task).await;
                    *hub = None;
                    ended("the hub", ended_hub)
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            err = agent => err,
            err = hub => err,
        }
    }

    /// Stops the agents, then the hub, and waits for them; the first thing that went
    /// wrong, if anything did.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let mut outcome = Ok(());
        self.stop_agents.send_replace(true);
        let agents = async {
            let mut first_error = Ok(());
            while let Some(ended_agent) = self.agents.join_next().await {
                if let Err(err) = ended_agent
                    .context("a child agent panicked")
                    .and_then(|stopped| stopped.context("a child agent"))
                {
                    tracing::error!("{err:#}");
                    first_error = first_error.and(Err(err));
                }
            }
            first_error
        };
        match tokio::time::timeout(STOP_WITHIN, agents).await {
            Ok(stopped) => outcome = outcome.and(stopped),
            Err(_) => {
                self.agents.abort_all();
                outcome = outcome.and(Err(anyhow!("the child agents did not stop in time")));
            }
        }
        if let Some(mut hub) = self.hub.take() {
            let _ = hub.stop.send(());
            match tokio::time::timeout(STOP_WITHIN, &mut hub.task).await {
                Ok(stopped) => {
                    outcome = outcome.and(
                        stopped
                            .context("the hub panicked")
                            .and_then(|stopped| stopped.context("the hub")),
                    )
                }
                Err(_) => {
                    hub.task.abort();
                    outcome = outcome.and(Err(anyhow!("the hub did not stop in time")));
                }
            }
        }
        outcome
    }
}

/// A task that ended while it should have run on, as an error saying why.
fn ended(what: &str, result: Result<anyhow::Result<()>, tokio::task::JoinError>) -> anyhow::Error {
    match result {
        Ok(Ok(())) => anyhow!("{what} stopped by itself"),
        Ok(Err(err)) => err.context(format!("{what} stopped")),
        Err(err) => anyhow!("{what} panicked: {err}"),
    }
}
