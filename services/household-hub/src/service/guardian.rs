//! `household.v1.Household`: what guardians call. Each RPC validates its fields, then
//! hands a decision to the writer, which checks it against the household as it is at
//! that moment (so two guardians acting at once are ordered by seq) and answers once the
//! events are durable.
//!
//! Watch, history and reports have modules of their own; this file is the glue for the
//! rest.

use std::pin::Pin;
use std::sync::Arc;

use household_core::{Answer, DeviceId, RequestId, RequestRefusal};
use household_proto::convert;
use household_proto::v1::{self, event::Payload, household_server::Household as HouseholdApi};
use jiff::Timestamp;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::auth::Principal;
use crate::error::{HubError, NotFoundKind};
use crate::household::Household;
use crate::hub::Hub;
use crate::ids;
use crate::invite;
use crate::registry::Role;
use crate::service::call::{Call, Keyed};
use crate::validate;
use crate::writer::Txn;

/// The Household service.
pub struct GuardianService {
    hub: Arc<Hub>,
}

impl GuardianService {
    /// The service over a hub.
    pub fn new(hub: Arc<Hub>) -> GuardianService {
        GuardianService { hub }
    }
}

/// A guardian's lookups that fail with NOT_FOUND.
fn child_of<'a>(
    household: &'a Household,
    child_id: &str,
) -> Result<&'a crate::household::ChildEntry, HubError> {
    household
        .child(child_id)
        .ok_or_else(|| HubError::no_child(child_id))
}

fn device_of<'a>(household: &'a Household, device_id: &str) -> Result<&'a v1::Device, HubError> {
    household
        .device(device_id)
        .ok_or_else(|| HubError::no_device(device_id))
}

/// Refuses a child name another child has, ignoring case.
fn child_name_free(household: &Household, name: &str, except: &str) -> Result<(), HubError> {
    let taken = household.children().any(|c| {
        c.child.child_id != except && c.child.display_name.to_lowercase() == name.to_lowercase()
    });
    if taken {
        return Err(HubError::NameTaken {
            field: "display_name",
            name: name.to_owned(),
        });
    }
    Ok(())
}

fn core_instant(field: &str, micros: i64) -> Result<Timestamp, HubError> {
    Timestamp::from_microsecond(micros).map_err(|_| {
        HubError::invalid(
            field,
            "must be an instant between the years -9999 and 9999 (µs since 1970)",
        )
    })
}

impl GuardianService {
    fn event(&self, seq: u64) -> Result<v1::Event, HubError> {
        self.hub
            .store
            .get(seq)?
            .ok_or_else(|| HubError::storage(format!("event {seq} is missing from the log")))
    }

    /// The event a keyed call logged: the new one, or the first call's on a replay (with
    /// `replayed` set).
    fn settle(&self, outcome: Keyed<v1::Event>) -> Result<(v1::Event, bool), HubError> {
        match outcome {
            Keyed::Fresh(event) => Ok((event, false)),
            Keyed::Replay(seq) => Ok((self.event(seq)?, true)),
        }
    }

    /// Logs a guardian's invitation (`invited` makes its GUARDIAN_INVITED payload), or
    /// finds it again for a replayed call, and issues its pairing code: the same code
    /// for the same `(kind, idempotency key)` of the same caller.
    async fn invite(
        &self,
        principal: &Principal,
        call: Call,
        (kind, key): (&str, &str),
        valid_minutes: i64,
        invited_by: &str,
        invited: impl FnOnce(&Household, Timestamp) -> Payload + Send + 'static,
    ) -> Result<(v1::PairingInvite, bool), HubError> {
        let outcome = self
            .hub
            .writer
            .write(move |txn| {
                if let Some(seq) = call.replay_of(txn.household(), txn.now())? {
                    return Ok(Keyed::Replay(seq));
                }
                let payload = invited(txn.household(), txn.now());
                Ok(Keyed::Fresh(txn.append(call.event("", "", payload))))
            })
            .await?;
        let (event, replayed) = self.settle(outcome)?;
        let Some(Payload::GuardianInvited(invited)) = &event.payload else {
            return Err(HubError::storage(format!(
                "event {} is not an invitation",
                event.seq
            )));
        };
        let (guardian_id, _) = principal.guardian()?;
        let context = invite_context(kind, guardian_id, key);
        let invite = invite::issue(
            &self.hub,
            &invite::Invitee {
                role: Role::Guardian,
                identity_id: invited.guardian_id.clone(),
                display_name: invited.display_name.clone(),
                child_id: String::new(),
                invited_by: invited_by.to_owned(),
            },
            event.time_unix_micros,
            valid_minutes,
            context.as_deref(),
        )?;
        Ok((invite, replayed))
    }

    fn status(&self, child_id: &str) -> Result<v1::ChildStatus, HubError> {
        self.hub.child_status(child_id)
    }

