//! SMS as data, both ways: what we owe a member or an officer, the editable texts, and the
//! channel-neutral inbound pipeline.
//!
//! Owns: the [`OutboundSms`] record that business writes put on the durable outbox (topic
//! [`SMS_TOPIC`]) in the same transaction as the write that owes it, and the [`templates`]
//! (`sms-templates/<lang>/<name>.txt`, minijinja) that a CHF officer edits without
//! recompiling.
//! Must never: send anything itself (the SMPP pipeline drains the outbox), or enqueue an SMS
//! outside the transaction of the write that causes it.
//!
//! Also here, channel-neutral: the text codecs ([`gsm7`], [`segment`], [`mo_text`]), the
//! inbound pipeline ([`inbound`], [`reassembly`], [`router`]) and delivery [`status`]; the
//! [`cost_guard`] on SMS to phones we do not know.

pub mod cost_guard;
pub mod gsm7;
pub mod inbound;
pub mod mo_text;
pub mod outbound;
pub mod pipeline;
pub mod reassembly;
pub mod router;
pub mod segment;
pub mod status;
pub mod templates;

pub use outbound::{enqueue, OutboundSms, SMS_TOPIC};
pub use pipeline::{MoCounters, MoPipeline};
pub use templates::{TemplateError, Templates};
