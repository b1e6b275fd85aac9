//! Navigation: one input applied to a session (keys, menu and list choices, validated
//! input with retries, action screens on the way) and the screen it leads to, paginated.
//!
//! Must never: run an action for anything but a move to an action screen, or render a
//! screen over its encoding's limit (pagination owns that).

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::action::ActionRun;
use super::{home, Engine, UssdError, DEFAULT_MAX_TRIES, ERROR, HOLDING, MAX_ACTION_CHAIN, RESUME};
use crate::ussd::event::Reply;
use crate::ussd::menu::{self, Kind, Menus, Screen, Validator, FACILITY_HOME, HOME};
use crate::ussd::metrics::GatewayMetrics;
use crate::ussd::paginate::{paginate, Footer};
use crate::ussd::session::Session;

impl Engine {
    pub(super) async fn apply(
        &self,
        menus: &Menus,
        s: &mut Session,
        input: &str,
        now: DateTime<Utc>,
        gm: &Arc<GatewayMetrics>,
    ) -> Result<(), UssdError> {
        // A notice shows once, but stays while the member pages through its screen.
        let notice = s.notice.take();
        let lang = s.lang;
        if s.place.screen == RESUME {
            match input {
                "1" => {
                    if let Some(place) = s.resume.take() {
                        s.place = place;
                    }
                }
                "2" => {
                    s.resume = None;
                    s.place = home();
                }
                _ => s.notice = Some(menus.text("invalid_choice", lang).to_string()),
            }
            return Ok(());
        }
        let Some(screen) = menus.screen(&s.place.screen) else {
            s.place = home();
            s.notice = Some(menus.text("menu_changed", lang).to_string());
            return Ok(());
        };
        let keys = &self.settings.keys;
        if input == keys.home {
            s.place = home();
            return Ok(());
        }
        if input == keys.back {
            if s.place.page > 0 {
                s.place.page -= 1;
                s.notice = notice;
            } else if let Some(prev) = s.place.stack.pop() {
                s.place.screen = prev;
                s.place.tries = 0;
                if s.place.screen == HOME {
                    s.place.journey = None;
                }
            }
            return Ok(());
        }
        if input == keys.more {
            s.notice = notice.clone();
            if usize::from(s.place.page) + 1 < self.pages(menus, s).len() {
                s.place.page += 1;
                return Ok(());
            }
            s.notice = None;
        }
        let def = &screen.def;
        match def.kind {
            Kind::Menu => match def.options.iter().find(|o| o.key == input) {
                Some(o) => {
                    for (k, v) in &o.set {
                        s.place.vars.insert(k.clone(), v.clone());
                    }
                    let next = o.next.clone();
                    self.goto(menus, s, &next, now, gm).await?;
                }
                None => s.notice = Some(menus.text("invalid_choice", lang).to_string()),
            },
            Kind::Choice => {
                let list = def
                    .items
                    .as_ref()
                    .and_then(|i| s.place.lists.get(i))
                    .cloned()
                    .unwrap_or_default();
                let picked = input
                    .parse::<usize>()
                    .ok()
                    .and_then(|n| n.checked_sub(1))
                    .and_then(|i| list.get(i));
                match (picked, &def.var, &def.next) {
                    (Some((_, value)), Some(var), Some(next)) => {
                        s.place.vars.insert(var.clone(), value.clone());
                        let next = next.clone();
                        self.goto(menus, s, &next, now, gm).await?;
                    }
                    _ => s.notice = Some(menus.text("invalid_choice", lang).to_string()),
                }
            }
            Kind::Input => {
                let value = match &screen.validator {
                    Some(v) => self.validate(v, input)?,
                    None => Some(input.to_string()),
                };
                match (value, &def.var, &def.next) {
                    (Some(v), Some(var), Some(next)) => {
                        s.place.vars.insert(var.clone(), v);
                        let next = next.clone();
                        self.goto(menus, s, &next, now, gm).await?;
                    }
                    _ => {
                        let notice = def
                            .invalid
                            .as_deref()
                            .map(|k| menu::render(menus.text(k, lang), |n| self.var(s, n)));
                        self.retry(menus, s, screen, notice);
                    }
                }
            }
            Kind::End | Kind::Action => {}
        }
        Ok(())
    }

    /// An answer to an input screen, normalised, or `None` if it is not valid. A CHFID that
    /// fails the configured rule is still accepted when a member has it: the number is
    /// central data, which need not pass today's rule.
    fn validate(&self, v: &Validator, input: &str) -> Result<Option<String>, UssdError> {
        if let Some(ok) = v.check(input, &self.settings.chfid_rule) {
            return Ok(Some(ok));
        }
        match v.typed_chfid(input) {
            Some(c) if self.store.chfid_taken(c)? => Ok(Some(c.to_string())),
            _ => Ok(None),
        }
    }

    /// A variable of a text: the session's, or one the engine supplies
    /// ([`menu::CHFID_LENGTH`], the configured CHFID length).
    fn var(&self, s: &Session, name: &str) -> Option<String> {
        s.place.vars.get(name).cloned().or_else(|| {
            (name == menu::CHFID_LENGTH).then(|| self.settings.chfid_rule.length.to_string())
        })
    }

