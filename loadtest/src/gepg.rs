//! The GePG flow: signed payment notifications (`gepgPmtSpInfo`) for the open bills that
//! `loadtest prepare` wrote, POSTed to the gateway's callback `POST /gepg/payment`, each
//! bill paid once in full; a configurable share is delivered again (same signed bytes),
//! which must also get `7101` and no second effect.
//!
//! We play GePG, so we sign with GePG's private key: the PKCS#12 file `prepare` wrote,
//! which the server loads as `[gepg] gepg_cert_p12` (to verify) and `simulator_key_p12`.
//! "Applied once" is checked on the server's own counters (`GET /payments/metrics`): the
//! payments applied during the run must equal the first deliveries acknowledged, and the
//! redeliveries its duplicate count.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use imis_gateway::domain::Money;
use imis_gateway::payments::sign::{self, SigningKey};
use imis_gateway::payments::xml::{self, Ack, PmtSpInfo, PmtTrx};
use rand::rngs::StdRng;
use rand::Rng;

use crate::report::Recorder;
use crate::ussd::kind_of;
use crate::Plan;

/// Control numbers of the bills `prepare` writes: `9988` and the bill's index.
pub fn bill_control_number(i: u64) -> String {
    format!("9988{:08}", i % 100_000_000)
}

/// Phone of the family head of bill `i` (payer and confirmation SMS).
pub fn bill_phone(i: u64) -> String {
    format!("2557588{:05}", i % 100_000)
}

/// Every bill's amount, TZS: CHF01's lump sum for a one-member family.
pub const BILL_TZS: i64 = 30_000;

pub fn load_key(path: &Path, password: &str) -> anyhow::Result<SigningKey> {
    sign::load_signing_key(path, password)
        .map_err(|e| anyhow::anyhow!("GePG signing key {}: {e}", path.display()))
}

pub struct GepgFlow {
    pub client: reqwest::Client,
    pub url: String,
    pub plan: Arc<Plan>,
    pub rec: Arc<Recorder>,
    pub key: SigningKey,
    pub next_bill: AtomicU64,
    /// First deliveries and redeliveries acknowledged 7101.
    pub acked_first: AtomicU64,
    pub acked_again: AtomicU64,
}

impl crate::Flow for GepgFlow {
    /// Pays the next open bill (and maybe delivers the notification again).
    async fn one(&self, _worker: u64, _n: u64, rng: &mut StdRng) {
        let p = &self.plan;
        let bill = p.gepg_bill_offset + self.next_bill.fetch_add(1, Ordering::Relaxed);
        if bill >= p.gepg_bills {
            self.rec
                .error("no open bill left (prepare more with --bills)");
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            return;
        }
        let inner = PmtSpInfo {
            payments: vec![notification(p, bill)],
        }
        .to_xml();
        let key = self.key.clone();
        let body = match tokio::task::spawn_blocking(move || key.envelope(&inner)).await {
            Ok(Ok(b)) => b,
            _ => {
                self.rec.error("signing failed");
                return;
            }
        };
        let again = rng.gen_bool(p.gepg_duplicate.clamp(0.0, 1.0));
        for delivery in 0..if again { 2 } else { 1 } {
            let t = Instant::now();
            let resp = self
                .client
                .post(&self.url)
                .header("Content-Type", "application/xml")
                .body(body.clone())
                .send()
                .await;
            let (status, raw) = match resp {
                Ok(r) => {
                    let status = r.status().as_u16();
                    match r.bytes().await {
                        Ok(b) => (status, b),
                        Err(e) => {
                            self.rec.error(kind_of(&e));
                            return;
                        }
                    }
                }
                Err(e) => {
                    self.rec.error(kind_of(&e));
                    return;
                }
            };
            let took = t.elapsed();
            match ack_code(&raw) {
                Some(code) if code == "7101" && status == 200 => {
                    self.rec.ok(took);
                    if delivery == 0 {
                        self.acked_first.fetch_add(1, Ordering::Relaxed);
                    } else {
                        self.acked_again.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Some(code) => self.rec.error(format!("ack {code} (http {status})")),
                None => self.rec.error(format!("http {status} without an ack")),
            }
        }
        self.rec.completed.fetch_add(1, Ordering::Relaxed);
    }
}

/// The notification that pays bill `bill` in full.
pub fn notification(p: &Plan, bill: u64) -> PmtTrx {
    let run_tag = &p.run_tag;
    let amount = Money::tzs(BILL_TZS);
    let now_eat = (chrono::Utc::now() + chrono::Duration::hours(3)).naive_utc();
    PmtTrx {
        trx_id: format!("LT{run_tag}{bill:08}"),
        sp_code: p.gepg_sp_code.clone(),
        pay_ref_id: format!("LTPR{run_tag}{bill:08}"),
        bill_id: String::new(),
        control_number: bill_control_number(bill),
        bill_amt: amount,
        paid_amt: amount,
        pay_opt: "3".into(),
        ccy: "TZS".into(),
        trx_date: xml::format_timestamp(now_eat),
        channel: "MOBILE".into(),
        payer_phone: bill_phone(bill),
        payer_name: "Loadtest Payer".into(),
        payer_email: String::new(),
        psp_receipt: format!("LTMP{run_tag}{bill:08}"),
        psp_name: "M-PESA".into(),
        ctr_acc: "0150211612834".into(),
    }
}

/// The first status code of a `<Gepg><…Ack>…</…Ack><gepgSignature/></Gepg>` answer.
pub fn ack_code(raw: &[u8]) -> Option<String> {
    let s = xml::split_envelope(raw, 1 << 20).ok()?;
    let el = xml::parse(s.inner, 1 << 20).ok()?;
    Ack::parse(&el).codes.into_iter().next()
}

/// The server's payment counters (`GET /payments/metrics`, Prometheus text).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub applied: u64,
    pub duplicates: u64,
    pub conflicts: u64,
    pub unmatched: u64,
    pub bad_signature: u64,
}

impl Counters {
    pub fn parse(text: &str) -> Counters {
        let mut c = Counters::default();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let mut it = line.split_whitespace();
            let (Some(name), Some(v)) = (it.next(), it.next().and_then(|v| v.parse().ok())) else {
                continue;
            };
            match name {
                "gepg_payments_applied_total" => c.applied = v,
                "gepg_payments_duplicate_total" => c.duplicates = v,
                "gepg_payments_conflict_total" => c.conflicts = v,
                "gepg_payments_unmatched_total" => c.unmatched = v,
                "gepg_bad_signature_total" => c.bad_signature = v,
                _ => {}
            }
        }
        c
    }

