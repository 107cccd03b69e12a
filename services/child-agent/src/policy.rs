//! Loading the policy the agent enforces in standalone mode.

use std::path::{Path, PathBuf};

use household_core::{InputError, Policy};

#[derive(Debug, Clone, thiserror::Error)]
pub enum PolicyFileError {
    #[error("cannot read policy file {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("policy file {path}, line {line}, column {column}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("policy file {path}: {source}")]
    Invalid { path: PathBuf, source: InputError },
    #[error("default policy: {0}")]
    Default(InputError),
}

/// The policy from `path`, or the documented default (120 minutes every
/// day, 2 × 5 and 1 × 10 minute credits, 1 minute of grace, no bedtime).
/// Where the file names no `time_zone`, the device's own zone is used: a
/// family expects "midnight" to mean its own midnight.
pub fn load(path: Option<&Path>) -> Result<Policy, PolicyFileError> {
    let Some(path) = path else {
        let policy = Policy {
            time_zone: system_zone(),
            ..Policy::default()
        };
        policy.validate().map_err(PolicyFileError::Default)?;
        return Ok(policy);
    };
    let text = std::fs::read_to_string(path).map_err(|e| PolicyFileError::Read {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    parse(&text).map_err(|e| match e {
        Parsed::Syntax {
            line,
            column,
            message,
        } => PolicyFileError::Parse {
            path: path.to_owned(),
            line,
            column,
            message,
        },
        Parsed::Invalid(source) => PolicyFileError::Invalid {
            path: path.to_owned(),
            source,
        },
    })
}

#[derive(Debug)]
enum Parsed {
    /// Not TOML, or not the shape of a policy: where, and what.
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
    /// A policy whose values break a rule (the field is named).
    Invalid(InputError),
}

impl Parsed {
    /// Where in `text` the error is, 1-based, from its byte span.
    fn at(text: &str, error: &toml::de::Error) -> Self {
        let offset = error.span().map_or(0, |span| span.start).min(text.len());
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Parsed::Syntax {
            line,
            column: text[line_start..offset].chars().count() + 1,
            message: error.message().to_owned(),
        }
    }
}

fn parse(text: &str) -> Result<Policy, Parsed> {
    let table: toml::Table = toml::from_str(text).map_err(|e| Parsed::at(text, &e))?;
    let mut policy: Policy = toml::from_str(text).map_err(|e| Parsed::at(text, &e))?;
    // `timezone` is the earlier spelling, still accepted.
    if !table.contains_key("time_zone") && !table.contains_key("timezone") {
        policy.time_zone = system_zone();
    }
    policy.validate().map_err(Parsed::Invalid)?;
    Ok(policy)
}

/// The device's IANA zone name, or UTC when the system does not say.
fn system_zone() -> String {
    match jiff::tz::TimeZone::try_system() {
        Ok(zone) => zone.iana_name().unwrap_or("UTC").to_owned(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot tell the system time zone; using UTC");
            "UTC".to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_file_reads_into_the_household_rules() {
        let policy =
            parse("timezone = \"Europe/Berlin\"\ngrace_minutes = 2\n[daily_minutes]\nmon = 60\n")
                .unwrap_or_else(|_| panic!("parses"));
        assert_eq!(policy.time_zone, "Europe/Berlin");
        assert_eq!(policy.grace_minutes, 2);
    }

    #[test]
    fn bad_values_name_the_field() {
        let Err(Parsed::Invalid(e)) = parse("timezone = \"UTC\"\ngrace_minutes = -1\n") else {
            panic!("negative grace must be refused")
        };
        assert!(e.to_string().contains("grace_minutes"), "{e}");
        let Err(Parsed::Syntax { line, message, .. }) =
            parse("timezone = \"UTC\"\ngrace_minuts = 1\n")
        else {
            panic!("unknown keys must be refused")
        };
        assert!(message.contains("grace_minuts"), "{message}");
        assert_eq!(line, 2);
    }

    #[test]
    fn errors_say_where_by_line_and_column() {
        let text = "timezone = \"UTC\"\ndaily_minutes = 60\ngrace_minutes = \"two\"\n";
        match parse(text) {
            Err(Parsed::Syntax { line, column, .. }) => assert_eq!((line, column), (3, 17)),
            other => panic!("{other:?}"),
        }
        match parse("timezone = \"UTC\"\ngrace_minutes = = 1\n") {
            Err(Parsed::Syntax { line, column, .. }) => assert_eq!((line, column), (2, 17)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_documented_example_is_valid() {
        let text = include_str!("../../../deploy/child-agent/policy.example.toml");
        let policy = parse(text).unwrap_or_else(|_| panic!("the example parses"));
        assert_eq!(policy.downtime.len(), 1);
        assert_eq!(policy.exceptions.len(), 1);
    }

    #[test]
    fn without_a_zone_the_device_zone_is_used() {
        let policy = parse("grace_minutes = 1\n").unwrap_or_else(|_| panic!("parses"));
        assert_eq!(policy.time_zone, system_zone());
    }
}
