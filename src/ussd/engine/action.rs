//! Action screens: an action runs on a blocking thread within the gateway's hop budget;
//! one over it gets the holding screen and finishes in the background, its result sent by
//! SMS.
//!
//! Must never: run an action twice for one hop, or queue the late SMS outside a durable
//! write.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::Engine;
use crate::sms::{self, OutboundSms};
use crate::store::{Store, TxResult};
use crate::ussd::actions::{self, ActionCtx, Outcome};
use crate::ussd::menu::{self, Menus, Screen};
use crate::ussd::metrics::{inc, GatewayMetrics};
use crate::ussd::session::Session;

/// What running an action screen came to.
pub(super) enum ActionRun {
    Done(Outcome),
    Late,
    Failed,
}

impl Engine {
    fn budget(&self, gateway: &str) -> Duration {
        self.settings
            .gateway_budget
            .get(gateway)
            .copied()
            .unwrap_or(self.settings.hop_budget)
    }

    pub(super) async fn run_action(
        &self,
        menus: &Menus,
        s: &Session,
        screen: &Screen,
        now: DateTime<Utc>,
        gm: &Arc<GatewayMetrics>,
    ) -> ActionRun {
        let name = screen.def.action.clone().unwrap_or_default();
        let journey = s.place.journey.clone().unwrap_or_else(|| s.id.clone());
        let ctx = ActionCtx {
            store: self.store.clone(),
            templates: self.templates.clone(),
            gepg: self.settings.gepg,
            privacy: self.settings.privacy,
            msisdn: s.msisdn.clone(),
            lang: s.lang,
            today: crate::domain::eat_date(now),
            now,
            vars: s.place.vars.clone(),
            journal_key: format!("{}/{journey}/{}", s.msisdn, screen.id),
            sms_guard: self.sms_guard.clone(),
        };
        let delay = (self.settings.fault_delay > Duration::ZERO
            && (self.settings.fault_action.is_empty() || self.settings.fault_action == name))
            .then_some(self.settings.fault_delay);
        let action = name.clone();
        let mut handle = tokio::task::spawn_blocking(move || {
            if let Some(d) = delay {
                std::thread::sleep(d);
            }
            actions::run(&action, &ctx)
        });
        match tokio::time::timeout(self.budget(&s.gateway), &mut handle).await {
            Ok(Ok(Ok(o))) => ActionRun::Done(o),
            Ok(Ok(Err(e))) => {
                tracing::error!(action = %name, error = %e, "action failed");
                ActionRun::Failed
            }
            Ok(Err(e)) => {
                tracing::error!(action = %name, error = %e, "action task failed");
                ActionRun::Failed
            }
            Err(_) => {
                tracing::warn!(action = %name, "action over the hop budget: holding screen, result by SMS");
                inc(&gm.late_results);
                let late = LateResult {
                    store: self.store.clone(),
                    menus: Arc::new(menus.clone()),
                    screen: screen.clone(),
                    session: s.clone(),
                };
                tokio::spawn(async move {
                    if let Ok(Ok(o)) = handle.await {
                        late.send(o).await;
                    }
                });
                ActionRun::Late
            }
        }
    }
}

/// An action that finished after its hop was answered with the holding screen.
struct LateResult {
    store: Store,
    menus: Arc<Menus>,
    screen: Screen,
    session: Session,
}

impl LateResult {
    async fn send(self, o: Outcome) {
        let s = &self.session;
        let mut vars = s.place.vars.clone();
        vars.extend(o.vars.clone());
        let lang = o.lang.unwrap_or(s.lang);
        let target = self
            .screen
            .def
            .on
            .get(&o.name)
            .or_else(|| self.screen.def.on.get("error"))
            .and_then(|t| self.menus.screen(t.screen()));
        let body = match target {
            Some(t) => menu::render(t.def.text().get(lang), |n| vars.get(n).cloned()),
            None => self.menus.text("error", lang).to_string(),
        };
        let text = format!("{}\n{body}", self.menus.text("late_result", lang));
        let key = format!("ussd:{}:{}:{}:late", s.gateway, s.id, s.last_hop);
        let sms = OutboundSms {
            to: s.msisdn.clone(),
            text,
            template: "ussd_late_result".into(),
            language: lang,
            reference: format!("ussd:{}", s.id),
        };
        let r = self
            .store
            .write_durable(|tx| -> TxResult<u64> { Ok(sms::enqueue(tx, &key, &sms)?) })
            .await;
        match r {
            Ok(seq) => {
                tracing::info!(session = %s.id, msisdn = %s.msisdn.masked(), seq, "late action result queued by SMS")
            }
            Err(e) => {
                tracing::error!(session = %s.id, error = %e, "could not queue the late result SMS")
            }
        }
    }
}
