//! The registry (sled, `DATA_DIR/registry`): who may talk to the hub, and the secrets
//! that must never reach the event log.
//!
//! * `meta`: the household id and the hub's secret key (derives replayable invite codes).
//! * `identities`: every guardian and device identity with its credentials.
//! * `credentials`: credential id (a certificate's SHA-256, or a token's `tok-…` id) →
//!   identity id, for the check every call makes.
//! * `tokens`: SHA-256 of a bearer token's secret → its credential id; the token itself
//!   is never stored ([`crate::token`]).
//! * `invites`: SHA-256 of a pairing code's secret → the invite; the secret itself is
//!   never stored.
//! * `cst_ids`: a legacy device's CST device ID, the key its commands are sealed with.
//!
//! What the household looks like (children, devices, policies) is not here: the event
//! log says it, and the hub folds it at start. Keeping it once means the two can never
//! disagree after a crash between two writes.

use std::path::Path;

use household_proto::v1;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{HubError, NotFoundKind};

/// A guardian or a device, as the trust store knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityRecord {
    pub identity_id: String,
    pub role: Role,
    pub display_name: String,
    /// For devices: the child.
    #[serde(default)]
    pub child_id: String,
    pub created_unix_micros: i64,
    /// While the invite has not been redeemed.
    pub pending: bool,
    #[serde(default)]
    pub invite_expires_unix_micros: i64,
    pub revoked: bool,
    #[serde(default)]
    pub credentials: Vec<CredentialRecord>,
}

/// One credential an identity was issued: a client certificate or a bearer token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialRecord {
    /// SHA-256 of the certificate (DER), hex; or a token's `tok-…` id.
    pub credential_id: String,
    /// Records from before bearer tokens existed are certificates.
    #[serde(default)]
    pub kind: CredentialKind,
    /// The host name a certificate was enrolled from, or the label a token was asked
    /// for with ("Anna's phone").
    #[serde(default)]
    pub label: String,
    pub issued_unix_micros: i64,
    /// A certificate's end of validity; a token's current expiry, which use pushes
    /// forward ([`crate::token::renewed_expiry`]).
    pub expires_unix_micros: i64,
    pub revoked: bool,
    /// The credential of the same identity whose invitation made this one (a phone
    /// paired from another phone), empty otherwise; revoking that one revokes this one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub invited_by: String,
}

/// The two kinds of credential the hub issues.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    /// A client certificate from the household CA (the CLI, agents).
    #[default]
    Certificate,
    /// A bearer token (a guardian's phone, through the web app).
    BearerToken,
}

impl CredentialKind {
    /// The API's enum value.
    pub fn to_proto(self) -> v1::CredentialKind {
        match self {
            CredentialKind::Certificate => v1::CredentialKind::Certificate,
            CredentialKind::BearerToken => v1::CredentialKind::BearerToken,
        }
    }
}

/// The two roles an identity can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Guardian,
    Device,
}

impl Role {
    /// The API's enum value.
    pub fn to_proto(self) -> v1::Role {
        match self {
            Role::Guardian => v1::Role::Guardian,
            Role::Device => v1::Role::Device,
        }
    }
}

/// A pairing code waiting to be redeemed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteRecord {
    pub identity_id: String,
    pub role: Role,
    pub display_name: String,
    #[serde(default)]
    pub child_id: String,
    pub expires_unix_micros: i64,
    pub used: bool,
    /// For a guardian's invitation of another credential of their own: the credential
    /// that asked for it. The credential the invite makes is revoked with that one, and
    /// the invite cannot be redeemed once that one is revoked.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub invited_by: String,
}

/// The sled database and its trees.
pub struct Registry {
    db: sled::Db,
    meta: sled::Tree,
    identities: sled::Tree,
    credentials: sled::Tree,
    invites: sled::Tree,
    tokens: sled::Tree,
    cst_ids: sled::Tree,
}

fn json<T: Serialize>(value: &T) -> Result<Vec<u8>, HubError> {
    serde_json::to_vec(value).map_err(HubError::storage)
}

fn from_json<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, HubError> {
    serde_json::from_slice(bytes).map_err(HubError::storage)
}

/// SHA-256 of an invite secret, hex: the invite's key.
pub fn invite_key(secret: &[u8]) -> String {
    crate::trust::sha256_hex(secret)
}

