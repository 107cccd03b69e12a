//! The hub's half of `Agent.Session`: one long stream per device.
//!
//! Up: Hello (instance id, unacknowledged outbox ids, the agent's clock), outbox records
//! (usage, time requests, credit spends, legacy command reports), command acks. Each
//! record is applied at most once per (device, instance, outbox id), turned into events
//! with the agent's times corrected by the session's clock offset, and acknowledged
//! once durable. Down: Welcome, the budget whenever it changes, commands for locks,
//! unlocks and grants, updates of the device's time requests, heartbeats.

use std::pin::Pin;
use std::sync::Arc;

use household_core::{CreditSize, DeviceId};
use household_proto::convert;
use household_proto::v1::{
    self, event::Payload, outbox_item::Item as Record, session_request::Message as Up,
    session_response::Message as Down,
};
use jiff::Timestamp;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

use crate::auth::Principal;
use crate::error::HubError;
use crate::feed::FeedItem;
use crate::household::Household;
use crate::hub::Hub;
use crate::ids;
use crate::sessions::{EndReason, Registration};

/// How long an agent may take to say Hello.
const HELLO_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// Most outbox records applied in one writer job.
const MAX_RECORDS_PER_JOB: usize = 512;
/// Longest usage interval one record may carry.
const MAX_USAGE_MICROS: i64 = 24 * 3600 * 1_000_000;
/// Messages buffered toward an agent that is not reading.
const SESSION_BUFFER: usize = 64;

type SessionStream = Pin<Box<dyn Stream<Item = Result<v1::SessionResponse, Status>> + Send>>;

/// Opens the session of the device `principal` names.
pub fn open(
    hub: Arc<Hub>,
    principal: Principal,
    remote_address: String,
    inbound: Streaming<v1::SessionRequest>,
) -> Result<SessionStream, HubError> {
    let Principal::Device {
        device_id,
        child_id,
        credential_id,
    } = principal
    else {
        return Err(HubError::DeviceRoleRequired {
            method: "Session".into(),
        });
    };
    if hub.read().device(&device_id).is_none() {
        return Err(HubError::CredentialInvalid);
    }
    let (tx, rx) = mpsc::channel(SESSION_BUFFER);
    let session = Session {
        ctx: Context {
            device_id,
            child_id,
            instance_id: String::new(),
            offset_micros: 0,
        },
        hub,
        credential_id,
        remote_address,
        software_version: String::new(),
        tx,
        last_outbox_id: 0,
        last_budget: None,
    };
    tokio::spawn(session.run(inbound));
    Ok(Box::pin(ReceiverStream::new(rx)))
}

/// What outbox records are judged against.
#[derive(Clone)]
struct Context {
    device_id: String,
    child_id: String,
    instance_id: String,
    /// Hub clock minus agent clock, in µs, as estimated at Hello and settled by
    /// [`crate::sessions::Sessions::settle_offset`].
    offset_micros: i64,
}

struct Session {
    ctx: Context,
    hub: Arc<Hub>,
    credential_id: String,
    remote_address: String,
    /// What the agent said it runs, from Hello.
    software_version: String,
    tx: mpsc::Sender<Result<v1::SessionResponse, Status>>,
    /// The newest outbox id received in this session (they must increase).
    last_outbox_id: u64,
    /// The last budget sent, without its timestamps, to send only changes.
    last_budget: Option<v1::Budget>,
}

enum End {
    Gone,
    Error(HubError),
}

impl From<mpsc::error::SendError<Result<v1::SessionResponse, Status>>> for End {
    fn from(_: mpsc::error::SendError<Result<v1::SessionResponse, Status>>) -> End {
        End::Gone
    }
}

impl From<HubError> for End {
    fn from(err: HubError) -> End {
        End::Error(err)
    }
}

