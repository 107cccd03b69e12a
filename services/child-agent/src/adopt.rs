//! Adoption, the agent's side: an agent that belongs to no household shows a
//! verification code for each hub it hears and asks those hubs, every few seconds,
//! whether a guardian is adopting it ([`household_client::adopt`] has the exchange).
//!
//! The agent asks; it never listens. An unenrolled agent opens no port for adoption:
//! it makes outgoing TLS connections to hubs it heard over mDNS, checked against the
//! CA fingerprint they announced, and trusts what they answer only when the answer
//! carries a proof keyed with the code on this device's screen.
//!
//! Its key and secret live in `DIR/adoption-key.json` (owner-only, like the rest of
//! the data directory). The key becomes the device's key when it is adopted (the file
//! is then removed; the key lives on in `enrollment.json`). After [`MAX_MISMATCHES`]
//! proofs that do not match, the secret is made anew, so the code changes and a hub
//! guessing codes starts over; a hub whose proof did not match is not asked again for
//! [`MISMATCH_PAUSE`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use household_client::adopt::{self, AdoptError, Offer};
use household_client::mdns::agents::AgentPresence;
use serde::{Deserialize, Serialize};

use crate::agent::{Agent, Pairing};
use crate::link::Enrollment;
use crate::shutdown;

/// The file beside the store that holds the adoption key and secret.
pub const KEY_FILE: &str = "adoption-key.json";
/// Mismatched proofs after which the secret (and so every code) is made anew.
pub const MAX_MISMATCHES: u32 = 5;
/// How long a hub whose proof did not match is left alone.
pub const MISMATCH_PAUSE: Duration = Duration::from_secs(10);

/// Why the adoption key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not an adoption key this agent can read: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot make a key: {0}")]
    Key(#[from] rcgen::Error),
}

#[derive(Serialize, Deserialize)]
struct KeyFile {
    key_pem: String,
    csr_pem: String,
    secret_hex: String,
}

/// The key an unenrolled agent announces and will be enrolled with, and the secret its
/// verification codes are keyed with.
pub struct AdoptionKey {
    file: KeyFile,
    secret: [u8; 32],
    /// SHA-256 of the key's public half, as announced (`key` TXT entry).
    pub key_sha256_hex: String,
}

