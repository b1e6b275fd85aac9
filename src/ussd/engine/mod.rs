//! The session engine: one hop event in, one reply out.
//!
//! Owns: the per-session state machine (navigation keys, validation and retries, choices,
//! action screens and their outcomes), hop idempotency (a re-sent hop index gets the cached
//! reply and runs nothing), session TTL, resume after a drop, the per-gateway hop budget
//! (a slow action yields a holding screen and finishes in the background, its result sent by
//! SMS), pagination of every screen, the per-phone hop limit (`[limits]`: a hop over it
//! gets the `rate_limited` screen and changes nothing), and the metrics of all that.
//! Must never: see a wire format, render a screen over its encoding's limit, run an action
//! for a duplicate hop, or answer with a control number that is not durable (actions that
//! create one use `write_durable`).
//!
//! Pseudo-screens the engine owns (not in menus): `__resume` (the "continue / start again"
//! prompt), `__holding` (we will SMS you) and `__error`. A session whose screen vanished in a
//! menu reload restarts at `home` with the `menu_changed` notice.
//!
//! Layout: this file takes a hop in (idempotency, TTL, rate limit, begin and resume, sweep);
//! [`navigate`] applies an input to a session and renders its screen; [`action`] runs an
//! action screen within the hop budget and sends a late result by SMS.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tracing::Instrument;

use super::actions;
use super::event::{HopEvent, HopKind, Reply};
use super::inflight::InFlight;
use super::live::LiveSessions;
use super::menu::{Kind, MenuError, Menus, NavKeys, FACILITY_HOME, HOME};
use super::metrics::{inc, GatewayMetrics, Metrics};
use super::session::{self, Ended, Place, Session, SessionError};
use crate::config::{Config, GepgMode};
use crate::domain::Msisdn;
use crate::ratelimit::{Decision, Limiter};
use crate::sms::{TemplateError, Templates};
use crate::store::Store;

mod action;
mod navigate;

