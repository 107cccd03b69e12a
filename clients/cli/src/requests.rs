//! `household requests`, `household approve ID [MINUTES]`, `household deny ID`: the
//! children's requests for more time. The first answer wins; a second is refused
//! with who answered first.

use household_proto::v1;
use serde_json::json;

use crate::act::idempotency_key;
use crate::hub::{CliError, Hub};

pub async fn list(hub: &mut Hub, as_json: bool) -> Result<(), CliError> {
    let requests = hub
        .client
        .list_time_requests(v1::ListTimeRequestsRequest::default())
        .await
        .map_err(|s| hub.refused(s))?
        .into_inner()
        .requests;
    let children = hub.children().await?;
    let name = |id: &str| {
        children
            .iter()
            .find(|c| c.child_id == id)
            .map_or_else(|| id.to_owned(), |c| c.display_name.clone())
    };
    if as_json {
        let list: Vec<_> = requests
            .iter()
            .map(|r| {
                json!({
                    "request_id": r.request_id,
                    "child_id": r.child_id,
                    "child": name(&r.child_id),
                    "minutes": r.minutes,
                    "note": r.note,
                    "requested_unix_micros": r.requested_unix_micros,
                })
            })
            .collect();
        println!("{}", json!({ "requests": list }));
        return Ok(());
    }
    if requests.is_empty() {
        println!("no pending requests");
    }
    for r in &requests {
        let note = if r.note.is_empty() {
            String::new()
        } else {
            format!(": {:?}", r.note)
        };
        println!(
            "{}  {} asks for {} min{note}",
            r.request_id,
            name(&r.child_id),
            r.minutes
        );
    }
    Ok(())
}

pub async fn approve(
    hub: &mut Hub,
    request_id: String,
    minutes: Option<u32>,
) -> Result<(), CliError> {
    let response = hub
        .client
        .approve_time_request(v1::ApproveTimeRequestRequest {
            request_id: request_id.clone(),
            minutes,
            note: String::new(),
            idempotency_key: idempotency_key(),
        })
        .await
        .map_err(|s| hub.refused(s))?
        .into_inner();
    if response.already_resolved {
        return Err(already_answered(&request_id));
    }
    let granted = response.request.map_or(0, |r| r.granted_minutes);
    println!("approved: {granted} min added");
    Ok(())
}

pub async fn deny(hub: &mut Hub, request_id: String) -> Result<(), CliError> {
    let response = hub
        .client
        .deny_time_request(v1::DenyTimeRequestRequest {
            request_id: request_id.clone(),
            note: String::new(),
            idempotency_key: idempotency_key(),
        })
        .await
        .map_err(|s| hub.refused(s))?
        .into_inner();
    if response.already_resolved {
        return Err(already_answered(&request_id));
    }
    println!("denied");
    Ok(())
}

fn already_answered(request_id: &str) -> CliError {
    CliError::Refused(format!(
        "request {request_id} was already answered by another guardian; `household watch` shows who"
    ))
}
