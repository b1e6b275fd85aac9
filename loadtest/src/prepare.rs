//! `loadtest prepare`: readies a stopped server's store and keys for the payment and SMPP
//! flows. It seeds the demo world if the store is empty, registers the loadtest officers
//! (`LT00000`…, phones `2557599xxxxx`, EO0001's villages and PIN), writes open bills (a
//! one-member family with an Idle renewal of 30,000 TZS, its payment intent and control
//! number `9988xxxxxxxx`, head's phone `2557588xxxxx`), and makes a throwaway GePG key
//! pair (`gepg.p12`, key and certificate) plus `server.env`, the environment that points
//! the server at that certificate and at the loadtest's SMSC.
//!
//! Must never: touch a store a server has open (sled locks it; `Store::open` fails), or
//! write bills twice (it refuses when the first control number exists). The key is made
//! here, at run time, for load tests only: nothing private is committed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{Duration, Utc};
use imis_gateway::demo::{self, DemoOptions};
use imis_gateway::domain::*;
use imis_gateway::payments::sign;
use imis_gateway::store::Store;
use uuid::Uuid;

use crate::gepg::{bill_control_number, bill_phone, BILL_TZS};
use crate::smsc::officer_phone;

/// Password of the generated `gepg.p12`.
pub const KEY_PASSWORD: &str = "loadtest";
/// Generated CHFIDs of the bills' families start here (the demo's start at 20,000,000).
const BILL_CHFID_BASE: u32 = 30_000_000;

#[derive(Debug, Clone, clap::Args)]
pub struct PrepareArgs {
    /// The server's store (stopped). Created and seeded with demo data if empty.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Where `gepg.p12` and `server.env` go (default: <data-dir>/../loadtest-keys).
    #[arg(long)]
    pub keys_dir: Option<PathBuf>,
    /// Generated demo families when the store is seeded here.
    #[arg(long, default_value_t = 200)]
    pub families: u64,
    /// Open bills to write (each payment of the run pays one).
    #[arg(long, default_value_t = 10_000)]
    pub bills: u64,
    /// Loadtest officers to register (one SMPP MO worker each).
    #[arg(long, default_value_t = 50)]
    pub officers: u64,
    /// The SMSC address written into server.env (the run's --smsc-listen).
    #[arg(long, default_value = "127.0.0.1:2775")]
    pub smsc_listen: SocketAddr,
}

