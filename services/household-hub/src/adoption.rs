//! Adoptions under way: a guardian's `AdoptDevice` waiting for the agent's next
//! `Agent.Adopt`, and the exchange of proofs between them ([`household_client::adopt`]).
//!
//! One adoption per agent key at a time, held in memory only and for as long as the
//! guardian's call waits: nothing is created until the agent's proof matched, so a wrong
//! code or an agent that never asks leaves no trace but the guardian's error.

use std::collections::HashMap;
use std::sync::Mutex;

use household_client::adopt::{self, Exchange, NONCE_BYTES, Side};
use household_proto::v1;
use tokio::sync::oneshot;

use crate::error::HubError;

/// How long a guardian's call waits for the agent to ask. Agents ask every few seconds
/// (`child-agent run --adopt-poll`), so this leaves room for one that just started.
pub const WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// How the guardian's call ends.
pub type Outcome = Result<v1::Device, HubError>;

/// What a guardian asked for.
#[derive(Debug, Clone)]
pub struct Request {
    /// SHA-256 of the agent's key, as it announces it.
    pub key_sha256_hex: String,
    pub host_name: String,
    pub child_id: String,
    /// The device's name in the household.
    pub display_name: String,
    /// The six digits the guardian typed.
    pub code: String,
    /// Who adopts: the actor of the events.
    pub actor: v1::Actor,
}

struct Pending {
    request: Request,
    /// The nonces of the agent's last offer, once it made one.
    nonces: Option<([u8; NONCE_BYTES], [u8; NONCE_BYTES])>,
    done: oneshot::Sender<Outcome>,
}

/// The adoptions under way, by agent key.
#[derive(Default)]
pub struct Adoptions {
    pending: Mutex<HashMap<String, Pending>>,
}

/// A guardian's adoption while its call waits; dropping it (the call ended, or gave
/// up) withdraws the adoption, so a late agent finds nothing pending.
pub struct Waiting<'a> {
    adoptions: &'a Adoptions,
    key_sha256_hex: String,
    pub outcome: oneshot::Receiver<Outcome>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.adoptions.lock().remove(&self.key_sha256_hex);
    }
}

/// An agent whose proof matched: create and enroll its device, then tell the guardian.
pub struct Confirmed {
    pub request: Request,
    pub done: oneshot::Sender<Outcome>,
}

