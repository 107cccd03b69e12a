//! Ties each event payload to its [`EventKind`], so filters (Watch, GetHistory) and
//! the event log's key layout never need their own copy of the mapping.

use crate::v1::{Event, EventKind, event::Payload};

impl Payload {
    /// The kind this payload is logged and filtered as.
    pub const fn kind(&self) -> EventKind {
        match self {
            Payload::UsageReported(_) => EventKind::UsageReported,
            Payload::TimeGranted(_) => EventKind::TimeGranted,
            Payload::Locked(_) => EventKind::Locked,
            Payload::Unlocked(_) => EventKind::Unlocked,
            Payload::PolicyChanged(_) => EventKind::PolicyChanged,
            Payload::TimeRequested(_) => EventKind::TimeRequested,
            Payload::RequestResolved(_) => EventKind::RequestResolved,
            Payload::ExtensionCreditSpent(_) => EventKind::ExtensionCreditSpent,
            Payload::DeviceEnrolled(_) => EventKind::DeviceEnrolled,
            Payload::DeviceOnline(_) => EventKind::DeviceOnline,
            Payload::DeviceOffline(_) => EventKind::DeviceOffline,
            Payload::LegacyCommand(_) => EventKind::LegacyCommand,
            Payload::ChildAdded(_) => EventKind::ChildAdded,
            Payload::ChildRenamed(_) => EventKind::ChildRenamed,
            Payload::ChildRemoved(_) => EventKind::ChildRemoved,
            Payload::DeviceAdded(_) => EventKind::DeviceAdded,
            Payload::DeviceRenamed(_) => EventKind::DeviceRenamed,
            Payload::DeviceRemoved(_) => EventKind::DeviceRemoved,
            Payload::GuardianEnrolled(_) => EventKind::GuardianEnrolled,
            Payload::IdentityRevoked(_) => EventKind::IdentityRevoked,
            Payload::GuardianInvited(_) => EventKind::GuardianInvited,
            Payload::DeviceTrouble(_) => EventKind::DeviceTrouble,
        }
    }
}

impl Event {
    /// The event's kind, or `None` for an event without a payload (which the hub never
    /// logs; a reader may meet one only from a newer hub with a kind it does not know).
    pub fn kind(&self) -> Option<EventKind> {
        self.payload.as_ref().map(Payload::kind)
    }
}
