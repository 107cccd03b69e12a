//! What travels inside the seal: command texts and reply texts, exactly as
//! the CST apps write them, and the datagram framing around them.

use std::fmt;

/// Discovery request, broadcast by the parent app.
pub const DISCOVERY: &str = "CST_PARENT_DISCOVERY";
/// Discovery reply; no device information, the sender's address is the identity.
pub const DISCOVERY_REPLY: &str = "CST_CHILD_RESPONSE";
/// Prefix of a sealed command.
pub const COMMAND_PREFIX: &str = "CST_CMD:";
/// Prefix of a sealed reply.
pub const REPLY_PREFIX: &str = "CST_RESP:";
/// The apps read datagrams into a 1024-byte buffer: nothing longer is understood.
pub const MAX_DATAGRAM: usize = 1024;

/// Smallest and largest minutes `EXTEND_TIME` accepts.
pub const EXTEND_MINUTES: std::ops::RangeInclusive<i32> = 1..=1440;

/// A command the child understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    GetTimeLeft,
    LockDevice,
    ExtendTime { minutes: i32 },
}

impl Command {
    /// Parses a command text as the Android child does: split on `:` the
    /// way Java's `String.split(":")` does (trailing empty parts dropped),
    /// dispatch on the first part. A text it rejects yields the exact error
    /// reply the child sends.
    pub fn parse(text: &str) -> Result<Command, ErrorReply> {
        let parts = java_split(text);
        match parts[0] {
            "GET_TIME_LEFT" => Ok(Command::GetTimeLeft),
            "LOCK_DEVICE" => Ok(Command::LockDevice),
            "EXTEND_TIME" => {
                if parts.len() != 2 {
                    return Err(ErrorReply::ExtendFormat);
                }
                let minutes: i32 = parts[1].parse().map_err(|_| ErrorReply::MinutesValue)?;
                if !EXTEND_MINUTES.contains(&minutes) {
                    return Err(ErrorReply::MinutesRange);
                }
                Ok(Command::ExtendTime { minutes })
            }
            _ => Err(ErrorReply::UnknownCommand),
        }
    }

    /// The reply the Android child sends when this command fails.
    pub fn failure_reply(self) -> Reply {
        match self {
            Command::GetTimeLeft => Reply::TimeDataFailed,
            Command::LockDevice => Reply::LockFailed,
            Command::ExtendTime { .. } => Reply::Error(ErrorReply::ProcessingFailed),
        }
    }

    /// Whether a read-only responder may run it.
    pub fn is_read_only(self) -> bool {
        matches!(self, Command::GetTimeLeft)
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::GetTimeLeft => f.write_str("GET_TIME_LEFT"),
            Command::LockDevice => f.write_str("LOCK_DEVICE"),
            Command::ExtendTime { minutes } => write!(f, "EXTEND_TIME:{minutes}"),
        }
    }
}

/// `String.split(":")` in Java: like Rust's `split`, but trailing empty
/// strings are removed (and an empty input gives one empty part).
fn java_split(text: &str) -> Vec<&str> {
    let mut parts: Vec<&str> = text.split(':').collect();
    while parts.len() > 1 && parts.last() == Some(&"") {
        parts.pop();
    }
    parts
}

/// The child's state as the legacy protocol knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegacyState {
    Active,
    Blocked,
}

impl LegacyState {
    pub fn as_str(self) -> &'static str {
        match self {
            LegacyState::Active => "ACTIVE",
            LegacyState::Blocked => "BLOCKED",
        }
    }
}

/// Every reply text of the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `TIME_LEFT|<remaining>|<ACTIVE|BLOCKED>|<credit>`.
    TimeLeft {
        remaining_minutes: i64,
        state: LegacyState,
        credit_minutes: i64,
    },
    /// `TIME_LEFT|ERROR|No credit data available`.
    NoCreditData,
    /// `TIME_LEFT|ERROR|Failed to get time data`.
    TimeDataFailed,
    /// `DEVICE_LOCKED|Device is now blocked`.
    DeviceLocked,
    /// `DEVICE_LOCKED|ERROR|Failed to lock device`.
    LockFailed,
    /// `TIME_EXTENDED|<n> minutes added`.
    TimeExtended { minutes: i32 },
    /// `ERROR|…`.
    Error(ErrorReply),
}