impl Session {
    async fn run(mut self, mut inbound: Streaming<v1::SessionRequest>) {
        self.hub.metrics.sessions.inc();
        let mut session_id = None;
        let outcome = self.serve(&mut inbound, &mut session_id).await;
        if let Err(End::Error(err)) = outcome {
            tracing::debug!(device = %self.ctx.device_id, error = %err, "session ended");
            let _ = self.tx.send(Err(err.into())).await;
        }
        if let Some(id) = session_id
            && self.hub.sessions.close(&self.ctx.device_id, id)
        {
            self.log_presence(false).await;
        }
        self.hub.metrics.sessions.dec();
    }

    async fn send(&self, message: Down) -> Result<(), End> {
        self.tx
            .send(Ok(v1::SessionResponse {
                message: Some(message),
            }))
            .await?;
        Ok(())
    }

    async fn log_presence(&self, online: bool) {
        let ctx = self.ctx.clone();
        let remote = self.remote_address.clone();
        let software_version = self.software_version.clone();
        let credential_id = self.credential_id.clone();
        let result = self
            .hub
            .writer
            .write(move |txn| {
                if txn.household().device(&ctx.device_id).is_none() {
                    return Ok(());
                }
                let payload = if online {
                    Payload::DeviceOnline(v1::DeviceOnline {
                        remote_address: remote,
                        software_version,
                    })
                } else {
                    Payload::DeviceOffline(v1::DeviceOffline {
                        reason: "session ended".into(),
                    })
                };
                txn.append(device_event(&ctx, &credential_id, payload, None));
                Ok(())
            })
            .await;
        if let Err(err) = result {
            tracing::warn!(device = %self.ctx.device_id, error = %err, "presence not logged");
        }
    }

    async fn serve(
        &mut self,
        inbound: &mut Streaming<v1::SessionRequest>,
        session_id: &mut Option<u64>,
    ) -> Result<(), End> {
        let hello = match tokio::time::timeout(HELLO_TIMEOUT, inbound.message()).await {
            Ok(Ok(Some(v1::SessionRequest {
                message: Some(Up::Hello(hello)),
            }))) => hello,
            Ok(Ok(None)) | Ok(Err(_)) => return Err(End::Gone),
            _ => {
                return Err(End::Error(HubError::SessionProtocol {
                    field: "hello",
                    message: "the first message must be Hello, within 30 s".into(),
                }));
            }
        };
        self.ctx.instance_id = instance_id(&hello.instance_id)?;
        self.software_version = hello.software_version.chars().take(64).collect();
        let now = Timestamp::now().as_microsecond();
        if hello.agent_time_unix_micros != 0 {
            self.ctx.offset_micros = self
                .hub
                .sessions
                .settle_offset(&self.ctx.device_id, now - hello.agent_time_unix_micros);
        }
        let mut feed = self.hub.feed.subscribe();
        let Registration { id, mut ended } = self.hub.sessions.open(&self.ctx.device_id);
        *session_id = Some(id);
        self.log_presence(true).await;
        self.welcome(&hello).await?;

        let mut shutdown = self.hub.shutdown.clone();
        let mut revocations = self.hub.revocations.subscribe();
        let heartbeat = self.hub.limits.session_heartbeat;
        loop {
            tokio::select! {
                message = inbound.message() => match message {
                    Ok(Some(message)) => self.on_message(message, inbound).await?,
                    Ok(None) | Err(_) => return Err(End::Gone),
                },
                item = feed.recv() => match item {
                    Ok(item) => self.on_feed(&item).await?,
                    Err(broadcast::error::RecvError::Lagged(_)) => self.send_budget().await?,
                    Err(broadcast::error::RecvError::Closed) => {
                        return Err(End::Error(HubError::ShuttingDown));
                    }
                },
                reason = &mut ended => {
                    return Err(End::Error(match reason {
                        Ok(EndReason::Replaced) => HubError::SessionReplaced,
                        Ok(EndReason::Revoked) | Err(_) => HubError::CredentialInvalid,
                    }));
                }
                () = shutdown.wait() => return Err(End::Error(HubError::ShuttingDown)),
                _ = revocations.changed() => {
                    if !self.hub.still_trusted(&self.credential_id) {
                        return Err(End::Error(HubError::CredentialInvalid));
                    }
                }
                () = tokio::time::sleep(heartbeat) => {
                    let seq = self.hub.read().last_seq();
                    self.send(Down::Heartbeat(v1::Heartbeat {
                        hub_time_unix_micros: Timestamp::now().as_microsecond(),
                        seq,
                    }))
                    .await?;
                }
            }
        }
    }

