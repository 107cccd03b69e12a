//! `household.v1.Admin`, served only on the owner-only UNIX socket: invites without a
//! network credential, the trust store, backups, statistics, forgetting a child.
//! Credential listing and revocation are shared with the guardian service (a lost phone
//! is revoked from the other parent's phone), so they live here once.

use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use household_proto::v1::{self, admin_server::Admin, event::Payload};
use jiff::Timestamp;
use sha2::{Digest, Sha256};
use tonic::{Request, Response, Status};

use crate::error::HubError;
use crate::hub::Hub;
use crate::ids;
use crate::invite::{self, Invitee};
use crate::registry::Role;
use crate::validate;

/// The Admin service.
pub struct AdminService {
    hub: Arc<Hub>,
}

impl AdminService {
    /// The service over a hub.
    pub fn new(hub: Arc<Hub>) -> AdminService {
        AdminService { hub }
    }
}

/// The hub acting on its own account, for `reason`.
pub fn system_actor(reason: &str) -> v1::Actor {
    v1::Actor {
        kind: Some(v1::actor::Kind::System(v1::SystemActor {
            reason: reason.into(),
        })),
        credential_id: String::new(),
    }
}

/// The actor of everything done through the admin socket.
pub fn admin_actor() -> v1::Actor {
    system_actor("admin socket")
}

/// Identities with their credentials, oldest first; of one role if given.
pub fn identities(
    hub: &Hub,
    role: Option<Role>,
    include_revoked: bool,
) -> Result<Vec<v1::Identity>, HubError> {
    let now = Timestamp::now().as_microsecond();
    Ok(hub
        .registry
        .identities()?
        .into_iter()
        .filter(|i| role.is_none_or(|r| i.role == r))
        .filter(|i| {
            include_revoked || !(i.revoked || (i.pending && i.invite_expires_unix_micros <= now))
        })
        .map(|i| {
            let mut proto = i.to_proto();
            if !include_revoked {
                proto.credentials.retain(|c| !c.revoked);
            }
            for credential in &mut proto.credentials {
                credential.last_used_unix_micros = hub.gate.last_used(&credential.credential_id);
            }
            proto
        })
        .collect())
}

/// Revokes an identity or one credential, logs it, and ends what it has open.
pub async fn revoke(
    hub: &Arc<Hub>,
    actor: v1::Actor,
    identity_id: &str,
    credential_id: &str,
) -> Result<v1::Identity, HubError> {
    if identity_id.is_empty() {
        return Err(HubError::invalid("identity_id", "is required"));
    }
    let (identity, along) = hub.registry.revoke(identity_id, credential_id)?;
    let child_id = match identity.role {
        Role::Device => identity.child_id.clone(),
        Role::Guardian => String::new(),
    };
    let device_id = match identity.role {
        Role::Device => identity.identity_id.clone(),
        Role::Guardian => String::new(),
    };
    // One event for the credential named, and one for each its invitations made,
    // so the audit and every guardian's list of phones show all of them gone.
    let payloads: Vec<Payload> = std::iter::once(credential_id.to_owned())
        .chain(along)
        .map(|credential_id| {
            Payload::IdentityRevoked(v1::IdentityRevoked {
                identity_id: identity.identity_id.clone(),
                role: identity.role.to_proto() as i32,
                credential_id,
            })
        })
        .collect();
    hub.writer
        .write(move |txn| {
            for payload in payloads {
                txn.append(v1::Event {
                    actor: Some(actor.clone()),
                    child_id: child_id.clone(),
                    device_id: device_id.clone(),
                    payload: Some(payload),
                    ..Default::default()
                });
            }
            Ok(())
        })
        .await?;
    if identity.role == Role::Device {
        hub.sessions
            .end(&identity.identity_id, crate::sessions::EndReason::Revoked);
    }
    hub.revoked();
    Ok(identity.to_proto())
}