    pub async fn fetch(client: &reqwest::Client, target: &str) -> anyhow::Result<Counters> {
        let text = client
            .get(format!("{target}/payments/metrics"))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        Ok(Counters::parse(&text))
    }

    /// What the server did during the run against what we had acknowledged: the errors.
    pub fn check(before: Counters, after: Counters, first: u64, again: u64) -> Vec<String> {
        let d = |a: u64, b: u64| a.saturating_sub(b);
        let mut out = Vec::new();
        let applied = d(after.applied, before.applied);
        if applied != first {
            out.push(format!(
                "server applied {applied} payments for {first} acknowledged"
            ));
        }
        let dups = d(after.duplicates, before.duplicates);
        if dups != again {
            out.push(format!("server saw {dups} redeliveries for {again} sent"));
        }
        for (what, n) in [
            ("conflicts", d(after.conflicts, before.conflicts)),
            ("unmatched payments", d(after.unmatched, before.unmatched)),
            (
                "bad signatures",
                d(after.bad_signature, before.bad_signature),
            ),
        ] {
            if n > 0 {
                out.push(format!("server counted {n} {what}"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notification_pays_its_bill_in_full_and_is_signed_over_its_exact_bytes() {
        let p = Plan {
            run_tag: "x1".into(),
            ..Plan::default()
        };
        let trx = notification(&p, 42);
        assert_eq!(trx.control_number, "998800000042");
        assert_eq!(trx.paid_amt, Money::tzs(BILL_TZS));
        assert_eq!(trx.trx_id, "LTx100000042");
        assert_eq!(trx.payer_phone, "255758800042");
        let (key, cert) = sign::generate_identity("gepg-lt").unwrap();
        let key = SigningKey::from_pkey(key);
        let inner = PmtSpInfo {
            payments: vec![trx.clone()],
        }
        .to_xml();
        let body = key.envelope(&inner).unwrap();
        let s = xml::split_envelope(&body, 1 << 20).unwrap();
        assert_eq!(s.name, PmtSpInfo::NAME);
        let verifier = sign::VerifyingKey::from_cert(&cert).unwrap();
        assert!(verifier.verify(s.inner, &s.signature));
        let back = PmtSpInfo::parse(&xml::parse(s.inner, 1 << 20).unwrap()).unwrap();
        assert_eq!(back.payments, vec![trx]);
    }

    #[test]
    fn ack_codes_are_read_from_the_envelope() {
        let (key, _) = sign::generate_identity("ours").unwrap();
        let key = SigningKey::from_pkey(key);
        let ack = key
            .envelope(&Ack::to_xml("gepgPmtSpInfoAck", "7101"))
            .unwrap();
        assert_eq!(ack_code(&ack).as_deref(), Some("7101"));
        assert_eq!(ack_code(b"not xml"), None);
        assert_eq!(ack_code(b""), None);
    }

    #[test]
    fn applied_once_is_checked_against_the_servers_counters() {
        let text =
            "# HELP gepg_payments_applied_total x\n# TYPE gepg_payments_applied_total counter\n\
                    gepg_payments_applied_total 12\ngepg_payments_duplicate_total 3\n\
                    gepg_payments_conflict_total 0\ngepg_payments_unmatched_total 1\n\
                    gepg_bad_signature_total 0\n";
        let after = Counters::parse(text);
        assert_eq!(
            after,
            Counters {
                applied: 12,
                duplicates: 3,
                conflicts: 0,
                unmatched: 1,
                bad_signature: 0
            }
        );
        let before = Counters {
            applied: 2,
            unmatched: 1,
            ..Counters::default()
        };
        assert!(Counters::check(before, after, 10, 3).is_empty());
        let errs = Counters::check(before, after, 9, 4);
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].contains("applied 10 payments for 9"), "{errs:?}");
        let errs = Counters::check(Counters::default(), after, 12, 3);
        assert_eq!(
            errs,
            vec!["server counted 1 unmatched payments".to_string()]
        );
    }
}
