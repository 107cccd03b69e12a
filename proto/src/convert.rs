//! Conversions between the API's messages ([`crate::v1`]) and the rules' types
//! (`household_core`), written once for the hub and the agent alike.
//!
//! Two directions, two attitudes:
//!
//! * **Into core** (`*_to_core`) the input comes from outside — a guardian's request, a
//!   log written by another version — so every conversion is checked and fails with a
//!   [`ConvertError`] that names the field by its path in the message converted
//!   (`weekdays[2].daily_minutes`, `extension_credit_spent.minutes`) and the values
//!   that would have been accepted. The hub puts its request's own prefix in front with
//!   [`ConvertError::within`] and turns the error into an `INVALID_ARGUMENT` field
//!   violation ([`ConvertError::field`], [`ConvertError::message`]).
//! * **Out of core** (`*_to_proto`, `*_from_core`) the input is what the rules hold,
//!   already valid, so these cannot fail. Numbers the API carries unsigned are
//!   saturated into range rather than wrapped, should a value ever be out of it.
//!
//! Proto3 has no "absent" for plain fields: an empty string or a zero is "not set", and
//! maps to `None` where core has an `Option` (a lock's reason, a device's legacy
//! address, a request's time).
//!
//! The pieces: [`error`](ConvertError); `event` ([`event_to_core`]); `policy`
//! ([`policy_to_core`], [`policy_from_core`]); `status` (what the hub shows of a
//! status: [`child_status_to_proto`], [`budget_to_proto`], [`time_request_to_proto`]);
//! and here the small shared ones: actors, dates, instants, states.

mod error;
mod event;
mod policy;
mod status;

use household_core::{Actor, ChildState, DeviceId, GuardianId, InputError};
use jiff::Timestamp;
use jiff::civil::Date;

use crate::v1;

pub use error::ConvertError;
pub use event::event_to_core;
pub use policy::{policy_from_core, policy_to_core};
pub use status::{
    DeviceInfo, budget_to_core, budget_to_proto, child_status_to_proto, credits_to_proto,
    lock_to_proto, time_request_to_proto,
};

/// Earliest year a [`v1::Date`] may have, as the API documents it.
const MIN_YEAR: i32 = 1970;
/// Latest year a [`v1::Date`] may have.
const MAX_YEAR: i32 = 9999;

/// The instant `micros` microseconds after the Unix epoch, or the error naming `field`
/// with the range jiff can represent.
pub fn timestamp_to_core(micros: i64, field: &str) -> Result<Timestamp, ConvertError> {
    Timestamp::from_microsecond(micros).map_err(|_| {
        ConvertError::Invalid(InputError::InstantOutOfRange {
            field: field.into(),
            value: micros,
            min: Timestamp::MIN.as_microsecond(),
            max: Timestamp::MAX.as_microsecond(),
        })
    })
}

/// An optional instant where the API uses 0 for "not set" (a field added later, which
/// old events lack).
fn optional_timestamp(micros: i64, field: &str) -> Result<Option<Timestamp>, ConvertError> {
    match micros {
        0 => Ok(None),
        micros => timestamp_to_core(micros, field).map(Some),
    }
}

/// `None` for the empty string, proto3's "not set".
fn non_empty(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_owned())
}

/// A saturating `i64` → `u32` for the unsigned numbers of the API: core's values are
/// validated into range, and a count is better capped than wrapped.
fn saturating_u32(value: i64) -> u32 {
    u32::try_from(value.max(0)).unwrap_or(u32::MAX)
}

/// Who acted, from the API's actor at `field`: a guardian, a device, a legacy address or
/// the hub itself. An absent actor, or an empty id, is [`ConvertError::Missing`].
pub fn actor_to_core(actor: Option<&v1::Actor>, field: &str) -> Result<Actor, ConvertError> {
    let kind = actor
        .and_then(|a| a.kind.as_ref())
        .ok_or_else(|| ConvertError::missing(field))?;
    let id = |id: &str, name: &str| {
        non_empty(id).ok_or_else(|| ConvertError::missing(format!("{field}.{name}")))
    };
    Ok(match kind {
        v1::actor::Kind::GuardianId(g) => Actor::Guardian {
            id: GuardianId(id(g, "guardian_id")?),
        },
        v1::actor::Kind::DeviceId(d) => Actor::Device {
            id: DeviceId(id(d, "device_id")?),
        },
        v1::actor::Kind::LegacyAddress(a) => Actor::LegacyAddress {
            address: id(a, "legacy_address")?,
        },
        v1::actor::Kind::System(_) => Actor::System,
    })
}

/// The API's actor for a core actor. Core knows neither the credential used nor the
/// hub's reason for a system act, so `credential_id` and `system.reason` are empty; the
/// hub, which knows them, sets them on what it logs.
pub fn actor_to_proto(actor: &Actor) -> v1::Actor {
    let kind = match actor {
        Actor::Guardian { id } => v1::actor::Kind::GuardianId(id.0.clone()),
        Actor::Device { id } => v1::actor::Kind::DeviceId(id.0.clone()),
        Actor::LegacyAddress { address } => v1::actor::Kind::LegacyAddress(address.clone()),
        Actor::System => v1::actor::Kind::System(v1::SystemActor::default()),
    };
    v1::Actor {
        kind: Some(kind),
        credential_id: String::new(),
    }
}

/// The API's screen state for a core state (same names, same precedence).
pub fn state_to_proto(state: ChildState) -> v1::ScreenState {
    match state {
        ChildState::Active => v1::ScreenState::Active,
        ChildState::Warning => v1::ScreenState::Warning,
        ChildState::Grace => v1::ScreenState::Grace,
        ChildState::Blocked => v1::ScreenState::Blocked,
        ChildState::Downtime => v1::ScreenState::Downtime,
        ChildState::Locked => v1::ScreenState::Locked,
    }
}

/// The API's date for a calendar date.
pub fn date_to_proto(date: Date) -> v1::Date {
    v1::Date {
        year: i32::from(date.year()),
        month: i32::from(date.month()),
        day: i32::from(date.day()),
    }
}

/// The calendar date of an API date at `field`: year 1970..=9999, month 1..=12, and a
/// day that exists in that month (`{field}.day is 31; allowed range is 1..=30`).
pub fn date_to_core(date: &v1::Date, field: &str) -> Result<Date, ConvertError> {
    let part = |name: &str, value: i32, min: i32, max: i32| {
        if (min..=max).contains(&value) {
            Ok(value)
        } else {
            Err(ConvertError::Invalid(InputError::out_of_range(
                format!("{field}.{name}"),
                i64::from(value),
                i64::from(min),
                i64::from(max),
            )))
        }
    };
    let year = part("year", date.year, MIN_YEAR, MAX_YEAR)?;
    let month = part("month", date.month, 1, 12)?;
    // Both are in range, so the casts are exact and the month has a first day.
    let days_in_month = Date::new(year as i16, month as i8, 1).map_or(31, |d| d.days_in_month());
    let day = part("day", date.day, 1, i32::from(days_in_month))?;
    Date::new(year as i16, month as i8, day as i8).map_err(|_| {
        ConvertError::Invalid(InputError::out_of_range(
            format!("{field}.day"),
            i64::from(day),
            1,
            i64::from(days_in_month),
        ))
    })
}

#[cfg(test)]
mod tests;
