//! The USSD application: member journeys (check coverage, renew, my control number,
//! language) over any gateway.
//!
//! Owns: the internal hop event ([`event`]), menus as data ([`menu`], linted by [`lint`]),
//! the session engine ([`engine`]: navigation, pagination, idempotency, resume, deadlines),
//! the actions menus call ([`actions`]), GSM 03.38 lengths ([`gsm`]), and USSD metrics.
//! Must never: parse a wire format (adapters in `server::ussd_*` and the SMPP module do),
//! send an SMS itself (it enqueues on the outbox in the transaction that owes it), or hold a
//! business rule (the domain does; actions only call it).
//!
//! Design choices:
//! - Sessions live in the store's `aux` tree, written with plain (unflushed) puts, with the
//!   running ones also in memory ([`live`]): a hop costs one write of a small record and no
//!   read. Losing a session in a crash only restarts it. Writes that answer with a control
//!   number are durable before the reply.
//! - Hops of one session run one at a time ([`inflight`]), so a re-send racing its original
//!   waits and gets the cached reply.
//! - The cached reply of the last hop is inside the session record, so idempotency is free.
//! - Menus are an `Arc` behind a lock swapped whole on reload; a hop takes one snapshot.

pub mod actions;
pub mod engine;
pub mod event;
pub mod gsm;
pub mod inflight;
pub mod lint;
pub mod live;
pub mod menu;
pub mod metrics;
pub mod paginate;
pub mod session;
pub mod tasks;

pub use engine::{Engine, Settings, UssdError};
pub use event::{HopEvent, HopKind, Reply};
pub use paginate::Footer;
