//! `child-agent run`: wires the store, the agent, the meter loop, the
//! enforcer, the control socket and the legacy responder, and stops them
//! all on SIGTERM.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use household_core::Policy;
use tokio::task::JoinSet;

use crate::agent::Agent;
use crate::clock::Reading;
use crate::config::AgentConfig;
use crate::shutdown::{self, Shutdown};
use crate::source::UsageSource;
use crate::store::{KEEP_EVENTS_DAYS, Store};
use crate::{control, enforcer, legacy, policy};

/// How often the usage source is sampled and the state re-evaluated.
const TICK: Duration = Duration::from_millis(250);

pub async fn run(config: AgentConfig) -> anyhow::Result<()> {
    tracing::info!("configuration:\n{config}");
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data_dir {}", config.data_dir.display()))?;
    let policy = policy::load(config.policy.as_deref())?;
    let (data_dir, speed) = (config.data_dir.clone(), config.speed);
    let agent =
        Arc::new(tokio::task::spawn_blocking(move || open(&data_dir, policy, speed)).await??);
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
    let closing = agent.clone();
    tokio::task::spawn_blocking(move || closing.close())
        .await?
        .context("cannot save the last usage")?;
    tracing::info!("child agent stopped");
    outcome
}

/// Opens the store and the agent, and prunes events past
/// [`KEEP_EVENTS_DAYS`]. Blocking: disk.
fn open(data_dir: &Path, policy: Policy, speed: f64) -> anyhow::Result<Agent> {
    let store = Store::open(data_dir)?;
    store.save_policy(&policy)?;
    let agent = Agent::open(store, policy, speed, Reading::now())?;
    let pruned = agent.prune_events(KEEP_EVENTS_DAYS)?;
    if pruned > 0 {
        tracing::info!(
            pruned,
            "events older than {KEEP_EVENTS_DAYS} days removed from the store"
        );
    }
    Ok(agent)
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
        // Off the runtime: the tick may flush to disk, or wait for a legacy
        // command that does. A failed write is logged and retried on the
        // next tick; measuring and enforcing go on meanwhile.
        let ticking = agent.clone();
        match tokio::task::spawn_blocking(move || ticking.tick(active, Reading::now())).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "cannot record usage"),
            Err(e) => tracing::error!(error = %e, "meter tick failed"),
        }
    }
}
