//! `household-hub serve`: opens the data directory, folds the log, and runs the TLS
//! port (gRPC over HTTP/2 and gRPC-Web over HTTP/1.1 or HTTP/2), the admin socket,
//! mDNS, metrics and the clock until SIGTERM (or, in [`serve_until`], until its caller
//! says stop).
//!
//! Shutdown, in order: health goes NOT_SERVING, the stop flag ends every Watch and
//! Session with UNAVAILABLE, the servers drain, the writer finishes its queue and the
//! log is flushed and closed. The whole is bounded to a few seconds.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use household_proto::v1::{
    admin_server::AdminServer, agent_server::AgentServer, household_server::HouseholdServer,
};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{broadcast, watch};
use tokio_stream::wrappers::UnixListenerStream;
use tonic::transport::Server;

use crate::auth::{Gate, GateLayer, RateLimiter};
use crate::config::{Mdns, ServeConfig};
use crate::feed::FEED_CAPACITY;
use crate::hub::{Hub, Limits};
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::service::admin::AdminService;
use crate::service::agent::AgentService;
use crate::service::guardian::GuardianService;
use crate::sessions::Sessions;
use crate::shutdown::{ShutdownSignal, signalled};
use crate::snapshot::{SnapshotFile, SnapshotTaker};
use crate::store::EventStore;
use crate::trust::HouseholdCa;
use crate::web::SameOriginLayer;
use crate::web_assets::WebAssetsLayer;
use crate::writer::Writer;

/// Largest message the hub accepts (a policy with every exception is a few KiB).
const MAX_MESSAGE_BYTES: usize = 1 << 20;
/// Streams one HTTP/2 connection may hold open.
const MAX_STREAMS_PER_CONNECTION: u32 = 2048;
/// How long shutdown waits for streams and servers before it stops waiting.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(4);

/// Where things live in a data directory. A backup has the same layout, so
/// `serve --data-dir BACKUP` is the restore.
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// The layout under `root`.
    pub fn new(root: PathBuf) -> DataDir {
        DataDir { root }
    }

    /// The sled registry.
    pub fn registry(&self) -> PathBuf {
        self.root.join("registry")
    }

    /// The event log.
    pub fn log(&self) -> PathBuf {
        self.root.join("log")
    }

    /// The CA and server keys and certificates.
    pub fn tls(&self) -> PathBuf {
        self.root.join("tls")
    }

    /// The household's start-up snapshot.
    pub fn snapshot(&self) -> PathBuf {
        self.root.join("snapshot")
    }
}

/// Runs the hub until SIGTERM or SIGINT.
pub async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    serve_until(
        config,
        async { signalled().await.context("waiting for signals") },
        |local| println!("household hub serving on {local}"),
    )
    .await
}

