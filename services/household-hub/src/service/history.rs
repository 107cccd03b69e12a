//! `Household.GetHistory`: logged events page by page, oldest first.
//!
//! For one child the time index is scanned (`c` keys), and the page token is the last
//! (time, seq) sent; for the whole household the log is scanned by seq. Either way a
//! page reads at most [`SCAN_BUDGET`] entries, so one call never walks a year of usage
//! reports: it may return fewer events than asked, with a token to go on.

use household_proto::v1;
use prost::Message;

use crate::error::{HubError, NotFoundKind};
use crate::hub::Hub;

/// Most log entries one page looks at.
const SCAN_BUDGET: usize = 20_000;
/// Events per page when the caller says 0.
const DEFAULT_PAGE: usize = 100;
/// Most events per page.
const MAX_PAGE: u32 = 1000;

/// Where a page starts: after this (time, seq) for a child, after this seq otherwise.
struct Cursor {
    time_unix_micros: i64,
    seq: u64,
}

/// The filters' fingerprint, carried in the token so a token is only good for the
/// filters it was issued with.
fn filters_tag(request: &v1::GetHistoryRequest) -> String {
    let filters = v1::GetHistoryRequest {
        page_size: 0,
        page_token: String::new(),
        ..request.clone()
    };
    crate::trust::sha256_hex(&filters.encode_to_vec())[..16].to_owned()
}

fn parse_token(request: &v1::GetHistoryRequest) -> Result<Option<Cursor>, HubError> {
    if request.page_token.is_empty() {
        return Ok(None);
    }
    let bad = || {
        HubError::invalid(
            "page_token",
            "must be a next_page_token returned for the same filters",
        )
    };
    let mut parts = request.page_token.split('.');
    let (Some(time), Some(seq), Some(tag), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    if tag != filters_tag(request) {
        return Err(bad());
    }
    Ok(Some(Cursor {
        time_unix_micros: time.parse().map_err(|_| bad())?,
        seq: seq.parse().map_err(|_| bad())?,
    }))
}

/// One page of history.
pub fn page(hub: &Hub, request: v1::GetHistoryRequest) -> Result<v1::GetHistoryResponse, HubError> {
    if request.page_size > MAX_PAGE {
        return Err(HubError::invalid(
            "page_size",
            format!(
                "must be 0 to {MAX_PAGE} (0 means {DEFAULT_PAGE}), got {}",
                request.page_size
            ),
        ));
    }
    let page_size = match request.page_size {
        0 => DEFAULT_PAGE,
        n => n as usize,
    };
    let cursor = parse_token(&request)?;
    {
        let household = hub.read();
        if !request.child_id.is_empty() && household.child_ever(&request.child_id).is_none() {
            return Err(HubError::no_child(&request.child_id));
        }
        if !request.device_id.is_empty() && !household.device_ever(&request.device_id) {
            return Err(HubError::NotFound {
                what: NotFoundKind::Device,
                id: request.device_id.clone(),
            });
        }
    }
    let start = request.start_unix_micros.unwrap_or(i64::MIN);
    let end = request.end_unix_micros.unwrap_or(i64::MAX);
    let wanted = |event: &v1::Event| {
        (request.device_id.is_empty() || event.device_id == request.device_id)
            && (request.kinds.is_empty()
                || event
                    .kind()
                    .is_some_and(|k| request.kinds.contains(&(k as i32))))
            && event.time_unix_micros >= start
            && event.time_unix_micros < end
    };
    let mut events = Vec::new();
    let mut scanned = 0;
    let mut last: Option<Cursor> = None;
    let mut exhausted = true;
    if request.child_id.is_empty() {
        let after = cursor.map_or(0, |c| c.seq);
        for event in hub.store.after(after)? {
            let event = event?;
            scanned += 1;
            last = Some(Cursor {
                time_unix_micros: event.time_unix_micros,
                seq: event.seq,
            });
            if wanted(&event) {
                events.push(event);
            }
            if events.len() >= page_size || scanned >= SCAN_BUDGET {
                exhausted = false;
                break;
            }
        }
    } else {
        let resuming = cursor.is_some();
        let (from_time, after_seq) = cursor.map_or((start, 0), |c| (c.time_unix_micros, c.seq));
        for seq in hub.store.child_seqs(&request.child_id, from_time, end)? {
            let seq = seq?;
            let Some(event) = hub.store.get(seq)? else {
                continue;
            };
            if resuming && event.time_unix_micros == from_time && seq <= after_seq {
                continue;
            }
            scanned += 1;
            last = Some(Cursor {
                time_unix_micros: event.time_unix_micros,
                seq,
            });
            if wanted(&event) {
                events.push(event);
            }
            if events.len() >= page_size || scanned >= SCAN_BUDGET {
                exhausted = false;
                break;
            }
        }
    }
    let next_page_token = match (exhausted, last) {
        (false, Some(last)) => format!(
            "{}.{}.{}",
            last.time_unix_micros,
            last.seq,
            filters_tag(&request)
        ),
        _ => String::new(),
    };
    Ok(v1::GetHistoryResponse {
        events,
        next_page_token,
    })
}
