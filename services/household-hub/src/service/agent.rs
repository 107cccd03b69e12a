//! `household.v1.Agent`: enrollment (the one door open without a credential),
//! certificate renewal, and the devices' sessions (in [`crate::service::session`]).

use std::net::IpAddr;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;

use household_proto::pairing::PairingCode;
use household_proto::v1::{self, agent_server::Agent, event::Payload};
use jiff::Timestamp;
use tokio_stream::Stream;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tonic::{Request, Response, Status, Streaming};

use crate::auth::{Principal, RateLimiter};
use crate::error::HubError;
use crate::hub::Hub;
use crate::ids;
use crate::registry::{CredentialKind, CredentialRecord, IdentityRecord, Role};
use crate::token::{self, BearerToken};
use crate::trust::{ClientRole, ClientSubject};

/// The Agent service.
pub struct AgentService {
    hub: Arc<Hub>,
    /// Failed pairing codes per address: a neighbour guessing codes is slowed to a
    /// handful a minute (128-bit secrets make guessing hopeless anyway).
    failures: RateLimiter,
}

impl AgentService {
    /// The service over a hub.
    pub fn new(hub: Arc<Hub>) -> AgentService {
        AgentService {
            hub,
            failures: RateLimiter::new(10.0 / 60.0, 10.0),
        }
    }

    fn issue(
        &self,
        csr_pem: &str,
        role: Role,
        identity_id: &str,
        label: &str,
    ) -> Result<(v1::IssuedCertificate, CredentialRecord), HubError> {
        let subject = ClientSubject {
            role: match role {
                Role::Guardian => ClientRole::Guardian,
                Role::Device => ClientRole::Device,
            },
            identity_id: identity_id.to_owned(),
        };
        let issued = self
            .hub
            .ca
            .sign_client_csr(csr_pem, &subject, self.hub.limits.certificate_validity)
            .map_err(|e| {
                HubError::invalid(
                    "csr_pem",
                    format_args!("is not a usable certificate request: {e}"),
                )
            })?;
        let record = CredentialRecord {
            credential_id: issued.sha256_hex.clone(),
            kind: CredentialKind::Certificate,
            label: label.to_owned(),
            issued_unix_micros: Timestamp::now().as_microsecond(),
            expires_unix_micros: issued.not_after_unix_micros,
            revoked: false,
            invited_by: String::new(),
        };
        Ok((
            v1::IssuedCertificate {
                certificate_chain_pem: issued.chain_pem,
                expires_unix_micros: issued.not_after_unix_micros,
                certificate_sha256_hex: issued.sha256_hex,
            },
            record,
        ))
    }

