//! The hub's one door for errors: every failure a caller can see is a [`HubError`], and
//! [`From<HubError> for tonic::Status`] is the only place that picks a gRPC code.
//!
//! Each status carries, besides the human message, a `google.rpc.ErrorInfo` with a
//! stable `reason` (the table in `docs/api.md`) and metadata a client can act on, and
//! invalid arguments a `google.rpc.BadRequest` naming the field. Clients branch on the
//! reason, never on the message.

use std::collections::HashMap;
use std::time::Duration;

use tonic::Code;
use tonic_types::{ErrorDetails, StatusExt};

/// The `ErrorInfo.domain` of every error the hub returns.
pub const ERROR_DOMAIN: &str = "household.v1";

/// What went wrong, in the household's words.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// A field is out of range or malformed; `message` is a sentence that names the
    /// field and the allowed values.
    #[error("{message}")]
    InvalidField { field: String, message: String },
    /// The idempotency key was used by this guardian for a different request.
    #[error(
        "idempotency_key {key:?} was already used for a different request (event seq {first_seq}); use a new key for a new action"
    )]
    IdempotencyKeyReused { key: String, first_seq: u64 },
    /// Another child or device already has this name.
    #[error("{field}: {name:?} is already taken in this household")]
    NameTaken { field: &'static str, name: String },
    /// A legacy device with that address or CST device ID is registered.
    #[error("a legacy device with that {what} is already registered as {device_id}")]
    LegacyDeviceExists {
        what: &'static str,
        device_id: String,
    },
    /// No such child, device, request, identity or credential.
    #[error("no {what} with id {id:?}")]
    NotFound { what: NotFoundKind, id: String },
    /// The policy changed since the caller read it.
    #[error(
        "the policy is at revision {current_revision} (written by {updated_by_name} at {updated_unix_micros} µs), not {expected}; read it again, reapply your change and retry"
    )]
    PolicyRevisionStale {
        expected: u64,
        current_revision: u64,
        updated_by: String,
        updated_by_name: String,
        updated_unix_micros: i64,
    },
    /// The child still has devices.
    #[error("the child still has devices ({}); remove them first", device_ids.join(", "))]
    ChildHasDevices { device_ids: Vec<String> },
    /// A request was already answered differently.
    #[error("the request was already {answer} by {resolved_by}")]
    RequestAlreadyAnswered {
        answer: String,
        resolved_by: String,
        resolved_unix_micros: i64,
    },
    /// A request's day ended before it was answered.
    #[error("the request expired at {expired_unix_micros} µs, when its day ended")]
    RequestExpired { expired_unix_micros: i64 },
    /// A bearer token was asked for with a device invite.
    #[error("devices enroll with a certificate request (csr_pem), not a bearer token")]
    BearerTokenForDevice,
    /// No client certificate or token came with a call that needs one.
    #[error("this call needs a household credential (a client certificate or a bearer token)")]
    CredentialMissing,
    /// The credential is unknown, expired or revoked.
    #[error("the credential is not valid in this household (unknown, expired or revoked)")]
    CredentialInvalid,
    /// A bearer token was refused; the fault says why (the token's holder may know).
    #[error("{fault}")]
    TokenRefused { fault: crate::token::TokenFault },
    /// The call carried both a client certificate and an `authorization` header, so it
    /// is not clear who acts.
    #[error(
        "the call carries both a client certificate and an authorization header; send one credential: the certificate (CLI, agents) or the bearer token (web app)"
    )]
    CredentialAmbiguous,
    /// A bearer token came with a call that only takes certificates.
    #[error(
        "{method} does not accept a bearer token: tokens are for the Household service; agents and the CLI use their client certificate"
    )]
    BearerTokenNotAccepted { method: String },
    /// The pairing code is unknown, expired or used.
    #[error("the pairing code is not valid (unknown, expired or already used)")]
    PairingCodeInvalid,
    /// A device called a guardian RPC.
    #[error("only guardians may call {method}")]
    GuardianRoleRequired { method: String },
    /// A guardian called a device RPC.
    #[error("only devices may call {method}")]
    DeviceRoleRequired { method: String },
    /// The caller is over its rate limit.
    #[error("too many calls; retry in {} ms", retry_after.as_millis())]
    RateLimited { retry_after: Duration },
    /// The caller already holds as many watches as allowed.
    #[error("at most {limit} watches may be open per credential")]
    TooManyWatches { limit: usize },
    /// A newer session of the same device took over.
    #[error("a newer session of this device replaced this one")]
    SessionReplaced,
    /// The agent broke the session's rules (Hello first, increasing outbox ids).
    #[error("{field}: {message}")]
    SessionProtocol {
        field: &'static str,
        message: String,
    },
    /// No agent of that name (or key prefix) was heard on the network.
    #[error(
        "no agent called {host:?} was heard on the network; `household devices list` shows those heard"
    )]
    NoNetworkDevice { host: String },
    /// An adoption cannot go on; `reason` is the stable tag, the message says why.
    #[error("{message}")]
    AdoptionRefused {
        reason: &'static str,
        message: String,
    },
    /// The agent did not ask the hub while a guardian waited to adopt it.
    #[error(
        "the device did not ask this hub within {} s; is its agent running, on this network, and does it hear the hub over mDNS?",
        waited.as_secs()
    )]
    AdoptionTimedOut { waited: Duration },
    /// The hub is shutting down.
    #[error("the hub is shutting down")]
    ShuttingDown,
    /// The event log or registry could not be written or read.
    #[error("the hub could not store or read its data: {0}")]
    Storage(String),
}

