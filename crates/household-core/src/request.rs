//! Requests for more time.
//!
//! A child asks for N minutes; the request is *pending* until a guardian answers or the
//! local day it was made on ends. The first answer wins: with two guardians on two
//! phones, the one whose answer reaches the log first decides, and a second answer is
//! refused ([`RequestRefusal::AlreadyAnswered`]) instead of silently granting twice. The
//! refusal says whether the second answer repeats the first (`same_answer`: a retried
//! tap, which the API reports as "already resolved") or differs from it (which the API
//! refuses). An approval is a grant like any other (see [`crate::grant`]), for the
//! minutes the guardian chose.

use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::error::RequestRefusal;
use crate::event::{Actor, Answer, RequestId};
use crate::grant::check_grant_minutes;

/// A request for more time and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeRequest {
    /// The request's id.
    pub id: RequestId,
    /// Minutes asked for.
    pub minutes: i64,
    /// The child's words, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// When it was made: when the child asked, which may be before it was logged (an
    /// agent's offline outbox).
    pub requested_at: Timestamp,
    /// The local day it was made on, the day of `requested_at`: an approval adds to
    /// this day's allowance, and the request expires when it ends.
    pub day: Date,
    /// Who made it (normally the child's device).
    pub requested_by: Actor,
    /// Seq of the `TimeRequested` event.
    pub seq: u64,
    /// End of the local day it was made on: unanswered by then, it expires.
    pub expires_at: Timestamp,
    /// The answer, once there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<Resolution>,
}

/// An answer as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolution {
    /// What was answered.
    pub answer: Answer,
    /// When.
    pub at: Timestamp,
    /// By whom.
    pub by: Actor,
    /// Seq of the `RequestResolved` event.
    pub seq: u64,
}

/// Where a request stands at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RequestState {
    /// Waiting for an answer.
    Pending,
    /// Answered.
    Answered { answer: Answer },
    /// Its day ended without an answer.
    Expired,
}

impl TimeRequest {
    /// Where the request stands at `now`.
    pub fn state_at(&self, now: Timestamp) -> RequestState {
        match &self.resolution {
            Some(resolution) => RequestState::Answered {
                answer: resolution.answer,
            },
            None if now >= self.expires_at => RequestState::Expired,
            None => RequestState::Pending,
        }
    }

    /// Decide whether `answer`, given at `at`, may resolve this request.
    ///
    /// Refused when the request already has an answer (the first one stands; the
    /// refusal says whether `answer` repeats it), when its day has ended, or when an
    /// approval's minutes are outside 1..=1440.
    pub fn check_answer(&self, answer: Answer, at: Timestamp) -> Result<(), RequestRefusal> {
        if let Some(first) = &self.resolution {
            return Err(RequestRefusal::AlreadyAnswered {
                id: self.id.clone(),
                answer: first.answer,
                answered_at: first.at,
                same_answer: first.answer == answer,
            });
        }
        if at >= self.expires_at {
            return Err(RequestRefusal::Expired {
                id: self.id.clone(),
                expired_at: self.expires_at,
            });
        }
        if let Answer::Approved { minutes } = answer {
            check_grant_minutes(minutes).map_err(|error| RequestRefusal::Invalid {
                id: self.id.clone(),
                error,
            })?;
        }
        Ok(())
    }
}