    /// Welcome, acknowledgements of what is already stored, the budget, and the commands
    /// still unacknowledged.
    async fn welcome(&mut self, hello: &v1::Hello) -> Result<(), End> {
        let (welcome, mark) = {
            let household = self.hub.read();
            let device = household
                .device(&self.ctx.device_id)
                .ok_or(HubError::CredentialInvalid)?;
            let child_name = household
                .child(&self.ctx.child_id)
                .map(|c| c.child.display_name.clone())
                .unwrap_or_default();
            (
                v1::Welcome {
                    device_id: self.ctx.device_id.clone(),
                    child_id: self.ctx.child_id.clone(),
                    device_display_name: device.display_name.clone(),
                    child_display_name: child_name,
                    hub_time_unix_micros: Timestamp::now().as_microsecond(),
                },
                household.outbox_mark(&self.ctx.device_id, &self.ctx.instance_id),
            )
        };
        self.send(Down::Welcome(welcome)).await?;
        let stored: Vec<u64> = hello
            .unacked_outbox_ids
            .iter()
            .copied()
            .filter(|id| *id <= mark)
            .collect();
        if !stored.is_empty() {
            self.send(Down::OutboxAck(v1::OutboxAck {
                outbox_ids: stored,
                rejected: Vec::new(),
            }))
            .await?;
        }
        self.send_budget().await?;
        for command in self.hub.sessions.unacked_commands(&self.ctx.device_id) {
            self.send(Down::Command(command)).await?;
        }
        Ok(())
    }

    async fn on_message(
        &mut self,
        message: v1::SessionRequest,
        inbound: &mut Streaming<v1::SessionRequest>,
    ) -> Result<(), End> {
        match message.message {
            Some(Up::OutboxItem(first)) => {
                // Take every record already waiting, so a burst costs one durable write.
                let mut records = vec![first];
                while records.len() < MAX_RECORDS_PER_JOB {
                    let next = tokio::select! {
                        biased;
                        next = inbound.message() => next,
                        () = std::future::ready(()) => break,
                    };
                    match next {
                        Ok(Some(v1::SessionRequest {
                            message: Some(Up::OutboxItem(record)),
                        })) => records.push(record),
                        Ok(Some(other)) => {
                            self.apply_records(records).await?;
                            return Box::pin(self.on_message(other, inbound)).await;
                        }
                        Ok(None) | Err(_) => {
                            self.apply_records(records).await?;
                            return Err(End::Gone);
                        }
                    }
                }
                self.apply_records(records).await
            }
            Some(Up::CommandAck(ack)) => {
                self.hub
                    .sessions
                    .acknowledge(&self.ctx.device_id, &ack.command_id);
                if !ack.applied {
                    tracing::warn!(device = %self.ctx.device_id, command = %ack.command_id, error = %ack.error, "device could not carry out a command");
                }
                Ok(())
            }
            Some(Up::Hello(_)) => Err(End::Error(HubError::SessionProtocol {
                field: "hello",
                message: "Hello is sent once, first".into(),
            })),
            None => Err(End::Error(HubError::SessionProtocol {
                field: "message",
                message: "exactly one of hello, outbox_item or command_ack is required".into(),
            })),
        }
    }