impl AdoptionKey {
    /// The key in `data_dir`, made (and stored) the first time.
    pub fn load_or_create(data_dir: &Path, host_name: &str) -> Result<AdoptionKey, KeyError> {
        let path = data_dir.join(KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let parse = |message: String| KeyError::Parse {
                    path: path.clone(),
                    message,
                };
                let file: KeyFile =
                    serde_json::from_str(&text).map_err(|e| parse(e.to_string()))?;
                let secret = decode_secret(&file.secret_hex)
                    .ok_or_else(|| parse("secret_hex is not 64 hex digits".into()))?;
                let key_sha256_hex = adopt::key_sha256_hex(&file.key_pem)?;
                Ok(AdoptionKey {
                    file,
                    secret,
                    key_sha256_hex,
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let (key_pem, csr_pem) = household_client::new_key_and_csr(host_name)?;
                let secret: [u8; 32] = adopt::rand_bytes();
                let key = AdoptionKey {
                    key_sha256_hex: adopt::key_sha256_hex(&key_pem)?,
                    file: KeyFile {
                        key_pem,
                        csr_pem,
                        secret_hex: hex(&secret),
                    },
                    secret,
                };
                key.save(data_dir)?;
                Ok(key)
            }
            Err(source) => Err(KeyError::Read { path, source }),
        }
    }

    /// The code this device shows for the hub with CA `ca_sha256_hex`.
    pub fn code_for(&self, ca_sha256_hex: &str) -> String {
        adopt::verification_code(&self.secret, ca_sha256_hex, &self.key_sha256_hex)
    }

    /// A new secret, so every code changes.
    fn renew_secret(&mut self, data_dir: &Path) -> Result<(), KeyError> {
        self.secret = adopt::rand_bytes();
        self.file.secret_hex = hex(&self.secret);
        self.save(data_dir)
    }

    /// Writes the file owner-only, whole or not at all.
    fn save(&self, data_dir: &Path) -> Result<(), KeyError> {
        serde_json::to_vec_pretty(&self.file)
            .map_err(std::io::Error::other)
            .and_then(|text| crate::private_file::write(data_dir, KEY_FILE, &text))
            .map_err(|source| KeyError::Write {
                path: data_dir.join(KEY_FILE),
                source,
            })
    }
}

/// What the adoption loop needs besides the key.
pub struct Settings {
    pub data_dir: PathBuf,
    pub host_name: String,
    pub poll: Duration,
    pub mdns_interface: Option<String>,
}

/// Asks the hubs `presence` hears, every `settings.poll`, until one adopts the device
/// (then stores the enrollment and tells `adopted`) or `shutdown` fires.
pub async fn run(
    agent: Arc<Agent>,
    presence: Arc<AgentPresence>,
    mut key: AdoptionKey,
    settings: Settings,
    adopted: tokio::sync::mpsc::Sender<()>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let offer = Offer {
        csr_pem: key.file.csr_pem.clone(),
        hostname: settings.host_name.clone(),
        platform: std::env::consts::OS.into(),
        software_version: concat!("child-agent ", env!("CARGO_PKG_VERSION")).into(),
    };
    let mut shown: BTreeSet<(String, String)> = BTreeSet::new();
    let mut paused: BTreeMap<String, Instant> = BTreeMap::new();
    let mut mismatches = 0;
    let mut ticks = tokio::time::interval(settings.poll);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutdown::stopped(&mut shutdown) => return Ok(()),
        }
        let hubs = presence.hubs();
        let mut pairing = Vec::new();
        for hub in &hubs {
            let code = key.code_for(&hub.ca_sha256_hex);
            if shown.insert((hub.ca_sha256_hex.clone(), code.clone())) {
                tracing::info!(
                    household = %hub.household_id,
                    "pairing: {} — the code a guardian of this household confirms to adopt \
                     this device (household devices adopt {} --child NAME)",
                    adopt::spaced(&code),
                    settings.host_name
                );
            }
            pairing.push(Pairing {
                household_id: hub.household_id.clone(),
                code,
            });
        }
        agent.set_pairing(pairing);
        for hub in hubs {
            if paused
                .get(&hub.ca_sha256_hex)
                .is_some_and(|until| Instant::now() < *until)
            {
                continue;
            }
            let Some(ip) = hub
                .addresses
                .iter()
                .find(|a| a.is_ipv4())
                .or(hub.addresses.first())
            else {
                continue;
            };
            let address = std::net::SocketAddr::new(*ip, hub.port).to_string();
            let code = key.code_for(&hub.ca_sha256_hex);
            match adopt::ask(
                &address,
                &hub.ca_sha256_hex,
                &key.key_sha256_hex,
                &code,
                &offer,
            )
            .await
            {
                Ok(None) => {}
                Ok(Some(enrollment)) => {
                    let stored = Enrollment {
                        hub: address.clone(),
                        ca_sha256_hex: hub.ca_sha256_hex.clone(),
                        ca_pem: enrollment.ca_certificate_pem.clone(),
                        chain_pem: match &enrollment.credential {
                            Some(
                                household_proto::v1::enroll_response::Credential::Certificate(
                                    certificate,
                                ),
                            ) => certificate.certificate_chain_pem.clone(),
                            _ => anyhow::bail!("the hub adopted this device without a certificate"),
                        },
                        key_pem: key.file.key_pem.clone(),
                        device_id: enrollment.identity_id.clone(),
                        child_id: enrollment.child_id.clone(),
                        device_name: enrollment.display_name.clone(),
                        found_by_mdns: true,
                        mdns_interface: settings.mdns_interface.clone(),
                        household_id: Some(hub.household_id.clone()),
                    };
                    stored.save(&settings.data_dir)?;
                    // The key lives on in the enrollment; the secret is of no more use.
                    if let Err(e) = std::fs::remove_file(settings.data_dir.join(KEY_FILE)) {
                        tracing::warn!(error = %e, "cannot remove the adoption key file");
                    }
                    agent.set_pairing(Vec::new());
                    tracing::info!(
                        hub = %address,
                        device = %enrollment.display_name,
                        household = %hub.household_id,
                        "adopted: this device now belongs to the household"
                    );
                    let _ = adopted.send(()).await;
                    // Wait to be stopped, as every task of the agent does.
                    let _ = shutdown::stopped(&mut shutdown).await;
                    return Ok(());
                }
                Err(AdoptError::CodeMismatch) => {
                    mismatches += 1;
                    tracing::warn!(
                        hub = %address,
                        household = %hub.household_id,
                        "a hub asked to adopt this device with another code; refused"
                    );
                    paused.insert(hub.ca_sha256_hex.clone(), Instant::now() + MISMATCH_PAUSE);
                    if mismatches >= MAX_MISMATCHES {
                        mismatches = 0;
                        key.renew_secret(&settings.data_dir)?;
                        shown.clear();
                        tracing::warn!("too many wrong codes: every verification code is new");
                    }
                }
                Err(e) => tracing::debug!(hub = %address, error = %e, "cannot ask the hub"),
            }
        }
    }
}

fn decode_secret(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut secret = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let pair = std::str::from_utf8(pair).ok()?;
        secret[i] = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(secret)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_made_once_kept_owner_only_and_its_codes_change_with_the_secret() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let mut key = AdoptionKey::load_or_create(dir.path(), "tablet").unwrap();
        let ca = "ab".repeat(32);
        let code = key.code_for(&ca);
        let again = AdoptionKey::load_or_create(dir.path(), "tablet").unwrap();
        assert_eq!(again.key_sha256_hex, key.key_sha256_hex);
        assert_eq!(again.code_for(&ca), code, "the same code after a restart");
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "owner-only, got {mode:o}");
        key.renew_secret(dir.path()).unwrap();
        let renewed = AdoptionKey::load_or_create(dir.path(), "tablet").unwrap();
        assert_eq!(renewed.key_sha256_hex, key.key_sha256_hex, "the key stays");
        // One chance in a million that a new secret gives the same code.
        assert_ne!(renewed.code_for(&ca), code);
        std::fs::write(dir.path().join(KEY_FILE), "{}").unwrap();
        assert!(matches!(
            AdoptionKey::load_or_create(dir.path(), "tablet"),
            Err(KeyError::Parse { .. })
        ));
    }
}