pub fn run(a: &PrepareArgs) -> anyhow::Result<()> {
    let keys_dir = match &a.keys_dir {
        Some(k) => k.clone(),
        None => a
            .data_dir
            .parent()
            .unwrap_or(Path::new("."))
            .join("loadtest-keys"),
    };
    let store = Store::open(&a.data_dir, Default::default()).with_context(|| {
        format!(
            "opening the store {} (is a server running on it?)",
            a.data_dir.display()
        )
    })?;
    let options = DemoOptions {
        families: a.families,
        ..DemoOptions::default()
    };
    if let Some(summary) = demo::seed_if_empty(&store, &options)? {
        eprintln!("demo data seeded: {summary}");
    }
    let demo_officer = store
        .officer_by_code(demo::DEMO_OFFICER_CODE)?
        .context("the store has no demo officer EO0001: prepare needs the demo world")?;
    let product = store
        .product_by_code("CHF01")?
        .context("the store has no product CHF01")?;
    let village = *demo_officer
        .villages
        .first()
        .context("EO0001 has no village")?;

    let mut new_officers = Vec::new();
    for i in 0..a.officers {
        let code = format!("LT{i:05}");
        if store.officer_by_code(&code)?.is_none() {
            new_officers.push((i, code));
        }
    }
    if a.bills > 0
        && store
            .payment_by_control_number(&bill_control_number(0))?
            .is_some()
    {
        anyhow::bail!(
            "{} already has loadtest bills; prepare a fresh --data-dir (paid bills cannot be paid again)",
            a.data_dir.display()
        );
    }
    let now = Utc::now();
    let today = demo::today_eat();
    let written = store.bulk(|bulk| -> anyhow::Result<u64> {
        for (i, code) in &new_officers {
            bulk.put_officer(&Officer {
                id: bulk.next_id()?,
                uuid: Uuid::new_v4(),
                code: code.clone(),
                last_name: "Loadtest".into(),
                other_names: format!("Officer {i}"),
                phone: Some(Msisdn::parse(&officer_phone(*i))?),
                district: demo_officer.district,
                villages: demo_officer.villages.clone(),
                substitute: None,
                works_to: None,
                phone_communication: true,
                language: Language::En,
                pin_hash: demo_officer.pin_hash.clone(),
            })?;
        }
        for i in 0..a.bills {
            let (family, head, policy) = (bulk.next_id()?, bulk.next_id()?, bulk.next_id()?);
            let chfid =
                Chfid::from_base(BILL_CHFID_BASE + i as u32).context("bill CHFIDs exhausted")?;
            let phone = Msisdn::parse(&bill_phone(i))?;
            let amount = Money::tzs(BILL_TZS);
            let expiry = today + Duration::days(364);
            bulk.put_family(&Family::new(family, head, village, Language::Sw))?;
            bulk.put_insuree(&Insuree {
                id: head,
                uuid: Uuid::new_v4(),
                chfid,
                family,
                is_head: true,
                last_name: "Mzigo".into(),
                other_names: format!("Mlipaji {i}"),
                dob: today - Duration::days(35 * 365),
                gender: Gender::Female,
                relationship: None,
                phone: Some(phone.clone()),
                card_issued: false,
            })?;
            bulk.put_policy(&Policy {
                id: policy,
                uuid: Uuid::new_v4(),
                family,
                product: product.id,
                officer: Some(demo_officer.id),
                stage: PolicyStage::Renewal,
                status: PolicyStatus::Idle,
                value: amount,
                enroll_date: today,
                start_date: today,
                effective_date: None,
                expiry_date: expiry,
                self_renewed: true,
            })?;
            bulk.put_insuree_policy(&InsureePolicy {
                id: bulk.next_id()?,
                insuree: head,
                policy,
                enrollment_date: today,
                start_date: today,
                effective_date: None,
                expiry_date: expiry,
            })?;
            let line = PaymentDetail {
                product_code: product.code.clone(),
                chfid,
                stage: PolicyStage::Renewal,
                policy: Some(policy),
                expected_amount: amount,
                amount: None,
                premium: None,
            };
            let mut payment = Payment::intent(
                bulk.next_id()?,
                Uuid::new_v4(),
                line,
                Some(phone),
                Language::Sw,
                now,
            );
            let number = bill_control_number(i);
            payment.status = PaymentStatus::Assigned;
            payment.control_number = Some(number.clone());
            bulk.put_payment(&payment)?;
            bulk.put_control_number(&ControlNumber {
                id: bulk.next_id()?,
                number,
                status: ControlNumberStatus::Assigned,
                payment: Some(payment.id),
                product: Some(product.id),
                requested_date: now,
                received_date: Some(now),
            })?;
        }
        Ok(bulk.records())
    })??;
    store.flush()?;
    drop(store);
    eprintln!(
        "{} officers and {} bills written ({written} records) to {}",
        new_officers.len(),
        a.bills,
        a.data_dir.display()
    );
    let env = write_keys(&keys_dir, a.smsc_listen)?;
    println!("{}", env.display());
    Ok(())
}

/// Writes `gepg.p12` (kept if present: a server may already use it) and `server.env`.
fn write_keys(dir: &Path, smsc: SocketAddr) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = dir.canonicalize()?;
    let p12 = dir.join("gepg.p12");
    if !p12.exists() {
        let (key, cert) = sign::generate_identity("gepg-loadtest")?;
        std::fs::write(
            &p12,
            sign::p12_der(Some(&key), &cert, KEY_PASSWORD, "gepg")?,
        )
        .with_context(|| format!("writing {}", p12.display()))?;
    }
    let env = dir.join("server.env");
    std::fs::write(&env, server_env(&p12, smsc))
        .with_context(|| format!("writing {}", env.display()))?;
    Ok(env)
}

/// The inbound-SMS secret `server.env` gives the gateway and the SMS flow sends
/// (`X-Gateway-Secret`).
pub const SMS_SECRET: &str = "loadtest-aggregator-secret";

