//! The guardians' web app's side of the hub: a phone redeems a guardian's pairing code
//! for a bearer token, and calls the Household service with it over native gRPC and
//! over gRPC-Web (HTTP/1.1 and HTTP/2, binary and text), on the one TLS port; only the
//! hub's own origin may call; a revoked token stops at once; no token reaches a log.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{Credential, Hub, reason};
use household_proto::v1::{self, agent_client::AgentClient, household_client::HouseholdClient};
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{HeaderMap, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::Message;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic_types::StatusExt as _;

const GET_STATUS: &str = "/household.v1.Household/GetStatus";
const WATCH: &str = "/household.v1.Household/Watch";

// ---- A phone over native gRPC ----

/// Sends a bearer token with every call, as the web app does.
#[derive(Clone)]
struct Bearer(String);

impl tonic::service::Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        let value = format!("Bearer {}", self.0)
            .parse()
            .map_err(|_| tonic::Status::internal("a token that is no header value"))?;
        request.metadata_mut().insert("authorization", value);
        Ok(request)
    }
}

/// What a phone keeps after pairing.
struct Phone {
    ca_pem: String,
    token: String,
    response: v1::EnrollResponse,
}

/// Redeems a guardian's pairing code for a bearer token labelled `label`, as the web
/// app does: TLS without a client certificate, the hub's CA checked against the code.
async fn pair_phone(hub: &Hub, code: &str, label: &str) -> Result<Phone, tonic::Status> {
    pair_phone_as(hub, code, label, v1::Role::Guardian).await
}

/// [`pair_phone`], saying `expected_role` (unspecified: whatever the code is for).
async fn pair_phone_as(
    hub: &Hub,
    code: &str,
    label: &str,
    expected_role: v1::Role,
) -> Result<Phone, tonic::Status> {
    let ca_pem = hub.ca_for(code).await.expect("the hub's CA");
    let mut agent = AgentClient::new(common::channel(hub.addr, &ca_pem, None).await);
    let response = agent
        .enroll(v1::EnrollRequest {
            pairing_code: code.to_owned(),
            credential: Some(v1::enroll_request::Credential::BearerToken(
                v1::BearerTokenSpec {
                    label: label.to_owned(),
                },
            )),
            platform: "browser".into(),
            expected_role: expected_role as i32,
            ..Default::default()
        })
        .await?
        .into_inner();
    let Some(v1::enroll_response::Credential::BearerToken(token)) = &response.credential else {
        panic!("no bearer token in {response:?}");
    };
    Ok(Phone {
        ca_pem,
        token: token.clone(),
        response,
    })
}

impl Phone {
    /// The Household service, with the token and no client certificate.
    async fn household(
        &self,
        addr: SocketAddr,
    ) -> HouseholdClient<InterceptedService<Channel, Bearer>> {
        HouseholdClient::with_interceptor(
            common::channel(addr, &self.ca_pem, None).await,
            Bearer(self.token.clone()),
        )
    }

    fn credential_id(&self) -> &str {
        &self.response.credential_id
    }
}

/// The status's `ErrorInfo.metadata[key]`.
fn metadata(status: &tonic::Status, key: &str) -> String {
    status
        .get_error_details()
        .error_info()
        .and_then(|info| info.metadata.get(key).cloned())
        .unwrap_or_default()
}

/// Anna (a certificate, the CLI) and a hub; she invites Ben, whose phone pairs.
async fn hub_with_a_phone(dir: &std::path::Path) -> (Hub, Credential, Phone) {
    let (hub, anna) = common::hub_with_guardian(dir).await;
    let invite = common::invite_guardian(&mut common::guardian(hub.addr, &anna).await, "Ben").await;
    let phone = pair_phone(&hub, &invite.pairing_code, "Ben's phone")
        .await
        .expect("pair Ben's phone");
    (hub, anna, phone)
}

// ---- A browser's side of gRPC-Web ----

/// How a browser frames a call: `application/grpc-web+proto` or the base64
/// `application/grpc-web-text`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Binary,
    Text,
}

