//! Pairing codes: what a new guardian or device is handed (`hh1.SECRET.CA_SHA256`).
//!
//! The registry keeps only the SHA-256 of a code's secret. A call made with an
//! idempotency key derives its secret from the hub's key and the call, so a retried call
//! hands out the very same code without the code ever being stored; a code is still
//! good for one enrollment only.

use household_proto::pairing::PairingCode;
use household_proto::v1::{self, event::Payload};
use jiff::Timestamp;
use rand::RngCore;

use crate::error::HubError;
use crate::hub::Hub;
use crate::ids;
use crate::registry::{InviteRecord, Role};

/// Who an invite is for.
pub struct Invitee {
    pub role: Role,
    pub identity_id: String,
    pub display_name: String,
    /// For devices: the child.
    pub child_id: String,
    /// For another credential of a guardian: the credential asking for it, whose
    /// revocation takes the new one with it (see [`crate::registry::InviteRecord`]).
    pub invited_by: String,
}

/// The payload of the event that records a new guardian's invitation.
pub fn guardian_invited(display_name: &str, now: Timestamp, valid_minutes: i64) -> Payload {
    Payload::GuardianInvited(v1::GuardianInvited {
        guardian_id: ids::new("g"),
        display_name: display_name.to_owned(),
        expires_unix_micros: now.as_microsecond() + valid_minutes * 60_000_000,
        another_credential: false,
    })
}

/// The payload of the event that records a guardian's invitation of another credential
/// of their own (their phone).
pub fn credential_invited(
    guardian_id: &str,
    display_name: &str,
    now: Timestamp,
    valid_minutes: i64,
) -> Payload {
    Payload::GuardianInvited(v1::GuardianInvited {
        guardian_id: guardian_id.to_owned(),
        display_name: display_name.to_owned(),
        expires_unix_micros: now.as_microsecond() + valid_minutes * 60_000_000,
        another_credential: true,
    })
}

/// Makes (or, for the same `context`, makes again) the pairing code for `invitee`,
/// valid `valid_minutes` from `created_unix_micros`, and records it in the registry.
pub fn issue(
    hub: &Hub,
    invitee: &Invitee,
    created_unix_micros: i64,
    valid_minutes: i64,
    context: Option<&[u8]>,
) -> Result<v1::PairingInvite, HubError> {
    let secret = match context {
        Some(context) => hub.registry.derive_secret(context)?,
        None => {
            let mut secret = [0u8; 16];
            rand::rng().fill_bytes(&mut secret);
            secret
        }
    };
    let expires_unix_micros = created_unix_micros + valid_minutes * 60_000_000;
    hub.registry.put_invite(
        &secret,
        &InviteRecord {
            identity_id: invitee.identity_id.clone(),
            role: invitee.role,
            display_name: invitee.display_name.clone(),
            child_id: invitee.child_id.clone(),
            expires_unix_micros,
            used: false,
            invited_by: invitee.invited_by.clone(),
        },
        created_unix_micros,
    )?;
    let code = PairingCode::new(secret, hub.ca.sha256());
    Ok(v1::PairingInvite {
        pairing_code: code.to_string(),
        role: invitee.role.to_proto() as i32,
        identity_id: invitee.identity_id.clone(),
        display_name: invitee.display_name.clone(),
        child_id: invitee.child_id.clone(),
        expires_unix_micros,
        ca_sha256_hex: code.ca_sha256_hex(),
    })
}