/// The server's environment for a load test: GePG's certificate is ours, the SMSC is the
/// loadtest's, the contracted TPS is no limit, reconnects are quick (the loadtest's SMSC
/// may start after the server), the daily jobs are off (their SMS would be noise), and so
/// is the per-phone MO limit (a few officer phones stand in for thousands of officers; the
/// USSD limit stays on: every session has its own random phone).
pub fn server_env(p12: &Path, smsc: SocketAddr) -> String {
    let p = p12.display();
    format!(
        "IMIS_GATEWAY_GEPG__MODE=simulator\n\
         IMIS_GATEWAY_INBOUND_SMS__SCHEME=header\n\
         IMIS_GATEWAY_INBOUND_SMS__SECRET={SMS_SECRET}\n\
         IMIS_GATEWAY_GEPG__GEPG_CERT_P12={p}\n\
         IMIS_GATEWAY_GEPG__GEPG_CERT_PASSWORD={KEY_PASSWORD}\n\
         IMIS_GATEWAY_GEPG__SIMULATOR_KEY_P12={p}\n\
         IMIS_GATEWAY_GEPG__SIMULATOR_KEY_PASSWORD={KEY_PASSWORD}\n\
         IMIS_GATEWAY_SMPP__ENABLED=true\n\
         IMIS_GATEWAY_SMPP__HOST={}\n\
         IMIS_GATEWAY_SMPP__PORT={}\n\
         IMIS_GATEWAY_SMPP__TPS=100000\n\
         IMIS_GATEWAY_SMPP__RECONNECT_MAX_MS=1000\n\
         IMIS_GATEWAY_SCHEDULER__ENABLED=false\n\
         IMIS_GATEWAY_LIMITS__SMS_MO_PER_HOUR=0\n",
        smsc.ip(),
        smsc.port()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_env_points_the_gateway_at_our_certificate_and_smsc() {
        let env = server_env(Path::new("/k/gepg.p12"), "127.0.0.1:2999".parse().unwrap());
        for line in [
            "IMIS_GATEWAY_GEPG__GEPG_CERT_P12=/k/gepg.p12",
            "IMIS_GATEWAY_SMPP__ENABLED=true",
            "IMIS_GATEWAY_SMPP__HOST=127.0.0.1",
            "IMIS_GATEWAY_SMPP__PORT=2999",
        ] {
            assert!(env.lines().any(|l| l == line), "{line} missing:\n{env}");
        }
        assert!(env
            .lines()
            .all(|l| l.starts_with("IMIS_GATEWAY_") && l.contains('=')));
    }

    #[test]
    fn prepare_writes_officers_bills_and_a_key_the_payments_verify_with() {
        let dir = tempfile::tempdir().unwrap();
        let a = PrepareArgs {
            data_dir: dir.path().join("data"),
            keys_dir: Some(dir.path().join("keys")),
            families: 5,
            bills: 3,
            officers: 2,
            smsc_listen: "127.0.0.1:2775".parse().unwrap(),
        };
        run(&a).unwrap();
        let store = Store::open(&a.data_dir, Default::default()).unwrap();
        let officer = store
            .officer_by_phone(&Msisdn::parse(&officer_phone(1)).unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(officer.code, "LT00001");
        assert!(officer.pin_hash.is_some());
        let pay = store
            .payment_by_control_number(&bill_control_number(2))
            .unwrap()
            .unwrap();
        assert_eq!(pay.expected_amount, Money::tzs(BILL_TZS));
        assert_eq!(pay.status, PaymentStatus::Assigned);
        assert!(store
            .payment_by_control_number(&bill_control_number(3))
            .unwrap()
            .is_none());
        drop(store);
        let key = crate::gepg::load_key(&dir.path().join("keys/gepg.p12"), KEY_PASSWORD).unwrap();
        let verifier =
            sign::load_verifying_key(&dir.path().join("keys/gepg.p12"), KEY_PASSWORD).unwrap();
        assert!(verifier.verify(b"x", &key.sign(b"x").unwrap()));
        // A second prepare on the same store refuses to write the bills again.
        let again = run(&a).unwrap_err().to_string();
        assert!(again.contains("already has loadtest bills"), "{again}");
    }
}