enum Sender {
    Http1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    Http2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

/// One connection to the hub as a browser makes it: TLS trusting the household CA,
/// ALPN `http/1.1` or `h2`, a client certificate only where a test says so.
struct WebClient {
    sender: Sender,
    authority: String,
}

impl WebClient {
    async fn connect(
        addr: SocketAddr,
        ca_pem: &str,
        alpn: &[u8],
        certificate: Option<&Credential>,
    ) -> WebClient {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots.add(cert.expect("the CA")).expect("trust the CA");
        }
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots);
        let mut config = match certificate {
            None => builder.with_no_client_auth(),
            Some(credential) => {
                let chain = CertificateDer::pem_slice_iter(credential.chain_pem.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .expect("the certificate chain");
                let key =
                    PrivateKeyDer::from_pem_slice(credential.key_pem.as_bytes()).expect("the key");
                builder
                    .with_client_auth_cert(chain, key)
                    .expect("a client certificate")
            }
        };
        config.alpn_protocols = vec![alpn.to_vec()];
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .expect("connect to the hub");
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("localhost").expect("a name"), tcp)
            .await
            .expect("the TLS handshake");
        assert_eq!(
            tls.get_ref().1.alpn_protocol(),
            Some(alpn),
            "the hub's ALPN choice"
        );
        let io = TokioIo::new(tls);
        let sender = if alpn == b"h2" {
            let (sender, connection) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                    .await
                    .expect("HTTP/2");
            tokio::spawn(connection);
            Sender::Http2(sender)
        } else {
            let (sender, connection) = hyper::client::conn::http1::handshake(io)
                .await
                .expect("HTTP/1.1");
            tokio::spawn(connection);
            Sender::Http1(sender)
        };
        WebClient {
            sender,
            authority: format!("localhost:{}", addr.port()),
        }
    }

    /// What a page served by the hub sends as its `Origin`.
    fn own_origin(&self) -> String {
        format!("https://{}", self.authority)
    }

    /// A request to `path` as this connection's protocol wants it addressed.
    fn request(&self, method: &str, path: &str) -> hyper::http::request::Builder {
        match self.sender {
            Sender::Http1(_) => Request::builder()
                .method(method)
                .uri(path)
                .header("host", &self.authority),
            Sender::Http2(_) => Request::builder()
                .method(method)
                .uri(format!("https://{}{path}", self.authority)),
        }
    }

    async fn send(&mut self, request: Request<Full<Bytes>>) -> Response<Incoming> {
        match &mut self.sender {
            Sender::Http1(sender) => {
                sender.ready().await.expect("the connection");
                sender.send_request(request).await.expect("an answer")
            }
            Sender::Http2(sender) => {
                sender.ready().await.expect("the connection");
                sender.send_request(request).await.expect("an answer")
            }
        }
    }

    /// Calls `path` with one message, as grpc-web does, with `headers` besides.
    async fn call(
        &mut self,
        path: &str,
        message: &impl Message,
        framing: Framing,
        headers: &[(&str, &str)],
    ) -> WebReply {
        let bytes = message.encode_to_vec();
        let mut frame = vec![0u8];
        frame.extend(u32::try_from(bytes.len()).expect("small").to_be_bytes());
        frame.extend(bytes);
        let (content_type, body) = match framing {
            Framing::Binary => ("application/grpc-web+proto", frame),
            Framing::Text => (
                "application/grpc-web-text",
                STANDARD.encode(frame).into_bytes(),
            ),
        };
        let mut request = self
            .request("POST", path)
            .header("content-type", content_type)
            .header("accept", content_type)
            .header("x-grpc-web", "1");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = self
            .send(
                request
                    .body(Full::new(Bytes::from(body)))
                    .expect("a request"),
            )
            .await;
        WebReply::new(response, framing)
    }

    /// A unary call: its answer, or the status it failed with.
    async fn unary<R: Message + Default>(
        &mut self,
        path: &str,
        message: &impl Message,
        framing: Framing,
        headers: &[(&str, &str)],
    ) -> Result<R, tonic::Status> {
        let mut reply = self.call(path, message, framing, headers).await;
        assert_eq!(reply.http_status, StatusCode::OK, "{path}");
        let mut answer = None;
        loop {
            match reply.next().await {
                Some(WebFrame::Message(bytes)) => {
                    answer = Some(R::decode(&bytes[..]).expect("an answer"));
                }
                Some(WebFrame::End(status)) if status.code() == Code::Ok => {
                    return Ok(answer.expect("a message before the trailers"));
                }
                Some(WebFrame::End(status)) => return Err(status),
                None => panic!("{path}: the answer ended without a grpc-status"),
            }
        }
    }
}

/// What a grpc-web answer holds: messages, then the status (in the headers when there
/// was nothing else to send, else in a trailers frame at the end of the body).
#[derive(Debug)]
enum WebFrame {
    Message(Vec<u8>),
    End(tonic::Status),
}

struct WebReply {
    http_status: StatusCode,
    headers: HeaderMap,
    body: Incoming,
    framing: Framing,
    /// Base64 text not yet decoded (a quantum may be split between two chunks).
    text: Vec<u8>,
    /// Decoded bytes not yet parsed into frames.
    bytes: Vec<u8>,
    started: bool,
    ended: bool,
}

impl WebReply {
    fn new(response: Response<Incoming>, framing: Framing) -> WebReply {
        let (parts, body) = response.into_parts();
        WebReply {
            http_status: parts.status,
            headers: parts.headers,
            body,
            framing,
            text: Vec::new(),
            bytes: Vec::new(),
            started: false,
            ended: false,
        }
    }

    async fn next(&mut self) -> Option<WebFrame> {
        if self.ended {
            return None;
        }
        if !self.started {
            self.started = true;
            if let Some(status) = tonic::Status::from_header_map(&self.headers) {
                self.ended = true;
                return Some(WebFrame::End(status));
            }
        }
        loop {
            if self.bytes.len() >= 5 {
                let len = u32::from_be_bytes(self.bytes[1..5].try_into().expect("4 bytes"));
                let end = 5 + usize::try_from(len).expect("small");
                if self.bytes.len() >= end {
                    let flags = self.bytes[0];
                    let payload = self.bytes[5..end].to_vec();
                    self.bytes.drain(..end);
                    if flags & 0x80 == 0 {
                        return Some(WebFrame::Message(payload));
                    }
                    self.ended = true;
                    return Some(WebFrame::End(status_of_trailers(&payload)));
                }
            }
            let frame = self.body.frame().await?.ok()?;
            if let Ok(data) = frame.into_data() {
                self.take(&data);
            }
        }
    }

