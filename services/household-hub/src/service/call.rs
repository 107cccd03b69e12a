//! One guardian call that changes something: who makes it, and the idempotency key that
//! makes a retry safe. The key and a hash of the request go into the call's first event,
//! so the hub finds them again after a restart or a restore (`Household::key_use`).

use household_proto::v1::{self, event::Payload};
use jiff::Timestamp;
use prost::Message;

use crate::auth::Principal;
use crate::error::HubError;
use crate::household::Household;
use crate::validate;

/// One guardian call that may carry an idempotency key: who, which key, and the hash of
/// the request it stands for.
pub struct Call {
    pub actor: v1::Actor,
    pub guardian_id: String,
    pub key: Option<String>,
    pub request_sha256_hex: String,
}

/// What a keyed decision came to.
pub enum Keyed<T> {
    /// Done now.
    Fresh(T),
    /// Done before, by the call that logged event `seq`.
    Replay(u64),
}

impl Call {
    /// A call from the request's guardian. `message` is the request with its key
    /// cleared, so the hash covers everything but the key.
    pub fn new<M: Message>(
        principal: &Principal,
        key: &str,
        required: bool,
        message: &M,
    ) -> Result<Call, HubError> {
        let (guardian_id, _) = principal.guardian()?;
        Ok(Call {
            actor: principal.actor(),
            guardian_id: guardian_id.to_owned(),
            key: validate::idempotency_key(key, required)?,
            request_sha256_hex: crate::trust::sha256_hex(&message.encode_to_vec()),
        })
    }

    /// The first event of an earlier call with the same key, or `ALREADY_EXISTS` if that
    /// call was a different request.
    pub fn replay_of(
        &self,
        household: &Household,
        now: Timestamp,
    ) -> Result<Option<u64>, HubError> {
        let Some(key) = &self.key else {
            return Ok(None);
        };
        match household.key_use(&self.guardian_id, key, now.as_microsecond()) {
            None => Ok(None),
            Some(used) if used.request_sha256_hex == self.request_sha256_hex => {
                Ok(Some(used.first_seq))
            }
            Some(used) => Err(HubError::IdempotencyKeyReused {
                key: key.clone(),
                first_seq: used.first_seq,
            }),
        }
    }

    /// An event by this caller, carrying the key when there is one.
    pub fn event(&self, child_id: &str, device_id: &str, payload: Payload) -> v1::Event {
        v1::Event {
            actor: Some(self.actor.clone()),
            child_id: child_id.to_owned(),
            device_id: device_id.to_owned(),
            idempotency: self.key.as_ref().map(|key| v1::Idempotency {
                key: key.clone(),
                request_sha256_hex: self.request_sha256_hex.clone(),
            }),
            payload: Some(payload),
            ..Default::default()
        }
    }

    /// The same event without the key (for the second and later events of one call).
    pub fn plain_event(&self, child_id: &str, device_id: &str, payload: Payload) -> v1::Event {
        v1::Event {
            idempotency: None,
            ..self.event(child_id, device_id, payload)
        }
    }
}
