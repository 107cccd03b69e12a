//! The client side of the household API: what a guardian's CLI, a child agent and the
//! hub's own tests need to join a household and talk to its hub over TLS.
//!
//! Joining takes a pairing code (`hh1.SECRET.CA_SHA256`, [`household_proto::pairing`]):
//!
//! 1. [`pin::household_ca`] reads the hub's certificate chain *without trusting it* and
//!    keeps the certificate whose SHA-256 the code names: the household CA. A hub that
//!    does not present it is refused before anything is sent.
//! 2. [`enroll()`] makes a new P-256 key and a CSR, and redeems the code with
//!    `Agent.Enroll` over a channel that trusts that CA alone. The key never leaves the
//!    client; the hub signs the CSR.
//! 3. [`connect`] opens channels that trust the household CA alone and present the
//!    certificate the hub issued.
//!
//! An agent heard on the network can also join without a code: [`mdns::agents`] is how
//! agents announce themselves and the hub hears them, [`adopt`] the verification code and
//! the proofs by which a guardian's hub and the agent agree on it.

pub mod adopt;
pub mod channel;
pub mod enroll;
pub mod mdns;
pub mod pin;
pub mod qr;

pub use channel::{HUB_NAME, connect, tls_config};
pub use enroll::{About, Credential, EnrollError, Enrollment, enroll, new_key_and_csr};