impl Adoptions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts an adoption; refused while another of the same agent is under way.
    pub fn begin(&self, request: Request) -> Result<Waiting<'_>, HubError> {
        let mut pending = self.lock();
        if pending.contains_key(&request.key_sha256_hex) {
            return Err(HubError::AdoptionRefused {
                reason: "ADOPTION_UNDER_WAY",
                message: format!(
                    "an adoption of {} is already under way; wait for it to end",
                    request.host_name
                ),
            });
        }
        let (done, outcome) = oneshot::channel();
        let key_sha256_hex = request.key_sha256_hex.clone();
        pending.insert(
            key_sha256_hex.clone(),
            Pending {
                request,
                nonces: None,
                done,
            },
        );
        Ok(Waiting {
            adoptions: self,
            key_sha256_hex,
            outcome,
        })
    }

    /// The agent's offer: `None` when nobody is adopting it; otherwise the hub's nonce
    /// and its proof, keyed with the guardian's code.
    pub fn offer(
        &self,
        key_sha256_hex: &str,
        ca_sha256_hex: &str,
        agent_nonce: [u8; NONCE_BYTES],
    ) -> Option<([u8; NONCE_BYTES], [u8; 32])> {
        let mut pending = self.lock();
        let adoption = pending.get_mut(key_sha256_hex)?;
        let hub_nonce: [u8; NONCE_BYTES] = adopt::rand_bytes();
        let proof = adopt::proof(
            Side::Hub,
            &adoption.request.code,
            &Exchange {
                ca_sha256_hex,
                key_sha256_hex,
                agent_nonce: &agent_nonce,
                hub_nonce: &hub_nonce,
            },
        );
        adoption.nonces = Some((agent_nonce, hub_nonce));
        Some((hub_nonce, proof))
    }

    /// The agent's answer to the hub's proof: its own proof, or its refusal. A refusal
    /// or a proof that does not match ends the adoption with an error for the guardian
    /// (and for the agent); a matching proof hands the adoption over for enrolling.
    pub fn answer(
        &self,
        key_sha256_hex: &str,
        ca_sha256_hex: &str,
        agent_nonce: &[u8],
        hub_nonce: &[u8],
        agent_proof: Option<&[u8]>,
    ) -> Result<Confirmed, HubError> {
        let no_exchange = || HubError::AdoptionRefused {
            reason: "NO_ADOPTION_EXCHANGE",
            message: "no adoption of this key is waiting for this answer; offer again".into(),
        };
        let mut pending = self.lock();
        let adoption = pending.get(key_sha256_hex).ok_or_else(no_exchange)?;
        let Some((offered_agent_nonce, offered_hub_nonce)) = adoption.nonces else {
            return Err(no_exchange());
        };
        if offered_agent_nonce[..] != *agent_nonce || offered_hub_nonce[..] != *hub_nonce {
            return Err(no_exchange());
        }
        let expected = adopt::proof(
            Side::Agent,
            &adoption.request.code,
            &Exchange {
                ca_sha256_hex,
                key_sha256_hex,
                agent_nonce,
                hub_nonce,
            },
        );
        let Some(adoption) = pending.remove(key_sha256_hex) else {
            return Err(no_exchange());
        };
        if agent_proof.is_some_and(|proof| adopt::proofs_equal(proof, &expected)) {
            return Ok(Confirmed {
                request: adoption.request,
                done: adoption.done,
            });
        }
        tracing::warn!(
            host = %adoption.request.host_name,
            "adoption refused: the code given is not the one the device shows"
        );
        let mismatch = || HubError::AdoptionRefused {
            reason: "VERIFICATION_CODE_MISMATCH",
            message: format!(
                "the code is not the one {} shows; nothing was enrolled (read the code on the \
                 device again and retry)",
                adoption.request.host_name
            ),
        };
        let _ = adoption.done.send(Err(mismatch()));
        Err(mismatch())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CA: &str = "3b9f1c0d2e9a7b45c3a1d2e3f405162738495a6b7c8d9e0f1a2b3c4d5e6f7a8b";
    const KEY: &str = "0f1a2b3c4d5e6f7a8b3b9f1c0d2e9a7b45c3a1d2e3f405162738495a6b7c8d9e";

    fn request(code: &str) -> Request {
        Request {
            key_sha256_hex: KEY.into(),
            host_name: "tablet".into(),
            child_id: "c-1".into(),
            display_name: "tablet".into(),
            code: code.into(),
            actor: v1::Actor::default(),
        }
    }

    /// The agent's side of one exchange, with `code` on its screen.
    fn agent_answers(adoptions: &Adoptions, code: &str) -> Result<Confirmed, HubError> {
        let agent_nonce = [7u8; NONCE_BYTES];
        let (hub_nonce, hub_proof) = adoptions.offer(KEY, CA, agent_nonce).unwrap();
        let exchange = Exchange {
            ca_sha256_hex: CA,
            key_sha256_hex: KEY,
            agent_nonce: &agent_nonce,
            hub_nonce: &hub_nonce,
        };
        if !adopt::proofs_equal(&hub_proof, &adopt::proof(Side::Hub, code, &exchange)) {
            return adoptions.answer(KEY, CA, &agent_nonce, &hub_nonce, None);
        }
        let proof = adopt::proof(Side::Agent, code, &exchange);
        adoptions.answer(KEY, CA, &agent_nonce, &hub_nonce, Some(&proof))
    }

    #[test]
    fn the_same_code_on_both_sides_confirms() {
        let adoptions = Adoptions::default();
        assert!(
            adoptions.offer(KEY, CA, [0; NONCE_BYTES]).is_none(),
            "nobody adopting"
        );
        let waiting = adoptions.begin(request("471920")).unwrap();
        let second = adoptions.begin(request("471920")).err().unwrap();
        assert!(second.to_string().contains("already under way"), "{second}");
        let confirmed = agent_answers(&adoptions, "471920").unwrap();
        assert_eq!(confirmed.request.child_id, "c-1");
        drop(waiting);
        assert!(adoptions.offer(KEY, CA, [0; NONCE_BYTES]).is_none());
    }

    #[test]
    fn another_code_fails_for_both_and_leaves_nothing_pending() {
        let adoptions = Adoptions::default();
        let mut waiting = adoptions.begin(request("471920")).unwrap();
        let err = agent_answers(&adoptions, "000000").err().unwrap();
        assert!(
            err.to_string().contains("not the one tablet shows"),
            "{err}"
        );
        let told = waiting.outcome.try_recv().unwrap().unwrap_err();
        assert!(matches!(
            told,
            HubError::AdoptionRefused {
                reason: "VERIFICATION_CODE_MISMATCH",
                ..
            }
        ));
        assert!(adoptions.offer(KEY, CA, [0; NONCE_BYTES]).is_none());
    }

    #[test]
    fn an_answer_to_another_exchange_is_refused() {
        let adoptions = Adoptions::default();
        let _waiting = adoptions.begin(request("471920")).unwrap();
        let (hub_nonce, _) = adoptions.offer(KEY, CA, [1; NONCE_BYTES]).unwrap();
        let err = adoptions
            .answer(KEY, CA, &[2; NONCE_BYTES], &hub_nonce, Some(&[0; 32]))
            .err()
            .unwrap();
        assert!(matches!(
            err,
            HubError::AdoptionRefused {
                reason: "NO_ADOPTION_EXCHANGE",
                ..
            }
        ));
        // Still pending: a stray answer does not end the guardian's adoption.
        assert!(adoptions.offer(KEY, CA, [1; NONCE_BYTES]).is_some());
    }
}
