//! How much of the legacy protocol's traffic reaches the store: enough to
//! audit, never more than a fixed amount, whoever sends it.
//!
//! Per [`WINDOW`] (a minute, on the monotonic clock), over all senders:
//!
//! * at most [`NOTES_PER_WINDOW`] audit-only events (a `GET_TIME_LEFT`, a
//!   refusal) are stored one by one; the rest are counted, per outcome, and
//!   stored as one summary event per outcome when the window ends;
//! * at most [`ACTIONS_PER_WINDOW`] commands that change the budget
//!   (`EXTEND_TIME`, `LOCK_DEVICE`, each stored as up to three events) are
//!   carried out; more are refused with the command's failure reply and
//!   counted as `rejected_rate_limit`.
//!
//! So the legacy path adds at most 5 + 7 + 10 × 3 = 42 events a minute, each
//! under 1.5 KB (a datagram is at most 1024 bytes): about 63 KB a minute, 90
//! MB a day at the very worst, and old events are pruned after 30 days.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use household_core::LegacyOutcome;

use crate::ledger::LegacyNote;

pub const WINDOW: Duration = Duration::from_secs(60);
pub const NOTES_PER_WINDOW: u32 = 5;
pub const ACTIONS_PER_WINDOW: u32 = 10;
/// Most distinct sender addresses a summary names the count of; past it
/// they are still counted as commands, not remembered as addresses.
const ADDRESSES_REMEMBERED: usize = 256;

/// The audit budget of the current window.
#[derive(Debug)]
pub struct AuditBudget {
    window_start: Instant,
    notes: u32,
    actions: u32,
    skipped: Vec<Skipped>,
}

/// Audit-only notes of one outcome that were counted, not stored.
#[derive(Debug)]
struct Skipped {
    outcome: LegacyOutcome,
    count: u64,
    addresses: BTreeSet<String>,
    last: LegacyNote,
}

impl AuditBudget {
    pub fn new(now: Instant) -> Self {
        Self {
            window_start: now,
            notes: 0,
            actions: 0,
            skipped: Vec::new(),
        }
    }

    /// Ends the window if it is over; returns its summaries, to be stored.
    pub fn roll(&mut self, now: Instant) -> Vec<LegacyNote> {
        if now.duration_since(self.window_start) < WINDOW {
            return Vec::new();
        }
        self.window_start = now;
        self.notes = 0;
        self.actions = 0;
        std::mem::take(&mut self.skipped)
            .into_iter()
            .map(|s| LegacyNote {
                command: format!(
                    "{} more not recorded one by one, from {}{} addresses; the last: {}",
                    s.count,
                    s.addresses.len(),
                    if s.addresses.len() >= ADDRESSES_REMEMBERED {
                        "+"
                    } else {
                        ""
                    },
                    truncate(&s.last.command, 64),
                ),
                address: s.last.address,
                outcome: s.outcome,
                reply: String::new(),
            })
            .collect()
    }

    /// Whether an audit-only note is stored on its own; if not, it is counted.
    pub fn admit_note(&mut self, note: &LegacyNote) -> bool {
        if self.notes < NOTES_PER_WINDOW {
            self.notes += 1;
            return true;
        }
        let index = match self.skipped.iter().position(|s| s.outcome == note.outcome) {
            Some(index) => index,
            None => {
                self.skipped.push(Skipped {
                    outcome: note.outcome,
                    count: 0,
                    addresses: BTreeSet::new(),
                    last: note.clone(),
                });
                self.skipped.len() - 1
            }
        };
        let skipped = &mut self.skipped[index];
        skipped.count += 1;
        if skipped.addresses.len() < ADDRESSES_REMEMBERED {
            let host = note
                .address
                .rsplit_once(':')
                .map_or(&*note.address, |(h, _)| h);
            skipped.addresses.insert(host.to_owned());
        }
        skipped.last = note.clone();
        false
    }

    /// Whether a command that changes the budget may be carried out now.
    pub fn admit_action(&mut self) -> bool {
        if self.actions < ACTIONS_PER_WINDOW {
            self.actions += 1;
            true
        } else {
            false
        }
    }
}

fn truncate(text: &str, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(n: u32, outcome: LegacyOutcome) -> LegacyNote {
        LegacyNote {
            command: "GET_TIME_LEFT".into(),
            address: format!("127.0.{}.{}:4000", n / 250, n % 250),
            outcome,
            reply: String::new(),
        }
    }

    #[test]
    fn past_the_budget_notes_are_counted_and_summed_up_once_per_outcome() {
        let t0 = Instant::now();
        let mut budget = AuditBudget::new(t0);
        let mut stored = 0;
        for n in 0..3620 {
            let outcome = if n % 2 == 0 {
                LegacyOutcome::RejectedLocal
            } else {
                LegacyOutcome::Applied
            };
            if budget.admit_note(&note(n, outcome)) {
                stored += 1;
            }
        }
        assert_eq!(stored, NOTES_PER_WINDOW);
        assert!(
            budget.roll(t0 + WINDOW / 2).is_empty(),
            "the window is not over"
        );
        let summaries = budget.roll(t0 + WINDOW);
        assert_eq!(summaries.len(), 2);
        let local = summaries
            .iter()
            .find(|s| s.outcome == LegacyOutcome::RejectedLocal)
            .unwrap();
        assert!(local.command.starts_with("1807 more"), "{}", local.command);
        assert!(
            local.command.contains("from 256+ addresses"),
            "{}",
            local.command
        );
        // A new window: its own budget.
        assert!(budget.admit_note(&note(1, LegacyOutcome::Applied)));
        assert!(budget.roll(t0 + 2 * WINDOW).is_empty(), "nothing skipped");
    }

    #[test]
    fn actions_are_limited_per_window() {
        let t0 = Instant::now();
        let mut budget = AuditBudget::new(t0);
        assert!((0..ACTIONS_PER_WINDOW).all(|_| budget.admit_action()));
        assert!(!budget.admit_action());
        budget.roll(t0 + WINDOW);
        assert!(budget.admit_action());
    }
}