impl Registry {
    /// Opens (or creates) the registry at `dir`; a new one gets a household id and a
    /// secret key.
    pub fn open(dir: &Path) -> Result<Registry, HubError> {
        let db = sled::Config::new().path(dir).open()?;
        let registry = Registry {
            meta: db.open_tree("meta")?,
            identities: db.open_tree("identities")?,
            credentials: db.open_tree("credentials")?,
            invites: db.open_tree("invites")?,
            tokens: db.open_tree("tokens")?,
            cst_ids: db.open_tree("cst_ids")?,
            db,
        };
        if registry.meta.get("household_id")?.is_none() {
            let mut id = [0u8; 8];
            let mut secret = [0u8; 32];
            rand::rng().fill_bytes(&mut id);
            rand::rng().fill_bytes(&mut secret);
            registry.meta.insert("secret", &secret[..])?;
            registry
                .meta
                .insert("household_id", format!("hh-{}", hex(&id)).as_bytes())?;
            registry.db.flush()?;
        }
        Ok(registry)
    }

    /// The household's id, made at first start.
    pub fn household_id(&self) -> Result<String, HubError> {
        let bytes = self
            .meta
            .get("household_id")?
            .ok_or_else(|| HubError::storage("registry has no household id"))?;
        String::from_utf8(bytes.to_vec()).map_err(HubError::storage)
    }

    /// A secret derived from the hub's key and `context`: the same context always gives
    /// the same secret, so a retried invite returns the same code without the code ever
    /// being stored.
    pub fn derive_secret(&self, context: &[u8]) -> Result<[u8; 16], HubError> {
        let key = self
            .meta
            .get("secret")?
            .ok_or_else(|| HubError::storage("registry has no secret"))?;
        let mut hasher = Sha256::new();
        hasher.update(b"household-hub invite v1\0");
        hasher.update(&key);
        hasher.update(context);
        let digest = hasher.finalize();
        let mut secret = [0u8; 16];
        secret.copy_from_slice(&digest[..16]);
        Ok(secret)
    }

    /// Stores an invite and its pending identity (a re-invite of an existing identity
    /// keeps its credentials).
    pub fn put_invite(
        &self,
        secret: &[u8],
        invite: &InviteRecord,
        now_unix_micros: i64,
    ) -> Result<(), HubError> {
        let mut identity = self
            .identity(&invite.identity_id)?
            .unwrap_or(IdentityRecord {
                identity_id: invite.identity_id.clone(),
                role: invite.role,
                display_name: invite.display_name.clone(),
                child_id: invite.child_id.clone(),
                created_unix_micros: now_unix_micros,
                pending: true,
                invite_expires_unix_micros: 0,
                revoked: false,
                credentials: Vec::new(),
            });
        let key = invite_key(secret);
        if self.invites.get(&key)?.is_some() {
            // The same code again (a replayed call): it keeps its state, used or not.
            return Ok(());
        }
        identity.invite_expires_unix_micros = invite.expires_unix_micros;
        self.invites.insert(key, json(invite)?)?;
        self.identities
            .insert(identity.identity_id.as_bytes(), json(&identity)?)?;
        self.db.flush()?;
        Ok(())
    }

    /// The invite a secret opens, if it exists, is unused and unexpired.
    pub fn live_invite(
        &self,
        secret: &[u8],
        now_unix_micros: i64,
    ) -> Result<Option<InviteRecord>, HubError> {
        let Some(bytes) = self.invites.get(invite_key(secret))? else {
            return Ok(None);
        };
        let invite: InviteRecord = from_json(&bytes)?;
        let live = !invite.used && invite.expires_unix_micros > now_unix_micros;
        let identity_live = self
            .identity(&invite.identity_id)?
            .is_some_and(|identity| !identity.revoked);
        Ok((live && identity_live).then_some(invite))
    }

