//! The use cases shared by the channels (USSD, officer SMS, and later payments and the
//! mirror): a family's renewal, a family's payments, the policy inquiry.
//!
//! Owns: orchestration: reading what a use case needs from the [`crate::store`], applying the
//! [`crate::domain`] rules to it, and building or writing the records it implies, so that
//! every channel renews (and finds a family's payments) the same way.
//! Must never: depend on a channel or an adapter (ussd, officer, payments, mirror, server,
//! smpp, cli): what it needs from them is passed in (see [`payments::AssignControlNumber`]);
//! hold a business rule itself (those are pure, in `domain`); render a channel's text.

pub mod inquiry;
pub mod payments;
pub mod renewal;
