//! Every command and reply text of the protocol, both ways.

use cst_legacy::{Command, ErrorReply, LegacyState, Reply};

#[test]
fn commands_parse_as_the_android_child_parses_them() {
    assert_eq!(Command::parse("GET_TIME_LEFT"), Ok(Command::GetTimeLeft));
    assert_eq!(Command::parse("LOCK_DEVICE"), Ok(Command::LockDevice));
    assert_eq!(
        Command::parse("EXTEND_TIME:30"),
        Ok(Command::ExtendTime { minutes: 30 })
    );
    assert_eq!(
        Command::parse("EXTEND_TIME:1"),
        Ok(Command::ExtendTime { minutes: 1 })
    );
    assert_eq!(
        Command::parse("EXTEND_TIME:1440"),
        Ok(Command::ExtendTime { minutes: 1440 })
    );
    // Java's split drops trailing empty parts.
    assert_eq!(
        Command::parse("EXTEND_TIME:30:"),
        Ok(Command::ExtendTime { minutes: 30 })
    );
    assert_eq!(
        Command::parse("EXTEND_TIME:+5"),
        Ok(Command::ExtendTime { minutes: 5 })
    );
}

#[test]
fn every_error_reply_of_the_spec() {
    use ErrorReply::*;
    let cases = [
        ("EXTEND_TIME", ExtendFormat),
        ("EXTEND_TIME:", ExtendFormat),
        ("EXTEND_TIME:1:2", ExtendFormat),
        ("EXTEND_TIME:0", MinutesRange),
        ("EXTEND_TIME:1441", MinutesRange),
        ("EXTEND_TIME:-5", MinutesRange),
        ("EXTEND_TIME:ten", MinutesValue),
        ("EXTEND_TIME: 5", MinutesValue),
        ("EXTEND_TIME:99999999999", MinutesValue),
        ("REBOOT", UnknownCommand),
        ("", UnknownCommand),
        ("get_time_left", UnknownCommand),
    ];
    for (text, error) in cases {
        assert_eq!(Command::parse(text), Err(error), "{text:?}");
    }
    let texts = [
        (
            ExtendFormat,
            "ERROR|Invalid EXTEND_TIME format. Use EXTEND_TIME:minutes",
        ),
        (MinutesRange, "ERROR|Invalid minutes. Must be 1-1440"),
        (MinutesValue, "ERROR|Invalid minutes value"),
        (UnknownCommand, "ERROR|Unknown command"),
        (ProcessingFailed, "ERROR|Command processing failed"),
    ];
    for (error, text) in texts {
        assert_eq!(Reply::Error(error).to_string(), text);
        assert_eq!(Reply::parse(text), Ok(Reply::Error(error)));
    }
}

#[test]
fn every_reply_round_trips_through_its_exact_text() {
    let replies = [
        (
            Reply::TimeLeft {
                remaining_minutes: 42,
                state: LegacyState::Active,
                credit_minutes: 120,
            },
            "TIME_LEFT|42|ACTIVE|120",
        ),
        (
            Reply::TimeLeft {
                remaining_minutes: 0,
                state: LegacyState::Blocked,
                credit_minutes: 90,
            },
            "TIME_LEFT|0|BLOCKED|90",
        ),
        (
            Reply::NoCreditData,
            "TIME_LEFT|ERROR|No credit data available",
        ),
        (
            Reply::TimeDataFailed,
            "TIME_LEFT|ERROR|Failed to get time data",
        ),
        (Reply::DeviceLocked, "DEVICE_LOCKED|Device is now blocked"),
        (
            Reply::LockFailed,
            "DEVICE_LOCKED|ERROR|Failed to lock device",
        ),
        (
            Reply::TimeExtended { minutes: 15 },
            "TIME_EXTENDED|15 minutes added",
        ),
    ];
    for (reply, text) in replies {
        assert_eq!(reply.to_string(), text);
        assert_eq!(Reply::parse(text), Ok(reply));
    }
    assert!(Reply::parse("TIME_LEFT|x|ACTIVE|1").is_err());
    assert!(Reply::parse("TIME_LEFT|1|SLEEPING|1").is_err());
    assert!(Reply::parse("HELLO").is_err());
}

#[test]
fn the_parent_app_rendering() {
    let reply = Reply::TimeLeft {
        remaining_minutes: 42,
        state: LegacyState::Active,
        credit_minutes: 120,
    };
    assert_eq!(
        reply.describe(),
        "Time Left: 42 min (Total: 120 min) - Status: ACTIVE"
    );
    assert!(!reply.is_error());
    assert!(Reply::LockFailed.is_error());
    assert!(Reply::Error(ErrorReply::UnknownCommand).is_error());
}

#[test]
fn device_ids_are_sixteen_hex_digits() {
    use cst_legacy::DeviceId;
    assert_eq!(
        "3f2a9c1b7d4e8a60".parse::<DeviceId>().unwrap().as_str(),
        "3F2A9C1B7D4E8A60"
    );
    for bad in [
        "",
        "3F2A9C1B7D4E8A6",
        "3F2A9C1B7D4E8A600",
        "3F2A9C1B7D4E8A6G",
    ] {
        let err = bad.parse::<DeviceId>().unwrap_err();
        assert!(
            err.to_string()
                .contains("device_id must be 16 hexadecimal digits")
        );
    }
}
