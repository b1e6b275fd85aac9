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

impl SmsFlow {
    pub async fn one(&self, worker: u64, n: u64, rng: &mut StdRng) {
        let p = &self.plan;
        let base = 20_000_000 + rng.gen_range(0..p.families.max(1) as u32);
        let chfid = Chfid::from_base(base)
            .map(|c| format!("{:09}", c.value()))
            .unwrap_or_default();
        let text = p.sms_text.replace("{chfid}", &chfid);
        let id = format!("lt-mo-{worker}-{n}-{}", rng.gen::<u32>());
        let body = serde_json::json!({
            "from": p.officer_phone,
            "to": "15200",
            "text": text,
            "id": id,
        });
        let sends = if rng.gen_bool(p.duplicate.clamp(0.0, 1.0)) {
            2
        } else {
            1
        };
        for _ in 0..sends {
            let t = Instant::now();
            match self.client.post(&self.url).json(&body).send().await {
                Ok(r) if r.status().is_success() => self.rec.ok(t.elapsed()),
                Ok(r) => self.rec.error(format!("http {}", r.status().as_u16())),
                Err(e) => self.rec.error(kind_of(&e)),
            }
        }
        self.rec
            .completed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}