/// The `ERROR|…` replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ErrorReply {
    /// `EXTEND_TIME` without exactly one argument.
    #[error("Invalid EXTEND_TIME format. Use EXTEND_TIME:minutes")]
    ExtendFormat,
    /// Minutes outside 1-1440.
    #[error("Invalid minutes. Must be 1-1440")]
    MinutesRange,
    /// Minutes that are not an integer.
    #[error("Invalid minutes value")]
    MinutesValue,
    #[error("Unknown command")]
    UnknownCommand,
    /// Something failed inside the child while executing.
    #[error("Command processing failed")]
    ProcessingFailed,
}

const ERROR_REPLIES: [ErrorReply; 5] = [
    ErrorReply::ExtendFormat,
    ErrorReply::MinutesRange,
    ErrorReply::MinutesValue,
    ErrorReply::UnknownCommand,
    ErrorReply::ProcessingFailed,
];

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::TimeLeft {
                remaining_minutes,
                state,
                credit_minutes,
            } => write!(
                f,
                "TIME_LEFT|{remaining_minutes}|{}|{credit_minutes}",
                state.as_str()
            ),
            Reply::NoCreditData => f.write_str("TIME_LEFT|ERROR|No credit data available"),
            Reply::TimeDataFailed => f.write_str("TIME_LEFT|ERROR|Failed to get time data"),
            Reply::DeviceLocked => f.write_str("DEVICE_LOCKED|Device is now blocked"),
            Reply::LockFailed => f.write_str("DEVICE_LOCKED|ERROR|Failed to lock device"),
            Reply::TimeExtended { minutes } => write!(f, "TIME_EXTENDED|{minutes} minutes added"),
            Reply::Error(error) => write!(f, "ERROR|{error}"),
        }
    }
}

/// A reply text that is none of the protocol's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a CST reply: {0:?}")]
pub struct UnknownReply(pub String);

impl Reply {
    /// Parses a reply text (the parent's side).
    pub fn parse(text: &str) -> Result<Reply, UnknownReply> {
        let unknown = || UnknownReply(text.to_owned());
        let fixed = [
            Reply::NoCreditData,
            Reply::TimeDataFailed,
            Reply::DeviceLocked,
            Reply::LockFailed,
        ];
        if let Some(reply) = fixed
            .into_iter()
            .chain(ERROR_REPLIES.map(Reply::Error))
            .find(|reply| reply.to_string() == text)
        {
            return Ok(reply);
        }
        if let Some(rest) = text.strip_prefix("TIME_LEFT|") {
            let mut fields = rest.split('|');
            let (Some(remaining), Some(state), Some(credit), None) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                return Err(unknown());
            };
            let state = match state {
                "ACTIVE" => LegacyState::Active,
                "BLOCKED" => LegacyState::Blocked,
                _ => return Err(unknown()),
            };
            return Ok(Reply::TimeLeft {
                remaining_minutes: remaining.parse().map_err(|_| unknown())?,
                state,
                credit_minutes: credit.parse().map_err(|_| unknown())?,
            });
        }
        if let Some(minutes) = text
            .strip_prefix("TIME_EXTENDED|")
            .and_then(|rest| rest.strip_suffix(" minutes added"))
        {
            return Ok(Reply::TimeExtended {
                minutes: minutes.parse().map_err(|_| unknown())?,
            });
        }
        Err(unknown())
    }

    /// Whether the parent app shows this reply as a failure.
    pub fn is_error(&self) -> bool {
        !matches!(
            self,
            Reply::TimeLeft { .. } | Reply::DeviceLocked | Reply::TimeExtended { .. }
        )
    }

    /// The reply as the parent app renders it.
    pub fn describe(&self) -> String {
        match self {
            Reply::TimeLeft {
                remaining_minutes,
                state,
                credit_minutes,
            } => format!(
                "Time Left: {remaining_minutes} min (Total: {credit_minutes} min) - Status: {}",
                state.as_str()
            ),
            other => other.to_string(),
        }
    }
}

impl From<ErrorReply> for Reply {
    fn from(error: ErrorReply) -> Self {
        Reply::Error(error)
    }
}
