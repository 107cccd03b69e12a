//! The *Child Screen Time* LAN protocol (see `shared/protocols/cst-legacy.md`):
//! sealing ([`seal`]), the texts inside ([`message`]), the child's UDP
//! [`responder`] and the parent's [`client`].
//!
//! Compatibility is byte for byte with the Android apps; what we add on the
//! child's side (a replay window, a rate limit, a read-only or off switch)
//! keeps real parent apps working.

pub mod client;
mod guard;
pub mod message;
pub mod responder;
pub mod seal;

pub use message::{Command, ErrorReply, LegacyState, Reply};
pub use responder::{Counters, Digest, Handler, Mode, Refusal, Responder, ResponderConfig};
pub use seal::{BadDeviceId, DeviceId, Key, OpenError};

#[doc(hidden)]
pub mod fuzzing {
    //! Entry points for the fuzz targets.

    /// Everything the responder does with an untrusted datagram's text,
    /// short of the handler: open and parse.
    pub fn datagram(key: &crate::Key, bytes: &[u8]) {
        if let Ok(text) = std::str::from_utf8(bytes) {
            if let Some(sealed) = text.strip_prefix(crate::message::COMMAND_PREFIX)
                && let Ok(plain) = key.open(sealed)
            {
                let _ = crate::Command::parse(&plain);
            }
            let _ = crate::Reply::parse(text);
            let _ = crate::Command::parse(text);
        }
    }
}
