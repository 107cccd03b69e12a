//! The household in a form that serializes (serde), for the start-up snapshot: the
//! same fields, with the API's messages kept as their protobuf encoding (base64 in the
//! document) and maps whose keys are pairs kept as lists.

use std::collections::{BTreeMap, HashMap, HashSet};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use household_core::{Policy, Projection};
use household_proto::v1;
use prost::Message;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{ChildEntry, Household, KeyUse, RequestOrigin};

/// An API message inside the document: its protobuf encoding, in base64.
#[derive(Debug, Clone, PartialEq)]
pub struct Proto<T>(pub T);

impl<T: Message> Serialize for Proto<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(self.0.encode_to_vec()))
    }
}

impl<'de, T: Message + Default> Deserialize<'de> for Proto<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let bytes = STANDARD.decode(text).map_err(serde::de::Error::custom)?;
        T::decode(bytes.as_slice())
            .map(Proto)
            .map_err(serde::de::Error::custom)
    }
}

/// The whole [`Household`], as the snapshot stores it.
#[derive(Serialize, Deserialize)]
pub struct HouseholdState {
    last_seq: u64,
    children: Vec<ChildState>,
    child_order: Vec<String>,
    devices: Vec<Proto<v1::Device>>,
    device_order: Vec<String>,
    guardians: Vec<Proto<v1::Guardian>>,
    guardian_order: Vec<String>,
    removed_devices: Vec<String>,
    requests: Vec<(String, RequestOriginState)>,
    keys: Vec<((String, String), KeyUse)>,
    outbox_marks: Vec<((String, String), u64)>,
}

impl HouseholdState {
    /// The newest seq folded in.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }
}

#[derive(Serialize, Deserialize)]
struct ChildState {
    child: Proto<v1::Child>,
    projection: Projection,
    policy_updated_by: Option<Proto<v1::Actor>>,
    policy_updated_unix_micros: i64,
    policy_history: Vec<(i64, Policy)>,
}

#[derive(Serialize, Deserialize)]
struct RequestOriginState {
    child_id: String,
    device_id: String,
    origin: Option<Proto<v1::OutboxOrigin>>,
}

impl From<&Household> for HouseholdState {
    fn from(h: &Household) -> HouseholdState {
        HouseholdState {
            last_seq: h.last_seq,
            children: h
                .children
                .values()
                .map(|entry| ChildState {
                    child: Proto(entry.child.clone()),
                    projection: entry.projection.clone(),
                    policy_updated_by: entry.policy_updated_by.clone().map(Proto),
                    policy_updated_unix_micros: entry.policy_updated_unix_micros,
                    policy_history: entry.policy_history.clone(),
                })
                .collect(),
            child_order: h.child_order.clone(),
            devices: h.devices.values().cloned().map(Proto).collect(),
            device_order: h.device_order.clone(),
            guardians: h.guardians.values().cloned().map(Proto).collect(),
            guardian_order: h.guardian_order.clone(),
            removed_devices: h.removed_devices.iter().cloned().collect(),
            requests: h
                .requests
                .iter()
                .map(|(id, origin)| {
                    let state = RequestOriginState {
                        child_id: origin.child_id.clone(),
                        device_id: origin.device_id.clone(),
                        origin: origin.origin.clone().map(Proto),
                    };
                    (id.clone(), state)
                })
                .collect(),
            keys: h.keys.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            outbox_marks: h
                .outbox_marks
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
        }
    }
}

impl From<HouseholdState> for Household {
    fn from(s: HouseholdState) -> Household {
        let children: BTreeMap<String, ChildEntry> = s
            .children
            .into_iter()
            .map(|c| {
                let entry = ChildEntry {
                    child: c.child.0,
                    projection: c.projection,
                    policy_updated_by: c.policy_updated_by.map(|a| a.0),
                    policy_updated_unix_micros: c.policy_updated_unix_micros,
                    policy_history: c.policy_history,
                };
                (entry.child.child_id.clone(), entry)
            })
            .collect();
        Household {
            last_seq: s.last_seq,
            children,
            child_order: s.child_order,
            devices: s
                .devices
                .into_iter()
                .map(|d| (d.0.device_id.clone(), d.0))
                .collect(),
            device_order: s.device_order,
            guardians: s
                .guardians
                .into_iter()
                .map(|g| (g.0.guardian_id.clone(), g.0))
                .collect(),
            guardian_order: s.guardian_order,
            removed_devices: s.removed_devices.into_iter().collect::<HashSet<_>>(),
            requests: s
                .requests
                .into_iter()
                .map(|(id, r)| {
                    let origin = RequestOrigin {
                        child_id: r.child_id,
                        device_id: r.device_id,
                        origin: r.origin.map(|o| o.0),
                    };
                    (id, origin)
                })
                .collect::<HashMap<_, _>>(),
            keys: s.keys.into_iter().collect(),
            outbox_marks: s.outbox_marks.into_iter().collect(),
        }
    }
}
