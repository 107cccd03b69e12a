//! `child-agent run`: wires the store, the agent, the meter loop, the
//! enforcer, the control socket and the legacy responder, and stops them
//! all on SIGTERM.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::agent::Agent;
use crate::clock::Reading;
use crate::config::{AgentConfig, SessionLock, UsageSourceKind};
use crate::link::Enrollment;
use crate::logind::Logind;
use crate::session_lock::{self, LockOutcome};
use crate::shutdown::{self, Shutdown};
use crate::source::UsageSource;
use crate::{adopt, announce, control, enforcer, hub_session, legacy, open, peer, policy, store};

/// How often the usage source is sampled and the state re-evaluated.
const TICK: Duration = Duration::from_millis(250);
/// How long a run that ends to start again waits for the last use of its store.
const RELEASE_WAIT: Duration = Duration::from_secs(10);

pub async fn run(config: AgentConfig) -> anyhow::Result<()> {
    run_until(config, async {
        shutdown::signalled()
            .await
            .context("cannot listen for signals")
    })
    .await
}

/// [`run`], stopping when `stop` completes instead of on a signal: for a
/// program that runs agents of its own (the household demo).
///
/// An unenrolled agent that a guardian adopts ([`crate::adopt`]) stops everything
/// and starts again as an enrolled one, in the same process.
pub async fn run_until(
    config: AgentConfig,
    until: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    tracing::info!("configuration:\n{config}");
    let logind = enforcement_check(&config).await?;
    // Everything the agent creates is its own alone; the data directory is
    // reachable (for the control socket) but not listable by others.
    // SAFETY: umask(2) only sets the process's file mode mask.
    unsafe { libc::umask(0o077) };
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data_dir {}", config.data_dir.display()))?;
    let mut until = std::pin::pin!(until);
    let mut again = false;
    loop {
        match run_once(&config, logind.clone(), until.as_mut(), again).await? {
            Ended::Stopped => return Ok(()),
            Ended::Adopted => {
                tracing::info!("starting again as a device of the household that adopted it");
                again = true;
            }
        }
    }
}

/// Why [`run_once`] returned.
enum Ended {
    /// Asked to stop.
    Stopped,
    /// Adopted into a household: run again, enrolled.
    Adopted,
}