    /// A wrong answer (or an action outcome leading back here): count it, and after
    /// `max_tries` go to `on_exhausted` (or end).
    fn retry(&self, menus: &Menus, s: &mut Session, screen: &Screen, notice: Option<String>) {
        s.place.tries = s.place.tries.saturating_add(1);
        let max = screen.def.max_tries.unwrap_or(DEFAULT_MAX_TRIES);
        if s.place.tries < max {
            s.notice = notice;
            return;
        }
        match screen.def.on_exhausted.as_deref() {
            Some(t) if menus.screen(t).is_some() => {
                s.place.stack.push(s.place.screen.clone());
                s.place.screen = t.to_string();
                s.place.page = 0;
                s.place.tries = 0;
                s.notice = notice;
            }
            _ => s.place.screen = ERROR.into(),
        }
    }

    /// Moves to `target`, running any action screens on the way.
    async fn goto(
        &self,
        menus: &Menus,
        s: &mut Session,
        target: &str,
        now: DateTime<Utc>,
        gm: &Arc<GatewayMetrics>,
    ) -> Result<(), UssdError> {
        let from = s.place.screen.clone();
        if (from == HOME || from == FACILITY_HOME) && target != HOME {
            s.place.journey = Some(format!("{}:{}", s.id, s.last_hop));
        }
        let lang = s.lang;
        let mut target = target.to_string();
        let mut notice = None;
        for _ in 0..MAX_ACTION_CHAIN {
            let Some(screen) = menus.screen(&target) else {
                target = HOME.into();
                notice = Some(menus.text("menu_changed", lang).to_string());
                break;
            };
            match screen.def.kind {
                Kind::Action => {}
                Kind::Choice => {
                    let empty = screen
                        .def
                        .items
                        .as_ref()
                        .and_then(|i| s.place.lists.get(i))
                        .is_none_or(Vec::is_empty);
                    match (&screen.def.empty, empty) {
                        (Some(e), true) => {
                            target = e.clone();
                            continue;
                        }
                        _ => break,
                    }
                }
                _ => break,
            }
            match self.run_action(menus, s, screen, now, gm).await {
                ActionRun::Late => {
                    s.place.screen = HOLDING.into();
                    return Ok(());
                }
                ActionRun::Done(o) => {
                    s.place.vars.extend(o.vars.clone());
                    s.place.lists.extend(o.lists.clone());
                    if let Some(l) = o.lang {
                        s.lang = l;
                    }
                    let Some(t) = screen
                        .def
                        .on
                        .get(&o.name)
                        .or_else(|| screen.def.on.get("error"))
                    else {
                        tracing::warn!(screen = %screen.id, outcome = %o.name, "no transition for outcome");
                        s.place.screen = ERROR.into();
                        return Ok(());
                    };
                    notice = t
                        .notice()
                        .map(|k| menu::render(menus.text(k, s.lang), |n| self.var(s, n)));
                    target = t.screen().to_string();
                }
                ActionRun::Failed => match screen.def.on.get("error") {
                    Some(t) => target = t.screen().to_string(),
                    None => {
                        s.place.screen = ERROR.into();
                        return Ok(());
                    }
                },
            }
        }
        if target == from {
            if let Some(screen) = menus.screen(&from) {
                self.retry(menus, s, screen, notice);
            }
            return Ok(());
        }
        if target == HOME {
            s.place.stack.clear();
            s.place.journey = None;
        } else if let Some(pos) = s.place.stack.iter().position(|x| *x == target) {
            s.place.stack.truncate(pos);
        } else {
            s.place.stack.push(from);
        }
        s.place.screen = target;
        s.place.page = 0;
        s.place.tries = 0;
        s.notice = notice;
        Ok(())
    }

    fn pages(&self, menus: &Menus, s: &Session) -> Vec<String> {
        let Some(screen) = menus.screen(&s.place.screen) else {
            return Vec::new();
        };
        let items = list_labels(s, screen);
        let lines = menus.body_lines(
            screen,
            s.lang,
            s.notice.as_deref(),
            &|n| self.var(s, n),
            &items,
        );
        if screen.def.kind == Kind::End {
            return paginate(&lines, &Footer::default());
        }
        paginate(&lines, &menus.footer(screen, s.lang, &self.settings.keys))
    }

    pub(super) fn render(&self, menus: &Menus, s: &mut Session) -> Reply {
        let lang = s.lang;
        let with_notice = |s: &Session, text: &str| match &s.notice {
            Some(n) => format!("{n}\n{text}"),
            None => text.to_string(),
        };
        match s.place.screen.as_str() {
            RESUME => return Reply::con(with_notice(s, menus.text("resume", lang))),
            HOLDING => return Reply::end(menus.text("holding", lang)),
            ERROR => return Reply::end(menus.text("error", lang)),
            _ => {}
        }
        let Some(screen) = menus.screen(&s.place.screen) else {
            s.place = home();
            s.notice = Some(menus.text("menu_changed", lang).to_string());
            return self.render(menus, s);
        };
        let end = screen.def.kind == Kind::End;
        let pages = self.pages(menus, s);
        let page = usize::from(s.place.page).min(pages.len().saturating_sub(1));
        s.place.page = u16::try_from(page).unwrap_or(0);
        let text = pages.get(page).cloned().unwrap_or_default();
        if end {
            Reply::end(text)
        } else {
            Reply::con(text)
        }
    }
}

fn list_labels(s: &Session, screen: &Screen) -> Vec<String> {
    screen
        .def
        .items
        .as_ref()
        .and_then(|i| s.place.lists.get(i))
        .map(|l| l.iter().map(|(label, _)| label.clone()).collect())
        .unwrap_or_default()
}
