//! Shared by the tests/gepg_*.rs files: test keys made at test time (PKCS#12 files like the
//! ones GePG issues), signed GePG messages, an HTTP poster that checks our signed acks, and
//! stores seeded with payments waiting to be paid.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use chrono::{TimeZone, Utc};
use imis_gateway::domain::*;
use imis_gateway::payments::sign::{self, SigningKey, VerifyingKey};
use imis_gateway::payments::xml::{self, Ack, PmtSpInfo, PmtTrx};
use imis_gateway::store::{Store, TxResult};
use uuid::Uuid;

/// Our keystore and GePG's, written under a temporary directory.
pub struct TestKeys {
    pub dir: tempfile::TempDir,
    /// GePG's private key: the tests play GePG.
    pub gepg: SigningKey,
    /// Our public key: the tests check our acks with it.
    pub ours: VerifyingKey,
    pub ours_p12: PathBuf,
    pub gepg_p12: PathBuf,
}

impl TestKeys {
    pub fn new() -> TestKeys {
        let dir = tempfile::tempdir().unwrap();
        let (our_key, our_cert) = sign::generate_identity("imis-gateway-test").unwrap();
        let (gepg_key, gepg_cert) = sign::generate_identity("gepg-test").unwrap();
        let ours_p12 = dir.path().join("gepgclient.pfx");
        let gepg_p12 = dir.path().join("gepg.pfx");
        std::fs::write(
            &ours_p12,
            sign::p12_der(Some(&our_key), &our_cert, "passpass", "gepgclient").unwrap(),
        )
        .unwrap();
        // GePG's file for us would hold only its certificate; the simulator needs the key.
        std::fs::write(
            &gepg_p12,
            sign::p12_der(Some(&gepg_key), &gepg_cert, "gepg@2018", "gepg").unwrap(),
        )
        .unwrap();
        TestKeys {
            ours: SigningKey::from_pkey(our_key).verifying_key().unwrap(),
            gepg: SigningKey::from_pkey(gepg_key),
            dir,
            ours_p12,
            gepg_p12,
        }
    }

    /// Environment for `imis-gateway serve` using these keystores.
    pub fn env(&self) -> Vec<(String, String)> {
        let p = |x: &Path| x.display().to_string();
        vec![
            ("IMIS_GATEWAY_GEPG__KEY_P12".into(), p(&self.ours_p12)),
            ("IMIS_GATEWAY_GEPG__KEY_PASSWORD".into(), "passpass".into()),
            ("IMIS_GATEWAY_GEPG__GEPG_CERT_P12".into(), p(&self.gepg_p12)),
            (
                "IMIS_GATEWAY_GEPG__GEPG_CERT_PASSWORD".into(),
                "gepg@2018".into(),
            ),
            (
                "IMIS_GATEWAY_GEPG__SIMULATOR_KEY_P12".into(),
                p(&self.gepg_p12),
            ),
            (
                "IMIS_GATEWAY_GEPG__SIMULATOR_KEY_PASSWORD".into(),
                "gepg@2018".into(),
            ),
        ]
    }

    /// `<Gepg>inner<gepgSignature>…</gepgSignature></Gepg>` signed by GePG.
    pub fn signed(&self, inner: &str) -> Vec<u8> {
        self.gepg.envelope(inner).unwrap()
    }
}

pub fn env_refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// A payment notification for `control_number`.
pub fn payment_trx(trx_id: &str, control_number: &str, bill_id: &str, amount: i64) -> PmtTrx {
    PmtTrx {
        trx_id: trx_id.into(),
        sp_code: "SP111".into(),
        pay_ref_id: format!("PR{trx_id}"),
        bill_id: bill_id.into(),
        control_number: control_number.into(),
        bill_amt: Money::tzs(amount),
        paid_amt: Money::tzs(amount),
        pay_opt: "3".into(),
        ccy: "TZS".into(),
        trx_date: Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string(),
        channel: "MOBILE".into(),
        payer_phone: "255754000000".into(),
        payer_name: "Mwajuma Hassan".into(),
        payer_email: String::new(),
        psp_receipt: format!("MP{trx_id}"),
        psp_name: "M-PESA".into(),
        ctr_acc: "0150211612834".into(),
    }
}

pub fn notification_xml(trx: &PmtTrx) -> String {
    PmtSpInfo {
        payments: vec![trx.clone()],
    }
    .to_xml()
}

/// An HTTP client that checks our acks.
pub struct Poster {
    pub rt: tokio::runtime::Runtime,
    pub client: reqwest::Client,
    pub base: String,
}

impl Poster {
    pub fn new(base: String) -> Poster {
        Poster {
            rt: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(4)
                .enable_all()
                .build()
                .unwrap(),
            client: reqwest::Client::new(),
            base,
        }
    }

    /// POSTs `body`; (HTTP status, raw answer).
    pub fn post(&self, path: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
        self.rt
            .block_on(post_async(
                &self.client,
                &format!("{}{path}", self.base),
                body,
            ))
            .expect("request")
    }

    pub fn get(&self, path: &str) -> String {
        self.rt.block_on(async {
            self.client
                .get(format!("{}{path}", self.base))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        })
    }

    pub fn post_json(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        self.rt.block_on(async {
            let r = self
                .client
                .post(format!("{}{path}", self.base))
                .json(&body)
                .send()
                .await
                .unwrap();
            let s = r.status().as_u16();
            (s, r.json().await.unwrap_or(serde_json::Value::Null))
        })
    }
}

