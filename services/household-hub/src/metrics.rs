//! Prometheus metrics (`--metrics ADDR:PORT`, path `/metrics`), in the OpenMetrics text
//! format of `prometheus-client`: RPCs by method and code, open watches and sessions,
//! events appended, the event log's size on disk, and how long folding took.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tonic::codegen::http;

use crate::shutdown::Shutdown;

/// The hub's counters and gauges.
pub struct Metrics {
    registry: Registry,
    rpcs: Family<Vec<(String, String)>, Counter>,
    /// Watch streams open now.
    pub watches: Gauge,
    /// Agent sessions open now.
    pub sessions: Gauge,
    /// Events made durable since start.
    pub events_appended: Counter,
    /// Bytes of the event log's tables on disk, set when scraped.
    log_bytes: Gauge<u64, AtomicU64>,
    /// Seconds the start-up rebuild took.
    pub rebuild_seconds: Gauge<f64, AtomicU64>,
    /// Events the start-up rebuild folded from the log (after the snapshot, if one
    /// was used).
    pub rebuild_events: Gauge,
    /// Seconds one writer batch spent deciding and folding.
    pub fold_seconds: Histogram,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let mut registry = Registry::with_prefix("household_hub");
        let rpcs = Family::<Vec<(String, String)>, Counter>::default();
        registry.register("rpcs", "gRPC calls by method and status code", rpcs.clone());
        let watches = Gauge::default();
        registry.register("watches", "Watch streams open", watches.clone());
        let sessions = Gauge::default();
        registry.register("sessions", "Agent sessions open", sessions.clone());
        let events_appended = Counter::default();
        registry.register(
            "events_appended",
            "Events made durable in the log since start",
            events_appended.clone(),
        );
        let log_bytes = Gauge::<u64, AtomicU64>::default();
        registry.register(
            "log_bytes",
            "Bytes of event log tables on disk",
            log_bytes.clone(),
        );
        let rebuild_seconds = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "rebuild_seconds",
            "Seconds the start-up rebuild (snapshot and log) took",
            rebuild_seconds.clone(),
        );
        let rebuild_events = Gauge::default();
        registry.register(
            "rebuild_events",
            "Events the start-up rebuild folded from the log, after the snapshot if one was used",
            rebuild_events.clone(),
        );
        let fold_seconds = Histogram::new(exponential_buckets(0.000_01, 4.0, 10));
        registry.register(
            "fold_seconds",
            "Seconds a writer batch spent deciding and folding events",
            fold_seconds.clone(),
        );
        Metrics {
            registry,
            rpcs,
            watches,
            sessions,
            events_appended,
            log_bytes,
            rebuild_seconds,
            rebuild_events,
            fold_seconds,
        }
    }
}

impl Metrics {
    /// Counts one response by method and the status code its headers carry (a
    /// successful call, and a stream while it runs, count as OK).
    pub fn count_response<B>(&self, path: &str, response: http::Response<B>) -> http::Response<B> {
        let code = response
            .headers()
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<i32>().ok())
            .map_or(tonic::Code::Ok, tonic::Code::from_i32);
        let method = path.trim_start_matches('/').to_owned();
        self.rpcs
            .get_or_create(&vec![
                ("method".into(), method),
                ("code".into(), format!("{code:?}")),
            ])
            .inc();
        response
    }

    /// The text a scrape gets, with the log size read now.
    pub fn render(&self, log_bytes: u64) -> String {
        self.log_bytes.set(log_bytes);
        let mut text = String::new();
        if encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }
}

/// Serves `/metrics` on `listener` until shutdown: one small HTTP/1.1 response per
/// connection, with `log_bytes` read at each scrape.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    log_bytes: impl Fn() -> u64 + Send + Sync + 'static,
    mut shutdown: Shutdown,
) {
    let log_bytes = Arc::new(log_bytes);
    loop {
        let (mut stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::warn!(error = %err, "metrics accept failed");
                    continue;
                }
            },
            () = shutdown.wait() => return,
        };
        let metrics = metrics.clone();
        let log_bytes = log_bytes.clone();
        tokio::spawn(async move {
            let mut request = [0u8; 2048];
            let read =
                tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut request))
                    .await;
            let Ok(Ok(n)) = read else { return };
            let head = String::from_utf8_lossy(&request[..n]);
            let (status, body) = if head.starts_with("GET /metrics ") {
                ("200 OK", metrics.render(log_bytes()))
            } else {
                (
                    "404 Not Found",
                    "only GET /metrics is served here\n".to_owned(),
                )
            };
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
        });
    }
}