    async fn enroll_checked(
        &self,
        body: v1::EnrollRequest,
    ) -> Result<v1::EnrollResponse, HubError> {
        let code = PairingCode::from_str(&body.pairing_code)
            .map_err(|e| HubError::invalid("pairing_code", format_args!("is malformed: {e}")))?;
        if code.ca_sha256() != &self.hub.ca.sha256() {
            return Err(HubError::PairingCodeInvalid);
        }
        crate::validate::note("hostname", &body.hostname)?;
        let now = Timestamp::now().as_microsecond();
        let invite = self
            .hub
            .registry
            .live_invite(code.secret(), now)?
            .ok_or(HubError::PairingCodeInvalid)?;
        check_expected_role(body.expected_role(), invite.role)?;
        let wanted = match body.credential {
            Some(v1::enroll_request::Credential::CsrPem(csr)) => Wanted::Certificate(csr),
            Some(v1::enroll_request::Credential::BearerToken(_)) if invite.role == Role::Device => {
                return Err(HubError::BearerTokenForDevice);
            }
            Some(v1::enroll_request::Credential::BearerToken(spec)) => Wanted::Token {
                label: crate::validate::display_name("bearer_token.label", &spec.label)?,
            },
            None => {
                return Err(HubError::invalid(
                    "credential",
                    "is required: csr_pem (a certificate request) or bearer_token (guardians' web app)",
                ));
            }
        };
        if invite.role == Role::Device && self.hub.read().device(&invite.identity_id).is_none() {
            // The device was removed after its invite was made.
            return Err(HubError::PairingCodeInvalid);
        }
        let (identity, credential, credential_id) = match wanted {
            Wanted::Certificate(csr_pem) => {
                let (certificate, record) =
                    self.issue(&csr_pem, invite.role, &invite.identity_id, &body.hostname)?;
                let identity = self
                    .hub
                    .registry
                    .redeem_invite(code.secret(), record, None)?;
                let credential_id = certificate.certificate_sha256_hex.clone();
                (
                    identity,
                    v1::enroll_response::Credential::Certificate(certificate),
                    credential_id,
                )
            }
            Wanted::Token { label } => {
                let token = BearerToken::generate();
                let record = CredentialRecord {
                    credential_id: ids::new("tok"),
                    kind: CredentialKind::BearerToken,
                    label,
                    issued_unix_micros: now,
                    expires_unix_micros: token::first_expiry(now),
                    revoked: false,
                    invited_by: String::new(),
                };
                let credential_id = record.credential_id.clone();
                let identity = self.hub.registry.redeem_invite(
                    code.secret(),
                    record,
                    Some(&token.digest()),
                )?;
                (
                    identity,
                    v1::enroll_response::Credential::BearerToken(token.expose()),
                    credential_id,
                )
            }
        };
        self.log_enrollment(&identity, &credential, &credential_id, &body.platform)
            .await?;
        tracing::info!(
            identity = %identity.identity_id,
            role = ?identity.role,
            credential = %credential_id,
            "enrolled"
        );
        Ok(v1::EnrollResponse {
            role: identity.role.to_proto() as i32,
            identity_id: identity.identity_id,
            display_name: identity.display_name,
            child_id: identity.child_id,
            ca_certificate_pem: self.hub.ca.cert_pem().to_owned(),
            credential: Some(credential),
            credential_id,
            household_id: self.hub.household_id.clone(),
        })
    }

    /// Logs DEVICE_ENROLLED or GUARDIAN_ENROLLED, with the new credential as the actor's,
    /// so history names the phone or computer that joined.
    async fn log_enrollment(
        &self,
        identity: &IdentityRecord,
        credential: &v1::enroll_response::Credential,
        credential_id: &str,
        platform: &str,
    ) -> Result<(), HubError> {
        let certificate_sha256_hex = match credential {
            v1::enroll_response::Credential::Certificate(c) => c.certificate_sha256_hex.clone(),
            v1::enroll_response::Credential::BearerToken(_) => String::new(),
        };
        let (child_id, device_id, payload, actor) = match identity.role {
            Role::Device => (
                identity.child_id.clone(),
                identity.identity_id.clone(),
                Payload::DeviceEnrolled(v1::DeviceEnrolled {
                    display_name: identity.display_name.clone(),
                    platform: platform.to_owned(),
                    certificate_sha256_hex,
                }),
                v1::actor::Kind::DeviceId(identity.identity_id.clone()),
            ),
            Role::Guardian => (
                String::new(),
                String::new(),
                Payload::GuardianEnrolled(v1::GuardianEnrolled {
                    display_name: identity.display_name.clone(),
                    certificate_sha256_hex,
                }),
                v1::actor::Kind::GuardianId(identity.identity_id.clone()),
            ),
        };
        let credential_id = credential_id.to_owned();
        self.hub
            .writer
            .write(move |txn| {
                txn.append(v1::Event {
                    actor: Some(v1::Actor {
                        kind: Some(actor),
                        credential_id,
                    }),
                    child_id,
                    device_id,
                    payload: Some(payload),
                    ..Default::default()
                });
                Ok(())
            })
            .await
    }
}

