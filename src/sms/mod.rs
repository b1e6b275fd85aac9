//! Outbound SMS as data: what we owe a member or an officer, and the editable texts.
//!
//! Owns: the [`OutboundSms`] record that business writes put on the durable outbox (topic
//! [`SMS_TOPIC`]) in the same transaction as the write that owes it, and the templates in
//! `sms-templates/` that a CHF officer edits without recompiling.
//! Must never: send anything itself (the SMPP pipeline drains the outbox), or enqueue an SMS
//! outside the transaction of the write that causes it.

pub mod outbound;
pub mod templates;

pub use outbound::{enqueue, OutboundSms, SMS_TOPIC};
pub use templates::{TemplateError, Templates};