/// Writes a backup into `target`, a directory that must not exist yet.
pub async fn backup(hub: &Arc<Hub>, target: &Path) -> Result<v1::BackupSummary, HubError> {
    if !target.is_absolute() {
        return Err(HubError::invalid("path", "must be an absolute path"));
    }
    if target.exists() {
        return Err(HubError::invalid(
            "path",
            format!("{} already exists; name a new directory", target.display()),
        ));
    }
    let parent = target.parent().unwrap_or(Path::new("/"));
    if !parent.is_dir() {
        return Err(HubError::invalid(
            "path",
            format!(
                "must name a new directory in an existing one; {} does not exist",
                parent.display()
            ),
        ));
    }
    // Owner-only, like the data directory: a backup holds the hub's secret and the
    // household's history, whatever the umask of whoever started the hub.
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(target)
        .map_err(HubError::storage)?;
    let layout = crate::serve::DataDir::new(target.to_path_buf());
    // One consistent view: the registry copy and the log snapshot are taken between
    // two writer batches.
    let registry_dir = layout.registry();
    let copy_hub = hub.clone();
    let (snapshot, last_seq) = hub
        .writer
        .write(move |txn| {
            copy_hub.registry.copy_to(&registry_dir)?;
            Ok((copy_hub.store.snapshot(), txn.household().last_seq()))
        })
        .await?;
    let taken_unix_micros = Timestamp::now().as_microsecond();
    let log_dir = layout.log();
    let store = hub.store.clone();
    tokio::task::spawn_blocking(move || store.copy_snapshot(&snapshot, &log_dir))
        .await
        .map_err(HubError::storage)??;
    hub.ca.copy_to(&layout.tls()).map_err(HubError::storage)?;
    let (size_bytes, sha256_hex) = digest_dir(target)?;
    Ok(v1::BackupSummary {
        path: target.display().to_string(),
        size_bytes,
        sha256_hex,
        last_seq,
        taken_unix_micros,
    })
}

