//! The USSD flow: member sessions through the Africa's Talking adapter, with think time,
//! abandonment and duplicate hops (an aggregator re-sending the same hop).

use std::sync::Arc;
use std::time::{Duration, Instant};

use imis_gateway::domain::Chfid;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::report::Recorder;
use crate::Plan;

/// Generated demo CHFIDs start here (src/demo.rs).
pub const GENERATED_CHFID_BASE: u32 = 20_000_000;

pub struct UssdFlow {
    pub client: reqwest::Client,
    pub url: String,
    pub plan: Arc<Plan>,
    pub rec: Arc<Recorder>,
}

impl crate::Flow for UssdFlow {
    /// One coverage journey: dial, 1 (coverage), 1 (by CHFID), the CHFID, 2 (finish).
    async fn one(&self, worker: u64, n: u64, rng: &mut StdRng) {
        let p = &self.plan;
        let session = format!("lt-{}-{worker}-{n}-{}", p.run_tag, rng.gen::<u32>());
        let phone = format!("2557{:08}", rng.gen_range(10_000_000..99_999_999u32));
        let base = GENERATED_CHFID_BASE + rng.gen_range(0..p.families.max(1) as u32);
        let chfid = Chfid::from_base(base)
            .map(|c| c.to_string())
            .unwrap_or_default();
        let path = [
            String::new(),
            "1".into(),
            "1*1".into(),
            format!("1*1*{chfid}"),
            format!("1*1*{chfid}*2"),
        ];
        let abandon_at = rng
            .gen_bool(p.abandon.clamp(0.0, 1.0))
            .then(|| rng.gen_range(1..path.len()));
        for (i, text) in path.iter().enumerate() {
            if abandon_at == Some(i) {
                return; // the member walks away; the server's TTL ends the session
            }
            if i > 0 && p.think_ms > 0 {
                tokio::time::sleep(Duration::from_millis(rng.gen_range(0..=p.think_ms * 2))).await;
            }
            let Some(first) = self.hop(&session, &phone, text).await else {
                return;
            };
            if i == 3
                && ![" A\n", " I\n", " E\n", " S\n"]
                    .iter()
                    .any(|l| first.contains(l))
            {
                self.rec.error("coverage without a member status");
            }
            if rng.gen_bool(p.duplicate.clamp(0.0, 1.0)) {
                // The same hop again must get the same screen (hop idempotency).
                match self.hop(&session, &phone, text).await {
                    Some(again) if again == first => {}
                    Some(_) => self.rec.error("duplicate hop got a different screen"),
                    None => return,
                }
            }
        }
        self.rec
            .completed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl UssdFlow {
    async fn hop(&self, session: &str, phone: &str, text: &str) -> Option<String> {
        let form = [
            ("sessionId", session),
            ("serviceCode", "*152*00#"),
            ("phoneNumber", phone),
            ("networkCode", "64002"),
            ("text", text),
        ];
        let t = Instant::now();
        let resp = match self.client.post(&self.url).form(&form).send().await {
            Ok(r) => r,
            Err(e) => {
                self.rec.error(kind_of(&e));
                return None;
            }
        };
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            self.rec.error(format!("http {}", status.as_u16()));
            return None;
        }
        if !(body.starts_with("CON ") || body.starts_with("END ")) {
            self.rec.error("reply without CON/END");
            return None;
        }
        self.rec.ok(t.elapsed());
        Some(body)
    }
}

pub fn kind_of(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connect".into()
    } else {
        "transport".into()
    }
}

pub fn rng_for(worker: u64, seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed ^ worker.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}