/// One run of the agent, enrolled or not, until `until` completes (or a guardian
/// adopts the device). `again`: the run after an adoption, which waits (at most
/// [`RELEASE_WAIT`]) for a `child-agent status` that read the store meanwhile.
async fn run_once(
    config: &AgentConfig,
    logind: Option<Logind>,
    mut until: std::pin::Pin<&mut impl std::future::Future<Output = anyhow::Result<()>>>,
    again: bool,
) -> anyhow::Result<Ended> {
    let enrollment = Enrollment::load(&config.data_dir)?;
    if enrollment.is_some() && config.speed != 1.0 {
        bail!(
            "speed must be 1 for an agent enrolled with a hub (got {}): the hub keeps real time",
            config.speed
        );
    }
    let deadline = std::time::Instant::now() + RELEASE_WAIT;
    let agent = loop {
        let (data_dir, speed) = (config.data_dir.clone(), config.speed);
        let hub = enrollment.as_ref().map(|e| e.hub.clone());
        let policy = policy::load(config.policy.as_deref());
        match tokio::task::spawn_blocking(move || open::open(&data_dir, policy, speed, hub)).await?
        {
            Ok(agent) => break Arc::new(agent),
            Err(e)
                if again
                    && std::time::Instant::now() < deadline
                    && e.downcast_ref::<store::StoreError>()
                        .is_some_and(store::StoreError::is_held) =>
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => return Err(e),
        }
    };
    store::secure(&config.data_dir).with_context(|| {
        format!(
            "cannot make the store in {} owner-only",
            config.data_dir.display()
        )
    })?;
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
    let lock_outcomes = watch::channel(LockOutcome::default()).0;
    let session_locker = match config.session_lock {
        SessionLock::Logind => logind.clone(),
        SessionLock::Off => None,
    };
    // A legacy LOCK_DEVICE is confirmed by the locker when there is one.
    let confirms = session_locker.is_some().then(|| lock_outcomes.subscribe());
    if let Some(logind) = session_locker {
        let (states, outcomes, stop) =
            (agent.states(), lock_outcomes.clone(), shutdown.subscribe());
        tasks.spawn(async move {
            session_lock::run(logind, states, outcomes, stop).await;
            Ok(())
        });
    }
    let source = match (config.usage_source, logind, config.usage_command.clone()) {
        (UsageSourceKind::Logind, Some(logind), _) => UsageSource::Logind(logind),
        (UsageSourceKind::Command, _, Some(command)) => UsageSource::Command(command),
        (UsageSourceKind::Simulated, _, _) => UsageSource::Simulated,
        (kind, _, _) => anyhow::bail!("usage source {kind:?} is not set up"),
    };
    tasks.spawn(meter_loop(agent.clone(), source, shutdown.subscribe()));
    let (control_agent, data_dir, stop) =
        (agent.clone(), config.data_dir.clone(), shutdown.subscribe());
    tasks.spawn(async move { Ok(control::serve(control_agent, &data_dir, stop).await?) });
    let (adopted_tx, mut adopted) = tokio::sync::mpsc::channel(1);
    let presence = match &enrollment {
        Some(enrollment) => {
            let key = household_client::adopt::key_sha256_hex(&enrollment.key_pem)
                .context("the enrollment's key cannot be read")?;
            announce::start(config, Some(enrollment), key)
                .await?
                .map(Arc::new)
        }
        None if announce::interface(config, None).is_some() => {
            let (data_dir, host_name) = (config.data_dir.clone(), config.host_name.clone());
            let key = tokio::task::spawn_blocking(move || {
                adopt::AdoptionKey::load_or_create(&data_dir, &host_name)
            })
            .await??;
            let presence = announce::start(config, None, key.key_sha256_hex.clone())
                .await?
                .map(Arc::new);
            if let Some(presence) = &presence {
                tasks.spawn(adopt::run(
                    agent.clone(),
                    presence.clone(),
                    key,
                    adopt::Settings {
                        data_dir: config.data_dir.clone(),
                        host_name: config.host_name.clone(),
                        poll: config.adopt_poll,
                        mdns_interface: announce::interface(config, None).flatten(),
                    },
                    adopted_tx,
                    shutdown.subscribe(),
                ));
            }
            presence
        }
        None => None,
    };
    match enrollment {
        Some(enrollment) => {
            tracing::info!(hub = %enrollment.hub, device = %enrollment.device_name, "enrolled; keeping a session with the hub");
            tasks.spawn(hub_session::run(
                agent.clone(),
                enrollment,
                shutdown.subscribe(),
            ));
        }
        None => tracing::info!("not enrolled with a hub: enforcing on its own"),
    }
    if let Some(responder) = legacy::bind(config, agent.clone(), confirms).await? {
        let stop = shutdown.subscribe();
        tasks.spawn(async move { responder.serve(stop).await });
    }

    let outcome = tokio::select! {
        stopped = &mut until => stopped.map(|()| Ended::Stopped),
        Some(()) = adopted.recv() => Ok(Ended::Adopted),
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
    // Withdraws the announcement (a goodbye hubs hear at once); blocks briefly.
    if let Some(presence) = presence {
        tokio::task::spawn_blocking(move || drop(presence)).await?;
    }
    let closing = agent.clone();
    tokio::task::spawn_blocking(move || closing.close())
        .await?
        .context("cannot save the last usage")?;
    tracing::info!("child agent stopped");
    if let Ok(Ended::Adopted) = outcome {
        // The next run opens the store again, which it can only once nothing holds
        // this one: a control request still being answered on the blocking pool may.
        release(agent).await?;
    }
    outcome
}

/// Waits (at most [`RELEASE_WAIT`]) until `agent` is its last holder, and closes its
/// store by dropping it.
async fn release(mut agent: Arc<Agent>) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + RELEASE_WAIT;
    loop {
        match Arc::try_unwrap(agent) {
            Ok(alone) => {
                tokio::task::spawn_blocking(move || drop(alone)).await?;
                return Ok(());
            }
            Err(shared) if std::time::Instant::now() < deadline => {
                agent = shared;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(_) => bail!(
                "the store is still in use {RELEASE_WAIT:?} after stopping; start the agent \
                 again (it is enrolled now)"
            ),
        }
    }
}

/// Checks, before anything is created, that the run can do what it is for:
/// the child's user exists, and a real run has a way to lock the device
/// (logind answering, or an `--on-lock` hook) unless `--no-enforce` says
/// otherwise. Returns logind for the child's user when the run uses it.
async fn enforcement_check(config: &AgentConfig) -> anyhow::Result<Option<Logind>> {
    let logind = match &config.child_user {
        Some(name) => {
            let Some(uid) = peer::user_id(name) else {
                bail!("child_user {name:?}: no such user on this device");
            };
            let uses_logind = config.usage_source == UsageSourceKind::Logind
                || config.session_lock == SessionLock::Logind;
            uses_logind.then(|| Logind::new(uid))
        }
        None => None,
    };
    if config.is_simulated() {
        tracing::warn!(
            "usage is simulated (--usage-source simulated or --speed): this run measures no \
             real use{}",
            if config.session_lock == SessionLock::Logind {
                ""
            } else {
                " and locks nothing real (hooks still run)"
            }
        );
        return Ok(logind);
    }
    let logind_locks = match (&logind, config.session_lock) {
        (Some(logind), SessionLock::Logind) => match logind.check().await {
            Ok(()) => Ok(()),
            Err(e) => Err(e.to_string()),
        },
        _ => Err("session_lock is off".to_owned()),
    };
    match (logind_locks, &config.hooks.on_lock) {
        (Ok(()), _) => {}
        (Err(why), Some(_)) => {
            if config.session_lock == SessionLock::Logind {
                tracing::error!(%why, "cannot lock through logind; the on_lock hook locks");
            }
        }
        (Err(why), None) if config.no_enforce => {
            tracing::warn!(%why, "no_enforce: this run meters but locks nothing");
        }
        (Err(why), None) => bail!(
            "nothing can lock this device ({why}) and no --on-lock hook is given; \
             fix logind (or give --on-lock CMD), or run with --no-enforce to meter without locking"
        ),
    }
    Ok(logind)
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
        // A source that cannot answer counts as use: failing closed, the
        // day runs on while nobody can tell, and `status` says why.
        let active = match source.is_active().await {
            Ok(active) => {
                if source_failing {
                    tracing::warn!("usage source answers again");
                    report_source(&agent, None).await;
                }
                source_failing = false;
                active
            }
            Err(e) => {
                if !source_failing {
                    tracing::error!(error = %e, "usage source failed; counting the device as in use");
                    report_source(&agent, Some(e.to_string())).await;
                }
                source_failing = true;
                true
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

async fn report_source(agent: &Arc<Agent>, error: Option<String>) {
    let agent = agent.clone();
    if let Ok(Err(e)) = tokio::task::spawn_blocking(move || agent.set_source_error(error)).await {
        tracing::error!(error = %e, "cannot note the usage source's health");
    }
}