impl AgentService {
    /// Agent.Adopt: the offer, or the answer to the hub's proof.
    async fn adopt_checked(&self, body: v1::AdoptRequest) -> Result<v1::AdoptResponse, HubError> {
        use household_client::adopt::NONCE_BYTES;
        let key_sha256_hex = crate::trust::csr_key_sha256_hex(&body.csr_pem).map_err(|e| {
            HubError::invalid(
                "csr_pem",
                format_args!("is not a usable certificate request: {e}"),
            )
        })?;
        crate::validate::note("hostname", &body.hostname)?;
        let agent_nonce: [u8; NONCE_BYTES] =
            body.agent_nonce.as_slice().try_into().map_err(|_| {
                HubError::invalid("agent_nonce", format_args!("must be {NONCE_BYTES} bytes"))
            })?;
        let ca = self.hub.ca.sha256_hex();
        if body.hub_nonce.is_empty() {
            return Ok(
                match self.hub.adoptions.offer(&key_sha256_hex, &ca, agent_nonce) {
                    Some((hub_nonce, hub_proof)) => v1::AdoptResponse {
                        pending: true,
                        hub_nonce: hub_nonce.to_vec(),
                        hub_proof: hub_proof.to_vec(),
                        enrollment: None,
                    },
                    None => v1::AdoptResponse::default(),
                },
            );
        }
        if body.hub_nonce.len() != NONCE_BYTES {
            return Err(HubError::invalid(
                "hub_nonce",
                format_args!("must be empty (an offer) or {NONCE_BYTES} bytes"),
            ));
        }
        let proof = (!body.refused).then_some(body.agent_proof.as_slice());
        let confirmed = self.hub.adoptions.answer(
            &key_sha256_hex,
            &ca,
            &agent_nonce,
            &body.hub_nonce,
            proof,
        )?;
        let request = confirmed.request;
        match self.enroll_adopted(&request, &body).await {
            Ok((device, enrollment)) => {
                self.hub.network.adopted(&key_sha256_hex);
                tracing::info!(
                    host = %request.host_name,
                    device = %device.device_id,
                    "adopted an agent heard on the network"
                );
                let _ = confirmed.done.send(Ok(device));
                Ok(v1::AdoptResponse {
                    enrollment: Some(enrollment),
                    ..Default::default()
                })
            }
            Err(err) => {
                let _ = confirmed.done.send(Err(HubError::AdoptionRefused {
                    reason: "ADOPTION_FAILED",
                    message: format!("the device could not be enrolled: {err}"),
                }));
                Err(err)
            }
        }
    }

    /// Adds the adopted agent's device (as AddDevice would, by the adopting guardian),
    /// makes its pairing code, and redeems it at once with the agent's own CSR: the
    /// same enrollment as Agent.Enroll, only the code never leaves the hub.
    async fn enroll_adopted(
        &self,
        request: &crate::adoption::Request,
        body: &v1::AdoptRequest,
    ) -> Result<(v1::Device, v1::EnrollResponse), HubError> {
        let (actor, child_id, display_name) = (
            request.actor.clone(),
            request.child_id.clone(),
            request.display_name.clone(),
        );
        let event = self
            .hub
            .writer
            .write(move |txn| {
                if txn.household().child(&child_id).is_none() {
                    return Err(HubError::no_child(&child_id));
                }
                Ok(txn.append(v1::Event {
                    actor: Some(actor),
                    child_id,
                    device_id: ids::new("d"),
                    payload: Some(Payload::DeviceAdded(v1::DeviceAdded {
                        display_name,
                        kind: v1::DeviceKind::Agent as i32,
                        legacy_address: String::new(),
                    })),
                    ..Default::default()
                }))
            })
            .await?;
        let invite = crate::invite::issue(
            &self.hub,
            &crate::invite::Invitee {
                role: Role::Device,
                identity_id: event.device_id.clone(),
                display_name: request.display_name.clone(),
                child_id: request.child_id.clone(),
                invited_by: String::new(),
            },
            event.time_unix_micros,
            1,
            None,
        )?;
        let enrollment = self
            .enroll_checked(v1::EnrollRequest {
                pairing_code: invite.pairing_code,
                credential: Some(v1::enroll_request::Credential::CsrPem(body.csr_pem.clone())),
                hostname: body.hostname.clone(),
                platform: body.platform.clone(),
                software_version: body.software_version.clone(),
                expected_role: v1::Role::Device as i32,
            })
            .await?;
        let device = self
            .hub
            .read()
            .device(&event.device_id)
            .cloned()
            .ok_or_else(|| HubError::no_device(&event.device_id))?;
        Ok((device, enrollment))
    }
}

