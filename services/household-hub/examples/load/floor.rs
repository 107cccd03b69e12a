//! The floor: a bare `household.v1.Household` server with the hub's TLS (its CA, its
//! server certificate, the same optional client certificates) and the hub's transport
//! settings, which does nothing but broadcast. `GrantTime` puts the request into a
//! `tokio::sync::broadcast` and answers at once; `Watch` streams every broadcast item
//! (only the children asked for, when the request names some). No auth layer, no
//! writer, no disk, no status.

use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use household_hub::trust::{HouseholdCa, ServerCertificate};
use household_proto::v1::{self, household_server::Household, household_server::HouseholdServer};
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

/// Same as the hub's.
const MAX_STREAMS_PER_CONNECTION: u32 = 2048;

struct Floor {
    feed: broadcast::Sender<Arc<v1::Event>>,
    seq: AtomicU64,
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<v1::WatchResponse, Status>> + Send>>;

/// Implements `Household` for `$ty` with the methods given, and every method listed
/// after `unimplemented` answering UNIMPLEMENTED.
macro_rules! household_with {
    (
        impl for $ty:ty { $($body:tt)* }
        unimplemented { $($name:ident($req:ident) -> $resp:ident;)* }
    ) => {
        #[tonic::async_trait]
        impl Household for $ty {
            $($body)*
            $(
                async fn $name(
                    &self,
                    _: Request<v1::$req>,
                ) -> Result<Response<v1::$resp>, Status> {
                    Err(Status::unimplemented(stringify!($name)))
                }
            )*
        }
    };
}

household_with! {
    impl for Floor {
        type WatchStream = WatchStream;

        async fn grant_time(
            &self,
            request: Request<v1::GrantTimeRequest>,
        ) -> Result<Response<v1::GrantTimeResponse>, Status> {
            let request = request.into_inner();
            let event = v1::Event {
                seq: self.seq.fetch_add(1, Ordering::AcqRel) + 1,
                time_unix_micros: jiff::Timestamp::now().as_microsecond(),
                child_id: request.child_id,
                idempotency: Some(v1::Idempotency {
                    key: request.idempotency_key,
                    request_sha256_hex: String::new(),
                }),
                payload: Some(v1::event::Payload::TimeGranted(v1::TimeGranted {
                    minutes: request.minutes,
                    day: None,
                    note: request.note,
                    granted_unix_micros: None,
                })),
                ..Default::default()
            };
            let event = Arc::new(event);
            let _ = self.feed.send(event.clone());
            Ok(Response::new(v1::GrantTimeResponse {
                event: Some((*event).clone()),
                status: None,
                replayed: false,
            }))
        }

        async fn watch(
            &self,
            request: Request<v1::WatchRequest>,
        ) -> Result<Response<WatchStream>, Status> {
            let children = request.into_inner().child_ids;
            let feed = tokio_stream::wrappers::BroadcastStream::new(self.feed.subscribe());
            let opening = tokio_stream::iter([
                Ok(v1::WatchResponse {
                    item: Some(v1::watch_response::Item::Snapshot(v1::Snapshot::default())),
                }),
                Ok(v1::WatchResponse {
                    item: Some(v1::watch_response::Item::CaughtUp(v1::CaughtUp::default())),
                }),
            ]);
            let live = feed.filter_map(move |item| {
                let event = item.ok()?;
                if !children.is_empty() && !children.contains(&event.child_id) {
                    return None;
                }
                Some(Ok(v1::WatchResponse {
                    item: Some(v1::watch_response::Item::Event((*event).clone())),
                }))
            });
            Ok(Response::new(Box::pin(opening.chain(live))))
        }
    }
    unimplemented {
        list_children(ListChildrenRequest) -> ListChildrenResponse;
        add_child(AddChildRequest) -> AddChildResponse;
        rename_child(RenameChildRequest) -> RenameChildResponse;
        remove_child(RemoveChildRequest) -> RemoveChildResponse;
        list_devices(ListDevicesRequest) -> ListDevicesResponse;
        add_device(AddDeviceRequest) -> AddDeviceResponse;
        rename_device(RenameDeviceRequest) -> RenameDeviceResponse;
        remove_device(RemoveDeviceRequest) -> RemoveDeviceResponse;
        list_guardians(ListGuardiansRequest) -> ListGuardiansResponse;
        invite_guardian(InviteGuardianRequest) -> InviteGuardianResponse;
        invite_credential(InviteCredentialRequest) -> InviteCredentialResponse;
        get_status(GetStatusRequest) -> GetStatusResponse;
        lock(LockRequest) -> LockResponse;
        unlock(UnlockRequest) -> UnlockResponse;
        get_policy(GetPolicyRequest) -> GetPolicyResponse;
        set_policy(SetPolicyRequest) -> SetPolicyResponse;
        list_time_requests(ListTimeRequestsRequest) -> ListTimeRequestsResponse;
        approve_time_request(ApproveTimeRequestRequest) -> ApproveTimeRequestResponse;
        deny_time_request(DenyTimeRequestRequest) -> DenyTimeRequestResponse;
        get_history(GetHistoryRequest) -> GetHistoryResponse;
        get_report(GetReportRequest) -> GetReportResponse;
        list_credentials(ListCredentialsRequest) -> ListCredentialsResponse;
        revoke_credential(RevokeCredentialRequest) -> RevokeCredentialResponse;
        adopt_device(AdoptDeviceRequest) -> AdoptDeviceResponse;
    }
}

/// Serves the floor with the hub's CA and server certificate from `tls_dir` on a free
/// loopback port until SIGTERM; prints `floor serving on ADDR`.
pub async fn serve(tls_dir: &Path) -> Result<()> {
    let ca = HouseholdCa::load_or_create(tls_dir).context("loading the hub's CA")?;
    let server = ServerCertificate {
        chain_pem: std::fs::read_to_string(tls_dir.join("server.pem"))
            .context("reading the hub's server.pem")?,
        key_pem: std::fs::read_to_string(tls_dir.join("server.key"))
            .context("reading the hub's server.key")?,
    };
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let local = listener.local_addr()?;
    // The hub's own handshakes (Nagle off, h2 and http/1.1 in ALPN), so the floor
    // pays for TLS exactly what the hub does.
    let incoming = household_hub::trust::tls::incoming(listener, ca.server_tls(&server)?);
    let (feed, _) = broadcast::channel(1024);
    let floor = Floor {
        feed,
        seq: AtomicU64::new(0),
    };
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    println!("floor serving on {local}");
    tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(20)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .max_concurrent_streams(Some(MAX_STREAMS_PER_CONNECTION))
        .add_service(HouseholdServer::new(floor))
        .serve_with_incoming_shutdown(incoming, async move {
            terminate.recv().await;
        })
        .await?;
    Ok(())
}