    /// Applies outbox records once each and acknowledges them when durable.
    async fn apply_records(&mut self, records: Vec<v1::OutboxItem>) -> Result<(), End> {
        for record in &records {
            if record.outbox_id <= self.last_outbox_id {
                return Err(End::Error(HubError::SessionProtocol {
                    field: "outbox_item.outbox_id",
                    message: format!(
                        "must increase within a session: {} came after {}",
                        record.outbox_id, self.last_outbox_id
                    ),
                }));
            }
            self.last_outbox_id = record.outbox_id;
        }
        let ctx = self.ctx.clone();
        let credential_id = self.credential_id.clone();
        let ack = self
            .hub
            .writer
            .write(move |txn| {
                let mut ack = v1::OutboxAck::default();
                for record in records {
                    let id = record.outbox_id;
                    if id
                        <= txn
                            .household()
                            .outbox_mark(&ctx.device_id, &ctx.instance_id)
                    {
                        ack.outbox_ids.push(id);
                        continue;
                    }
                    let now = txn.now();
                    match events_for(txn.household(), &ctx, &credential_id, &record, now) {
                        Ok(events) => {
                            for event in events {
                                txn.append(event);
                            }
                            ack.outbox_ids.push(id);
                        }
                        Err(reason) => {
                            txn.household_mut().raise_outbox_mark(
                                &ctx.device_id,
                                &ctx.instance_id,
                                id,
                            );
                            ack.rejected.push(v1::RejectedOutboxItem {
                                outbox_id: id,
                                reason,
                            });
                        }
                    }
                }
                Ok(ack)
            })
            .await?;
        self.send(Down::OutboxAck(ack)).await?;
        // A budget after every acknowledgement, changed or not: the agent stops counting
        // what it sent on its own once a budget includes it.
        self.last_budget = None;
        self.send_budget().await
    }

    /// Sends the budget if it changed since the last one sent.
    async fn send_budget(&mut self) -> Result<(), End> {
        let budget = {
            let household = self.hub.read();
            budget_of(&household, &self.ctx, Timestamp::now())
        };
        let Some(budget) = budget else {
            return Ok(());
        };
        let comparable = v1::Budget {
            computed_unix_micros: 0,
            as_of_seq: 0,
            ..budget.clone()
        };
        if self.last_budget.as_ref() == Some(&comparable) {
            return Ok(());
        }
        self.last_budget = Some(comparable);
        self.send(Down::Budget(budget)).await
    }

    /// Commands, request updates and a new budget for what the feed says.
    async fn on_feed(&mut self, item: &FeedItem) -> Result<(), End> {
        if !item.concerns(&self.ctx.child_id) {
            return Ok(());
        }
        for event in item
            .events
            .iter()
            .filter(|e| e.child_id == self.ctx.child_id)
        {
            if let Some(command) = command_for(&self.ctx, event) {
                self.hub
                    .sessions
                    .remember_command(&self.ctx.device_id, command.clone());
                self.send(Down::Command(command)).await?;
            }
            if let Some(update) = self.request_update(event) {
                self.send(Down::TimeRequestUpdate(update)).await?;
            }
        }
        // A batch's statuses come with its last item: the budget follows all its events.
        if item
            .statuses
            .iter()
            .any(|s| s.child_id == self.ctx.child_id)
        {
            self.send_budget().await?;
        }
        Ok(())
    }

    /// The new state of a request this device made, when `event` changed it.
    fn request_update(&self, event: &v1::Event) -> Option<v1::TimeRequest> {
        let request_id = match &event.payload {
            Some(Payload::TimeRequested(r)) => &r.request_id,
            Some(Payload::RequestResolved(r)) => &r.request_id,
            _ => return None,
        };
        let household = self.hub.read();
        let origin = household.request(request_id)?;
        if origin.device_id != self.ctx.device_id {
            return None;
        }
        let entry = household.child(&self.ctx.child_id)?;
        let request = entry
            .projection
            .request(&household_core::RequestId(request_id.clone()))?;
        Some(household.request_to_proto(&self.ctx.child_id, request, Timestamp::now()))
    }
}

/// An agent instance id: 1 to 64 characters of letters, digits, `-` and `_`.
fn instance_id(id: &str) -> Result<String, HubError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(id.to_owned())
    } else {
        Err(HubError::SessionProtocol {
            field: "hello.instance_id",
            message: "must be 1 to 64 characters of letters, digits, '-' and '_' (new for each local store)".into(),
        })
    }
}

