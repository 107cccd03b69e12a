//! Start-up: the household folded from the log, oldest event first.

use crate::error::HubError;
use crate::household::Household;
use crate::store::EventStore;

/// Folds every logged event into a fresh [`Household`].
pub fn household_from_log(store: &EventStore) -> Result<Household, HubError> {
    let mut household = Household::default();
    for event in store.after(0)? {
        household.apply(&event?);
    }
    Ok(household)
}