    /// Ends the sessions of a device that was removed or revoked.
    fn cut_off(&self, identity_id: &str) {
        self.hub
            .sessions
            .end(identity_id, crate::sessions::EndReason::Revoked);
        self.hub.revoked();
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<v1::WatchResponse, Status>> + Send>>;

#[tonic::async_trait]
impl HouseholdApi for GuardianService {
    async fn list_children(
        &self,
        _request: Request<v1::ListChildrenRequest>,
    ) -> Result<Response<v1::ListChildrenResponse>, Status> {
        let children = self
            .hub
            .read()
            .children()
            .map(|c| c.child.clone())
            .collect();
        Ok(Response::new(v1::ListChildrenResponse { children }))
    }

    async fn add_child(
        &self,
        request: Request<v1::AddChildRequest>,
    ) -> Result<Response<v1::AddChildResponse>, Status> {
        let principal = Principal::of(&request);
        let body = request.into_inner();
        let call = Call::new(
            &principal,
            &body.idempotency_key,
            false,
            &v1::AddChildRequest {
                idempotency_key: String::new(),
                ..body.clone()
            },
        )?;
        let name = validate::display_name("display_name", &body.display_name)?;
        let policy = match &body.policy {
            Some(policy) => {
                convert::policy_to_core(policy).map_err(|e| HubError::from(e.within("policy")))?
            }
            None => household_core::Policy::default(),
        };
        policy
            .validate()
            .map_err(|e| HubError::from(e.within("policy")))?;
        let outcome = self
            .hub
            .writer
            .write(move |txn: &mut Txn<'_>| {
                if let Some(seq) = call.replay_of(txn.household(), txn.now())? {
                    return Ok(Keyed::Replay(seq));
                }
                child_name_free(txn.household(), &name, "")?;
                let child_id = ids::new("c");
                let added = txn.append(call.event(
                    &child_id,
                    "",
                    Payload::ChildAdded(v1::ChildAdded {
                        display_name: name.clone(),
                    }),
                ));
                let mut first = policy;
                first.revision = 1;
                txn.append(call.plain_event(
                    &child_id,
                    "",
                    Payload::PolicyChanged(v1::PolicyChanged {
                        policy: Some(convert::policy_from_core(&first, 1, 0, None)),
                        previous_revision: 0,
                    }),
                ));
                Ok(Keyed::Fresh(added.seq))
            })
            .await?;
        let (seq, replayed) = match outcome {
            Keyed::Fresh(seq) => (seq, false),
            Keyed::Replay(seq) => (seq, true),
        };
        let child_id = self.event(seq)?.child_id;
        let household = self.hub.read();
        let child = household
            .child_ever(&child_id)
            .map(|c| c.child.clone())
            .ok_or_else(|| HubError::no_child(&child_id))?;
        Ok(Response::new(v1::AddChildResponse {
            child: Some(child),
            policy: household.policy(&child_id),
            replayed,
        }))
    }

    async fn rename_child(
        &self,
        request: Request<v1::RenameChildRequest>,
    ) -> Result<Response<v1::RenameChildResponse>, Status> {
        let actor = Principal::of(&request).actor();
        let body = request.into_inner();
        let name = validate::display_name("display_name", &body.display_name)?;
        let child_id = body.child_id;
        let id = child_id.clone();
        self.hub
            .writer
            .write(move |txn| {
                let previous = child_of(txn.household(), &id)?.child.display_name.clone();
                child_name_free(txn.household(), &name, &id)?;
                if previous != name {
                    txn.append(event_by(
                        actor,
                        &id,
                        "",
                        Payload::ChildRenamed(v1::ChildRenamed {
                            display_name: name,
                            previous_display_name: previous,
                        }),
                    ));
                }
                Ok(())
            })
            .await?;
        let child = self.hub.read().child(&child_id).map(|c| c.child.clone());
        Ok(Response::new(v1::RenameChildResponse { child }))
    }

    async fn remove_child(
        &self,
        request: Request<v1::RemoveChildRequest>,
    ) -> Result<Response<v1::RemoveChildResponse>, Status> {
        let actor = Principal::of(&request).actor();
        let child_id = request.into_inner().child_id;
        self.hub
            .writer
            .write(move |txn| {
                let entry = child_of(txn.household(), &child_id)?;
                if !entry.child.device_ids.is_empty() {
                    return Err(HubError::ChildHasDevices {
                        device_ids: entry.child.device_ids.clone(),
                    });
                }
                txn.append(event_by(
                    actor,
                    &child_id,
                    "",
                    Payload::ChildRemoved(v1::ChildRemoved {
                        history_forgotten: false,
                    }),
                ));
                Ok(())
            })
            .await?;
        Ok(Response::new(v1::RemoveChildResponse {}))
    }

    async fn list_devices(
        &self,
        request: Request<v1::ListDevicesRequest>,
    ) -> Result<Response<v1::ListDevicesResponse>, Status> {
        let child_id = request.into_inner().child_id;
        let household = self.hub.read();
        let filter = if child_id.is_empty() {
            None
        } else {
            child_of(&household, &child_id)?;
            Some(child_id.as_str())
        };
        let devices = household.devices(filter).cloned().collect();
        let network_devices = match filter {
            None => self.hub.network.list(),
            Some(_) => Vec::new(),
        };
        Ok(Response::new(v1::ListDevicesResponse {
            devices,
            network_devices,
        }))
    }

    async fn add_device(
        &self,
        request: Request<v1::AddDeviceRequest>,
    ) -> Result<Response<v1::AddDeviceResponse>, Status> {
        let principal = Principal::of(&request);
        let body = request.into_inner();
        let call = Call::new(
            &principal,
            &body.idempotency_key,
            false,
            &v1::AddDeviceRequest {
                idempotency_key: String::new(),
                ..body.clone()
            },
        )?;
        let name = validate::display_name("display_name", &body.display_name)?;
        let kind = body.kind.ok_or_else(|| {
            HubError::invalid("kind", "exactly one of agent or legacy_cst is required")
        })?;
        let spec = match kind {
            v1::add_device_request::Kind::Agent(agent) => DeviceSpec::Agent {
                valid_minutes: validate::invite_minutes(
                    "agent.invite_valid_minutes",
                    agent.invite_valid_minutes,
                )?,
            },
            v1::add_device_request::Kind::LegacyCst(legacy) => DeviceSpec::Legacy {
                address: validate::legacy_address("legacy_cst.address", &legacy.address)?
                    .to_string(),
                cst_device_id: validate::cst_device_id(
                    "legacy_cst.cst_device_id",
                    &legacy.cst_device_id,
                )?,
            },
        };
        let valid_minutes = match &spec {
            DeviceSpec::Agent { valid_minutes } => Some(*valid_minutes),
            DeviceSpec::Legacy { .. } => None,
        };
        let hub = self.hub.clone();
        let child_id = body.child_id;
        let outcome = self
            .hub
            .writer
            .write(move |txn| {
                if let Some(seq) = call.replay_of(txn.household(), txn.now())? {
                    return Ok(Keyed::Replay(seq));
                }
                child_of(txn.household(), &child_id)?;
                let device_id = ids::new("d");
                let payload = match &spec {
                    DeviceSpec::Agent { .. } => v1::DeviceAdded {
                        display_name: name.clone(),
                        kind: v1::DeviceKind::Agent as i32,
                        legacy_address: String::new(),
                    },
                    DeviceSpec::Legacy {
                        address,
                        cst_device_id,
                    } => {
                        let household = txn.household();
                        if let Some(existing) = household
                            .devices(None)
                            .find(|d| d.legacy_address == *address)
                        {
                            return Err(HubError::LegacyDeviceExists {
                                what: "address",
                                device_id: existing.device_id.clone(),
                            });
                        }
                        if let Some(existing) = hub.registry.device_with_cst_id(cst_device_id)?
                            && household.device(&existing).is_some()
                        {
                            return Err(HubError::LegacyDeviceExists {
                                what: "CST device ID",
                                device_id: existing,
                            });
                        }
                        hub.registry.put_cst_id(&device_id, cst_device_id)?;
                        v1::DeviceAdded {
                            display_name: name.clone(),
                            kind: v1::DeviceKind::LegacyCst as i32,
                            legacy_address: address.clone(),
                        }
                    }
                };
                let event =
                    txn.append(call.event(&child_id, &device_id, Payload::DeviceAdded(payload)));
                Ok(Keyed::Fresh(event))
            })
            .await?;
        let (event, replayed) = self.settle(outcome)?;
        let device = self
            .hub
            .read()
            .device(&event.device_id)
            .cloned()
            .ok_or_else(|| HubError::no_device(&event.device_id))?;
        let invite = match valid_minutes {
            Some(valid_minutes) => {
                let (guardian_id, _) = principal.guardian()?;
                let context = invite_context("device", guardian_id, &body.idempotency_key);
                Some(invite::issue(
                    &self.hub,
                    &invite::Invitee {
                        role: Role::Device,
                        identity_id: device.device_id.clone(),
                        display_name: device.display_name.clone(),
                        child_id: device.child_id.clone(),
                        invited_by: String::new(),
                    },
                    event.time_unix_micros,
                    valid_minutes,
                    context.as_deref(),
                )?)
            }
            None => None,
        };
        Ok(Response::new(v1::AddDeviceResponse {
            device: Some(device),
            invite,
            replayed,
        }))
    }

    async fn rename_device(
        &self,
        request: Request<v1::RenameDeviceRequest>,
    ) -> Result<Response<v1::RenameDeviceResponse>, Status> {
        let actor = Principal::of(&request).actor();
        let body = request.into_inner();
        let name = validate::display_name("display_name", &body.display_name)?;
        let device_id = body.device_id;
        let id = device_id.clone();
        self.hub
            .writer
            .write(move |txn| {
                let device = device_of(txn.household(), &id)?;
                let (child, previous) = (device.child_id.clone(), device.display_name.clone());
                if previous != name {
                    txn.append(event_by(
                        actor,
                        &child,
                        &id,
                        Payload::DeviceRenamed(v1::DeviceRenamed {
                            display_name: name,
                            previous_display_name: previous,
                        }),
                    ));
                }
                Ok(())
            })
            .await?;
        let device = self.hub.read().device(&device_id).cloned();
        Ok(Response::new(v1::RenameDeviceResponse { device }))
    }

    async fn remove_device(
        &self,
        request: Request<v1::RemoveDeviceRequest>,
    ) -> Result<Response<v1::RemoveDeviceResponse>, Status> {
        let actor = Principal::of(&request).actor();
        let device_id = request.into_inner().device_id;
        let hub = self.hub.clone();
        let id = device_id.clone();
        self.hub
            .writer
            .write(move |txn| {
                let child = device_of(txn.household(), &id)?.child_id.clone();
                if hub.registry.identity(&id)?.is_some() {
                    hub.registry.revoke(&id, "")?;
                }
                txn.append(event_by(
                    actor,
                    &child,
                    &id,
                    Payload::DeviceRemoved(v1::DeviceRemoved {}),
                ));
                Ok(())
            })
            .await?;
        self.cut_off(&device_id);
        Ok(Response::new(v1::RemoveDeviceResponse {}))
    }

    async fn list_guardians(
        &self,
        _request: Request<v1::ListGuardiansRequest>,
    ) -> Result<Response<v1::ListGuardiansResponse>, Status> {
        let guardians = self.hub.read().guardians().cloned().collect();
        Ok(Response::new(v1::ListGuardiansResponse { guardians }))
    }

    async fn invite_guardian(
        &self,
        request: Request<v1::InviteGuardianRequest>,
    ) -> Result<Response<v1::InviteGuardianResponse>, Status> {
        let principal = Principal::of(&request);
        let body = request.into_inner();
        let call = Call::new(
            &principal,
            &body.idempotency_key,
            false,
            &v1::InviteGuardianRequest {
                idempotency_key: String::new(),
                ..body.clone()
            },
        )?;
        let name = validate::display_name("display_name", &body.display_name)?;
        let valid_minutes = validate::invite_minutes("valid_minutes", body.valid_minutes)?;
        let (invite, replayed) = self
            .invite(
                &principal,
                call,
                ("guardian", &body.idempotency_key),
                valid_minutes,
                "",
                move |_, now| invite::guardian_invited(&name, now, valid_minutes),
            )
            .await?;
        Ok(Response::new(v1::InviteGuardianResponse {
            invite: Some(invite),
            replayed,
        }))
    }

    async fn invite_credential(
        &self,
        request: Request<v1::InviteCredentialRequest>,
    ) -> Result<Response<v1::InviteCredentialResponse>, Status> {
        let principal = Principal::of(&request);
        let body = request.into_inner();
        let call = Call::new(
            &principal,
            &body.idempotency_key,
            false,
            &v1::InviteCredentialRequest {
                idempotency_key: String::new(),
                ..body.clone()
            },
        )?;
        let valid_minutes = validate::invite_minutes("valid_minutes", body.valid_minutes)?;
        let (guardian_id, credential_id) = principal.guardian()?;
        let (guardian_id, credential_id) = (guardian_id.to_owned(), credential_id.to_owned());
        let (invite, replayed) = self
            .invite(
                &principal,
                call,
                ("credential", &body.idempotency_key),
                valid_minutes,
                &credential_id,
                move |household, now| {
                    invite::credential_invited(
                        &guardian_id,
                        &household.guardian_name(&guardian_id),
                        now,
                        valid_minutes,
                    )
                },
            )
            .await?;
        Ok(Response::new(v1::InviteCredentialResponse {
            invite: Some(invite),
            replayed,
        }))
    }

    async fn get_status(
        &self,
        request: Request<v1::GetStatusRequest>,
    ) -> Result<Response<v1::GetStatusResponse>, Status> {
        let child_ids = request.into_inner().child_ids;
        let household = self.hub.read();
        let now = Timestamp::now();
        let ids: Vec<String> = if child_ids.is_empty() {
            household
                .children()
                .map(|c| c.child.child_id.clone())
                .collect()
        } else {
            child_ids
        };
        let children = ids
            .iter()
            .map(|id| {
                household
                    .child_status(id, now)
                    .ok_or_else(|| HubError::no_child(id))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Response::new(v1::GetStatusResponse {
            children,
            as_of_seq: household.last_seq(),
        }))
    }

    type WatchStream = WatchStream;

    async fn watch(
        &self,
        request: Request<v1::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let principal = Principal::of(&request);
        let stream =
            crate::service::watch::open(self.hub.clone(), principal, request.into_inner())?;
        Ok(Response::new(stream))
    }

    async fn grant_time(
        &self,
        request: Request<v1::GrantTimeRequest>,
    ) -> Result<Response<v1::GrantTimeResponse>, Status> {
        let principal = Principal::of(&request);
        let body = request.into_inner();
        let call = Call::new(
            &principal,
            &body.idempotency_key,
            true,
            &v1::GrantTimeRequest {
                idempotency_key: String::new(),
                ..body.clone()
            },
        )?;
        validate::note("note", &body.note)?;
        let minutes = i64::from(body.minutes);
        let child_id = body.child_id;
        let note = body.note;
        let outcome = self
            .hub
            .writer
            .write(move |txn| {
                if let Some(seq) = call.replay_of(txn.household(), txn.now())? {
                    return Ok(Keyed::Replay(seq));
                }
                let entry = child_of(txn.household(), &child_id)?;
                entry.projection.check_grant(minutes)?;
                let day = entry.projection.day_of(txn.now()).date;
                let event = txn.append(call.event(
                    &child_id,
                    "",
                    Payload::TimeGranted(v1::TimeGranted {
                        minutes: body.minutes,
                        day: Some(convert::date_to_proto(day)),
                        note,
                        granted_unix_micros: None,
                    }),
                ));
                Ok(Keyed::Fresh(event))
            })
            .await?;
        let (event, replayed) = self.settle(outcome)?;
        let status = self.status(&event.child_id)?;
        Ok(Response::new(v1::GrantTimeResponse {
            event: Some(event),
            status: Some(status),
            replayed,
        }))
    }

    async fn lock(
        &self,
        request: Request<v1::LockRequest>,
    ) -> Result<Response<v1::LockResponse>, Status> {
        let principal = Principal::of(&request);
        let body = request.into_inner();
        let call = Call::new(
            &principal,
            &body.idempotency_key,
            false,
            &v1::LockRequest {
                idempotency_key: String::new(),
                ..body.clone()
            },
        )?;
        validate::note("reason", &body.reason)?;
        let target = body.target.ok_or_else(|| {
            HubError::invalid("target", "exactly one of child_id or device_id is required")
        })?;
        let until = body
            .until_unix_micros
            .map(|micros| core_instant("until_unix_micros", micros))
            .transpose()?;
        let reason = body.reason;
        let outcome = self
            .hub
            .writer
            .write(move |txn| {
                if let Some(seq) = call.replay_of(txn.household(), txn.now())? {
                    return Ok(Keyed::Replay(seq));
                }
                let (child_id, device_id) =
                    resolve_target(txn.household(), &target_of_lock(&target))?;
                let entry = child_of(txn.household(), &child_id)?;
                let device = (!device_id.is_empty()).then(|| DeviceId(device_id.clone()));
                entry.projection.check_lock(device, until, txn.now())?;
                let event = txn.append(call.event(
                    &child_id,
                    &device_id,
                    Payload::Locked(v1::Locked {
                        until_unix_micros: body.until_unix_micros,
                        reason,
                    }),
                ));
                Ok(Keyed::Fresh(event))
            })
            .await?;
        let (event, replayed) = self.settle(outcome)?;
        let status = self.status(&event.child_id)?;
        Ok(Response::new(v1::LockResponse {
            event: Some(event),
            status: Some(status),
            replayed,
        }))
    }

    async fn unlock(
        &self,
        request: Request<v1::UnlockRequest>,
    ) -> Result<Response<v1::UnlockResponse>, Status> {
        let principal = Principal::of(&request);
        let body = request.into_inner();
        let call = Call::new(
            &principal,
            &body.idempotency_key,
            false,
            &v1::UnlockRequest {
                idempotency_key: String::new(),
                ..body.clone()
            },
        )?;
        validate::note("reason", &body.reason)?;
        let target = body.target.ok_or_else(|| {
            HubError::invalid("target", "exactly one of child_id or device_id is required")
        })?;
        let until = body
            .until_unix_micros
            .map(|micros| core_instant("until_unix_micros", micros))
            .transpose()?;
        let reason = body.reason;
        let outcome = self
            .hub
            .writer
            .write(move |txn| {
                if let Some(seq) = call.replay_of(txn.household(), txn.now())? {
                    return Ok(Keyed::Replay(seq));
                }
                let (child_id, device_id) =
                    resolve_target(txn.household(), &target_of_unlock(&target))?;
                let entry = child_of(txn.household(), &child_id)?;
                let device = (!device_id.is_empty()).then(|| DeviceId(device_id.clone()));
                entry
                    .projection
                    .check_unlock(device.as_ref(), until, txn.now())?;
                if !entry
                    .projection
                    .unlock_changes_anything(device.as_ref(), until, txn.now())
                {
                    return Ok(Keyed::Fresh((None, child_id)));
                }
                let event = txn.append(call.event(
                    &child_id,
                    &device_id,
                    Payload::Unlocked(v1::Unlocked {
                        reason,
                        until_unix_micros: body.until_unix_micros,
                    }),
                ));
                Ok(Keyed::Fresh((Some(event), child_id)))
            })
            .await?;
        let (event, child_id, replayed) = match outcome {
            Keyed::Fresh((event, child_id)) => (event, child_id, false),
            Keyed::Replay(seq) => {
                let event = self.event(seq)?;
                let child_id = event.child_id.clone();
                (Some(event), child_id, true)
            }
        };
        let status = self.status(&child_id)?;
        Ok(Response::new(v1::UnlockResponse {
            event,
            status: Some(status),
            replayed,
        }))
    }

    async fn get_policy(
        &self,
        request: Request<v1::GetPolicyRequest>,
    ) -> Result<Response<v1::GetPolicyResponse>, Status> {
        let child_id = request.into_inner().child_id;
        let policy = self
            .hub
            .read()
            .policy(&child_id)
            .ok_or_else(|| HubError::no_child(&child_id))?;
        Ok(Response::new(v1::GetPolicyResponse {
            policy: Some(policy),
        }))
    }

    async fn set_policy(
        &self,
        request: Request<v1::SetPolicyRequest>,
    ) -> Result<Response<v1::SetPolicyResponse>, Status> {
        let actor = Principal::of(&request).actor();
        let body = request.into_inner();
        if body.expected_revision.is_none() && !body.force {
            return Err(HubError::invalid(
                "expected_revision",
                "is required: send the revision you read with GetPolicy, or force: true to overwrite whatever is there",
            )
            .into());
        }
        let policy = body
            .policy
            .as_ref()
            .ok_or_else(|| HubError::invalid("policy", "is required: the complete new policy"))?;
        let policy =
            convert::policy_to_core(policy).map_err(|e| HubError::from(e.within("policy")))?;
        let expected = if body.force {
            None
        } else {
            body.expected_revision
        };
        let child_id = body.child_id;
        let id = child_id.clone();
        self.hub
            .writer
            .write(move |txn| {
                let household = txn.household();
                let entry = child_of(household, &id)?;
                let current = entry.projection.policy().revision;
                let accepted = match entry.projection.check_policy_change(policy, expected) {
                    Ok(accepted) => accepted,
                    Err(household_core::PolicyChangeError::Invalid(err)) => {
                        return Err(HubError::from(err.within("policy")));
                    }
                    Err(household_core::PolicyChangeError::StaleRevision { expected, current }) => {
                        let (updated_by, updated_by_name) =
                            actor_names(household, entry.policy_updated_by.as_ref());
                        return Err(HubError::PolicyRevisionStale {
                            expected,
                            current_revision: current,
                            updated_by,
                            updated_by_name,
                            updated_unix_micros: entry.policy_updated_unix_micros,
                        });
                    }
                };
                let revision = accepted.revision;
                txn.append(event_by(
                    actor,
                    &id,
                    "",
                    Payload::PolicyChanged(v1::PolicyChanged {
                        policy: Some(convert::policy_from_core(&accepted, revision, 0, None)),
                        previous_revision: current,
                    }),
                ));
                Ok(())
            })
            .await?;
        let policy = self.hub.read().policy(&child_id);
        Ok(Response::new(v1::SetPolicyResponse { policy }))
    }

    async fn list_time_requests(
        &self,
        request: Request<v1::ListTimeRequestsRequest>,
    ) -> Result<Response<v1::ListTimeRequestsResponse>, Status> {
        let body = request.into_inner();
        let household = self.hub.read();
        let now = Timestamp::now();
        if !body.child_id.is_empty() {
            child_of(&household, &body.child_id)?;
        }
        let mut requests = Vec::new();
        for entry in household.children() {
            if !body.child_id.is_empty() && entry.child.child_id != body.child_id {
                continue;
            }
            for request in entry.projection.requests() {
                let proto = household.request_to_proto(&entry.child.child_id, request, now);
                let pending = proto.status == v1::TimeRequestStatus::Pending as i32;
                let ended_at = if proto.resolved_unix_micros != 0 {
                    proto.resolved_unix_micros
                } else {
                    request.expires_at.as_microsecond()
                };
                let recent = body
                    .resolved_since_unix_micros
                    .is_some_and(|since| ended_at >= since);
                if pending || recent {
                    requests.push(proto);
                }
            }
        }
        requests.sort_by_key(|r| r.requested_unix_micros);
        Ok(Response::new(v1::ListTimeRequestsResponse { requests }))
    }

    async fn approve_time_request(
        &self,
        request: Request<v1::ApproveTimeRequestRequest>,
    ) -> Result<Response<v1::ApproveTimeRequestResponse>, Status> {
        let principal = Principal::of(&request);
        let body = request.into_inner();
        let call = Call::new(
            &principal,
            &body.idempotency_key,
            false,
            &v1::ApproveTimeRequestRequest {
                idempotency_key: String::new(),
                ..body.clone()
            },
        )?;
        validate::note("note", &body.note)?;
        let (request, already, replayed) = self
            .answer(
                call,
                body.request_id,
                Reply::Approve(body.minutes),
                body.note,
            )
            .await?;
        let status = self.status(&request.child_id)?;
        Ok(Response::new(v1::ApproveTimeRequestResponse {
            request: Some(request),
            status: Some(status),
            already_resolved: already,
            replayed,
        }))
    }

    async fn deny_time_request(
        &self,
        request: Request<v1::DenyTimeRequestRequest>,
    ) -> Result<Response<v1::DenyTimeRequestResponse>, Status> {
        let principal = Principal::of(&request);
        let body = request.into_inner();
        let call = Call::new(
            &principal,
            &body.idempotency_key,
            false,
            &v1::DenyTimeRequestRequest {
                idempotency_key: String::new(),
                ..body.clone()
            },
        )?;
        validate::note("note", &body.note)?;
        let (request, already, replayed) = self
            .answer(call, body.request_id, Reply::Deny, body.note)
            .await?;
        Ok(Response::new(v1::DenyTimeRequestResponse {
            request: Some(request),
            already_resolved: already,
            replayed,
        }))
    }

    async fn get_history(
        &self,
        request: Request<v1::GetHistoryRequest>,
    ) -> Result<Response<v1::GetHistoryResponse>, Status> {
        let response = crate::service::history::page(&self.hub, request.into_inner())?;
        Ok(Response::new(response))
    }

    async fn get_report(
        &self,
        request: Request<v1::GetReportRequest>,
    ) -> Result<Response<v1::GetReportResponse>, Status> {
        let response = crate::service::report::build(&self.hub, request.into_inner())?;
        Ok(Response::new(response))
    }

    async fn list_credentials(
        &self,
        request: Request<v1::ListCredentialsRequest>,
    ) -> Result<Response<v1::ListCredentialsResponse>, Status> {
        let include_revoked = request.into_inner().include_revoked;
        let identities = crate::service::admin::identities(&self.hub, None, include_revoked)?;
        Ok(Response::new(v1::ListCredentialsResponse { identities }))
    }

    async fn revoke_credential(
        &self,
        request: Request<v1::RevokeCredentialRequest>,
    ) -> Result<Response<v1::RevokeCredentialResponse>, Status> {
        let actor = Principal::of(&request).actor();
        let body = request.into_inner();
        let identity =
            crate::service::admin::revoke(&self.hub, actor, &body.identity_id, &body.credential_id)
                .await?;
        Ok(Response::new(v1::RevokeCredentialResponse {
            identity: Some(identity),
        }))
    }

    async fn adopt_device(
        &self,
        request: Request<v1::AdoptDeviceRequest>,
    ) -> Result<Response<v1::AdoptDeviceResponse>, Status> {
        let principal = Principal::of(&request);
        principal.guardian()?;
        let body = request.into_inner();
        let code =
            household_client::adopt::normalize_code(&body.verification_code).ok_or_else(|| {
                HubError::invalid(
                    "verification_code",
                    "must be the 6 digits the device shows (e.g. \"4 7 1 9 2 0\")",
                )
            })?;
        if body.host.trim().is_empty() {
            return Err(HubError::invalid(
                "host",
                "is required: an agent's host name as `household devices list` shows it",
            )
            .into());
        }
        child_of(&self.hub.read(), &body.child_id)?;
        let agent = self.hub.network.find(&body.host)?;
        let display_name = if body.display_name.is_empty() {
            validate::display_name("display_name", &agent.host_name)?
        } else {
            validate::display_name("display_name", &body.display_name)?
        };
        let mut waiting = self.hub.adoptions.begin(crate::adoption::Request {
            key_sha256_hex: agent.key_sha256_hex.clone(),
            host_name: agent.host_name.clone(),
            child_id: body.child_id,
            display_name,
            code,
            actor: principal.actor(),
        })?;
        tracing::info!(host = %agent.host_name, "adopting an agent; waiting for it to ask");
        let waited = crate::adoption::WAIT;
        let mut shutdown = self.hub.shutdown.clone();
        let outcome = tokio::select! {
            outcome = &mut waiting.outcome => outcome.map_err(|_| HubError::ShuttingDown)?,
            () = tokio::time::sleep(waited) => Err(HubError::AdoptionTimedOut { waited }),
            () = shutdown.wait() => Err(HubError::ShuttingDown),
        };
        let device = outcome?;
        Ok(Response::new(v1::AdoptDeviceResponse {
            device: Some(device),
        }))
    }
}

/// A guardian's reply to a request: approve (with the minutes asked for, or these), or
/// deny.
#[derive(Clone, Copy)]
enum Reply {
    Approve(Option<u32>),
    Deny,
}

impl GuardianService {
    /// Answers a request: the first answer wins, a repeat of it is `already_resolved`,
    /// anything else is refused.
    async fn answer(
        &self,
        call: Call,
        request_id: String,
        reply: Reply,
        note: String,
    ) -> Result<(v1::TimeRequest, bool, bool), HubError> {
        let outcome = self
            .hub
            .writer
            .write(move |txn| {
                if let Some(seq) = call.replay_of(txn.household(), txn.now())? {
                    return Ok(Keyed::Replay(seq));
                }
                let household = txn.household();
                let child_id = household
                    .request(&request_id)
                    .map(|r| r.child_id.clone())
                    .ok_or_else(|| HubError::NotFound {
                        what: NotFoundKind::Request,
                        id: request_id.clone(),
                    })?;
                let entry = child_of(household, &child_id)?;
                let id = RequestId(request_id.clone());
                let asked = entry
                    .projection
                    .request(&id)
                    .map(|r| r.minutes)
                    .unwrap_or_default();
                let answer = match reply {
                    Reply::Deny => Answer::Denied,
                    Reply::Approve(minutes) => Answer::Approved {
                        minutes: minutes.map_or(asked, i64::from),
                    },
                };
                match entry.projection.resolve_request(&id, answer, txn.now()) {
                    Ok(_) => {}
                    Err(refusal) if refusal.is_repeat() => {
                        return Ok(Keyed::Fresh((child_id, request_id, true)));
                    }
                    Err(refusal) => return Err(refusal_error(household, refusal)),
                }
                let day = entry
                    .projection
                    .request(&id)
                    .map(|r| entry.projection.day_of(r.requested_at).date);
                let (status, granted_minutes) = match answer {
                    Answer::Approved { minutes } => (
                        v1::TimeRequestStatus::Approved,
                        u32::try_from(minutes).unwrap_or_default(),
                    ),
                    Answer::Denied => (v1::TimeRequestStatus::Denied, 0),
                };
                let device_id = household
                    .request(&request_id)
                    .map(|r| r.device_id.clone())
                    .unwrap_or_default();
                txn.append(call.event(
                    &child_id,
                    &device_id,
                    Payload::RequestResolved(v1::RequestResolved {
                        request_id: request_id.clone(),
                        status: status as i32,
                        granted_minutes,
                        note,
                        day: day.map(convert::date_to_proto),
                    }),
                ));
                Ok(Keyed::Fresh((child_id, request_id, false)))
            })
            .await?;
        let ((child_id, request_id, already), replayed) = match outcome {
            Keyed::Fresh(done) => (done, false),
            Keyed::Replay(seq) => {
                let event = self.event(seq)?;
                let request_id = match &event.payload {
                    Some(Payload::RequestResolved(r)) => r.request_id.clone(),
                    _ => String::new(),
                };
                ((event.child_id, request_id, false), true)
            }
        };
        let household = self.hub.read();
        let request = household
            .child(&child_id)
            .and_then(|c| c.projection.request(&RequestId(request_id.clone())))
            .map(|r| household.request_to_proto(&child_id, r, Timestamp::now()))
            .ok_or_else(|| HubError::NotFound {
                what: NotFoundKind::Request,
                id: request_id.clone(),
            })?;
        Ok((request, already, replayed))
    }
}

fn refusal_error(household: &Household, refusal: RequestRefusal) -> HubError {
    match refusal {
        RequestRefusal::Unknown { id } => HubError::NotFound {
            what: NotFoundKind::Request,
            id: id.0,
        },
        RequestRefusal::AlreadyAnswered {
            id,
            answer,
            answered_at,
            ..
        } => {
            let resolved_by = household
                .request(&id.0)
                .and_then(|origin| household.child(&origin.child_id))
                .and_then(|c| c.projection.request(&id))
                .and_then(|r| r.resolution.as_ref())
                .map(|res| core_actor_name(household, &res.by))
                .unwrap_or_default();
            HubError::RequestAlreadyAnswered {
                answer: answer.to_string(),
                resolved_by,
                resolved_unix_micros: answered_at.as_microsecond(),
            }
        }
        RequestRefusal::Expired { expired_at, .. } => HubError::RequestExpired {
            expired_unix_micros: expired_at.as_microsecond(),
        },
        RequestRefusal::Invalid { error, .. } => HubError::from(error),
    }
}

fn core_actor_name(household: &Household, actor: &household_core::Actor) -> String {
    match actor {
        household_core::Actor::Guardian { id } => household.guardian_name(&id.0),
        household_core::Actor::Device { id } => id.0.clone(),
        household_core::Actor::LegacyAddress { address } => address.clone(),
        household_core::Actor::System => "the hub".into(),
    }
}

/// The id and name of whoever an API actor names, for error metadata.
fn actor_names(household: &Household, actor: Option<&v1::Actor>) -> (String, String) {
    match actor.and_then(|a| a.kind.as_ref()) {
        Some(v1::actor::Kind::GuardianId(id)) => (id.clone(), household.guardian_name(id)),
        Some(v1::actor::Kind::DeviceId(id)) => (id.clone(), id.clone()),
        Some(v1::actor::Kind::LegacyAddress(address)) => (address.clone(), address.clone()),
        Some(v1::actor::Kind::System(system)) => (String::new(), system.reason.clone()),
        None => (String::new(), "the hub".into()),
    }
}

/// An event by `actor` with no idempotency key.
fn event_by(actor: v1::Actor, child_id: &str, device_id: &str, payload: Payload) -> v1::Event {
    v1::Event {
        actor: Some(actor),
        child_id: child_id.to_owned(),
        device_id: device_id.to_owned(),
        payload: Some(payload),
        ..Default::default()
    }
}

enum DeviceSpec {
    Agent {
        valid_minutes: i64,
    },
    Legacy {
        address: String,
        cst_device_id: String,
    },
}

/// What an invite's secret is derived from when the call has an idempotency key, so a
/// replay hands out the same code; `None` (no key) means a random secret.
fn invite_context(kind: &str, guardian_id: &str, key: &str) -> Option<Vec<u8>> {
    (!key.is_empty()).then(|| format!("{kind}\0{guardian_id}\0{key}").into_bytes())
}

/// A lock or unlock target.
enum Target {
    Child(String),
    Device(String),
}

fn target_of_lock(target: &v1::lock_request::Target) -> Target {
    match target {
        v1::lock_request::Target::ChildId(id) => Target::Child(id.clone()),
        v1::lock_request::Target::DeviceId(id) => Target::Device(id.clone()),
    }
}

fn target_of_unlock(target: &v1::unlock_request::Target) -> Target {
    match target {
        v1::unlock_request::Target::ChildId(id) => Target::Child(id.clone()),
        v1::unlock_request::Target::DeviceId(id) => Target::Device(id.clone()),
    }
}

/// The child and device (empty for a child target) a target names.
fn resolve_target(household: &Household, target: &Target) -> Result<(String, String), HubError> {
    match target {
        Target::Child(id) => Ok((
            child_of(household, id)?.child.child_id.clone(),
            String::new(),
        )),
        Target::Device(id) => {
            let device = device_of(household, id)?;
            Ok((device.child_id.clone(), device.device_id.clone()))
        }
    }
}