/// The budget of the session's device now.
fn budget_of(household: &Household, ctx: &Context, now: Timestamp) -> Option<v1::Budget> {
    let status = household.status(&ctx.child_id, now)?;
    let policy = household.policy(&ctx.child_id)?;
    Some(convert::budget_to_proto(
        &status,
        &ctx.device_id,
        policy,
        household.last_seq(),
        now.as_microsecond(),
    ))
}

/// The command a logged event means for this device, if any. What the device did
/// itself (a legacy command it answered, a credit it spent) is not sent back to it.
fn command_for(ctx: &Context, event: &v1::Event) -> Option<v1::Command> {
    let for_me = event.device_id.is_empty() || event.device_id == ctx.device_id;
    let from_me = event
        .origin
        .as_ref()
        .is_some_and(|o| o.instance_id == ctx.instance_id)
        && event.device_id == ctx.device_id;
    if !for_me || from_me {
        return None;
    }
    let child_wide = event.device_id.is_empty();
    let action = match event.payload.as_ref()? {
        Payload::Locked(locked) => v1::command::Action::Lock(v1::LockCommand {
            until_unix_micros: locked.until_unix_micros,
            reason: locked.reason.clone(),
            child_wide,
        }),
        Payload::Unlocked(unlocked) => v1::command::Action::Unlock(v1::UnlockCommand {
            reason: unlocked.reason.clone(),
            child_wide,
        }),
        Payload::TimeGranted(granted) => v1::command::Action::Grant(v1::GrantCommand {
            minutes: granted.minutes,
            note: granted.note.clone(),
        }),
        _ => return None,
    };
    Some(v1::Command {
        command_id: format!("seq-{}", event.seq),
        action: Some(action),
        seq: event.seq,
    })
}

fn device_event(
    ctx: &Context,
    credential_id: &str,
    payload: Payload,
    origin: Option<v1::OutboxOrigin>,
) -> v1::Event {
    v1::Event {
        actor: Some(v1::Actor {
            kind: Some(v1::actor::Kind::DeviceId(ctx.device_id.clone())),
            credential_id: credential_id.to_owned(),
        }),
        child_id: ctx.child_id.clone(),
        device_id: ctx.device_id.clone(),
        origin,
        payload: Some(payload),
        ..Default::default()
    }
}

