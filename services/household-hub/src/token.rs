//! Bearer tokens: the credential of a guardian's phone, which cannot comfortably hold a
//! client certificate in its browser.
//!
//! A token is `hht1.` and 256 random bits in unpadded base64url (48 characters in all),
//! easy to paste and safe in a header. It is shown once, in the Enroll response; the
//! hub keeps only the SHA-256 of its 32 random bytes, as the key of its credential in
//! the registry. A copy of the registry (a backup, say) therefore holds nothing a
//! phone could be impersonated with.
//!
//! A token expires [`TOKEN_LIFETIME`] (90 days) after it was last used: every accepted
//! call pushes the expiry forward, so a phone in daily use never has to pair again,
//! while one lost in a drawer stops working by itself. The extension is written to the
//! registry at most once per [`RENEWAL_STEP`] (an hour), not on every call.
//!
//! [`BearerToken`] has no `Display` and its `Debug` hides the secret, so a token cannot
//! reach a log line by accident; only [`BearerToken::expose`] spells it out, for the
//! one response that hands it over.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::registry::{CredentialKind, CredentialRecord, IdentityRecord, Role};

/// What every token starts with: the format's name and version.
pub const TOKEN_PREFIX: &str = "hht1.";
/// Random bytes in a token.
const TOKEN_BYTES: usize = 32;
/// How long a token stays valid after its last use.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(90 * 24 * 60 * 60);
/// The expiry is written again only once it would move by at least this much, so a busy
/// phone costs the registry one write an hour instead of one per call.
pub const RENEWAL_STEP: Duration = Duration::from_secs(60 * 60);

/// A bearer token's secret.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken {
    secret: [u8; TOKEN_BYTES],
}

/// Why a presented token is not accepted. The holder of a token may learn which: telling
/// "revoked" from "expired" needs the token itself, so it reveals nothing to a guesser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenFault {
    /// The `authorization` header is not `Bearer hht1.…` with a well-formed token.
    #[error(
        "the authorization header must be \"Bearer hht1.…\", with the token Agent.Enroll returned"
    )]
    Malformed,
    /// No credential of this household has this token.
    #[error("the bearer token is not known to this household")]
    Unknown,
    /// A guardian revoked the token, or the whole guardian.
    #[error("the bearer token was revoked; pair this phone again with a new pairing code")]
    Revoked,
    /// The token went unused for longer than its lifetime.
    #[error("the bearer token expired after 90 days without use; pair this phone again")]
    Expired,
}

impl TokenFault {
    /// The word for the fault in an error's `ErrorInfo.metadata["why"]`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenFault::Malformed => "malformed",
            TokenFault::Unknown => "unknown",
            TokenFault::Revoked => "revoked",
            TokenFault::Expired => "expired",
        }
    }
}

impl BearerToken {
    /// A new token from the operating system's random numbers.
    pub fn generate() -> BearerToken {
        let mut secret = [0u8; TOKEN_BYTES];
        rand::rng().fill_bytes(&mut secret);
        BearerToken { secret }
    }

    /// Reads a token as a client sends it. Base64 decoding is strict (no padding, no
    /// stray bits), so every token has exactly one spelling.
    pub fn parse(text: &str) -> Result<BearerToken, TokenFault> {
        let encoded = text
            .strip_prefix(TOKEN_PREFIX)
            .ok_or(TokenFault::Malformed)?;
        let bytes = URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| TokenFault::Malformed)?;
        let secret = <[u8; TOKEN_BYTES]>::try_from(bytes).map_err(|_| TokenFault::Malformed)?;
        Ok(BearerToken { secret })
    }

    /// Reads the token out of an `authorization` header value: `Bearer TOKEN`, the scheme
    /// in any case (RFC 7235), one or more spaces between.
    pub fn from_authorization(value: &[u8]) -> Result<BearerToken, TokenFault> {
        let value = std::str::from_utf8(value).map_err(|_| TokenFault::Malformed)?;
        let (scheme, token) = value.trim().split_once(' ').ok_or(TokenFault::Malformed)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(TokenFault::Malformed);
        }
        BearerToken::parse(token.trim_start())
    }

    /// The token as the phone keeps and sends it. Call this only to hand the token over.
    pub fn expose(&self) -> String {
        format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(self.secret))
    }

    /// SHA-256 of the secret: what the registry stores and looks tokens up by.
    ///
    /// Looking a presented token up by its digest needs no constant-time comparison:
    /// the lookup's timing can at most tell an attacker something about the digest of
    /// the token they sent, and a digest does not lead back to a token (256 random bits
    /// behind SHA-256), so it gives nothing towards guessing a real one.
    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.secret).into()
    }
}

