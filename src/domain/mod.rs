//! The openIMIS domain: entities and the rules that decide dates, amounts and status.
//!
//! Owns: every business rule that openIMIS's stored procedures and web app apply
//! (policy period, renewal start, policy value, activation, coverage letter, renewal prompts),
//! as plain functions over plain data, each with worked examples as tests.
//! Must never: do I/O, read a clock (dates are passed in), or depend on the store or a wire.

pub mod chfid;
pub mod model;
pub mod money;
pub mod phone;

pub use chfid::{Chfid, ChfidError};
pub use model::*;
pub use money::Money;
pub use phone::{Msisdn, PhoneError};