    /// Redeems an invite: marks it used and records the issued credential, atomically;
    /// for a bearer token also the SHA-256 of its secret (`token_digest`), by which
    /// calls find it. Fails with `PairingCodeInvalid` if someone redeemed it first.
    pub fn redeem_invite(
        &self,
        secret: &[u8],
        credential: CredentialRecord,
        token_digest: Option<&[u8; 32]>,
    ) -> Result<IdentityRecord, HubError> {
        use sled::Transactional;
        let key = invite_key(secret);
        let result = (
            &self.invites,
            &self.identities,
            &self.credentials,
            &self.tokens,
        )
            .transaction(|(invites, identities, credentials, tokens)| {
                let abort = |e: HubError| sled::transaction::ConflictableTransactionError::Abort(e);
                let bytes = invites
                    .get(key.as_bytes())?
                    .ok_or_else(|| abort(HubError::PairingCodeInvalid))?;
                let mut invite: InviteRecord = from_json(&bytes).map_err(abort)?;
                if invite.used {
                    return Err(abort(HubError::PairingCodeInvalid));
                }
                invite.used = true;
                let bytes = identities
                    .get(invite.identity_id.as_bytes())?
                    .ok_or_else(|| abort(HubError::PairingCodeInvalid))?;
                let mut identity: IdentityRecord = from_json(&bytes).map_err(abort)?;
                // A credential's invitation of another dies with it: a stolen phone
                // that was revoked cannot leave a phone of the thief's behind.
                let mut credential = credential.clone();
                if !invite.invited_by.is_empty() {
                    let inviter_live = !identity.revoked
                        && identity
                            .credentials
                            .iter()
                            .any(|c| c.credential_id == invite.invited_by && !c.revoked);
                    if !inviter_live {
                        return Err(abort(HubError::PairingCodeInvalid));
                    }
                    credential.invited_by = invite.invited_by.clone();
                }
                // A random token id that is taken already would hand another
                // identity's credential over; it never happens, and must not.
                if credentials
                    .get(credential.credential_id.as_bytes())?
                    .is_some()
                {
                    return Err(abort(HubError::storage(format!(
                        "credential id {} is already in use",
                        credential.credential_id
                    ))));
                }
                identity.pending = false;
                identity.invite_expires_unix_micros = 0;
                identity.credentials.push(credential.clone());
                invites.insert(key.as_bytes(), json(&invite).map_err(abort)?)?;
                identities.insert(
                    identity.identity_id.as_bytes(),
                    json(&identity).map_err(abort)?,
                )?;
                credentials.insert(
                    credential.credential_id.as_bytes(),
                    identity.identity_id.as_bytes(),
                )?;
                if let Some(digest) = token_digest {
                    tokens.insert(&digest[..], credential.credential_id.as_bytes())?;
                }
                Ok(identity)
            });
        let identity = result.map_err(|e| match e {
            sled::transaction::TransactionError::Abort(e) => e,
            sled::transaction::TransactionError::Storage(e) => HubError::from(e),
        })?;
        self.db.flush()?;
        Ok(identity)
    }

    /// Adds a renewed certificate to an existing identity.
    pub fn add_credential(
        &self,
        identity_id: &str,
        credential: CredentialRecord,
    ) -> Result<(), HubError> {
        if self.identity(identity_id)?.is_none() {
            return Err(HubError::CredentialInvalid);
        }
        self.credentials
            .insert(credential.credential_id.as_bytes(), identity_id.as_bytes())?;
        self.change_identity(identity_id, |identity| {
            let mut identity = identity.ok_or(HubError::CredentialInvalid)?;
            identity.credentials.push(credential.clone());
            Ok(Some(identity))
        })?;
        self.db.flush()?;
        Ok(())
    }

    /// One identity.
    pub fn identity(&self, identity_id: &str) -> Result<Option<IdentityRecord>, HubError> {
        self.identities
            .get(identity_id.as_bytes())?
            .map(|bytes| from_json(&bytes))
            .transpose()
    }

    /// Every identity, oldest first.
    pub fn identities(&self) -> Result<Vec<IdentityRecord>, HubError> {
        let mut all = self
            .identities
            .iter()
            .values()
            .map(|bytes| from_json::<IdentityRecord>(&bytes?))
            .collect::<Result<Vec<_>, _>>()?;
        all.sort_by_key(|identity| identity.created_unix_micros);
        Ok(all)
    }

    /// The identity a presented certificate belongs to, if the certificate is known,
    /// unexpired and neither it nor its identity is revoked.
    pub fn authenticate(
        &self,
        credential_id: &str,
        now_unix_micros: i64,
    ) -> Result<Option<IdentityRecord>, HubError> {
        let Some(identity_id) = self.credentials.get(credential_id.as_bytes())? else {
            return Ok(None);
        };
        let identity_id = String::from_utf8_lossy(&identity_id).into_owned();
        let Some(identity) = self.identity(&identity_id)? else {
            return Ok(None);
        };
        let credential_ok = identity.credentials.iter().any(|c| {
            c.credential_id == credential_id
                && !c.revoked
                && c.expires_unix_micros > now_unix_micros
        });
        Ok((credential_ok && !identity.revoked).then_some(identity))
    }