/// Size and SHA-256 of a directory's files, as `BackupSummary` defines them.
fn digest_dir(dir: &Path) -> Result<(u64, String), HubError> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).map_err(HubError::storage)? {
            let path = entry.map_err(HubError::storage)?.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    for file in files {
        let relative: PathBuf = file.strip_prefix(dir).unwrap_or(&file).to_path_buf();
        let bytes = std::fs::read(&file).map_err(HubError::storage)?;
        size += bytes.len() as u64;
        hasher.update(relative.to_string_lossy().as_bytes());
        hasher.update([0]);
        hasher.update(&bytes);
    }
    Ok((size, crate::registry::hex(&hasher.finalize())))
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn create_invite(
        &self,
        request: Request<v1::CreateInviteRequest>,
    ) -> Result<Response<v1::CreateInviteResponse>, Status> {
        let body = request.into_inner();
        let name = validate::display_name("display_name", &body.display_name)?;
        let valid_minutes = validate::invite_minutes("valid_minutes", body.valid_minutes)?;
        let role = match v1::Role::try_from(body.role) {
            Ok(v1::Role::Guardian) if body.child_id.is_empty() => Role::Guardian,
            Ok(v1::Role::Guardian) => {
                return Err(
                    HubError::invalid("child_id", "must be empty for a guardian invite").into(),
                );
            }
            Ok(v1::Role::Device) => Role::Device,
            _ => {
                return Err(
                    HubError::invalid("role", "must be ROLE_GUARDIAN or ROLE_DEVICE").into(),
                );
            }
        };
        let child_id = body.child_id;
        let event = self
            .hub
            .writer
            .write(move |txn| {
                let now = txn.now();
                let event = match role {
                    Role::Guardian => v1::Event {
                        actor: Some(admin_actor()),
                        payload: Some(invite::guardian_invited(&name, now, valid_minutes)),
                        ..Default::default()
                    },
                    Role::Device => {
                        if txn.household().child(&child_id).is_none() {
                            return Err(HubError::no_child(&child_id));
                        }
                        v1::Event {
                            actor: Some(admin_actor()),
                            child_id: child_id.clone(),
                            device_id: ids::new("d"),
                            payload: Some(Payload::DeviceAdded(v1::DeviceAdded {
                                display_name: name,
                                kind: v1::DeviceKind::Agent as i32,
                                legacy_address: String::new(),
                            })),
                            ..Default::default()
                        }
                    }
                };
                Ok(txn.append(event))
            })
            .await?;
        let invitee = match &event.payload {
            Some(Payload::GuardianInvited(invited)) => Invitee {
                role: Role::Guardian,
                identity_id: invited.guardian_id.clone(),
                display_name: invited.display_name.clone(),
                child_id: String::new(),
                invited_by: String::new(),
            },
            Some(Payload::DeviceAdded(added)) => Invitee {
                role: Role::Device,
                identity_id: event.device_id.clone(),
                display_name: added.display_name.clone(),
                child_id: event.child_id.clone(),
                invited_by: String::new(),
            },
            _ => return Err(HubError::storage("unexpected invite event").into()),
        };
        let invite = invite::issue(
            &self.hub,
            &invitee,
            event.time_unix_micros,
            valid_minutes,
            None,
        )?;
        Ok(Response::new(v1::CreateInviteResponse {
            invite: Some(invite),
        }))
    }

    async fn list_identities(
        &self,
        request: Request<v1::ListIdentitiesRequest>,
    ) -> Result<Response<v1::ListIdentitiesResponse>, Status> {
        let body = request.into_inner();
        let role = match v1::Role::try_from(body.role) {
            Ok(v1::Role::Guardian) => Some(Role::Guardian),
            Ok(v1::Role::Device) => Some(Role::Device),
            _ => None,
        };
        let identities = identities(&self.hub, role, body.include_revoked)?;
        Ok(Response::new(v1::ListIdentitiesResponse { identities }))
    }

    async fn revoke_identity(
        &self,
        request: Request<v1::RevokeIdentityRequest>,
    ) -> Result<Response<v1::RevokeIdentityResponse>, Status> {
        let body = request.into_inner();
        let identity = revoke(
            &self.hub,
            admin_actor(),
            &body.identity_id,
            &body.credential_id,
        )
        .await?;
        Ok(Response::new(v1::RevokeIdentityResponse {
            identity: Some(identity),
        }))
    }

    async fn backup(
        &self,
        request: Request<v1::BackupRequest>,
    ) -> Result<Response<v1::BackupResponse>, Status> {
        let path = PathBuf::from(request.into_inner().path);
        let summary = backup(&self.hub, &path).await?;
        tracing::info!(path = %summary.path, last_seq = summary.last_seq, "backup written");
        Ok(Response::new(v1::BackupResponse {
            summary: Some(summary),
        }))
    }

    async fn get_stats(
        &self,
        _request: Request<v1::GetStatsRequest>,
    ) -> Result<Response<v1::GetStatsResponse>, Status> {
        let stats = self.hub.store.stats();
        let household = self.hub.read();
        let table_bytes: u64 = stats.bytes_per_level.iter().sum();
        Ok(Response::new(v1::GetStatsResponse {
            hub_version: env!("CARGO_PKG_VERSION").into(),
            uptime_seconds: self.hub.started.elapsed().as_secs(),
            ca_sha256_hex: self.hub.ca.sha256_hex(),
            last_seq: household.last_seq(),
            child_count: household.children().count() as u32,
            device_count: household.devices(None).count() as u32,
            guardian_count: household.guardians().count() as u32,
            sessions_open: self.hub.sessions.count() as u32,
            watches_open: self.hub.metrics.watches.get() as u32,
            events_appended: self.hub.metrics.events_appended.get(),
            data_dir_bytes: crate::serve::dir_bytes(&self.hub.data_dir),
            eventlog: Some(v1::EventLogStats {
                memtable_bytes: 0,
                sstable_count: stats.tables_per_level.iter().sum::<usize>() as u64,
                sstable_bytes: table_bytes,
                compactions: stats.compaction_count,
                wal_bytes: stats.wal_bytes_written,
            }),
            legacy: None,
        }))
    }

    async fn forget_child(
        &self,
        request: Request<v1::ForgetChildRequest>,
    ) -> Result<Response<v1::ForgetChildResponse>, Status> {
        let child_id = request.into_inner().child_id;
        let id = child_id.clone();
        let event = self
            .hub
            .writer
            .write(move |txn| {
                let household = txn.household();
                let entry = household
                    .child_ever(&id)
                    .ok_or_else(|| HubError::no_child(&id))?;
                if !entry.child.device_ids.is_empty() && household.child(&id).is_some() {
                    return Err(HubError::ChildHasDevices {
                        device_ids: entry.child.device_ids.clone(),
                    });
                }
                let event = txn.append(v1::Event {
                    actor: Some(admin_actor()),
                    child_id: id,
                    payload: Some(Payload::ChildRemoved(v1::ChildRemoved {
                        history_forgotten: true,
                    })),
                    ..Default::default()
                });
                // Replace the snapshot before the log forgets: no file keeps the child.
                txn.snapshot_after();
                Ok(event)
            })
            .await?;
        let store = self.hub.store.clone();
        let (id, keep) = (child_id.clone(), event.seq);
        let deleted = tokio::task::spawn_blocking(move || store.forget_child(&id, keep))
            .await
            .map_err(HubError::storage)??;
        tracing::info!(child = %child_id, deleted, "child's history forgotten");
        Ok(Response::new(v1::ForgetChildResponse {
            event: Some(event),
        }))
    }
}
