//! Identifiers the hub assigns: a short prefix naming the kind (`c` child, `d` device,
//! `g` guardian, `r` request) and 12 random hex digits, e.g. `c-3f9a1c07b2e4`.

use rand::RngCore;

/// A new random identifier with `prefix`.
pub fn new(prefix: &str) -> String {
    let mut bytes = [0u8; 6];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}-{}", crate::registry::hex(&bytes))
}
