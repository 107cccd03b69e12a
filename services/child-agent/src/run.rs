//! `child-agent run`: wires the store, the agent, the meter loop, the
//! enforcer, the control socket and the legacy responder, and stops them
//! all on SIGTERM.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::task::JoinSet;

use crate::agent::Agent;
use crate::clock::Reading;
use crate::config::AgentConfig;
use crate::shutdown::{self, Shutdown};
use crate::source::UsageSource;
use crate::store::Store;
use crate::{control, enforcer, legacy, policy};

/// How often the usage source is sampled and the state re-evaluated.
const TICK: Duration = Duration::from_millis(250);

pub async fn run(config: AgentConfig) -> anyhow::Result<()> {
    tracing::info!("configuration:\n{config}");
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data_dir {}", config.data_dir.display()))?;
    let policy = policy::load(config.policy.as_deref())?;
    let store = Store::open(&config.data_dir)?;
    store.save_policy(&policy)?;
    let agent = Arc::new(Agent::open(store, policy, config.speed, Reading::now())?);
    tracing::info!(device_id = agent.device_id(), "child agent started");

    let shutdown = Shutdown::new();
    let mut tasks: JoinSet<anyhow::Result<()>> = JoinSet::new();
    // The enforcer subscribes before the meter can change the state; it
    // acts on the state the agent opened in (already waiting) at once.
    let (hooks, transitions, stop) = (
        config.hooks.clone(),
        agent.transitions(),
        shutdown.subscribe(),
    );
    tasks.spawn(async move {
        enforcer::run(hooks, transitions, stop).await;
        Ok(())
    });
    let source = UsageSource::new(config.usage_source, config.usage_command.clone());
    tasks.spawn(meter_loop(agent.clone(), source, shutdown.subscribe()));
    let (control_agent, data_dir, stop) =
        (agent.clone(), config.data_dir.clone(), shutdown.subscribe());
    tasks.spawn(async move { Ok(control::serve(control_agent, &data_dir, stop).await?) });
    if let Some(responder) = legacy::bind(&config, agent.clone()).await? {
        let stop = shutdown.subscribe();
        tasks.spawn(async move { responder.serve(stop).await });
    }

    let outcome = tokio::select! {
        signalled = shutdown::signalled() => signalled.context("cannot listen for signals"),
        Some(ended) = tasks.join_next() => match ended {
            Ok(Ok(())) => Err(anyhow::anyhow!("a task of the agent stopped unexpectedly")),
            Ok(Err(e)) => Err(e),
            Err(e) => Err(e.into()),
        },
    };
    shutdown.trigger();
    while let Some(ended) = tasks.join_next().await {
        if let Ok(Err(e)) = ended {
            tracing::warn!(error = %e, "task ended with an error while stopping");
        }
    }
    agent.close().context("cannot save the last usage")?;
    tracing::info!("child agent stopped");
    outcome
}

/// Samples the usage source every [`TICK`] and feeds the agent.
async fn meter_loop(
    agent: Arc<Agent>,
    source: UsageSource,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut ticks = tokio::time::interval(TICK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut source_failing = false;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutdown::stopped(&mut shutdown) => return Ok(()),
        }
        let active = match source.is_active().await {
            Ok(active) => {
                source_failing = false;
                active
            }
            Err(e) => {
                if !source_failing {
                    tracing::warn!(error = %e, "usage source failed; counting the device as idle");
                }
                source_failing = true;
                false
            }
        };
        // A failed write is logged and retried on the next tick; measuring
        // and enforcing go on meanwhile.
        if let Err(e) = agent.tick(active, Reading::now()) {
            tracing::error!(error = %e, "cannot record usage");
        }
    }
}
