//! Checks of request fields that are about the API's shape rather than the household's
//! rules (those live in household-core): names, notes, keys, addresses. Each error names
//! the field and what is allowed.

use crate::error::HubError;

/// Longest display name, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// Longest note or reason, in characters.
pub const MAX_NOTE_CHARS: usize = 200;
/// Longest idempotency key, in characters.
pub const MAX_KEY_CHARS: usize = 128;

/// A display name: 1 to 64 characters after trimming, returned trimmed.
pub fn display_name(field: &str, name: &str) -> Result<String, HubError> {
    let name = name.trim();
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS {
        return Err(HubError::invalid(
            field,
            format!("must be 1 to {MAX_NAME_CHARS} characters, got {chars}"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(HubError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(name.to_owned())
}

/// A note or reason: at most 200 characters, none of them a control character (a
/// child's note reaches guardians' terminals, where an escape sequence would act).
pub fn note(field: &str, text: &str) -> Result<(), HubError> {
    let chars = text.chars().count();
    if chars > MAX_NOTE_CHARS {
        return Err(HubError::invalid(
            field,
            format!("must be at most {MAX_NOTE_CHARS} characters, got {chars}"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(HubError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// An idempotency key: empty (none) unless `required`, else 1 to 128 characters of
/// letters, digits, `-` and `_`.
pub fn idempotency_key(key: &str, required: bool) -> Result<Option<String>, HubError> {
    const FIELD: &str = "idempotency_key";
    if key.is_empty() {
        return if required {
            Err(HubError::invalid(
                FIELD,
                "is required: 1 to 128 characters of letters, digits, '-' and '_', one per user action",
            ))
        } else {
            Ok(None)
        };
    }
    let ok_chars = key
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok_chars || key.len() > MAX_KEY_CHARS {
        return Err(HubError::invalid(
            FIELD,
            format!(
                "must be 1 to {MAX_KEY_CHARS} characters of letters, digits, '-' and '_', got {} characters",
                key.chars().count()
            ),
        ));
    }
    Ok(Some(key.to_owned()))
}

/// Minutes an invite stays valid: 0 means a day, else 1 to 10080.
pub fn invite_minutes(field: &str, minutes: u32) -> Result<i64, HubError> {
    match minutes {
        0 => Ok(1440),
        1..=10080 => Ok(i64::from(minutes)),
        _ => Err(HubError::invalid(
            field,
            format!("must be 1 to 10080 minutes (0 means 1440), got {minutes}"),
        )),
    }
}

/// A legacy device's address: an IPv4 address with an optional port (default 8888).
pub fn legacy_address(field: &str, text: &str) -> Result<std::net::SocketAddrV4, HubError> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<std::net::SocketAddrV4>() {
        return Ok(addr);
    }
    text.parse::<std::net::Ipv4Addr>()
        .map(|ip| std::net::SocketAddrV4::new(ip, 8888))
        .map_err(|_| {
            HubError::invalid(
                field,
                format!("must be an IPv4 address with an optional port, like 192.168.1.23 or 192.168.1.23:8888; got {text:?}"),
            )
        })
}

/// A CST device ID: 16 hexadecimal digits, returned in upper case.
pub fn cst_device_id(field: &str, id: &str) -> Result<String, HubError> {
    let id = id.trim();
    if id.len() != 16 || !id.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(HubError::invalid(
            field,
            format!(
                "must be exactly 16 hex digits, as the CST child app shows it; got {} characters",
                id.chars().count()
            ),
        ));
    }
    Ok(id.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(display_name("display_name", "  Mia ").unwrap(), "Mia");
        assert!(display_name("display_name", "   ").is_err());
        assert!(display_name("display_name", &"x".repeat(65)).is_err());
        assert!(display_name("display_name", "a\u{7}b").is_err());
    }

    #[test]
    fn notes_are_bounded_and_hold_no_control_characters() {
        assert!(note("note", "homework done").is_ok());
        assert!(note("note", &"x".repeat(201)).is_err());
        assert!(note("note", "red \u{1b}[31m").is_err());
    }

    #[test]
    fn keys_are_optional_unless_required_and_shaped() {
        assert_eq!(idempotency_key("", false).unwrap(), None);
        assert!(idempotency_key("", true).is_err());
        assert_eq!(
            idempotency_key("tap-1_a", true).unwrap().as_deref(),
            Some("tap-1_a")
        );
        assert!(idempotency_key("has space", false).is_err());
        assert!(idempotency_key(&"k".repeat(129), false).is_err());
    }

    #[test]
    fn legacy_addresses_take_a_default_port() {
        assert_eq!(legacy_address("a", "10.0.0.2").unwrap().port(), 8888);
        assert_eq!(legacy_address("a", "10.0.0.2:9000").unwrap().port(), 9000);
        assert!(legacy_address("a", "tablet.local").is_err());
        assert_eq!(
            cst_device_id("c", "0123456789abcdef").unwrap(),
            "0123456789ABCDEF"
        );
        assert!(cst_device_id("c", "0123").is_err());
    }
}