    fn take(&mut self, data: &[u8]) {
        match self.framing {
            Framing::Binary => self.bytes.extend_from_slice(data),
            Framing::Text => {
                // Every chunk is base64 of its own, padded: decode whole quanta.
                self.text.extend_from_slice(data);
                let whole = self.text.len() / 4 * 4;
                for quantum in self.text[..whole].chunks(4) {
                    self.bytes
                        .extend(STANDARD.decode(quantum).expect("grpc-web-text is base64"));
                }
                self.text.drain(..whole);
            }
        }
    }

    /// The next WatchResponse's item, or the status the stream ended with.
    async fn next_watch_item(&mut self) -> Result<v1::watch_response::Item, tonic::Status> {
        let next = tokio::time::timeout(Duration::from_secs(10), self.next())
            .await
            .expect("the watch said something within 10 s");
        match next {
            Some(WebFrame::Message(bytes)) => Ok(v1::WatchResponse::decode(&bytes[..])
                .expect("a WatchResponse")
                .item
                .expect("an item")),
            Some(WebFrame::End(status)) => Err(status),
            None => panic!("the watch ended without a status"),
        }
    }
}

/// The `grpc-status` and friends of a grpc-web trailers frame ("name:value\r\n" lines).
fn status_of_trailers(block: &[u8]) -> tonic::Status {
    let text = std::str::from_utf8(block).expect("trailers are text");
    let mut trailers = HeaderMap::new();
    for line in text.split("\r\n").filter(|line| !line.is_empty()) {
        let (name, value) = line.split_once(':').expect("name:value");
        trailers.insert(
            hyper::header::HeaderName::try_from(name.trim()).expect("a header name"),
            value.trim().parse().expect("a header value"),
        );
    }
    tonic::Status::from_header_map(&trailers).expect("grpc-status in the trailers")
}

// ---- The tests ----

