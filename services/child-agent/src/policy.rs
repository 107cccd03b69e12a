//! Loading the policy the agent enforces in standalone mode.

use std::path::{Path, PathBuf};

use household_core::{InputError, Policy};

#[derive(Debug, thiserror::Error)]
pub enum PolicyFileError {
    #[error("cannot read policy file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("policy file {path}: {message}")]
    Parse { path: PathBuf, message: String },
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
    let text = std::fs::read_to_string(path).map_err(|source| PolicyFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&text).map_err(|e| match e {
        Parsed::Syntax(message) => PolicyFileError::Parse {
            path: path.to_owned(),
            message,
        },
        Parsed::Invalid(source) => PolicyFileError::Invalid {
            path: path.to_owned(),
            source,
        },
    })
}

enum Parsed {
    Syntax(String),
    Invalid(InputError),
}

fn parse(text: &str) -> Result<Policy, Parsed> {
    let mut table: toml::Table =
        toml::from_str(text).map_err(|e| Parsed::Syntax(e.message().to_owned()))?;
    // `timezone` is the earlier spelling, still accepted.
    if !table.contains_key("time_zone") && !table.contains_key("timezone") {
        table.insert("time_zone".into(), toml::Value::String(system_zone()));
    }
    let policy: Policy = table
        .try_into()
        .map_err(|e: toml::de::Error| Parsed::Syntax(e.message().to_owned()))?;
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
        let Err(Parsed::Syntax(message)) = parse("timezone = \"UTC\"\ngrace_minuts = 1\n") else {
            panic!("unknown keys must be refused")
        };
        assert!(message.contains("grace_minuts"), "{message}");
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
