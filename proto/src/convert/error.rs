//! Why a message could not become a core value.

use household_core::InputError;

/// A message that does not convert: a required part absent, a value the API does not
/// allow there, or a value the rules refuse.
///
/// Every variant names the field by its path in the message converted
/// (`weekdays[2].daily_minutes`, `exceptions[0].date.day`, `extension_credit_spent.minutes`)
/// and says what would have been accepted, so the hub can answer `INVALID_ARGUMENT`
/// with one field violation: [`ConvertError::field`] is the violation's field,
/// [`ConvertError::message`] its description. A caller that converted a nested message
/// puts the enclosing field in front with [`ConvertError::within`]
/// (`policy.weekdays[2].daily_minutes`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    /// A part the message needs is absent: a sub-message, a oneof, or an id that must
    /// not be empty.
    #[error("{field} is required")]
    Missing {
        /// Path of the absent field.
        field: String,
    },
    /// An enum value (or a number standing for one) that is unknown or not allowed here,
    /// such as `TIME_REQUEST_STATUS_PENDING` in an answer or a 7-minute credit.
    #[error("{field} is {value}; allowed values are {allowed}")]
    NotAllowed {
        /// Path of the field.
        field: String,
        /// The value as sent, with its enum name when it has one.
        value: String,
        /// The values that would have been accepted.
        allowed: String,
    },
    /// A value the rules refuse; household-core's error names the field and the range.
    #[error(transparent)]
    Invalid(#[from] InputError),
}

impl ConvertError {
    /// A [`ConvertError::Missing`] for `field`.
    pub(crate) fn missing(field: impl Into<String>) -> ConvertError {
        ConvertError::Missing {
            field: field.into(),
        }
    }

    /// A [`ConvertError::NotAllowed`] for `field`.
    pub(crate) fn not_allowed(
        field: impl Into<String>,
        value: impl Into<String>,
        allowed: impl Into<String>,
    ) -> ConvertError {
        ConvertError::NotAllowed {
            field: field.into(),
            value: value.into(),
            allowed: allowed.into(),
        }
    }

    /// The path of the field the error is about, as a `BadRequest.FieldViolation`
    /// names it.
    pub fn field(&self) -> &str {
        match self {
            ConvertError::Missing { field } | ConvertError::NotAllowed { field, .. } => field,
            ConvertError::Invalid(error) => error.field(),
        }
    }

    /// What is wrong and what is allowed, for a person: the violation's description
    /// and the status message. It names the field too, so it reads on its own.
    pub fn message(&self) -> String {
        self.to_string()
    }

    /// The same error with `prefix.` in front of its field, for a message converted as
    /// part of a larger one (`policy` in a SetPolicyRequest, `policy_changed.policy` in
    /// an event).
    pub fn within(self, prefix: &str) -> ConvertError {
        match self {
            ConvertError::Missing { field } => ConvertError::Missing {
                field: format!("{prefix}.{field}"),
            },
            ConvertError::NotAllowed {
                field,
                value,
                allowed,
            } => ConvertError::NotAllowed {
                field: format!("{prefix}.{field}"),
                value,
                allowed,
            },
            ConvertError::Invalid(error) => ConvertError::Invalid(error.within(prefix)),
        }
    }
}

/// `7`, or `0 (TIME_REQUEST_STATUS_UNSPECIFIED)` when the number has an enum name: how a
/// refused enum value is shown.
pub(crate) fn enum_value(number: i32, name: Option<&str>) -> String {
    match name {
        Some(name) => format!("{number} ({name})"),
        None => number.to_string(),
    }
}