/// What a [`HubError::NotFound`] was looking for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotFoundKind {
    Child,
    Device,
    Request,
    Identity,
    Credential,
}

impl NotFoundKind {
    fn reason(self) -> &'static str {
        match self {
            NotFoundKind::Child => "CHILD_NOT_FOUND",
            NotFoundKind::Device => "DEVICE_NOT_FOUND",
            NotFoundKind::Request => "REQUEST_NOT_FOUND",
            NotFoundKind::Identity => "IDENTITY_NOT_FOUND",
            NotFoundKind::Credential => "CREDENTIAL_NOT_FOUND",
        }
    }
}

impl std::fmt::Display for NotFoundKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NotFoundKind::Child => "child",
            NotFoundKind::Device => "device",
            NotFoundKind::Request => "time request",
            NotFoundKind::Identity => "guardian or device",
            NotFoundKind::Credential => "credential",
        })
    }
}

impl HubError {
    /// An invalid field: `rule` says what is allowed ("must be 1 to 64 characters"),
    /// and the message reads "FIELD RULE".
    pub fn invalid(field: impl Into<String>, rule: impl std::fmt::Display) -> HubError {
        let field = field.into();
        HubError::InvalidField {
            message: format!("{field} {rule}"),
            field,
        }
    }

    /// No child with this id.
    pub fn no_child(id: &str) -> HubError {
        HubError::NotFound {
            what: NotFoundKind::Child,
            id: id.to_owned(),
        }
    }

    /// No device with this id.
    pub fn no_device(id: &str) -> HubError {
        HubError::NotFound {
            what: NotFoundKind::Device,
            id: id.to_owned(),
        }
    }

    /// A storage failure, from any error type.
    pub fn storage(err: impl std::fmt::Display) -> HubError {
        HubError::Storage(err.to_string())
    }

    fn code(&self) -> Code {
        match self {
            HubError::InvalidField { .. } | HubError::SessionProtocol { .. } => {
                Code::InvalidArgument
            }
            HubError::IdempotencyKeyReused { .. }
            | HubError::NameTaken { .. }
            | HubError::LegacyDeviceExists { .. } => Code::AlreadyExists,
            HubError::NotFound { .. } | HubError::NoNetworkDevice { .. } => Code::NotFound,
            HubError::AdoptionRefused { .. } => Code::FailedPrecondition,
            HubError::AdoptionTimedOut { .. } => Code::DeadlineExceeded,
            HubError::PolicyRevisionStale { .. } | HubError::SessionReplaced => Code::Aborted,
            HubError::ChildHasDevices { .. }
            | HubError::RequestAlreadyAnswered { .. }
            | HubError::RequestExpired { .. }
            | HubError::BearerTokenForDevice => Code::FailedPrecondition,
            HubError::CredentialMissing
            | HubError::CredentialInvalid
            | HubError::TokenRefused { .. }
            | HubError::CredentialAmbiguous
            | HubError::BearerTokenNotAccepted { .. }
            | HubError::PairingCodeInvalid => Code::Unauthenticated,
            HubError::GuardianRoleRequired { .. } | HubError::DeviceRoleRequired { .. } => {
                Code::PermissionDenied
            }
            HubError::RateLimited { .. } | HubError::TooManyWatches { .. } => {
                Code::ResourceExhausted
            }
            HubError::ShuttingDown | HubError::Storage(_) => Code::Unavailable,
        }
    }