/// The events one outbox record becomes, or why it is refused for good.
fn events_for(
    household: &Household,
    ctx: &Context,
    credential_id: &str,
    record: &v1::OutboxItem,
    now: Timestamp,
) -> Result<Vec<v1::Event>, String> {
    let entry = household
        .child(&ctx.child_id)
        .ok_or_else(|| "the device's child was removed".to_owned())?;
    let origin = Some(v1::OutboxOrigin {
        instance_id: ctx.instance_id.clone(),
        outbox_id: record.outbox_id,
        recorded_unix_micros: record.recorded_unix_micros,
    });
    // An agent's instant on the hub's clock, never later than the hub's now.
    let corrected = |micros: i64| -> Timestamp {
        let micros = micros.saturating_add(ctx.offset_micros);
        Timestamp::from_microsecond(micros).unwrap_or(now).min(now)
    };
    let event = |payload| device_event(ctx, credential_id, payload, origin.clone());
    let item = record.item.as_ref().ok_or_else(|| {
        "item: exactly one of usage, time_request, credit_spent or legacy_command is required"
            .to_owned()
    })?;
    match item {
        Record::Usage(usage) => {
            let start = usage.start_unix_micros.saturating_add(ctx.offset_micros);
            let end = usage.end_unix_micros.saturating_add(ctx.offset_micros);
            if end <= start {
                return Err("usage.end_unix_micros must be after start_unix_micros".into());
            }
            if end - start > MAX_USAGE_MICROS {
                return Err("usage: an interval may be at most 24 hours long".into());
            }
            Ok(vec![event(Payload::UsageReported(v1::UsageReported {
                start_unix_micros: start,
                end_unix_micros: end,
            }))])
        }
        Record::TimeRequest(request) => {
            household_core::grant::check_grant_minutes(i64::from(request.minutes))
                .map_err(|e| format!("time_request.{e}"))?;
            crate::validate::note("time_request.note", &request.note).map_err(|e| e.to_string())?;
            let requested_at = corrected(record.recorded_unix_micros);
            let day = entry.projection.day_of(requested_at).date;
            Ok(vec![event(Payload::TimeRequested(v1::TimeRequested {
                request_id: ids::new("r"),
                minutes: request.minutes,
                note: request.note.clone(),
                day: Some(convert::date_to_proto(day)),
                requested_unix_micros: requested_at.as_microsecond(),
            }))])
        }
        Record::CreditSpent(spend) => {
            let size = match spend.minutes {
                5 => CreditSize::FiveMinute,
                10 => CreditSize::TenMinute,
                other => {
                    return Err(format!("credit_spent.minutes must be 5 or 10, got {other}"));
                }
            };
            let spent_at = corrected(record.recorded_unix_micros);
            entry
                .projection
                .check_credit_spend(size, spent_at)
                .map_err(|refusal| format!("credit_spent: {refusal}"))?;
            let day = entry.projection.day_of(spent_at).date;
            Ok(vec![event(Payload::ExtensionCreditSpent(
                v1::ExtensionCreditSpent {
                    minutes: spend.minutes,
                    day: Some(convert::date_to_proto(day)),
                    spent_unix_micros: spent_at.as_microsecond(),
                },
            ))])
        }
        Record::LegacyCommand(report) => {
            let mut events = vec![event(Payload::LegacyCommand(v1::LegacyCommand {
                path: v1::LegacyPath::AgentResponder as i32,
                peer_address: report.peer_address.clone(),
                command: report.command,
                extend_minutes: report.extend_minutes,
                outcome: report.outcome,
                reply: report.reply.clone(),
            }))];
            if report.outcome != v1::LegacyOutcome::Applied as i32 {
                return Ok(events);
            }
            let at = corrected(record.recorded_unix_micros);
            let legacy_actor = v1::Actor {
                kind: Some(v1::actor::Kind::LegacyAddress(report.peer_address.clone())),
                credential_id: String::new(),
            };
            let device = DeviceId(ctx.device_id.clone());
            let effect = match v1::LegacyCommandKind::try_from(report.command) {
                Ok(v1::LegacyCommandKind::ExtendTime) => {
                    household_core::grant::check_grant_minutes(i64::from(report.extend_minutes))
                        .map_err(|e| format!("legacy_command.extend_{e}"))?;
                    // EXTEND_TIME is what unblocks a device the parent app locked.
                    let device_locked = entry
                        .projection
                        .status_at(now)
                        .device_locks
                        .iter()
                        .any(|l| l.device == device);
                    if device_locked {
                        let mut unlock = event(Payload::Unlocked(v1::Unlocked {
                            until_unix_micros: None,
                            reason: "extended from the CST parent app".into(),
                        }));
                        unlock.actor = Some(legacy_actor.clone());
                        events.push(unlock);
                    }
                    Some(Payload::TimeGranted(v1::TimeGranted {
                        minutes: report.extend_minutes,
                        day: Some(convert::date_to_proto(entry.projection.day_of(at).date)),
                        note: String::new(),
                        granted_unix_micros: Some(at.as_microsecond()),
                    }))
                }
                Ok(v1::LegacyCommandKind::LockDevice) => {
                    // As on the device and on the Android child: locked for the rest of
                    // the child's day, or until an extension lifts it.
                    let end_of_day =
                        household_core::time::instant(entry.projection.day_of(at).end_second);
                    entry
                        .projection
                        .check_lock(Some(device.clone()), Some(end_of_day), now)
                        .map_err(|e| e.to_string())?;
                    Some(Payload::Locked(v1::Locked {
                        until_unix_micros: Some(end_of_day.as_microsecond()),
                        reason: "locked from the CST parent app".into(),
                    }))
                }
                _ => None,
            };
            if let Some(payload) = effect {
                let mut effect_event = event(payload);
                effect_event.actor = Some(legacy_actor);
                events.push(effect_event);
            }
            Ok(events)
        }
    }
}