    /// The credential id and identity a bearer token belongs to, found by the SHA-256 of
    /// its secret; `None` for a token this household never issued. Whether it still
    /// admits its holder is [`crate::token::check`]'s to say.
    pub fn token_holder(
        &self,
        digest: &[u8; 32],
    ) -> Result<Option<(String, IdentityRecord)>, HubError> {
        let Some(credential_id) = self.tokens.get(&digest[..])? else {
            return Ok(None);
        };
        let credential_id = String::from_utf8_lossy(&credential_id).into_owned();
        let Some(identity_id) = self.credentials.get(credential_id.as_bytes())? else {
            return Ok(None);
        };
        let identity_id = String::from_utf8_lossy(&identity_id).into_owned();
        Ok(self
            .identity(&identity_id)?
            .map(|identity| (credential_id, identity)))
    }

    /// Moves a credential's expiry forward to `expires_unix_micros` (never back), unless
    /// it or its identity was revoked meanwhile. Returns whether it wrote.
    ///
    /// It is not flushed at once: sled writes it out within half a second, and an
    /// extension lost in a crash is simply made again at the next use.
    pub fn extend_expiry(
        &self,
        identity_id: &str,
        credential_id: &str,
        expires_unix_micros: i64,
    ) -> Result<bool, HubError> {
        let changed = self.change_identity(identity_id, |identity| {
            let Some(mut identity) = identity else {
                return Ok(None);
            };
            if identity.revoked {
                return Ok(None);
            }
            let Some(credential) = identity
                .credentials
                .iter_mut()
                .find(|c| c.credential_id == credential_id)
            else {
                return Ok(None);
            };
            if credential.revoked || credential.expires_unix_micros >= expires_unix_micros {
                return Ok(None);
            }
            credential.expires_unix_micros = expires_unix_micros;
            Ok(Some(identity))
        })?;
        Ok(changed.is_some())
    }

    /// Rewrites one identity with what `change` makes of it (`None` in: no such
    /// identity; `None` out: write nothing), and returns what was written.
    ///
    /// The record is replaced only if nobody wrote it since it was read (compare and
    /// swap), else `change` runs again on the newer record. So two changes at once, a
    /// phone's expiry being pushed forward while another guardian revokes it, say, can
    /// never undo each other: the revocation is never written back unrevoked.
    fn change_identity(
        &self,
        identity_id: &str,
        mut change: impl FnMut(Option<IdentityRecord>) -> Result<Option<IdentityRecord>, HubError>,
    ) -> Result<Option<IdentityRecord>, HubError> {
        loop {
            let current = self.identities.get(identity_id.as_bytes())?;
            let record = current.as_deref().map(from_json).transpose()?;
            let Some(changed) = change(record)? else {
                return Ok(None);
            };
            let swapped = self.identities.compare_and_swap(
                identity_id.as_bytes(),
                current,
                Some(json(&changed)?),
            )?;
            if swapped.is_ok() {
                return Ok(Some(changed));
            }
        }
    }

    /// Revokes one credential of an identity, with every credential its invitations
    /// made (and theirs, in turn), or (with `credential_id` empty) the identity and every
    /// credential. Revoking what is revoked succeeds. Returns the identity as written
    /// and the credentials revoked along with the one named, which were live until now.
    pub fn revoke(
        &self,
        identity_id: &str,
        credential_id: &str,
    ) -> Result<(IdentityRecord, Vec<String>), HubError> {
        let mut along = Vec::new();
        let revoked = self.change_identity(identity_id, |identity| {
            along.clear();
            let mut identity = identity.ok_or_else(|| HubError::NotFound {
                what: NotFoundKind::Identity,
                id: identity_id.to_owned(),
            })?;
            if credential_id.is_empty() {
                identity.revoked = true;
                identity
                    .credentials
                    .iter_mut()
                    .for_each(|c| c.revoked = true);
            } else {
                let credential = identity
                    .credentials
                    .iter_mut()
                    .find(|c| c.credential_id == credential_id)
                    .ok_or_else(|| HubError::NotFound {
                        what: NotFoundKind::Credential,
                        id: credential_id.to_owned(),
                    })?;
                credential.revoked = true;
                along = revoke_invited(&mut identity.credentials, credential_id);
            }
            Ok(Some(identity))
        })?;
        let identity = revoked.ok_or_else(|| HubError::storage("a revocation wrote nothing"))?;
        self.db.flush()?;
        Ok((identity, along))
    }