    /// The stable `ErrorInfo.reason` and its metadata.
    fn reason_and_metadata(&self) -> (&'static str, Vec<(&'static str, String)>) {
        match self {
            HubError::InvalidField { field, .. } => {
                ("INVALID_FIELD", vec![("field", field.clone())])
            }
            HubError::IdempotencyKeyReused { key, first_seq } => (
                "IDEMPOTENCY_KEY_REUSED",
                vec![
                    ("idempotency_key", key.clone()),
                    ("first_seq", first_seq.to_string()),
                ],
            ),
            HubError::NameTaken { field, name } => (
                "NAME_TAKEN",
                vec![("field", (*field).to_owned()), ("name", name.clone())],
            ),
            HubError::LegacyDeviceExists { device_id, .. } => (
                "LEGACY_DEVICE_EXISTS",
                vec![("device_id", device_id.clone())],
            ),
            HubError::NotFound { what, id } => (what.reason(), vec![("id", id.clone())]),
            HubError::PolicyRevisionStale {
                current_revision,
                updated_by,
                updated_by_name,
                updated_unix_micros,
                ..
            } => (
                "POLICY_REVISION_STALE",
                vec![
                    ("current_revision", current_revision.to_string()),
                    ("updated_by", updated_by.clone()),
                    ("updated_by_name", updated_by_name.clone()),
                    ("updated_unix_micros", updated_unix_micros.to_string()),
                ],
            ),
            HubError::ChildHasDevices { device_ids } => (
                "CHILD_HAS_DEVICES",
                vec![("device_ids", device_ids.join(","))],
            ),
            HubError::RequestAlreadyAnswered {
                answer,
                resolved_by,
                resolved_unix_micros,
            } => (
                "REQUEST_ALREADY_ANSWERED",
                vec![
                    ("answer", answer.clone()),
                    ("resolved_by", resolved_by.clone()),
                    ("resolved_unix_micros", resolved_unix_micros.to_string()),
                ],
            ),
            HubError::RequestExpired {
                expired_unix_micros,
            } => (
                "REQUEST_EXPIRED",
                vec![("expired_unix_micros", expired_unix_micros.to_string())],
            ),
            HubError::BearerTokenForDevice => ("BEARER_TOKEN_FOR_DEVICE", vec![]),
            HubError::CredentialMissing => ("CREDENTIAL_MISSING", vec![]),
            HubError::CredentialInvalid => ("CREDENTIAL_INVALID", vec![]),
            HubError::TokenRefused { fault } => (
                "CREDENTIAL_INVALID",
                vec![
                    ("credential_kind", "bearer_token".to_owned()),
                    ("why", fault.as_str().to_owned()),
                ],
            ),
            HubError::CredentialAmbiguous => ("CREDENTIAL_AMBIGUOUS", vec![]),
            HubError::BearerTokenNotAccepted { method } => (
                "BEARER_TOKEN_NOT_ACCEPTED",
                vec![("method", method.clone())],
            ),
            HubError::PairingCodeInvalid => ("PAIRING_CODE_INVALID", vec![]),
            HubError::GuardianRoleRequired { .. } => ("GUARDIAN_ROLE_REQUIRED", vec![]),
            HubError::DeviceRoleRequired { .. } => ("DEVICE_ROLE_REQUIRED", vec![]),
            HubError::RateLimited { retry_after } => (
                "RATE_LIMITED",
                vec![("retry_after_ms", retry_after.as_millis().to_string())],
            ),
            HubError::TooManyWatches { limit } => {
                ("TOO_MANY_WATCHES", vec![("limit", limit.to_string())])
            }
            HubError::SessionReplaced => ("SESSION_REPLACED", vec![]),
            HubError::SessionProtocol { field, .. } => {
                ("SESSION_PROTOCOL", vec![("field", (*field).to_owned())])
            }
            HubError::NoNetworkDevice { host } => {
                ("NETWORK_DEVICE_NOT_FOUND", vec![("host", host.clone())])
            }
            HubError::AdoptionRefused { reason, .. } => (reason, vec![]),
            HubError::AdoptionTimedOut { .. } => ("ADOPTION_TIMED_OUT", vec![]),
            HubError::ShuttingDown => ("SHUTTING_DOWN", vec![]),
            HubError::Storage(_) => ("STORAGE_FAILED", vec![]),
        }
    }
}

impl From<HubError> for tonic::Status {
    fn from(err: HubError) -> tonic::Status {
        let code = err.code();
        let (reason, metadata) = err.reason_and_metadata();
        let metadata: HashMap<String, String> = metadata
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        let mut details = ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata);
        match &err {
            HubError::InvalidField { field, message } => {
                details.add_bad_request_violation(field.clone(), message.clone());
            }
            HubError::RateLimited { retry_after } => {
                details.set_retry_info(Some(*retry_after));
            }
            HubError::Storage(_) => tracing::error!(error = %err, "storage failure"),
            _ => {}
        }
        tonic::Status::with_error_details(code, err.to_string(), details)
    }
}

impl From<household_proto::convert::ConvertError> for HubError {
    fn from(err: household_proto::convert::ConvertError) -> HubError {
        HubError::InvalidField {
            field: err.field().to_owned(),
            message: err.to_string(),
        }
    }
}

impl From<household_core::InputError> for HubError {
    fn from(err: household_core::InputError) -> HubError {
        HubError::InvalidField {
            field: err.field().to_owned(),
            message: err.to_string(),
        }
    }
}

impl From<eventlog::Error> for HubError {
    fn from(err: eventlog::Error) -> HubError {
        HubError::storage(err)
    }
}

impl From<sled::Error> for HubError {
    fn from(err: sled::Error) -> HubError {
        HubError::storage(err)
    }
}