#[tokio::test(flavor = "multi_thread")]
async fn a_phone_pairs_for_a_token_and_calls_as_its_guardian_over_grpc_and_grpc_web() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, anna) = common::hub_with_guardian(dir.path()).await;
    let mut household = common::guardian(hub.addr, &anna).await;
    let invite = common::invite_guardian(&mut household, "Ben").await;

    // A bad label is refused by name, and the code is not spent.
    let err = pair_phone(&hub, &invite.pairing_code, "")
        .await
        .err()
        .unwrap();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(metadata(&err, "field"), "bearer_token.label");
    let ben = pair_phone(&hub, &invite.pairing_code, "Ben's phone")
        .await
        .expect("pair Ben's phone");
    assert_eq!(ben.response.role, v1::Role::Guardian as i32);
    assert_eq!(ben.response.identity_id, invite.identity_id);
    assert!(
        ben.token.starts_with("hht1.") && ben.token.len() == 48,
        "{}",
        ben.token
    );
    assert!(
        ben.credential_id().starts_with("tok-"),
        "{}",
        ben.credential_id()
    );

    // Devices never get a token.
    let mia = common::add_child(&mut household, "Mia").await;
    let device_code = hub.invite("device", "laptop", Some(&mia));
    let err = pair_phone_as(&hub, &device_code, "laptop", v1::Role::Unspecified)
        .await
        .err()
        .unwrap();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "BEARER_TOKEN_FOR_DEVICE");

    // Native gRPC, the token in the metadata: Ben is a guardian like any other.
    let mut phone = ben.household(hub.addr).await;
    let status = phone
        .get_status(v1::GetStatusRequest::default())
        .await
        .expect("GetStatus with a token")
        .into_inner();
    assert_eq!(status.children.len(), 1);
    let granted = phone
        .grant_time(v1::GrantTimeRequest {
            child_id: mia.clone(),
            minutes: 15,
            idempotency_key: "tap-1".into(),
            ..Default::default()
        })
        .await
        .expect("GrantTime with a token")
        .into_inner()
        .event
        .unwrap();
    let phone_actor = v1::Actor {
        kind: Some(v1::actor::Kind::GuardianId(
            ben.response.identity_id.clone(),
        )),
        credential_id: ben.credential_id().to_owned(),
    };
    assert_eq!(
        granted.actor.as_ref(),
        Some(&phone_actor),
        "the phone's grant"
    );

    // Its enrollment is logged with the phone's credential too.
    let enrolled = household
        .get_history(v1::GetHistoryRequest {
            kinds: vec![v1::EventKind::GuardianEnrolled as i32],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    let ben_enrolled = enrolled
        .iter()
        .find(|e| e.actor.as_ref() == Some(&phone_actor))
        .expect("Ben's enrollment, by his phone");
    let Some(v1::event::Payload::GuardianEnrolled(payload)) = &ben_enrolled.payload else {
        panic!("{ben_enrolled:?}");
    };
    assert_eq!(payload.display_name, "Ben");
    assert_eq!(payload.certificate_sha256_hex, "");

    // Anna sees the phone among Ben's credentials: a token, its label, its expiry.
    let identities = household
        .list_credentials(v1::ListCredentialsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .identities;
    let ben_identity = identities
        .iter()
        .find(|i| i.identity_id == ben.response.identity_id)
        .unwrap();
    let [credential] = ben_identity.credentials.as_slice() else {
        panic!("{ben_identity:?}");
    };
    assert_eq!(credential.credential_id, ben.credential_id());
    assert_eq!(credential.kind, v1::CredentialKind::BearerToken as i32);
    assert_eq!(credential.label, "Ben's phone");
    let now = jiff::Timestamp::now().as_microsecond();
    let ninety_days = 90 * 24 * 3600 * 1_000_000_i64;
    assert!((credential.expires_unix_micros - (now + ninety_days)).abs() < 120_000_000);
    assert!(credential.last_used_unix_micros > 0);

    // gRPC-Web over HTTP/1.1 and over HTTP/2, binary and text, from the hub's own page.
    for (alpn, framing) in [
        (&b"http/1.1"[..], Framing::Binary),
        (&b"http/1.1"[..], Framing::Text),
        (&b"h2"[..], Framing::Binary),
        (&b"h2"[..], Framing::Text),
    ] {
        let mut web = WebClient::connect(hub.addr, &ben.ca_pem, alpn, None).await;
        let origin = web.own_origin();
        let authorization = format!("Bearer {}", ben.token);
        let answer: v1::GetStatusResponse = web
            .unary(
                GET_STATUS,
                &v1::GetStatusRequest::default(),
                framing,
                &[("authorization", &authorization), ("origin", &origin)],
            )
            .await
            .unwrap_or_else(|e| panic!("{alpn:?} {framing:?}: {e:?}"));
        assert_eq!(answer.children.len(), 1, "{alpn:?} {framing:?}");
        assert_eq!(answer.children[0].child_id, mia);

        // Without the token: no credential.
        let err = web
            .unary::<v1::GetStatusResponse>(
                GET_STATUS,
                &v1::GetStatusRequest::default(),
                framing,
                &[],
            )
            .await
            .unwrap_err();
        assert_eq!(reason(&err), "CREDENTIAL_MISSING", "{alpn:?} {framing:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_guardian_pairs_their_own_phone_which_acts_under_their_name() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, anna) = common::hub_with_guardian(dir.path()).await;
    let anna_id = anna.response.identity_id.clone();
    let mut household = common::guardian(hub.addr, &anna).await;
    let mia = common::add_child(&mut household, "Mia").await;

    let ask = |key: &str| v1::InviteCredentialRequest {
        valid_minutes: 10,
        idempotency_key: key.into(),
    };
    let first = household
        .invite_credential(ask("own-phone-1"))
        .await
        .expect("invite a phone of Anna's")
        .into_inner();
    let invite = first.invite.expect("the invite");
    assert!(!first.replayed);
    assert_eq!(invite.identity_id, anna_id, "the code names Anna herself");
    assert_eq!(invite.display_name, "Anna");
    // A retried call hands out the very same code and logs nothing new.
    let again = household
        .invite_credential(ask("own-phone-1"))
        .await
        .expect("the same call again")
        .into_inner();
    assert!(again.replayed);
    assert_eq!(
        again.invite.expect("the invite").pairing_code,
        invite.pairing_code
    );
    let refused = household
        .invite_credential(v1::InviteCredentialRequest {
            valid_minutes: 10_081,
            ..Default::default()
        })
        .await
        .expect_err("more than a week");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(refused.message().contains("valid_minutes"), "{refused:?}");

    // An open invitation leaves Anna as she is: one guardian, enrolled.
    let guardians = household
        .list_guardians(v1::ListGuardiansRequest {})
        .await
        .expect("guardians")
        .into_inner()
        .guardians;
    assert_eq!(guardians.len(), 1, "{guardians:?}");
    assert!(guardians[0].enrolled, "{guardians:?}");

    let phone = pair_phone(&hub, &invite.pairing_code, "Anna's phone")
        .await
        .expect("pair Anna's phone");
    assert_eq!(phone.response.identity_id, anna_id);
    assert!(
        pair_phone(&hub, &invite.pairing_code, "a second phone")
            .await
            .is_err(),
        "the code works once"
    );

    // The phone acts as Anna, with a credential of its own.
    let mut from_phone = phone.household(hub.addr).await;
    from_phone
        .grant_time(v1::GrantTimeRequest {
            child_id: mia.clone(),
            minutes: 15,
            idempotency_key: "phone-grant-1".into(),
            ..Default::default()
        })
        .await
        .expect("a grant from the phone");
    let history = household
        .get_history(v1::GetHistoryRequest {
            child_id: mia,
            kinds: vec![v1::EventKind::TimeGranted as i32],
            ..Default::default()
        })
        .await
        .expect("history")
        .into_inner();
    let actor = history.events[0].actor.clone().expect("an actor");
    assert_eq!(
        actor.kind,
        Some(v1::actor::Kind::GuardianId(anna_id.clone()))
    );
    assert_eq!(actor.credential_id, phone.credential_id());

    // Whoever holds the phone can pair a phone of their own from it, and keep a code
    // for later: both belong to the phone, and go when it is revoked.
    let mut code_from_phone = async |key: &str| {
        from_phone
            .invite_credential(ask(key))
            .await
            .expect("the phone invites")
            .into_inner()
            .invite
            .expect("the invite")
            .pairing_code
    };
    let from_the_phone = code_from_phone("thief-1").await;
    let kept = code_from_phone("thief-2").await;
    let second = pair_phone(&hub, &from_the_phone, "another phone")
        .await
        .expect("a phone paired from the phone");
    let mut from_second = second.household(hub.addr).await;

    // Anna now holds three credentials; revoking the phone revokes the one paired
    // from it and leaves her certificate working.
    let identities = household
        .list_credentials(v1::ListCredentialsRequest::default())
        .await
        .expect("credentials")
        .into_inner()
        .identities;
    let anna_entry = identities
        .iter()
        .find(|i| i.identity_id == anna_id)
        .expect("Anna's entry");
    assert_eq!(anna_entry.credentials.len(), 3, "{anna_entry:?}");
    household
        .revoke_credential(v1::RevokeCredentialRequest {
            identity_id: anna_id.clone(),
            credential_id: phone.credential_id().to_owned(),
        })
        .await
        .expect("revoke the phone");
    for (what, client) in [
        ("the revoked phone", &mut from_phone),
        ("the phone paired from it", &mut from_second),
    ] {
        let refused = client
            .list_children(v1::ListChildrenRequest {})
            .await
            .expect_err(what);
        assert_eq!(refused.code(), Code::Unauthenticated, "{what}");
    }
    let Err(late) = pair_phone(&hub, &kept, "a phone paired later").await else {
        panic!("a code the revoked phone made paired a phone");
    };
    assert_eq!(late.code(), Code::Unauthenticated, "{late:?}");
    let revoked: Vec<String> = household
        .get_history(v1::GetHistoryRequest {
            kinds: vec![v1::EventKind::IdentityRevoked as i32],
            ..Default::default()
        })
        .await
        .expect("history")
        .into_inner()
        .events
        .into_iter()
        .filter_map(|e| match e.payload {
            Some(v1::event::Payload::IdentityRevoked(r)) => Some(r.credential_id),
            _ => None,
        })
        .collect();
    assert_eq!(
        revoked,
        [phone.credential_id(), second.credential_id()],
        "each revocation is logged"
    );
    household
        .list_children(v1::ListChildrenRequest {})
        .await
        .expect("Anna's certificate still works");
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_open_the_household_service_only_and_bad_ones_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, anna, ben) = hub_with_a_phone(dir.path()).await;
    let authorization = format!("Bearer {}", ben.token);
    let mut web = WebClient::connect(hub.addr, &ben.ca_pem, b"http/1.1", None).await;

    // Health answers a token (the web app checks the hub is up).
    let health: tonic_health::pb::HealthCheckResponse = web
        .unary(
            "/grpc.health.v1.Health/Check",
            &tonic_health::pb::HealthCheckRequest::default(),
            Framing::Binary,
            &[("authorization", &authorization)],
        )
        .await
        .expect("health with a token");
    assert_eq!(health.status, 1, "SERVING");

    // Never a device's session, a certificate, or the Admin service.
    for path in [
        "/household.v1.Agent/Session",
        "/household.v1.Agent/RenewCertificate",
        "/household.v1.Admin/GetStats",
        "/household.v1.Admin/CreateInvite",
    ] {
        let err = web
            .unary::<()>(
                path,
                &(),
                Framing::Binary,
                &[("authorization", &authorization)],
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "{path}");
        assert_eq!(reason(&err), "BEARER_TOKEN_NOT_ACCEPTED", "{path}");
        assert!(
            err.message().contains("bearer token"),
            "{path}: {}",
            err.message()
        );
    }
    let mut agent = AgentClient::with_interceptor(
        common::channel(hub.addr, &ben.ca_pem, None).await,
        Bearer(ben.token.clone()),
    );
    let err = agent
        .session(tokio_stream::iter(vec![v1::SessionRequest::default()]))
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "BEARER_TOKEN_NOT_ACCEPTED");
    let err = agent
        .renew_certificate(v1::RenewCertificateRequest::default())
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "BEARER_TOKEN_NOT_ACCEPTED");

    // Malformed and unknown tokens are refused, saying which.
    let unknown = format!("Bearer hht1.{}", "A".repeat(43));
    for (header, why) in [
        (format!("Bearer {}x", ben.token), "malformed"),
        (format!("Basic {}", ben.token), "malformed"),
        (ben.token.clone(), "malformed"),
        (unknown, "unknown"),
    ] {
        let err = web
            .unary::<v1::GetStatusResponse>(
                GET_STATUS,
                &v1::GetStatusRequest::default(),
                Framing::Binary,
                &[("authorization", &header)],
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "{why}");
        assert_eq!(reason(&err), "CREDENTIAL_INVALID", "{why}");
        assert_eq!(metadata(&err, "why"), why);
        assert_eq!(metadata(&err, "credential_kind"), "bearer_token");
        assert!(!err.message().contains(&ben.token), "{}", err.message());
    }

    // A certificate and a token on one call: whose is it? Refused.
    let mut both = HouseholdClient::with_interceptor(
        common::channel(
            hub.addr,
            &anna.ca_pem,
            Some((&anna.chain_pem, &anna.key_pem)),
        )
        .await,
        Bearer(ben.token.clone()),
    );
    let err = both
        .get_status(v1::GetStatusRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert_eq!(reason(&err), "CREDENTIAL_AMBIGUOUS");
    assert!(err.message().contains("both"), "{}", err.message());

    // A device's certificate does not open the web API either.
    let mut household = common::guardian(hub.addr, &anna).await;
    let mia = common::add_child(&mut household, "Mia").await;
    let laptop = common::enroll(hub.addr, &hub.invite("device", "laptop", Some(&mia)))
        .await
        .unwrap();
    let mut device_web =
        WebClient::connect(hub.addr, &laptop.ca_pem, b"http/1.1", Some(&laptop)).await;
    let err = device_web
        .unary::<v1::GetStatusResponse>(
            GET_STATUS,
            &v1::GetStatusRequest::default(),
            Framing::Binary,
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(reason(&err), "GUARDIAN_ROLE_REQUIRED");
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_of_other_origins_and_preflights_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, _anna, ben) = hub_with_a_phone(dir.path()).await;
    let authorization = format!("Bearer {}", ben.token);
    for alpn in [&b"http/1.1"[..], &b"h2"[..]] {
        let mut web = WebClient::connect(hub.addr, &ben.ca_pem, alpn, None).await;

        // Another site's page, holding the token somehow: 403, and nothing to read.
        let reply = web
            .call(
                GET_STATUS,
                &v1::GetStatusRequest::default(),
                Framing::Binary,
                &[
                    ("authorization", &authorization),
                    ("origin", "https://evil.example"),
                ],
            )
            .await;
        assert_eq!(reply.http_status, StatusCode::FORBIDDEN, "{alpn:?}");
        assert!(reply.headers.get("access-control-allow-origin").is_none());
        assert!(reply.headers.get("grpc-status").is_none());

        // The CORS preflight it would send first: 403, no Access-Control-Allow-*.
        for origin in ["https://evil.example".to_owned(), web.own_origin()] {
            let preflight = web
                .request("OPTIONS", GET_STATUS)
                .header("origin", &origin)
                .header("access-control-request-method", "POST")
                .header(
                    "access-control-request-headers",
                    "authorization,content-type,x-grpc-web",
                )
                .body(Full::new(Bytes::new()))
                .unwrap();
            let response = web.send(preflight).await;
            assert_eq!(
                response.status(),
                StatusCode::FORBIDDEN,
                "{alpn:?} {origin}"
            );
            assert!(
                !response
                    .headers()
                    .keys()
                    .any(|name| name.as_str().starts_with("access-control-")),
                "{:?}",
                response.headers()
            );
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert!(String::from_utf8_lossy(&body).contains("cross-origin"));
        }

        // The hub's own page passes.
        let own = web.own_origin();
        let answer: Result<v1::GetStatusResponse, _> = web
            .unary(
                GET_STATUS,
                &v1::GetStatusRequest::default(),
                Framing::Binary,
                &[("authorization", &authorization), ("origin", &own)],
            )
            .await;
        assert!(answer.is_ok(), "{alpn:?}: {answer:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn revoking_a_phone_refuses_its_next_call_and_ends_its_watches() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, anna, ben) = hub_with_a_phone(dir.path()).await;
    let mut household = common::guardian(hub.addr, &anna).await;
    let mia = common::add_child(&mut household, "Mia").await;
    let authorization = format!("Bearer {}", ben.token);

    // A watch over gRPC-Web (a server stream over HTTP/1.1) opens with the snapshot.
    let mut web = WebClient::connect(hub.addr, &ben.ca_pem, b"http/1.1", None).await;
    let origin = web.own_origin();
    let mut web_watch = web
        .call(
            WATCH,
            &v1::WatchRequest::default(),
            Framing::Binary,
            &[("authorization", &authorization), ("origin", &origin)],
        )
        .await;
    assert_eq!(web_watch.http_status, StatusCode::OK);
    let Ok(v1::watch_response::Item::Snapshot(snapshot)) = web_watch.next_watch_item().await else {
        panic!("a watch opens with a snapshot");
    };
    assert_eq!(snapshot.children.len(), 1);
    assert_eq!(snapshot.children[0].child_id, mia);
    assert!(matches!(
        web_watch.next_watch_item().await,
        Ok(v1::watch_response::Item::CaughtUp(_))
    ));
    // Live: Anna's grant reaches the phone's watch.
    household
        .grant_time(v1::GrantTimeRequest {
            child_id: mia.clone(),
            minutes: 10,
            idempotency_key: "anna-1".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    loop {
        match web_watch.next_watch_item().await {
            Ok(v1::watch_response::Item::Event(event)) => {
                assert!(matches!(
                    event.payload,
                    Some(v1::event::Payload::TimeGranted(_))
                ));
                break;
            }
            Ok(_) => continue,
            Err(status) => panic!("the watch ended: {status:?}"),
        }
    }
    // And one over native gRPC.
    let mut phone = ben.household(hub.addr).await;
    let mut native_watch = phone
        .watch(v1::WatchRequest::default())
        .await
        .expect("a watch with a token")
        .into_inner();
    assert!(matches!(
        native_watch.message().await.unwrap().unwrap().item,
        Some(v1::watch_response::Item::Snapshot(_))
    ));

    // Ben's phone is lost; Anna, from her computer, revokes it.
    household
        .revoke_credential(v1::RevokeCredentialRequest {
            identity_id: ben.response.identity_id.clone(),
            credential_id: ben.credential_id().to_owned(),
        })
        .await
        .expect("revoke the phone");

    let err = phone
        .get_status(v1::GetStatusRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert_eq!(reason(&err), "CREDENTIAL_INVALID");
    assert_eq!(metadata(&err, "why"), "revoked");
    let mut fresh = WebClient::connect(hub.addr, &ben.ca_pem, b"h2", None).await;
    let err = fresh
        .unary::<v1::GetStatusResponse>(
            GET_STATUS,
            &v1::GetStatusRequest::default(),
            Framing::Text,
            &[("authorization", &authorization)],
        )
        .await
        .unwrap_err();
    assert_eq!(metadata(&err, "why"), "revoked");

    // Both watches end, UNAUTHENTICATED.
    let ended = loop {
        match web_watch.next_watch_item().await {
            Ok(_) => continue,
            Err(status) => break status,
        }
    };
    assert_eq!(ended.code(), Code::Unauthenticated, "{ended:?}");
    let ended = loop {
        match tokio::time::timeout(Duration::from_secs(10), native_watch.message())
            .await
            .expect("the native watch ends within 10 s")
        {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the watch ended without an error"),
            Err(status) => break status,
        }
    };
    assert_eq!(ended.code(), Code::Unauthenticated);

    // Anna's own certificate keeps working.
    household
        .get_status(v1::GetStatusRequest::default())
        .await
        .expect("Anna still gets in");
}

#[tokio::test(flavor = "multi_thread")]
async fn no_token_reaches_the_hubs_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("hub.log");
    let data = dir.path().join("hub");
    let mut hub = Hub::start_logging(&data, "trace", &log);
    let code = hub.invite("guardian", "Anna", None);
    let anna = common::enroll(hub.addr, &code).await.unwrap();
    let mut household = common::guardian(hub.addr, &anna).await;
    let invite = common::invite_guardian(&mut household, "Ben").await;
    let ben = pair_phone(&hub, &invite.pairing_code, "Ben's phone")
        .await
        .unwrap();
    let authorization = format!("Bearer {}", ben.token);

    // Calls that work, over gRPC and gRPC-Web, and calls that are refused.
    let mut phone = ben.household(hub.addr).await;
    phone
        .get_status(v1::GetStatusRequest::default())
        .await
        .unwrap();
    phone
        .add_child(v1::AddChildRequest {
            display_name: "Mia".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    for (alpn, framing) in [
        (&b"http/1.1"[..], Framing::Text),
        (&b"h2"[..], Framing::Binary),
    ] {
        let mut web = WebClient::connect(hub.addr, &ben.ca_pem, alpn, None).await;
        let _: v1::GetStatusResponse = web
            .unary(
                GET_STATUS,
                &v1::GetStatusRequest::default(),
                framing,
                &[("authorization", &authorization)],
            )
            .await
            .unwrap();
        let _ = web
            .unary::<()>(
                "/household.v1.Agent/Session",
                &(),
                framing,
                &[("authorization", &authorization)],
            )
            .await
            .unwrap_err();
        let malformed = format!("{authorization}!");
        let _ = web
            .unary::<v1::GetStatusResponse>(
                GET_STATUS,
                &v1::GetStatusRequest::default(),
                framing,
                &[("authorization", &malformed)],
            )
            .await
            .unwrap_err();
        let reply = web
            .call(
                GET_STATUS,
                &v1::GetStatusRequest::default(),
                framing,
                &[
                    ("authorization", &authorization),
                    ("origin", "https://evil.example"),
                ],
            )
            .await;
        assert_eq!(reply.http_status, StatusCode::FORBIDDEN);
    }
    household
        .revoke_credential(v1::RevokeCredentialRequest {
            identity_id: ben.response.identity_id.clone(),
            credential_id: ben.credential_id().to_owned(),
        })
        .await
        .unwrap();
    phone
        .get_status(v1::GetStatusRequest::default())
        .await
        .unwrap_err();
    let (status, _) = hub.terminate();
    assert!(status.success());

    let logged = std::fs::read_to_string(&log).expect("the hub's log");
    // The log was on, at every level, and saw the phone come and go.
    assert!(
        logged.contains("household hub serving on"),
        "stdout is in the log"
    );
    assert!(logged.contains("TRACE"), "trace lines are in the log");
    assert!(
        logged.contains(ben.credential_id()),
        "the phone's credential id is"
    );
    assert!(logged.contains("call refused"), "refusals are");
    let secret = &ben.token["hht1.".len()..];
    for (number, line) in logged.lines().enumerate() {
        assert!(
            !line.contains(secret),
            "line {} of the hub's log holds the token: {line}",
            number + 1
        );
    }
}

/// The body of a GET answer, unzipped only in the sense that the test asked for none.
async fn body_of(response: Response<Incoming>) -> Vec<u8> {
    response
        .into_body()
        .collect()
        .await
        .expect("the body")
        .to_bytes()
        .to_vec()
}

/// The DER certificates in a PEM text, to compare PEMs that may differ in layout.
fn ders(pem: &[u8]) -> Vec<Vec<u8>> {
    CertificateDer::pem_slice_iter(pem)
        .map(|cert| cert.expect("a certificate").to_vec())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_hub_serves_the_web_app_and_its_ca_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, _anna, ben) = hub_with_a_phone(dir.path()).await;
    for alpn in [&b"http/1.1"[..], &b"h2"[..]] {
        let mut web = WebClient::connect(hub.addr, &ben.ca_pem, alpn, None).await;

        // The app's page, at / and at /pair (the code stays in the fragment).
        for path in ["/", "/pair"] {
            let response = web
                .send(
                    web.request("GET", path)
                        .body(Full::new(Bytes::new()))
                        .unwrap(),
                )
                .await;
            assert_eq!(response.status(), StatusCode::OK, "{alpn:?} {path}");
            let headers = response.headers().clone();
            assert_eq!(headers["content-type"], "text/html; charset=utf-8");
            assert_eq!(headers["cache-control"], "no-cache");
            assert_eq!(headers["x-content-type-options"], "nosniff");
            let csp = headers["content-security-policy"].to_str().unwrap();
            assert!(csp.starts_with("default-src 'self'"), "{csp}");
            assert!(!csp.contains("unsafe"), "{csp}");
            let page = String::from_utf8(body_of(response).await).unwrap();
            assert!(page.contains("<main id=\"app\""), "{page}");

            // The script it loads, by its hashed name, cached for good.
            let script = page
                .split("src=\"/")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .expect("a script in the page")
                .to_owned();
            let response = web
                .send(
                    web.request("GET", &format!("/{script}"))
                        .header("accept-encoding", "gzip, deflate, br")
                        .body(Full::new(Bytes::new()))
                        .unwrap(),
                )
                .await;
            assert_eq!(response.status(), StatusCode::OK, "{script}");
            assert_eq!(response.headers()["content-encoding"], "gzip");
            assert_eq!(
                response.headers()["content-type"],
                "text/javascript; charset=utf-8"
            );
            assert_eq!(
                response.headers()["cache-control"],
                "public, max-age=31536000, immutable"
            );
            let zipped = body_of(response).await;
            assert_eq!(&zipped[..2], &[0x1f, 0x8b], "a gzip stream");
        }

        // The household CA, the very certificate the phone's code names.
        let response = web
            .send(
                web.request("GET", "/ca.pem")
                    .body(Full::new(Bytes::new()))
                    .unwrap(),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["content-type"],
            "application/x-x509-ca-cert"
        );
        let pem = body_of(response).await;
        assert_eq!(ders(&pem), ders(ben.ca_pem.as_bytes()));

        // The manifest, and nothing for names the app does not have.
        let response = web
            .send(
                web.request("GET", "/manifest.webmanifest")
                    .body(Full::new(Bytes::new()))
                    .unwrap(),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["content-type"],
            "application/manifest+json"
        );
        let response = web
            .send(
                web.request("HEAD", "/")
                    .body(Full::new(Bytes::new()))
                    .unwrap(),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(body_of(response).await.is_empty());

        // A GET from another site's page is still refused before anything is served.
        let response = web
            .send(
                web.request("GET", "/ca.pem")
                    .header("origin", "https://evil.example")
                    .body(Full::new(Bytes::new()))
                    .unwrap(),
            )
            .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_hubs_own_invite_shows_a_phones_pairing_page_as_a_qr_code() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(dir.path());
    let invite = |extra: &[&str]| {
        std::process::Command::new(common::BIN)
            .args(["invite", "--role", "guardian", "--name", "Ben"])
            .arg("--admin-socket")
            .arg(&hub.admin_socket)
            .args(extra)
            .output()
            .expect("run household-hub invite")
    };
    let output = invite(&["--qr", "--address", "hub.example:7443"]);
    assert!(output.status.success(), "{output:?}");
    let printed = String::from_utf8(output.stdout).expect("utf-8");
    let lines: Vec<&str> = printed.lines().collect();
    let code = lines[lines.len() - 1];
    assert!(code.starts_with("hh1."), "{printed}");
    assert_eq!(
        lines[lines.len() - 2],
        format!("or open on the phone: https://hub.example:7443/pair#{code}")
    );
    assert!(
        lines.iter().filter(|l| l.contains('█')).count() >= 10,
        "{printed}"
    );
    // The code the picture carries pairs a phone.
    pair_phone(&hub, code, "Ben's phone")
        .await
        .expect("the code pairs a phone");

    let device = std::process::Command::new(common::BIN)
        .args(["invite", "--role", "device", "--name", "Tab", "--qr"])
        .arg("--admin-socket")
        .arg(&hub.admin_socket)
        .output()
        .expect("run household-hub invite");
    assert!(!device.status.success());
    assert!(
        String::from_utf8_lossy(&device.stderr).contains("--qr is for a guardian's phone"),
        "{device:?}"
    );
}