/// [`serve`], stopping when `until` completes instead of on a signal, and handing the
/// address it listens on to `serving` once it does (port 0 picks a free one): for a
/// program that runs a hub of its own (the household demo). The hub stops the same way
/// whatever `until` returns, and then returns that.
pub async fn serve_until(
    config: ServeConfig,
    until: impl std::future::Future<Output = anyhow::Result<()>>,
    serving: impl FnOnce(SocketAddr),
) -> anyhow::Result<()> {
    tracing::info!(?config, "starting household hub");
    let hub_started = Instant::now();
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating {}", config.data_dir.display()))?;
    std::fs::set_permissions(&config.data_dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("making {} owner-only", config.data_dir.display()))?;
    let layout = DataDir::new(config.data_dir.clone());

    let ca = HouseholdCa::load_or_create(&layout.tls()).context("opening the household CA")?;
    let mut names = vec![config.advertise_host.clone()];
    if !config.listen.ip().is_unspecified() {
        names.push(config.listen.ip().to_string());
    }
    let server_cert = ca
        .server_identity(&layout.tls(), &names)
        .context("issuing the server certificate")?;
    let registry = Arc::new(Registry::open(&layout.registry()).context("opening the registry")?);
    let store = Arc::new(EventStore::open(&layout.log()).context("opening the event log")?);
    let metrics = Arc::new(Metrics::default());

    let fold_started = Instant::now();
    let snapshot_file = SnapshotFile::new(layout.snapshot());
    let (household, rebuilt) = snapshot_file
        .rebuild(&store)
        .context("folding the event log")?;
    let fold_seconds = fold_started.elapsed().as_secs_f64();
    metrics.rebuild_seconds.set(fold_seconds);
    metrics
        .rebuild_events
        .set(i64::try_from(rebuilt.events_folded).unwrap_or(i64::MAX));
    tracing::info!(
        last_seq = household.last_seq(),
        snapshot_seq = rebuilt.snapshot_seq,
        events_folded = rebuilt.events_folded,
        seconds = fold_seconds,
        "household rebuilt"
    );
    let snapshots = SnapshotTaker::start(snapshot_file, store.clone(), household.last_seq())
        .context("starting the snapshot thread")?;
    let household = Arc::new(RwLock::new(household));

    let (feed, _) = broadcast::channel(FEED_CAPACITY);
    let counter = metrics.events_appended.clone();
    let (writer, writer_thread) = Writer::start(
        household.clone(),
        store.clone(),
        feed.clone(),
        move |n| {
            counter.inc_by(n);
        },
        snapshots,
    )
    .context("starting the writer")?;
    mark_devices_offline(&writer).await?;
    let signal = ShutdownSignal::default();
    let gate = Arc::new(Gate {
        registry: registry.clone(),
        limiter: RateLimiter::new(
            config.rate_limit_per_second,
            (config.rate_limit_per_second * 2.0).max(1.0),
        ),
        metrics: metrics.clone(),
        last_used: Mutex::new(Default::default()),
    });
    let household_id = registry.household_id()?;
    let hub = Arc::new(Hub {
        household,
        store: store.clone(),
        registry: registry.clone(),
        writer,
        feed,
        ca,
        gate: gate.clone(),
        metrics: metrics.clone(),
        sessions: Sessions::default(),
        watchers: Default::default(),
        limits: Limits {
            watches_per_credential: config.max_watches,
            ..Limits::default()
        },
        shutdown: signal.subscribe(),
        revocations: watch::channel(0).0,
        started: hub_started,
        household_id: household_id.clone(),
        data_dir: config.data_dir.clone(),
        network: crate::network::Network::new(household_id.clone()),
        adoptions: Default::default(),
    });

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<HouseholdServer<GuardianService>>()
        .await;
    health_reporter
        .set_serving::<AgentServer<AgentService>>()
        .await;
    // Both reflection versions: v1 for current tools, v1alpha for the grpcurl that
    // distributions and PyPI still ship.
    let reflection = reflection_builder()
        .build_v1()
        .context("building the reflection service")?;
    let reflection_v1alpha = reflection_builder()
        .build_v1alpha()
        .context("building the reflection service")?;

    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let local = listener.local_addr()?;
    let tls = hub.ca.server_tls(&server_cert).context("configuring TLS")?;
    let mut stop = signal.subscribe();
    // Outermost first: browsers of other origins are turned away, the web app's pages
    // and files are answered, gRPC-Web is turned into gRPC, then the gate decides who
    // is calling (crate::web, crate::web_assets, crate::auth).
    let layers = tower::ServiceBuilder::new()
        .layer(SameOriginLayer)
        .layer(WebAssetsLayer::new(hub.ca.cert_pem()))
        .layer(tonic_web::GrpcWebLayer::new())
        .layer(GateLayer::new(gate))
        .into_inner();
    let tls_server = Server::builder()
        // HTTP/1.1 too, for gRPC-Web clients that cannot do HTTP/2.
        .accept_http1(true)
        .http2_keepalive_interval(Some(Duration::from_secs(20)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .max_concurrent_streams(Some(MAX_STREAMS_PER_CONNECTION))
        .layer(layers)
        .add_service(health_service.clone())
        .add_service(reflection)
        .add_service(reflection_v1alpha)
        .add_service(
            HouseholdServer::new(GuardianService::new(hub.clone()))
                .max_decoding_message_size(MAX_MESSAGE_BYTES),
        )
        .add_service(
            AgentServer::new(AgentService::new(hub.clone()))
                .max_decoding_message_size(MAX_MESSAGE_BYTES),
        )
        .serve_with_incoming_shutdown(crate::trust::tls::incoming(listener, tls), async move {
            stop.wait().await;
        });

    let admin_listener = bind_admin_socket(&config.admin_socket)?;
    let mut stop = signal.subscribe();
    let admin_reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(household_proto::FILE_DESCRIPTOR_SET)
        .with_service_name("household.v1.Admin")
        .build_v1alpha()
        .context("building the admin socket's reflection service")?;
    // Health here too, so a local check (`household-hub health`, a container's
    // HEALTHCHECK) needs neither TLS nor the household CA.
    let admin_server = Server::builder()
        .add_service(health_service)
        .add_service(admin_reflection)
        .add_service(AdminServer::new(AdminService::new(hub.clone())))
        .serve_with_incoming_shutdown(UnixListenerStream::new(admin_listener), async move {
            stop.wait().await;
        });

    let advertisement = match &config.mdns {
        Mdns::Off => None,
        mdns => {
            let spec = crate::mdns::AdvertiseSpec {
                interface: match mdns {
                    Mdns::Interface(name) => Some(name.clone()),
                    _ => None,
                },
                instance_name: format!("Household hub {}", household_id),
                host_name: format!("{}.local.", crate::trust::host_name()),
                // `--listen HOST:0` picks a free port: announce the one it picked.
                port: match config.advertise_port {
                    0 => local.port(),
                    port => port,
                },
                household_id: household_id.clone(),
                ca_sha256_hex: hub.ca.sha256_hex(),
            };
            match crate::mdns::HubAdvertisement::start(&spec) {
                Ok(ad) => Some(ad),
                Err(err) => {
                    tracing::warn!(error = %err, "not announced over mDNS");
                    None
                }
            }
        }
    };

    // The agents on the network: heard on the interface the hub announces on, and
    // rechecked at half the expiry, so one that vanished is gone within the expiry.
    let agent_browser = match &config.mdns {
        Mdns::Off => None,
        mdns => {
            let interface = match mdns {
                Mdns::Interface(name) => Some(name.as_str()),
                _ => None,
            };
            let network = hub.clone();
            match crate::mdns::agents::AgentBrowser::start(
                interface,
                config.agent_expiry / 2,
                move |sighting| network.network.sighted(sighting),
            ) {
                Ok(browser) => Some(browser),
                Err(err) => {
                    tracing::warn!(error = %err, "not listening for child agents over mDNS");
                    None
                }
            }
        }
    };

    let metrics_task = match config.metrics {
        Some(addr) => {
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("metrics listening on {addr}"))?;
            tracing::info!(%addr, "metrics at /metrics");
            let data_dir = config.data_dir.clone();
            Some(tokio::spawn(crate::metrics::serve(
                listener,
                metrics.clone(),
                move || dir_bytes(&data_dir.join("log")),
                signal.subscribe(),
            )))
        }
        None => None,
    };
    let clock = tokio::spawn(crate::clock::run(hub.clone(), signal.subscribe()));
    let bridge = config
        .legacy_poll
        .map(|every| tokio::spawn(crate::legacy::run(hub.clone(), every, signal.subscribe())));

    tracing::info!(
        %local,
        admin_socket = %config.admin_socket.display(),
        household = %household_id,
        ca_sha256 = %hub.ca.sha256_hex(),
        "household hub serving"
    );
    serving(local);

    // Boxed, so it can be dropped (and the hub with it) before the writer is joined.
    let mut servers = Box::pin(async { tokio::try_join!(tls_server, admin_server) });
    let mut stopped = Ok(());
    tokio::select! {
        result = &mut servers => {
            result.context("a server stopped")?;
        }
        result = until => {
            stopped = result;
            health_reporter.set_not_serving::<HouseholdServer<GuardianService>>().await;
            health_reporter.set_not_serving::<AgentServer<AgentService>>().await;
            signal.trigger();
            if tokio::time::timeout(SHUTDOWN_GRACE, &mut servers).await.is_err() {
                tracing::warn!("streams still open after the grace period; stopping anyway");
            }
        }
    }
    signal.trigger();
    if let Some(ad) = advertisement {
        ad.stop();
    }
    // Its callback holds the hub, which must be gone before the writer is joined.
    drop(agent_browser);
    if let Some(task) = metrics_task {
        let _ = task.await;
    }
    let _ = clock.await;
    if let Some(bridge) = bridge {
        let _ = bridge.await;
    }
    drop(servers);
    // The writer stops once the last handle (inside the hub) is gone.
    drop(hub);
    tokio::task::spawn_blocking(move || writer_thread.join()).await?;
    registry.flush()?;
    match Arc::try_unwrap(store) {
        Ok(store) => store.close()?,
        Err(_) => {
            tracing::warn!("event log still in use at shutdown; it was synced on every write")
        }
    }
    let _ = std::fs::remove_file(&config.admin_socket);
    tracing::info!("household hub stopped");
    stopped
}

/// Logs DEVICE_OFFLINE for every device the log still shows online: no session survives
/// a restart, and after a crash nobody logged their end.
async fn mark_devices_offline(writer: &Writer) -> anyhow::Result<()> {
    writer
        .write(|txn| {
            let online: Vec<(String, String)> = txn
                .household()
                .devices(None)
                .filter(|d| d.online)
                .map(|d| (d.child_id.clone(), d.device_id.clone()))
                .collect();
            for (child_id, device_id) in online {
                txn.append(household_proto::v1::Event {
                    actor: Some(crate::service::admin::system_actor("hub restarted")),
                    child_id,
                    device_id,
                    payload: Some(household_proto::v1::event::Payload::DeviceOffline(
                        household_proto::v1::DeviceOffline {
                            reason: "the hub restarted".into(),
                        },
                    )),
                    ..Default::default()
                });
            }
            Ok(())
        })
        .await
        .context("marking devices offline")
}

/// Reflection over the household API, health and the rich error details. The services
/// are named one by one: Admin's types are in the same descriptor set, but Admin is
/// served only on the admin socket and is not listed here.
fn reflection_builder() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(household_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .with_service_name("household.v1.Household")
        .with_service_name("household.v1.Agent")
        .with_service_name("grpc.health.v1.Health")
}

/// Binds the admin socket owner-only: created under a 0077 umask, so it is never
/// reachable by others even for a moment, then checked.
fn bind_admin_socket(path: &std::path::Path) -> anyhow::Result<UnixListener> {
    if path.exists() {
        std::fs::remove_file(path)
            .with_context(|| format!("removing the stale admin socket {}", path.display()))?;
    }
    // SAFETY: umask only changes this process's file creation mask; it is set back at
    // once, before any other file is created by this thread.
    let previous = unsafe { libc::umask(0o077) };
    let bound = UnixListener::bind(path);
    unsafe { libc::umask(previous) };
    let listener = bound.with_context(|| format!("binding {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Bytes of every file under `dir`.
pub fn dir_bytes(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => dir_bytes(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}
