//! The officer SMS flow: MO commands posted to `POST /sms/inbound` (the HTTP aggregator path
//! into the same pipeline as SMPP deliver_sm). Each MO gets a fresh id; a configurable share
//! is redelivered with the same id, which must be absorbed (200, no second effect).

use std::sync::Arc;
use std::time::Instant;

use imis_gateway::domain::Chfid;
use rand::rngs::StdRng;
use rand::Rng;

use crate::report::Recorder;
use crate::ussd::kind_of;
use crate::Plan;

pub struct SmsFlow {
    pub client: reqwest::Client,
    pub url: String,
    pub plan: Arc<Plan>,
    pub rec: Arc<Recorder>,
}

impl crate::Flow for SmsFlow {
    async fn one(&self, worker: u64, n: u64, rng: &mut StdRng) {
        let p = &self.plan;
        let text = mo_text(p, rng.gen_range(0..p.families.max(1)));
        let id = format!("lt-mo-{}-{worker}-{n}-{}", p.run_tag, rng.gen::<u32>());
        let body = serde_json::json!({
            "from": p.officer_phone,
            "to": p.short_code,
            "text": text,
            "id": id,
        });
        let sends = if rng.gen_bool(p.duplicate.clamp(0.0, 1.0)) {
            2
        } else {
            1
        };
        for delivery in 0..sends {
            let t = Instant::now();
            let resp = match self
                .client
                .post(&self.url)
                .header("X-Gateway-Secret", crate::prepare::SMS_SECRET)
                .json(&body)
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => r,
                Ok(r) => {
                    self.rec.error(format!("http {}", r.status().as_u16()));
                    continue;
                }
                Err(e) => {
                    self.rec.error(kind_of(&e));
                    continue;
                }
            };
            let took = t.elapsed();
            // `{"status":"stored","duplicate":…}`: a redelivery must be recognised as one.
            match resp.json::<serde_json::Value>().await {
                Ok(v) if v["duplicate"].as_bool() == Some(delivery > 0) => self.rec.ok(took),
                Ok(v) if delivery > 0 => self.rec.error(format!("redelivery stored again: {v}")),
                Ok(v) => self
                    .rec
                    .error(format!("fresh MO taken for a duplicate: {v}")),
                Err(e) => self.rec.error(kind_of(&e)),
            }
        }
        self.rec
            .completed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The officer command of the `i`-th CHFID of the demo store (modulo `families`): the
/// scenario's `sms_text` with `{chfid}` filled in. Shared by the HTTP and SMPP flows.
pub fn mo_text(p: &Plan, i: u64) -> String {
    let base = crate::ussd::GENERATED_CHFID_BASE + (i % p.families.max(1)) as u32;
    let chfid = Chfid::from_base(base)
        .map(|c| c.to_string())
        .unwrap_or_default();
    p.sms_text.replace("{chfid}", &chfid)
}

/// Ways officers type the same command: keyword case, separators (the grammar splits on
/// spaces and `, ; * #`), a trailing dot or space. GSM-7 safe (no `|`, which is `ö`).
const CASES: usize = 3;
const SEPARATORS: [&str; 10] = [" ", "  ", ",", ", ", ";", "*", "#", " * ", "; ", " ,"];
const TAILS: [&str; 3] = ["", ".", " "];
/// Texts per CHFID.
pub const VARIANTS: u64 = (CASES * SEPARATORS.len() * TAILS.len()) as u64;

/// The `k`-th of `families × VARIANTS` distinct texts of the same command. The gateway
/// takes the same bytes from the same phone within `[smpp] mo_dedupe_secs` for an SMSC
/// redelivery (stored once, no second reply), so the SMPP flow never repeats a text soon.
pub fn mo_text_variant(p: &Plan, k: u64) -> String {
    let fam = p.families.max(1);
    let base = mo_text(p, k % fam);
    let v = ((k / fam) % VARIANTS) as usize;
    let case = v % CASES;
    let sep = SEPARATORS[(v / CASES) % SEPARATORS.len()];
    let tail = TAILS[(v / (CASES * SEPARATORS.len())) % TAILS.len()];
    let (kw, rest) = base.split_once(' ').unwrap_or((base.as_str(), ""));
    let kw = match case {
        0 => kw.to_uppercase(),
        1 => kw.to_lowercase(),
        _ => {
            let lower = kw.to_lowercase();
            let mut c = lower.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect())
                .unwrap_or_default()
        }
    };
    if rest.is_empty() {
        format!("{kw}{tail}")
    } else {
        format!("{kw}{sep}{rest}{tail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imis_gateway::officer::{parse, Command, Grammar};

    #[test]
    fn every_variant_is_a_distinct_text_of_the_same_officer_command() {
        let p = Plan {
            families: 7,
            ..Plan::default()
        };
        let grammar = Grammar::load(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../sms-templates/officer/commands.toml"),
        )
        .unwrap();
        let today = chrono::Utc::now().date_naive();
        let n = p.families * VARIANTS;
        let texts: std::collections::HashSet<String> =
            (0..n).map(|k| mo_text_variant(&p, k)).collect();
        assert_eq!(texts.len() as u64, n, "all distinct");
        assert_eq!(
            mo_text_variant(&p, n),
            mo_text_variant(&p, 0),
            "then it wraps"
        );
        for k in (0..n).step_by(5).chain([n - 1]) {
            let text = mo_text_variant(&p, k);
            let want = mo_text(&p, k % p.families);
            let chfid = want.split_once(' ').unwrap().1;
            match parse::parse(&grammar, &text, today) {
                Ok(Command::Status { chfid: got }) => {
                    assert_eq!(got.to_string(), chfid, "{text:?}")
                }
                other => panic!("{text:?} parsed as {other:?}"),
            }
        }
    }
}
