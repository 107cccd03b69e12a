//! Who is calling: a tower layer in front of every gRPC service on the TLS port turns
//! the client certificate, or a guardian phone's bearer token (`authorization: Bearer
//! …`), into a [`Principal`], enforces the role each service needs, applies the
//! per-identity rate limit, and counts the call for the metrics.
//!
//! The role matrix lives here, once, keyed by the gRPC path:
//!
//! | path | who may call | bearer token |
//! | --- | --- | --- |
//! | `household.v1.Agent/Enroll`, `household.v1.Agent/Adopt` | anyone with TLS | ignored (they need no credential) |
//! | `grpc.health.v1.*`, `grpc.reflection.*` | anyone with TLS | accepted |
//! | `household.v1.Household/*` | guardians | accepted |
//! | `household.v1.Agent/Session` | devices | refused |
//! | `household.v1.Agent/RenewCertificate` | guardians and devices | refused |
//! | anything else | (nothing else is served) | refused |
//!
//! A certificate the household CA signed is not enough: its fingerprint must be a
//! credential in the registry, neither it nor its identity revoked. A token must be one
//! the registry holds the SHA-256 of, unrevoked and unexpired ([`crate::token`]). A call
//! carrying both a certificate and an `authorization` header is refused: one call, one
//! credential. Tokens stop at the Household service (and health and reflection), so a
//! stolen phone's token can never open a device session or be turned into a
//! certificate. The Admin service is not behind this layer at all; it is served only on
//! the owner-only UNIX socket.
//!
//! Nothing here logs a header: a refusal is logged with the path and the error, and no
//! error's text contains the token.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use tonic::codegen::http;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tower::{Layer, Service};

use crate::error::HubError;
use crate::metrics::Metrics;
use crate::registry::{Registry, Role};
use crate::token::{self, BearerToken, TokenFault};

/// The caller of an RPC, as the certificate and the registry say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A guardian, with the credential used.
    Guardian {
        guardian_id: String,
        credential_id: String,
    },
    /// A child's device.
    Device {
        device_id: String,
        child_id: String,
        credential_id: String,
    },
    /// A TLS client without a household credential (enrollment, health, reflection).
    Anonymous,
}

impl Principal {
    /// The principal the layer attached to a request.
    pub fn of<T>(request: &tonic::Request<T>) -> Principal {
        request
            .extensions()
            .get::<Principal>()
            .cloned()
            .unwrap_or(Principal::Anonymous)
    }

    /// The guardian calling, or `CredentialMissing` (the layer already refused
    /// everyone else; this keeps handlers honest).
    pub fn guardian(&self) -> Result<(&str, &str), HubError> {
        match self {
            Principal::Guardian {
                guardian_id,
                credential_id,
            } => Ok((guardian_id, credential_id)),
            _ => Err(HubError::CredentialMissing),
        }
    }

    /// The actor events record for this caller.
    pub fn actor(&self) -> household_proto::v1::Actor {
        use household_proto::v1::{Actor, SystemActor, actor::Kind};
        match self {
            Principal::Guardian {
                guardian_id,
                credential_id,
            } => Actor {
                kind: Some(Kind::GuardianId(guardian_id.clone())),
                credential_id: credential_id.clone(),
            },
            Principal::Device {
                device_id,
                credential_id,
                ..
            } => Actor {
                kind: Some(Kind::DeviceId(device_id.clone())),
                credential_id: credential_id.clone(),
            },
            Principal::Anonymous => Actor {
                kind: Some(Kind::System(SystemActor {
                    reason: "enrollment".into(),
                })),
                credential_id: String::new(),
            },
        }
    }

    /// The key rate limits are counted under: the identity, or the address.
    fn limit_key(&self, peer: Option<IpAddr>) -> String {
        match self {
            Principal::Guardian { guardian_id, .. } => guardian_id.clone(),
            Principal::Device { device_id, .. } => device_id.clone(),
            Principal::Anonymous => peer.map_or_else(|| "unknown".into(), |ip| ip.to_string()),
        }
    }
}

/// What a path requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    Nothing,
    Guardian,
    Device,
    AnyIdentity,
}

/// What a path does with a bearer token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenUse {
    /// The token is the caller's credential.
    Accepted,
    /// The path needs no credential; a token sent along is not looked at.
    Ignored,
    /// Only certificates (or nothing) may call it.
    Refused,
}

fn token_use(path: &str) -> TokenUse {
    if path == "/household.v1.Agent/Enroll" || path == "/household.v1.Agent/Adopt" {
        TokenUse::Ignored
    } else if path.starts_with("/household.v1.Household/")
        || path.starts_with("/grpc.health.v1.")
        || path.starts_with("/grpc.reflection.")
    {
        TokenUse::Accepted
    } else {
        TokenUse::Refused
    }
}

