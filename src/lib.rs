//! imis-gateway: a USSD/SMS-first application server for openIMIS (Tanzania CHF).
//!
//! # Layout
//!
//! - [`domain`]: the openIMIS entities and business rules (CHFID, policy dates, policy value,
//!   activation, coverage letters, renewal prompts). Pure functions; no I/O, no clock.
//! - [`store`]: the embedded sled store: typed, versioned records, secondary indexes,
//!   multi-tree business transactions, the durable outbox, and group-committed flushes.
//! - [`config`]: the TOML configuration with `IMIS_GATEWAY_<SECTION>__<KEY>` overrides.
//! - [`demo`]: deterministic demo and scale data (`--demo`, `demo-data`).
//! - [`app`]: the use cases shared by channels (renewal, a family's payments, the policy
//!   inquiry): orchestrates `domain` rules over the `store`; depends on no channel.
//! - [`sms`]: outbound SMS as data: the outbox record and the editable templates.
//! - [`smpp`]: the SMPP 3.4 client (ESME): binds, window, throttling, MT drain, MO,
//!   delivery receipts, USSD over SMPP.
//! - [`mirror`]: the central openIMIS PostgreSQL database: the mirror writer draining the
//!   outbox, import and incremental pull.
//! - [`scheduler`]: daily jobs inside `serve` (policy expiry, officer renewal prompts,
//!   family reminders), persisted windows so a restart neither skips nor repeats a run.
//! - [`payments`]: GePG payments: signed XML messages, control numbers (outbox, pool),
//!   payment notifications applied exactly once, reconciliation, the GePG simulator.
//! - [`server`]: the HTTP edge (`/health`, and the gateway adapters later issues add).
//! - [`shutdown`]: graceful shutdown: one signal fans out to every task, which drains and
//!   lets the store flush before the process exits.
//! - [`ussd`]: the USSD session engine, menus as data, member journeys and their actions.
//! - [`officer`]: enrolment officers' SMS commands (register, add member, renew, status,
//!   pending renewals, PIN, HELP), PIN lockout, audit trail.
//! - [`ratelimit`]: per-phone rate limits (`[limits]`) on USSD hops and inbound SMS: a
//!   sharded GCRA limiter keyed by MSISDN that forgets idle phones.
//! - [`cli`]: the command line, one file per subcommand; `main.rs` only dispatches.

pub mod app;
pub mod cli;
pub mod config;
pub mod demo;
pub mod domain;
pub mod mirror;
pub mod officer;
pub mod payments;
pub mod ratelimit;
pub mod scheduler;
pub mod server;
pub mod shutdown;
pub mod smpp;
pub mod sms;
pub mod store;
pub mod ussd;
