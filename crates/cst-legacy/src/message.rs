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
                let minutes = java_parse_int(parts[1]).ok_or(ErrorReply::MinutesValue)?;
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

/// The first code point (the zero) of every run of ten decimal digits in
/// Unicode 15.1 (general category Nd): each run holds 0 to 9 in order, so a
/// digit's value is its distance from its zero.
const DIGIT_ZEROS: [u32; 68] = [
    0x0030, 0x0660, 0x06f0, 0x07c0, 0x0966, 0x09e6, 0x0a66, 0x0ae6, 0x0b66, 0x0be6, 0x0c66, 0x0ce6,
    0x0d66, 0x0de6, 0x0e50, 0x0ed0, 0x0f20, 0x1040, 0x1090, 0x17e0, 0x1810, 0x1946, 0x19d0, 0x1a80,
    0x1a90, 0x1b50, 0x1bb0, 0x1c40, 0x1c50, 0xa620, 0xa8d0, 0xa900, 0xa9d0, 0xa9f0, 0xaa50, 0xabf0,
    0xff10, 0x104a0, 0x10d30, 0x11066, 0x110f0, 0x11136, 0x111d0, 0x112f0, 0x11450, 0x114d0,
    0x11650, 0x116c0, 0x11730, 0x118e0, 0x11950, 0x11c50, 0x11d50, 0x11da0, 0x11f50, 0x16a60,
    0x16ac0, 0x16b50, 0x1d7ce, 0x1d7d8, 0x1d7e2, 0x1d7ec, 0x1d7f6, 0x1e140, 0x1e2f0, 0x1e4f0,
    0x1e950, 0x1fbf0,
];

/// The value of `c` as a decimal digit in any script, as Java's
/// `Character.digit(c, 10)` gives it (`٧` is 7, `७` is 7).
pub fn decimal_digit(c: char) -> Option<u32> {
    let code = u32::from(c);
    let zero = match DIGIT_ZEROS.binary_search(&code) {
        Ok(i) => DIGIT_ZEROS[i],
        Err(0) => return None,
        Err(i) => DIGIT_ZEROS[i - 1],
    };
    (code - zero < 10).then_some(code - zero)
}

/// An `int` as Java's `Integer.parseInt` reads it: an optional ASCII `+` or
/// `-`, then one or more decimal digits of any script (mixed scripts too),
/// nothing else, within `i32`. Android children format numbers with the
/// phone's locale, so `TIME_LEFT|٧٨|ACTIVE|١٢٠` comes from an Arabic phone.
pub fn java_parse_int(text: &str) -> Option<i32> {
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() {
        return None;
    }
    let mut value: i64 = 0;
    for c in digits.chars() {
        value = value * 10 + i64::from(decimal_digit(c)?);
        if value > i64::from(i32::MAX) + 1 {
            return None;
        }
    }
    i32::try_from(if negative { -value } else { value }).ok()
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
            let number = |text: &str| java_parse_int(text).map(i64::from).ok_or_else(unknown);
            return Ok(Reply::TimeLeft {
                remaining_minutes: number(remaining)?,
                state,
                credit_minutes: number(credit)?,
            });
        }
        if let Some(minutes) = text
            .strip_prefix("TIME_EXTENDED|")
            .and_then(|rest| rest.strip_suffix(" minutes added"))
        {
            return Ok(Reply::TimeExtended {
                minutes: java_parse_int(minutes).ok_or_else(unknown)?,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_of_every_script_count_as_java_counts_them() {
        assert_eq!(decimal_digit('7'), Some(7));
        assert_eq!(decimal_digit('٧'), Some(7)); // Arabic-Indic
        assert_eq!(decimal_digit('۷'), Some(7)); // Extended Arabic-Indic (Persian)
        assert_eq!(decimal_digit('७'), Some(7)); // Devanagari
        assert_eq!(decimal_digit('７'), Some(7)); // fullwidth
        assert_eq!(decimal_digit('\u{1D7D5}'), Some(7)); // mathematical bold
        for not_a_digit in ['a', '/', ':', '٫', '½', '²', 'Ⅶ', '\u{2F}', '\u{10FFFF}'] {
            assert_eq!(decimal_digit(not_a_digit), None, "{not_a_digit:?}");
        }
        // Every zero is a zero and every run is ten long.
        for &zero in &DIGIT_ZEROS {
            for value in 0..10 {
                let c = char::from_u32(zero + value).unwrap();
                assert_eq!(decimal_digit(c), Some(value), "{c:?}");
            }
        }
    }

    #[test]
    fn integers_parse_as_integer_parse_int_parses_them() {
        assert_eq!(java_parse_int("٧٨"), Some(78));
        assert_eq!(java_parse_int("١٢٠"), Some(120));
        assert_eq!(java_parse_int("+15"), Some(15));
        assert_eq!(java_parse_int("-3"), Some(-3));
        assert_eq!(java_parse_int("٣0"), Some(30), "scripts may mix");
        assert_eq!(java_parse_int("2147483647"), Some(i32::MAX));
        assert_eq!(java_parse_int("-2147483648"), Some(i32::MIN));
        for bad in [
            "",
            "+",
            "-",
            "2147483648",
            "1 5",
            " 15",
            "15 ",
            "1.5",
            "0x10",
            "++1",
            "١٢٠a",
        ] {
            assert_eq!(java_parse_int(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn replies_and_commands_from_a_phone_in_another_language() {
        assert_eq!(
            Reply::parse("TIME_LEFT|٧٨|ACTIVE|١٢٠"),
            Ok(Reply::TimeLeft {
                remaining_minutes: 78,
                state: LegacyState::Active,
                credit_minutes: 120,
            })
        );
        assert_eq!(
            Command::parse("EXTEND_TIME:٣٠"),
            Ok(Command::ExtendTime { minutes: 30 })
        );
        assert_eq!(
            Command::parse("EXTEND_TIME:١٥٠٠"),
            Err(ErrorReply::MinutesRange)
        );
    }
}