    /// Stores a legacy device's CST device ID.
    pub fn put_cst_id(&self, device_id: &str, cst_device_id: &str) -> Result<(), HubError> {
        self.cst_ids
            .insert(device_id.as_bytes(), cst_device_id.as_bytes())?;
        self.db.flush()?;
        Ok(())
    }

    /// A legacy device's CST device ID.
    pub fn cst_id(&self, device_id: &str) -> Result<Option<String>, HubError> {
        Ok(self
            .cst_ids
            .get(device_id.as_bytes())?
            .map(|id| String::from_utf8_lossy(&id).into_owned()))
    }

    /// The device already registered with this CST device ID, if one is.
    pub fn device_with_cst_id(&self, cst_device_id: &str) -> Result<Option<String>, HubError> {
        for item in self.cst_ids.iter() {
            let (device, cst) = item?;
            if cst.as_ref() == cst_device_id.as_bytes() {
                return Ok(Some(String::from_utf8_lossy(&device).into_owned()));
            }
        }
        Ok(None)
    }

    /// Copies every tree into a new registry at `dir` (for backups).
    pub fn copy_to(&self, dir: &Path) -> Result<(), HubError> {
        let target = sled::Config::new().path(dir).open()?;
        target.import(self.db.export());
        target.flush()?;
        Ok(())
    }

    /// Flushes everything to disk.
    pub fn flush(&self) -> Result<(), HubError> {
        self.db.flush()?;
        Ok(())
    }
}

/// Lowercase hex of some bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl IdentityRecord {
    /// The API's view, used by Admin.ListIdentities and Household.ListCredentials.
    pub fn to_proto(&self) -> v1::Identity {
        v1::Identity {
            identity_id: self.identity_id.clone(),
            role: self.role.to_proto() as i32,
            display_name: self.display_name.clone(),
            child_id: self.child_id.clone(),
            created_unix_micros: self.created_unix_micros,
            pending: self.pending,
            invite_expires_unix_micros: self.invite_expires_unix_micros,
            revoked: self.revoked,
            credentials: self
                .credentials
                .iter()
                .map(|c| v1::Credential {
                    credential_id: c.credential_id.clone(),
                    kind: c.kind.to_proto() as i32,
                    label: c.label.clone(),
                    issued_unix_micros: c.issued_unix_micros,
                    expires_unix_micros: c.expires_unix_micros,
                    revoked: c.revoked,
                    last_used_unix_micros: 0,
                })
                .collect(),
        }
    }
}

