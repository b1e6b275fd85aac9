//! imis-gateway: a USSD/SMS-first application server for openIMIS (Tanzania CHF).
//!
//! # Layout
//!
//! Modules depend on each other one way only (`tests/architecture.rs` fails on a cycle, and on
//! a file over 700 lines or a function over 120). From the bottom up:
//!
//! - [`domain`]: the openIMIS entities and business rules (CHFID, policy dates, policy value,
//!   activation, coverage letters, renewal prompts, East Africa Time and how dates read).
//!   Pure functions; no I/O, no clock. [`shutdown`]: graceful shutdown: one signal fans out
//!   to every task, which drains and lets the store flush before the process exits.
//! - [`store`]: the embedded sled store: typed, versioned records, secondary indexes (a
//!   family's payments among them), multi-tree business transactions, the durable outbox and
//!   the one consumer loop every outbox topic runs on, group-committed flushes.
//! - [`config`]: the TOML configuration with `IMIS_GATEWAY_<SECTION>__<KEY>` overrides; it
//!   owns its enums (bind mode, receipt id format, MO alphabet) and the protocol modules
//!   map them, never the reverse.
//! - [`app`]: the use cases shared by channels (renewal, a family's payments, the policy
//!   inquiry): `domain` rules over the `store`; depends on no channel.
//!   [`demo`]: deterministic demo and scale data (`--demo`, `demo-data`).
//!   [`ratelimit`]: per-phone GCRA limits (`[limits]`) keyed by MSISDN.
//!   [`mirror`]: the central openIMIS PostgreSQL database: one description per mirrored
//!   table (write, pull and verify), the mirror writer on the outbox, import and pull.
//! - [`sms`]: SMS as data both ways: the outbound record and editable templates, the GSM
//!   03.38 codec, and the inbound pipeline (dedupe, durable store, handlers, MO limit).
//! - [`payments`]: GePG payments: signed XML messages, control numbers (outbox, pool),
//!   payment notifications applied exactly once, reconciliation, the GePG simulator.
//!   [`scheduler`]: daily jobs inside `serve` (policy expiry, officer renewal prompts, family
//!   reminders), persisted windows so a restart neither skips nor repeats a run.
//! - The channels: [`ussd`] (the session engine, menus as data, member journeys and their
//!   actions) and [`officer`] (enrolment officers' SMS commands, PIN lockout, audit trail;
//!   an [`sms::router::MoHandler`] that `serve` plugs into the MO pipeline).
//!   [`facility`]: health facility staff verifying a patient's cover (facilities and staff
//!   phones, the answer and its record, the `HAKIKI`/`VERIFY` SMS command); below [`ussd`],
//!   whose facility journey calls it.
//! - The edges: [`smpp`] (the SMPP 3.4 client: binds, window, throttling, MT drain, MO,
//!   receipts, USSD over SMPP) and [`server`] (HTTP: the public listener with health, USSD
//!   gateways, authenticated inbound SMS and GePG callbacks; the admin listener behind a
//!   bearer token; its own accept loop with header timeout and connection cap). Who may
//!   reach which route is the README's threat model.
//! - [`cli`]: the command line, one file per subcommand; `serve` builds every part once and
//!   wires them (no process-wide statics do wiring); `main.rs` only dispatches.

pub mod app;
pub mod cli;
pub mod config;
pub mod demo;
pub mod domain;
pub mod facility;
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