/// The credential an Enroll call asks for.
enum Wanted {
    /// A certificate for this CSR (PEM).
    Certificate(String),
    /// A bearer token, labelled for the guardian's list of credentials.
    Token { label: String },
}

fn peer_ip<T>(request: &Request<T>) -> Option<IpAddr> {
    request
        .extensions()
        .get::<TlsConnectInfo<TcpConnectInfo>>()
        .and_then(|info| info.get_ref().remote_addr())
        .map(|addr| addr.ip())
}

type SessionStream = Pin<Box<dyn Stream<Item = Result<v1::SessionResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Agent for AgentService {
    async fn enroll(
        &self,
        request: Request<v1::EnrollRequest>,
    ) -> Result<Response<v1::EnrollResponse>, Status> {
        let peer = peer_ip(&request).map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
        if let Err(retry_after) = self.failures.peek(&peer) {
            return Err(HubError::RateLimited { retry_after }.into());
        }
        match self.enroll_checked(request.into_inner()).await {
            Ok(response) => Ok(Response::new(response)),
            Err(err) => {
                if matches!(err, HubError::PairingCodeInvalid) {
                    tracing::warn!(%peer, "enrollment with an invalid pairing code");
                    let _ = self.failures.take(&peer);
                }
                Err(err.into())
            }
        }
    }

    async fn renew_certificate(
        &self,
        request: Request<v1::RenewCertificateRequest>,
    ) -> Result<Response<v1::RenewCertificateResponse>, Status> {
        let (role, identity_id) = match Principal::of(&request) {
            Principal::Guardian { guardian_id, .. } => (Role::Guardian, guardian_id),
            Principal::Device { device_id, .. } => (Role::Device, device_id),
            Principal::Anonymous => return Err(HubError::CredentialMissing.into()),
        };
        let body = request.into_inner();
        let (certificate, record) = self.issue(&body.csr_pem, role, &identity_id, "renewed")?;
        self.hub.registry.add_credential(&identity_id, record)?;
        Ok(Response::new(v1::RenewCertificateResponse {
            certificate: Some(certificate),
        }))
    }

    async fn adopt(
        &self,
        request: Request<v1::AdoptRequest>,
    ) -> Result<Response<v1::AdoptResponse>, Status> {
        Ok(Response::new(
            self.adopt_checked(request.into_inner()).await?,
        ))
    }

    type SessionStream = SessionStream;

    async fn session(
        &self,
        request: Request<Streaming<v1::SessionRequest>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        let principal = Principal::of(&request);
        let remote = peer_ip(&request)
            .map(|ip| ip.to_string())
            .unwrap_or_default();
        let stream = crate::service::session::open(
            self.hub.clone(),
            principal,
            remote,
            request.into_inner(),
        )?;
        Ok(Response::new(stream))
    }
}

/// A caller that says which role it enrolls as gets a refusal, before the code is
/// redeemed, when the code is for the other role.
fn check_expected_role(expected: v1::Role, invited: Role) -> Result<(), HubError> {
    let words = |role: Role| match role {
        Role::Guardian => "a guardian (household pair CODE)",
        Role::Device => "a device (child-agent enroll CODE)",
    };
    let matches = match expected {
        v1::Role::Unspecified => true,
        v1::Role::Guardian => invited == Role::Guardian,
        v1::Role::Device => invited == Role::Device,
    };
    if matches {
        Ok(())
    } else {
        Err(HubError::invalid(
            "expected_role",
            format!(
                "this pairing code is for {}; it was not used and still works there",
                words(invited)
            ),
        ))
    }
}