/// Revokes the credentials whose invitation chain leads to `root`; returns the ids of
/// those that were live.
fn revoke_invited(credentials: &mut [CredentialRecord], root: &str) -> Vec<String> {
    let mut revoked = vec![root.to_owned()];
    let mut along = Vec::new();
    let mut i = 0;
    while i < revoked.len() {
        let inviter = revoked[i].clone();
        for c in credentials.iter_mut().filter(|c| c.invited_by == inviter) {
            if !revoked.contains(&c.credential_id) {
                revoked.push(c.credential_id.clone());
                if !c.revoked {
                    along.push(c.credential_id.clone());
                }
                c.revoked = true;
            }
        }
        i += 1;
    }
    along
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_767_225_600_000_000;

    /// An invite for another credential of Anna's, made by `invited_by` (or nobody).
    fn anna_invite(invited_by: &str) -> InviteRecord {
        InviteRecord {
            identity_id: "g-anna".into(),
            role: Role::Guardian,
            display_name: "Anna".into(),
            child_id: String::new(),
            expires_unix_micros: T0 + 1,
            used: false,
            invited_by: invited_by.into(),
        }
    }

    /// A bearer token credential named `id`.
    fn token(id: &str) -> CredentialRecord {
        CredentialRecord {
            credential_id: id.into(),
            kind: CredentialKind::BearerToken,
            label: format!("{id}'s phone"),
            issued_unix_micros: T0,
            expires_unix_micros: T0 + 10,
            revoked: false,
            invited_by: String::new(),
        }
    }

    /// A registry with Anna's pairing code redeemed for a bearer token.
    fn anna_with_a_token(dir: &Path) -> (Registry, [u8; 32]) {
        let registry = Registry::open(dir).unwrap();
        let secret = [7u8; 16];
        registry.put_invite(&secret, &anna_invite(""), T0).unwrap();
        let digest = [42u8; 32];
        registry
            .redeem_invite(&secret, token("tok-1"), Some(&digest))
            .unwrap();
        (registry, digest)
    }

    #[test]
    fn a_token_is_found_by_its_digest_and_its_expiry_only_moves_forward() {
        let dir = tempfile::tempdir().unwrap();
        let (registry, digest) = anna_with_a_token(dir.path());
        assert_eq!(registry.token_holder(&[0u8; 32]).unwrap(), None);
        let (credential_id, identity) = registry.token_holder(&digest).unwrap().unwrap();
        assert_eq!(credential_id, "tok-1");
        assert_eq!(identity.identity_id, "g-anna");
        assert_eq!(identity.credentials[0].kind, CredentialKind::BearerToken);
        assert!(registry.authenticate("tok-1", T0).unwrap().is_some());

        assert!(registry.extend_expiry("g-anna", "tok-1", T0 + 20).unwrap());
        assert!(!registry.extend_expiry("g-anna", "tok-1", T0 + 15).unwrap());
        assert!(!registry.extend_expiry("g-anna", "tok-9", T0 + 30).unwrap());
        let anna = registry.identity("g-anna").unwrap().unwrap();
        assert_eq!(anna.credentials[0].expires_unix_micros, T0 + 20);
        assert!(registry.authenticate("tok-1", T0 + 15).unwrap().is_some());
        assert!(registry.authenticate("tok-1", T0 + 20).unwrap().is_none());
    }

    #[test]
    fn a_revoked_token_stays_revoked_whatever_extends_it() {
        let dir = tempfile::tempdir().unwrap();
        let (registry, digest) = anna_with_a_token(dir.path());
        registry.revoke("g-anna", "tok-1").unwrap();
        assert!(!registry.extend_expiry("g-anna", "tok-1", T0 + 20).unwrap());
        let (_, anna) = registry.token_holder(&digest).unwrap().unwrap();
        assert!(anna.credentials[0].revoked);
        assert_eq!(anna.credentials[0].expires_unix_micros, T0 + 10);
        assert!(registry.authenticate("tok-1", T0).unwrap().is_none());
    }

    #[test]
    fn revoking_a_credential_revokes_what_its_invitations_made_and_no_other() {
        let dir = tempfile::tempdir().unwrap();
        let (registry, _) = anna_with_a_token(dir.path());
        // tok-1 pairs tok-2, which pairs tok-3; tok-4 was paired from nothing.
        let pair = |secret: u8, id: &str, invited_by: &str| {
            registry
                .put_invite(&[secret; 16], &anna_invite(invited_by), T0)
                .unwrap();
            registry.redeem_invite(&[secret; 16], token(id), Some(&[secret; 32]))
        };
        pair(2, "tok-2", "tok-1").unwrap();
        pair(3, "tok-3", "tok-2").unwrap();
        pair(4, "tok-4", "").unwrap();
        let (anna, along) = registry.revoke("g-anna", "tok-1").unwrap();
        assert_eq!(along, ["tok-2", "tok-3"]);
        let revoked: Vec<bool> = anna.credentials.iter().map(|c| c.revoked).collect();
        assert_eq!(revoked, [true, true, true, false], "{anna:?}");
        // Revoking again revokes nothing more, and a code tok-2 made is dead.
        assert!(registry.revoke("g-anna", "tok-1").unwrap().1.is_empty());
        assert!(matches!(
            pair(5, "tok-5", "tok-2"),
            Err(HubError::PairingCodeInvalid)
        ));
    }

    #[test]
    fn credentials_written_before_tokens_existed_read_as_certificates() {
        let old = r#"{"credential_id":"ab12","label":"laptop","issued_unix_micros":1,"expires_unix_micros":2,"revoked":false}"#;
        let record: CredentialRecord = serde_json::from_str(old).unwrap();
        assert_eq!(record.kind, CredentialKind::Certificate);
    }
}