fn need_of(path: &str) -> Need {
    if path == "/household.v1.Agent/Enroll"
        || path == "/household.v1.Agent/Adopt"
        || path.starts_with("/grpc.health.v1.")
        || path.starts_with("/grpc.reflection.")
    {
        Need::Nothing
    } else if path.starts_with("/household.v1.Household/") {
        Need::Guardian
    } else if path == "/household.v1.Agent/Session" {
        Need::Device
    } else {
        Need::AnyIdentity
    }
}

/// A token bucket per caller: `burst` calls at once, refilled at `per_second`.
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// A limiter; `per_second` of 0 turns it off.
    pub fn new(per_second: f64, burst: f64) -> RateLimiter {
        RateLimiter {
            per_second,
            burst,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `key` has a token left, without taking it.
    pub fn peek(&self, key: &str) -> Result<(), Duration> {
        if self.per_second <= 0.0 {
            return Ok(());
        }
        let buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let Some((tokens, at)) = buckets.get(key) else {
            return Ok(());
        };
        let tokens = (tokens + at.elapsed().as_secs_f64() * self.per_second).min(self.burst);
        if tokens >= 1.0 {
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - tokens) / self.per_second))
        }
    }

    /// Takes one token for `key`, or says how long until one is there.
    pub fn take(&self, key: &str) -> Result<(), Duration> {
        if self.per_second <= 0.0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() > 10_000 {
            // Forget full buckets, so addresses that came once do not pile up.
            let (rate, burst) = (self.per_second, self.burst);
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * rate < burst
            });
        }
        let (tokens, at) = buckets.entry(key.to_owned()).or_insert((self.burst, now));
        *tokens =
            (*tokens + now.duration_since(*at).as_secs_f64() * self.per_second).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / self.per_second))
        }
    }
}

/// Everything the layer needs to decide.
pub struct Gate {
    pub registry: Arc<Registry>,
    pub limiter: RateLimiter,
    pub metrics: Arc<Metrics>,
    /// When each credential was last accepted (µs), for ListCredentials.
    pub last_used: Mutex<HashMap<String, i64>>,
}

impl Gate {
    /// The principal a request's certificate or bearer token names, or why it is
    /// refused.
    fn admit<B>(&self, request: &http::Request<B>) -> Result<Principal, HubError> {
        let path = request.uri().path();
        let need = need_of(path);
        let info = request.extensions().get::<TlsConnectInfo<TcpConnectInfo>>();
        let peer_ip = info.and_then(|i| i.get_ref().remote_addr()).map(|a| a.ip());
        let cert = info
            .and_then(|i| i.peer_certs())
            .and_then(|certs| certs.first().map(|c| c.as_ref().to_vec()));
        let mut authorization = request
            .headers()
            .get_all(http::header::AUTHORIZATION)
            .iter();
        let header = authorization.next();
        if header.is_some() && authorization.next().is_some() {
            return Err(HubError::TokenRefused {
                fault: TokenFault::Malformed,
            });
        }
        let principal = match (cert, header) {
            (Some(_), Some(_)) => return Err(HubError::CredentialAmbiguous),
            (Some(der), None) => self.principal_of(&der)?,
            (None, Some(header)) => match token_use(path) {
                TokenUse::Accepted => self.token_principal(header.as_bytes())?,
                TokenUse::Ignored => Principal::Anonymous,
                TokenUse::Refused => {
                    return Err(HubError::BearerTokenNotAccepted {
                        method: path.trim_start_matches('/').to_owned(),
                    });
                }
            },
            (None, None) => Principal::Anonymous,
        };
        let method = path.rsplit('/').next().unwrap_or(path).to_owned();
        match (need, &principal) {
            (Need::Nothing, _) => {}
            (_, Principal::Anonymous) => return Err(HubError::CredentialMissing),
            (Need::Guardian, Principal::Device { .. }) => {
                return Err(HubError::GuardianRoleRequired { method });
            }
            (Need::Device, Principal::Guardian { .. }) => {
                return Err(HubError::DeviceRoleRequired { method });
            }
            _ => {}
        }
        self.limiter
            .take(&principal.limit_key(peer_ip))
            .map_err(|retry_after| HubError::RateLimited { retry_after })?;
        Ok(principal)
    }

    /// The guardian an `authorization: Bearer …` header names. A use pushes the token's
    /// expiry forward (written at most hourly, see [`token::renewed_expiry`]).
    fn token_principal(&self, header: &[u8]) -> Result<Principal, HubError> {
        let refused = |fault| HubError::TokenRefused { fault };
        let token = BearerToken::from_authorization(header).map_err(refused)?;
        let now = Timestamp::now().as_microsecond();
        let (credential_id, identity) = self
            .registry
            .token_holder(&token.digest())?
            .ok_or(refused(TokenFault::Unknown))?;
        let credential = token::check(&identity, &credential_id, now).map_err(refused)?;
        if let Some(expires) = token::renewed_expiry(credential.expires_unix_micros, now) {
            // The call is good either way; a failed write is made again at the next use.
            if let Err(err) =
                self.registry
                    .extend_expiry(&identity.identity_id, &credential_id, expires)
            {
                tracing::warn!(credential = %credential_id, error = %err, "could not extend a token's expiry");
            }
        }
        self.last_used
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(credential_id.clone(), now);
        Ok(Principal::Guardian {
            guardian_id: identity.identity_id,
            credential_id,
        })
    }