impl fmt::Debug for BearerToken {
    /// Leaves the secret out: a token must never reach a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(…)")
    }
}

/// The token credential `credential_id` of `identity`, if it admits its holder at
/// `now_unix_micros`: a guardian's, not revoked (nor its guardian), not expired.
pub fn check<'a>(
    identity: &'a IdentityRecord,
    credential_id: &str,
    now_unix_micros: i64,
) -> Result<&'a CredentialRecord, TokenFault> {
    let credential = identity
        .credentials
        .iter()
        .find(|c| c.credential_id == credential_id && c.kind == CredentialKind::BearerToken)
        .ok_or(TokenFault::Unknown)?;
    // Tokens are only ever issued to guardians; anything else is not a token we made.
    if identity.role != Role::Guardian {
        return Err(TokenFault::Unknown);
    }
    if identity.revoked || credential.revoked {
        return Err(TokenFault::Revoked);
    }
    if credential.expires_unix_micros <= now_unix_micros {
        return Err(TokenFault::Expired);
    }
    Ok(credential)
}

/// The expiry of a token issued at `now_unix_micros`.
pub fn first_expiry(now_unix_micros: i64) -> i64 {
    now_unix_micros.saturating_add(micros(TOKEN_LIFETIME))
}

/// The expiry to write after a token whose expiry is `expires_unix_micros` was used at
/// `now_unix_micros`, or `None` when it would move by less than [`RENEWAL_STEP`] and is
/// not worth a write yet.
pub fn renewed_expiry(expires_unix_micros: i64, now_unix_micros: i64) -> Option<i64> {
    let renewed = first_expiry(now_unix_micros);
    (renewed.saturating_sub(expires_unix_micros) >= micros(RENEWAL_STEP)).then_some(renewed)
}

fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000_000;
    const DAY: i64 = 24 * HOUR;
    /// Some fixed moment, so the rules are tested without a clock.
    const T0: i64 = 1_767_225_600_000_000;

    fn guardian_with(credential: CredentialRecord) -> IdentityRecord {
        IdentityRecord {
            identity_id: "g-anna".into(),
            role: Role::Guardian,
            display_name: "Anna".into(),
            child_id: String::new(),
            created_unix_micros: T0,
            pending: false,
            invite_expires_unix_micros: 0,
            revoked: false,
            credentials: vec![credential],
        }
    }

    fn token_record(expires_unix_micros: i64) -> CredentialRecord {
        CredentialRecord {
            credential_id: "tok-1".into(),
            kind: CredentialKind::BearerToken,
            label: "Anna's phone".into(),
            issued_unix_micros: T0,
            expires_unix_micros,
            revoked: false,
            invited_by: String::new(),
        }
    }

    #[test]
    fn a_token_reads_back_as_written_and_only_so() {
        let token = BearerToken::generate();
        let text = token.expose();
        assert!(text.starts_with("hht1."), "{text}");
        assert_eq!(text.len(), 48);
        assert_eq!(BearerToken::parse(&text), Ok(token.clone()));
        let header = format!("bearer   {text}");
        assert_eq!(
            BearerToken::from_authorization(header.as_bytes()),
            Ok(token.clone())
        );
        assert_ne!(token, BearerToken::generate());

        for bad in [
            "",
            "hht1.",
            &text[5..],
            &format!("hht2.{}", &text[5..]),
            &format!("{text}="),
            &text[..47],
            &format!("{text}A"),
            &text.replace('.', ","),
        ] {
            assert_eq!(
                BearerToken::parse(bad),
                Err(TokenFault::Malformed),
                "{bad:?}"
            );
        }
        for bad in [
            text.clone(),
            format!("Basic {text}"),
            format!("Bearer{text}"),
            "Bearer".into(),
        ] {
            assert_eq!(
                BearerToken::from_authorization(bad.as_bytes()),
                Err(TokenFault::Malformed),
                "{bad:?}"
            );
        }
        assert!(!format!("{token:?}").contains(&text[5..]));
    }

    #[test]
    fn the_digest_is_of_the_secret_and_differs_per_token() {
        let token = BearerToken::generate();
        assert_eq!(
            token.digest(),
            <[u8; 32]>::from(Sha256::digest(token.secret))
        );
        assert_ne!(token.digest(), BearerToken::generate().digest());
    }

    #[test]
    fn a_token_is_refused_once_expired_revoked_or_not_a_token() {
        let expires = first_expiry(T0);
        assert_eq!(expires, T0 + 90 * DAY);
        let anna = guardian_with(token_record(expires));
        assert!(check(&anna, "tok-1", T0).is_ok());
        assert!(check(&anna, "tok-1", expires - 1).is_ok());
        assert_eq!(check(&anna, "tok-1", expires), Err(TokenFault::Expired));
        assert_eq!(check(&anna, "tok-2", T0), Err(TokenFault::Unknown));

        let mut revoked = anna.clone();
        revoked.credentials[0].revoked = true;
        assert_eq!(check(&revoked, "tok-1", T0), Err(TokenFault::Revoked));
        let mut whole_guardian = anna.clone();
        whole_guardian.revoked = true;
        assert_eq!(
            check(&whole_guardian, "tok-1", T0),
            Err(TokenFault::Revoked)
        );

        // A certificate's id is no token, nor is a device's credential.
        let mut certificate = anna.clone();
        certificate.credentials[0].kind = CredentialKind::Certificate;
        assert_eq!(check(&certificate, "tok-1", T0), Err(TokenFault::Unknown));
        let mut device = anna;
        device.role = Role::Device;
        assert_eq!(check(&device, "tok-1", T0), Err(TokenFault::Unknown));
    }

    #[test]
    fn use_pushes_the_expiry_forward_at_most_hourly() {
        let expires = first_expiry(T0);
        // Used again within the hour: not worth a write.
        assert_eq!(renewed_expiry(expires, T0), None);
        assert_eq!(renewed_expiry(expires, T0 + HOUR - 1), None);
        // An hour on: 90 days from now.
        assert_eq!(
            renewed_expiry(expires, T0 + HOUR),
            Some(T0 + HOUR + 90 * DAY)
        );
        // Used every day, it never expires; 89 days unused, it still works and renews.
        let mut expires = expires;
        for day in 1..=200 {
            let now = T0 + day * DAY;
            let anna = guardian_with(token_record(expires));
            assert!(check(&anna, "tok-1", now).is_ok(), "day {day}");
            expires = renewed_expiry(expires, now).expect("a day later is worth a write");
        }
        let now = T0 + 200 * DAY + 89 * DAY;
        assert!(check(&guardian_with(token_record(expires)), "tok-1", now).is_ok());
        // Unused for 90 days: gone.
        let now = T0 + 200 * DAY + 90 * DAY;
        assert_eq!(
            check(&guardian_with(token_record(expires)), "tok-1", now),
            Err(TokenFault::Expired)
        );
    }
}