pub const RESUME: &str = "__resume";
pub const HOLDING: &str = "__holding";
pub const ERROR: &str = "__error";
/// Wrong answers allowed on an input screen unless it says otherwise.
const DEFAULT_MAX_TRIES: u8 = 3;
/// Action screens chained without a visible screen in between, at most.
const MAX_ACTION_CHAIN: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum UssdError {
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(transparent)]
    Menu(#[from] MenuError),
    #[error(transparent)]
    Templates(#[from] TemplateError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// The engine's knobs, from `[ussd]` and `[gepg]`.
#[derive(Debug, Clone)]
pub struct Settings {
    pub menus_dir: PathBuf,
    pub ttl: Duration,
    pub resume_window: Duration,
    pub hop_budget: Duration,
    pub gateway_budget: BTreeMap<String, Duration>,
    pub keys: NavKeys,
    pub fault_action: String,
    pub fault_delay: Duration,
    pub gepg: GepgMode,
    /// Per-phone hop limit (`[limits]`); `None`: unlimited.
    pub hop_limit: Option<crate::ratelimit::Rate>,
    /// Phones the hop limiter tracks at most.
    pub max_tracked_phones: usize,
    /// The rule a typed CHFID is held to (`[domain]`); texts name its length as
    /// `{chfid_length}`.
    pub chfid_rule: crate::domain::ChfidRule,
    /// What a caller not linked to a family may see of it (`[privacy]`).
    pub privacy: crate::domain::privacy::Privacy,
}

impl Settings {
    pub fn from_config(c: &Config) -> Settings {
        let u = &c.ussd;
        Settings {
            menus_dir: u.menus_dir.clone(),
            ttl: Duration::from_secs(u.session_ttl_secs),
            resume_window: Duration::from_secs(u.resume_window_secs),
            hop_budget: Duration::from_millis(u.hop_budget_ms),
            gateway_budget: u
                .gateway_budget_ms
                .iter()
                .map(|(k, v)| (k.clone(), Duration::from_millis(*v)))
                .collect(),
            keys: NavKeys {
                back: u.key_back.clone(),
                home: u.key_home.clone(),
                more: u.key_more.clone(),
            },
            fault_action: u.fault_action.clone(),
            fault_delay: Duration::from_millis(u.fault_action_delay_ms),
            gepg: c.gepg.mode,
            hop_limit: crate::ratelimit::Rate::per_minute(
                c.limits.ussd_hops_per_minute,
                c.limits.ussd_hop_burst,
            ),
            max_tracked_phones: c.limits.max_tracked_phones,
            chfid_rule: c.domain.chfid_rule(),
            privacy: c.privacy,
        }
    }
}

pub struct Engine {
    store: Store,
    menus: RwLock<Arc<Menus>>,
    templates: Arc<Templates>,
    settings: Settings,
    metrics: Metrics,
    /// Serialises the hops of one session (a re-send racing its original waits for it).
    inflight: InFlight,
    /// Running sessions in memory; the store keeps the record.
    live: LiveSessions,
    /// Hops per phone (`[limits]`), over every gateway.
    hop_limit: Option<Limiter>,
    /// Caps SMS an action sends to a phone not linked to the family (`[sms_guard]`).
    sms_guard: Option<Arc<crate::sms::cost_guard::CostGuard>>,
}

impl Engine {
    /// Loads the menus as the configuration says; SMS go out through `templates` (loaded
    /// once by the caller and shared with the other parts).
    pub fn new(
        store: Store,
        config: &Config,
        templates: Arc<Templates>,
    ) -> Result<Engine, UssdError> {
        Engine::with(store, Settings::from_config(config), templates)
    }

    pub fn with(
        store: Store,
        settings: Settings,
        templates: Arc<Templates>,
    ) -> Result<Engine, UssdError> {
        let menus = Menus::load(&settings.menus_dir, actions::NAMES)?;
        let hop_limit = settings
            .hop_limit
            .map(|r| Limiter::new(r, settings.max_tracked_phones));
        Ok(Engine {
            store,
            menus: RwLock::new(Arc::new(menus)),
            templates,
            settings,
            metrics: Metrics::default(),
            inflight: InFlight::default(),
            live: LiveSessions::default(),
            hop_limit,
            sms_guard: None,
        })
    }

    /// The same engine with SMS to phones not linked to the family under `guard`.
    pub fn with_cost_guard(mut self, guard: Arc<crate::sms::cost_guard::CostGuard>) -> Engine {
        self.sms_guard = Some(guard);
        self
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn menus(&self) -> Arc<Menus> {
        match self.menus.read() {
            Ok(m) => m.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Re-reads the menus; on any problem the running menus stay. Live sessions keep going:
    /// they name screens by id, and one whose screen is gone restarts at home.
    pub fn reload(&self) -> Result<usize, UssdError> {
        let menus = Menus::load(&self.settings.menus_dir, actions::NAMES)?;
        let n = menus.screens.len();
        match self.menus.write() {
            Ok(mut m) => *m = Arc::new(menus),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(menus),
        }
        Ok(n)
    }

    /// Whether `msisdn` has a session `id` on `gateway` (another phone's session with the
    /// same id does not count: sessions are bound to their msisdn).
    pub fn has_session(&self, gateway: &str, id: &str, msisdn: &Msisdn) -> Result<bool, UssdError> {
        if self
            .live
            .contains(&session::session_key(gateway, id, msisdn))
        {
            return Ok(true);
        }
        Ok(session::exists(&self.store, gateway, id, msisdn)?)
    }

    /// Reads a session: from memory while it runs, else from the store. Call it only under
    /// the session's hop lock.
    fn load_session(&self, ev: &HopEvent) -> Result<Option<Session>, UssdError> {
        let key = session::session_key(&ev.gateway, &ev.session_id, &ev.msisdn);
        if let Some(s) = self.live.get(&key) {
            return Ok(Some(s));
        }
        Ok(session::load(
            &self.store,
            &ev.gateway,
            &ev.session_id,
            &ev.msisdn,
        )?)
    }

    /// Writes a session to the store (unflushed, see the module doc) and to memory.
    fn save_session(&self, s: &Session) -> Result<(), UssdError> {
        session::save(&self.store, s)?;
        self.live.put(session::key_of(s), s);
        Ok(())
    }

    /// Answers a hop; a failure becomes the `error` screen (and is logged), never a panic.
    pub async fn handle(&self, ev: HopEvent) -> Reply {
        let lang_hint = ev.msisdn.clone();
        match self.handle_at(ev, Utc::now()).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, msisdn = %lang_hint.masked(), "ussd hop failed");
                let lang = session::language(&self.store, &lang_hint)
                    .ok()
                    .flatten()
                    .unwrap_or_default();
                // A full data disk is temporary: say so, rather than "something went wrong".
                let menus = self.menus();
                match menus.text("unavailable", lang) {
                    t if !t.is_empty() && self.store.disk_full() => Reply::end(t),
                    _ => Reply::end(menus.text("error", lang)),
                }
            }
        }
    }

    pub async fn handle_at(&self, ev: HopEvent, now: DateTime<Utc>) -> Result<Reply, UssdError> {
        let started = Instant::now();
        let gm = self.metrics.gateway(&ev.gateway);
        inc(&gm.hops);
        let span = tracing::info_span!(
            "ussd_hop",
            gateway = %ev.gateway,
            session = %ev.session_id,
            msisdn = %ev.msisdn.masked(),
            hop = ?ev.hop_index,
            kind = ?ev.kind,
        );
        let reply = async {
            let _one_at_a_time = self
                .inflight
                .enter(session::session_key(
                    &ev.gateway,
                    &ev.session_id,
                    &ev.msisdn,
                ))
                .await;
            self.hop(ev, now, &gm).await
        }
        .instrument(span)
        .await;
        gm.observe(started.elapsed());
        reply
    }

    async fn hop(
        &self,
        ev: HopEvent,
        now: DateTime<Utc>,
        gm: &Arc<GatewayMetrics>,
    ) -> Result<Reply, UssdError> {
        let menus = self.menus();
        let now_ms = now.timestamp_millis();
        let ttl_ms = millis(self.settings.ttl);
        let existing = self.load_session(&ev)?;
        if matches!(ev.kind, HopKind::End | HopKind::Abort) {
            if let Some(mut s) = existing.filter(|s| s.ended.is_none()) {
                s.ended = Some(Ended::Abandoned);
                s.ended_ms = Some(now_ms);
                inc(&gm.abandoned);
                self.save_session(&s)?;
            }
            return Ok(Reply::end(""));
        }
        // A re-sent hop is answered from the cache, before the rate limit: it costs the
        // phone nothing.
        if let Some(s) = &existing {
            let hop = ev.hop_index.unwrap_or(s.last_hop + 1);
            if let (true, Some(r)) = (hop <= s.last_hop, &s.last_reply) {
                inc(&gm.duplicate_hops);
                tracing::info!(hop, "duplicate hop answered from the cache");
                return Ok(r.clone());
            }
        }
        if let Some(r) = self.over_limit(&menus, &ev, existing.as_ref(), gm)? {
            return Ok(r);
        }
        let mut s = match existing {
            Some(mut s) => {
                let hop = ev.hop_index.unwrap_or(s.last_hop + 1);
                if s.ended.is_some() {
                    return Ok(Reply::end(menus.text("session_over", s.lang)));
                }
                s.last_hop = hop;
                if now_ms - s.last_ms > ttl_ms {
                    s.ended = Some(Ended::TimedOut);
                    s.ended_ms = Some(s.last_ms + ttl_ms);
                    inc(&gm.timed_out);
                    let r = Reply::end(menus.text("timeout", s.lang));
                    s.last_reply = Some(r.clone());
                    self.save_session(&s)?;
                    return Ok(r);
                }
                let input = ev.input.trim().to_string();
                self.apply(&menus, &mut s, &input, now, gm).await?;
                s
            }
            None if ev.kind == HopKind::Continue => {
                // The session is unknown (expired and swept, or never began here).
                let lang = session::language(&self.store, &ev.msisdn)?.unwrap_or_default();
                return Ok(Reply::end(menus.text("session_over", lang)));
            }
            None => self.begin(&menus, &ev, now, gm).await?,
        };
        let reply = self.render(&menus, &mut s);
        if reply.end && s.ended.is_none() {
            s.ended = Some(Ended::Completed);
            s.ended_ms = Some(now_ms);
            inc(&gm.completed);
        }
        s.last_reply = Some(reply.clone());
        s.last_ms = now_ms;
        self.save_session(&s)?;
        Ok(reply)
    }

    /// The per-phone hop limit: `Some(screen)` when this hop is over it. Nothing is stored
    /// and no action runs; a session in progress stays as it was (it can be resumed after).
    fn over_limit(
        &self,
        menus: &Menus,
        ev: &HopEvent,
        existing: Option<&Session>,
        gm: &Arc<GatewayMetrics>,
    ) -> Result<Option<Reply>, UssdError> {
        let Some(limiter) = &self.hop_limit else {
            return Ok(None);
        };
        let Decision::Refused {
            retry_after,
            notify,
        } = limiter.check(ev.msisdn.as_str(), Instant::now())
        else {
            return Ok(None);
        };
        inc(&gm.rate_limited);
        // A warning once per window per phone: a looping gateway must not flood the log.
        if notify {
            tracing::warn!(
                msisdn = %ev.msisdn.masked(),
                retry_after_ms = u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX),
                "USSD hop over the per-phone rate limit: refused (further ones logged at debug)"
            );
        } else {
            tracing::debug!(msisdn = %ev.msisdn.masked(), "USSD hop over the per-phone rate limit");
        }
        let lang = match existing {
            Some(s) => s.lang,
            None => session::language(&self.store, &ev.msisdn)?.unwrap_or_default(),
        };
        Ok(Some(Reply::end(menus.text("rate_limited", lang))))
    }

    async fn begin(
        &self,
        menus: &Menus,
        ev: &HopEvent,
        now: DateTime<Utc>,
        gm: &Arc<GatewayMetrics>,
    ) -> Result<Session, UssdError> {
        inc(&gm.started);
        let now_ms = now.timestamp_millis();
        let lang = session::language(&self.store, &ev.msisdn)?.unwrap_or_default();
        let mut s = Session {
            id: ev.session_id.clone(),
            gateway: ev.gateway.clone(),
            msisdn: ev.msisdn.clone(),
            lang,
            place: home(),
            notice: None,
            resume: None,
            started_ms: now_ms,
            last_ms: now_ms,
            last_hop: ev.hop_index.unwrap_or(0),
            last_reply: None,
            ended: None,
            ended_ms: None,
        };
        // A registered facility staff phone starts at its own first menu.
        if menus.screen(FACILITY_HOME).is_some()
            && crate::facility::registry::staff_of(&self.store, &ev.msisdn)?.is_some()
        {
            s.place.screen = FACILITY_HOME.into();
        }
        let inputs: Vec<&str> = ev.input.split('*').filter(|p| !p.is_empty()).collect();
        if let Some(mut prev) = session::last_of_phone(&self.store, &ev.msisdn)? {
            let resumable = self.resumable(&prev, now_ms);
            if prev.ended.is_none() {
                // Superseded by a redial: the old session was dropped by the network.
                prev.ended = Some(Ended::Abandoned);
                prev.ended_ms = Some(prev.last_ms);
                inc(&self.metrics.gateway(&prev.gateway).abandoned);
                self.save_session(&prev)?;
            }
            // Inputs in the dial string say what the member wants: no prompt.
            if let (Some(place), true) = (resumable, inputs.is_empty()) {
                tracing::info!(screen = %place.screen, "offering to resume a dropped session");
                s.resume = Some(place);
                s.place.screen = RESUME.into();
            }
        }
        session::set_last_of_phone(&self.store, &s)?;
        for input in inputs {
            self.apply(menus, &mut s, input.trim(), now, gm).await?;
            if is_final(menus, &s.place.screen) {
                break;
            }
        }
        Ok(s)
    }

    /// The place a redial may resume: the previous session ended without completing, in
    /// the middle of a journey, and within the resume window of its end (for a drop, its
    /// last hop; for a timeout, the TTL's end).
    fn resumable(&self, prev: &Session, now_ms: i64) -> Option<Place> {
        if prev.ended == Some(Ended::Completed) {
            return None;
        }
        let ttl_ms = millis(self.settings.ttl);
        let ended_at = prev.ended_ms.unwrap_or(if now_ms - prev.last_ms > ttl_ms {
            prev.last_ms + ttl_ms
        } else {
            prev.last_ms
        });
        if now_ms - ended_at > millis(self.settings.resume_window) {
            return None;
        }
        let place = if prev.place.screen == RESUME {
            prev.resume.clone()?
        } else {
            prev.place.clone()
        };
        let mid_journey = place.screen != HOME
            && place.journey.is_some()
            && ![HOLDING, ERROR].contains(&place.screen.as_str());
        mid_journey.then_some(place)
    }

    /// Drops sessions past their TTL and the resume window, counting the ones that timed out
    /// without the gateway telling us. Returns how many were removed.
    pub fn sweep(&self, now: DateTime<Utc>) -> Result<usize, UssdError> {
        let now_ms = now.timestamp_millis();
        let ttl = millis(self.settings.ttl);
        let keep = millis(self.settings.resume_window);
        // Memory keeps running sessions only; one idle past its TTL reads the store.
        self.live.evict_idle(now_ms - ttl);
        if let Some(l) = &self.hop_limit {
            l.evict_idle(Instant::now());
        }
        let mut removed = 0;
        for (key, s) in session::all(&self.store)? {
            let Some(s) = s else {
                session::remove_key(&self.store, &key)?;
                removed += 1;
                continue;
            };
            let end = s.ended_ms.unwrap_or(s.last_ms + ttl);
            if now_ms - end <= keep || (s.ended.is_none() && now_ms - s.last_ms <= ttl) {
                continue;
            }
            if s.ended.is_none() {
                inc(&self.metrics.gateway(&s.gateway).timed_out);
            }
            session::remove_key(&self.store, &key)?;
            self.live.remove(&key);
            removed += 1;
        }
        Ok(removed)
    }
}

fn home() -> Place {
    Place {
        screen: HOME.into(),
        ..Place::default()
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn is_final(menus: &Menus, screen: &str) -> bool {
    match screen {
        HOLDING | ERROR => true,
        id => menus.screen(id).is_some_and(|s| s.def.kind == Kind::End),
    }
}