    fn principal_of(&self, der: &[u8]) -> Result<Principal, HubError> {
        let credential_id = crate::trust::sha256_hex(der);
        let now = Timestamp::now().as_microsecond();
        let identity = self
            .registry
            .authenticate(&credential_id, now)?
            .ok_or(HubError::CredentialInvalid)?;
        self.last_used
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(credential_id.clone(), now);
        Ok(match identity.role {
            Role::Guardian => Principal::Guardian {
                guardian_id: identity.identity_id,
                credential_id,
            },
            Role::Device => Principal::Device {
                device_id: identity.identity_id,
                child_id: identity.child_id,
                credential_id,
            },
        })
    }

    /// When a credential was last accepted since the hub started; 0 if not.
    pub fn last_used(&self, credential_id: &str) -> i64 {
        self.last_used
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(credential_id)
            .copied()
            .unwrap_or(0)
    }
}

/// The tower layer; see the module docs.
#[derive(Clone)]
pub struct GateLayer {
    gate: Arc<Gate>,
}

impl GateLayer {
    /// A layer deciding with `gate`.
    pub fn new(gate: Arc<Gate>) -> GateLayer {
        GateLayer { gate }
    }
}

impl<S> Layer<S> for GateLayer {
    type Service = GateService<S>;

    fn layer(&self, inner: S) -> GateService<S> {
        GateService {
            inner,
            gate: self.gate.clone(),
        }
    }
}

/// The service [`GateLayer`] wraps around the router.
#[derive(Clone)]
pub struct GateService<S> {
    inner: S,
    gate: Arc<Gate>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> Service<http::Request<B>> for GateService<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let path = request.uri().path().to_owned();
        let metrics = self.gate.metrics.clone();
        match self.gate.admit(&request) {
            Ok(principal) => {
                request.extensions_mut().insert(principal);
                // Take the service that was driven to readiness; leave a fresh clone.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                Box::pin(async move {
                    let response = inner.call(request).await?;
                    Ok(metrics.count_response(&path, response))
                })
            }
            Err(err) => {
                tracing::debug!(%path, error = %err, "call refused");
                let response = tonic::Status::from(err).into_http();
                Box::pin(async move { Ok(metrics.count_response(&path, response)) })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_role_matrix_names_every_service() {
        assert_eq!(need_of("/household.v1.Agent/Enroll"), Need::Nothing);
        assert_eq!(need_of("/household.v1.Agent/Adopt"), Need::Nothing);
        assert_eq!(need_of("/grpc.health.v1.Health/Check"), Need::Nothing);
        assert_eq!(
            need_of("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"),
            Need::Nothing
        );
        assert_eq!(need_of("/household.v1.Household/GrantTime"), Need::Guardian);
        assert_eq!(need_of("/household.v1.Agent/Session"), Need::Device);
        assert_eq!(
            need_of("/household.v1.Agent/RenewCertificate"),
            Need::AnyIdentity
        );
        assert_eq!(
            need_of("/household.v1.Admin/CreateInvite"),
            Need::AnyIdentity
        );
    }

    #[test]
    fn bearer_tokens_open_the_guardian_service_and_nothing_that_needs_a_device() {
        assert_eq!(
            token_use("/household.v1.Household/GetStatus"),
            TokenUse::Accepted
        );
        assert_eq!(
            token_use("/household.v1.Household/Watch"),
            TokenUse::Accepted
        );
        assert_eq!(
            token_use("/grpc.health.v1.Health/Check"),
            TokenUse::Accepted
        );
        assert_eq!(
            token_use("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"),
            TokenUse::Accepted
        );
        assert_eq!(token_use("/household.v1.Agent/Enroll"), TokenUse::Ignored);
        assert_eq!(token_use("/household.v1.Agent/Adopt"), TokenUse::Ignored);
        assert_eq!(token_use("/household.v1.Agent/Session"), TokenUse::Refused);
        assert_eq!(
            token_use("/household.v1.Agent/RenewCertificate"),
            TokenUse::Refused
        );
        assert_eq!(
            token_use("/household.v1.Admin/RevokeIdentity"),
            TokenUse::Refused
        );
        assert_eq!(token_use("/household.v1.HouseholdX/Any"), TokenUse::Refused);
        assert_eq!(token_use("/"), TokenUse::Refused);
    }

    #[test]
    fn the_rate_limiter_refills_and_says_when() {
        let limiter = RateLimiter::new(10.0, 2.0);
        assert!(limiter.take("g").is_ok());
        assert!(limiter.take("g").is_ok());
        let wait = limiter.take("g").unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(100));
        assert!(limiter.take("other").is_ok(), "buckets are per caller");
    }
}