pub async fn post_async(
    client: &reqwest::Client,
    url: &str,
    body: Vec<u8>,
) -> Result<(u16, Vec<u8>), reqwest::Error> {
    let r = client
        .post(url)
        .header("Content-Type", "application/xml")
        .body(body)
        .send()
        .await?;
    let status = r.status().as_u16();
    Ok((status, r.bytes().await?.to_vec()))
}

/// The ack's name and codes, after checking our signature on it.
pub fn ack_of(keys: &TestKeys, raw: &[u8]) -> (String, String) {
    let s = xml::split_envelope(raw, 1 << 20)
        .unwrap_or_else(|e| panic!("ack {}: {e}", String::from_utf8_lossy(raw)));
    assert!(
        keys.ours.verify(s.inner, &s.signature),
        "our ack is not signed by us"
    );
    let ack = Ack::parse(&xml::parse(s.inner, 1 << 20).unwrap());
    (ack.name, ack.codes.join(";"))
}

/// One payment waiting to be paid.
#[derive(Debug, Clone)]
pub struct Waiting {
    pub payment: Id,
    pub policy: Id,
    pub control_number: String,
    pub phone: String,
}

/// Seeds an empty store with a product and `n` families, each with an Idle renewal of
/// 30,000 TZS and its payment intent with a control number `9977xxxxxxxx`.
pub fn seed_waiting(dir: &Path, n: usize) -> Vec<Waiting> {
    let store = Store::open(dir, Default::default()).unwrap();
    let start = Utc::now().date_naive();
    let product = Product {
        grace_period_renewal_months: 1,
        grace_period_payment_months: 3,
        lump_sum: Money::tzs(30_000),
        member_count: 6,
        threshold: 6,
        max_installments: 3,
        sp_code: Some("SP111".into()),
        ..Product::free(
            1,
            Uuid::new_v4(),
            "CHF01",
            "CHF iCHF",
            start - chrono::Duration::days(400),
            start + chrono::Duration::days(400),
        )
    };
    let mut out = Vec::new();
    store
        .write(|tx| -> TxResult<()> {
            tx.put_product(&product)?;
            Ok(())
        })
        .unwrap();
    for i in 0..n as u64 {
        let base = 1000 + i;
        let (family, head, policy, ip, payment) = (
            base * 10,
            base * 10 + 1,
            base * 10 + 2,
            base * 10 + 3,
            base * 10 + 4,
        );
        let cn = format!("9977{:08}", i);
        let phone = format!("2557541{:05}", i);
        store
            .write(|tx| -> TxResult<()> {
                tx.put_family(&Family {
                    id: family,
                    uuid: Uuid::new_v4(),
                    head,
                    village: 1,
                    poverty: false,
                    sms: SmsPreference::default(),
                })?;
                tx.put_insuree(&Insuree {
                    id: head,
                    uuid: Uuid::new_v4(),
                    chfid: Chfid::from_base(2_000_000 + i as u32).unwrap(),
                    family,
                    is_head: true,
                    last_name: "Hamisi".into(),
                    other_names: "Juma".into(),
                    dob: chrono::NaiveDate::from_ymd_opt(1985, 6, 1).unwrap(),
                    gender: Gender::Male,
                    relationship: None,
                    phone: Some(Msisdn::parse(&phone).unwrap()),
                    card_issued: false,
                })?;
                tx.put_policy(&Policy {
                    id: policy,
                    uuid: Uuid::new_v4(),
                    family,
                    product: 1,
                    officer: None,
                    stage: PolicyStage::Renewal,
                    status: PolicyStatus::Idle,
                    value: Money::tzs(30_000),
                    enroll_date: start,
                    start_date: start,
                    effective_date: None,
                    expiry_date: start + chrono::Duration::days(364),
                    self_renewed: true,
                })?;
                tx.put_insuree_policy(&InsureePolicy {
                    id: ip,
                    insuree: head,
                    policy,
                    enrollment_date: start,
                    start_date: start,
                    effective_date: None,
                    expiry_date: start + chrono::Duration::days(364),
                })?;
                let mut pay = Payment::intent(
                    payment,
                    Uuid::new_v4(),
                    PaymentDetail {
                        product_code: "CHF01".into(),
                        chfid: Chfid::from_base(2_000_000 + i as u32).unwrap(),
                        stage: PolicyStage::Renewal,
                        policy: Some(policy),
                        expected_amount: Money::tzs(30_000),
                        amount: None,
                        premium: None,
                    },
                    Some(Msisdn::parse(&phone).unwrap()),
                    Language::Sw,
                    Utc.with_ymd_and_hms(2024, 1, 1, 8, 0, 0).unwrap(),
                );
                pay.status = PaymentStatus::Assigned;
                pay.control_number = Some(cn.clone());
                tx.put_payment(&pay)?;
                tx.put_control_number(&ControlNumber {
                    id: base * 10 + 5,
                    number: cn.clone(),
                    status: ControlNumberStatus::Assigned,
                    payment: Some(payment),
                    product: Some(1),
                    requested_date: Utc::now(),
                    received_date: Some(Utc::now()),
                })?;
                Ok(())
            })
            .unwrap();
        out.push(Waiting {
            payment,
            policy,
            control_number: cn,
            phone,
        });
    }
    store.flush().unwrap();
    out
}

/// Every SMS queued in a stopped server's store (claims them: call once per store opening).
pub fn all_sms(store: &Store) -> Vec<imis_gateway::sms::OutboundSms> {
    store
        .claim(
            imis_gateway::sms::SMS_TOPIC,
            100_000,
            std::time::Duration::from_secs(3600),
            Utc::now(),
        )
        .unwrap()
        .iter()
        .map(|i| imis_gateway::sms::outbound::decode(&i.payload).unwrap())
        .collect()
}
