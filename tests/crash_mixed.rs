//! The crash test: the real server under mixed load, killed with -9 at random moments and
//! restarted on the same data directory, `CRASH_ROUNDS` times (default 5; `CRASH_SEED` replays
//! a run, the seed is printed). Load, from threads, against real peers:
//! - USSD renewals over the HTTP adapters (Africa's Talking and JSON): acknowledged when the
//!   screen with the control number came back;
//! - officer SMS commands (REG NEW, ADD NEW, RENEW, STATUS) as MO deliver_sm from the SMSC
//!   peer (npm `smpp`): acknowledged when the server answered deliver_sm_resp 0; an MO never
//!   acknowledged is delivered again by the peer in a later run, as an SMSC does;
//! - signed GePG payment notifications for every control number obtained, some twice at
//!   once: acknowledged by HTTP 200 with a signed ack 7101; GePG redelivers what it has no
//!   7101 for.
//!
//! After each kill, every acknowledged payment and control number must already be on disk.
//! After the last run the server drains (SMS to the SMSC, mirror to PostgreSQL with the
//! openIMIS schema) and every invariant is checked, each violation naming its id:
//! - an acknowledged MO ran exactly once (one audit entry) and its reply reached the SMSC;
//! - an acknowledged enrolment (REG, ADD) is one family / insuree in the store and one in
//!   PostgreSQL;
//! - a control number shown on a USSD screen has one payment intent in both, and its SMS;
//! - an acknowledged payment is applied once (one premium, payment matched for the amount
//!   paid, policy active) in both, with its confirmation SMS;
//! - no SMS reached the SMSC more than 1 + kills times, and duplicated SMS in all are at most
//!   kills × window × binds (the MT drain's bound, src/smpp/mt.rs);
//! - no outbox topic has anything pending or dead, and `mirror verify` finds no difference.
//!
//! `scripts/crashtest` runs it in release with more rounds and prints the summary line.

mod common;
mod gepg_support;
mod smsc;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::pg::Pg;
use common::ussd::{self, control_number_in};
use common::Server;
use gepg_support::{ack_of, notification_xml, payment_trx, post_async, TestKeys};
use imis_gateway::demo::{self, DemoOptions};
use imis_gateway::domain::*;
use imis_gateway::officer::audit;
use imis_gateway::payments::notify;
use imis_gateway::store::{Store, StoreOptions, TxResult, MIRROR_TOPIC};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use smsc::Smsc;
use uuid::Uuid;

/// The demo officer (Kiswahili, PIN 1234, villages of Kongwa).
const EO1: &str = "255754000001";
/// SMPP window and binds of the server under test: a kill re-sends at most their product.
const WINDOW: usize = 10;
const BINDS: usize = 1;
const SP_CODE: &str = "SP111";

// ------------------------------------------------------------------------------ seeding

/// A seeded family: its head's CHFID and phone.
#[derive(Debug, Clone)]
struct Fam {
    chfid: String,
    phone: String,
}

struct Seeded {
    /// Expired CHF01 policy: renewed by USSD from the head's phone.
    ussd: Vec<Fam>,
    /// Expired CHF01 policy in EO0001's village: renewed by the officer (RENEW).
    renew: Vec<Fam>,
    /// Active CHF01 policy, one member: the officer adds one (ADD).
    add: Vec<Fam>,
}

/// What the central database (the real openIMIS schema) already holds, imported as a
/// gateway starts (the real scripts ship four sample locations), then the demo data
/// (officers, products, villages, 200 generated families) plus families for each flow of the
/// load, written before the first start.
fn seed_store(dir: &Path, rounds: usize, pg: &Pg) -> Seeded {
    let store = Store::open(dir, StoreOptions::default()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = imis_gateway::mirror::connect(&pg.dsn()).await.unwrap();
        imis_gateway::mirror::pull::import(&c, &store, |_, _| {})
            .await
            .unwrap();
    });
    demo::seed_if_empty(&store, &DemoOptions::default()).unwrap();
    let mut next_chfid = 30_000_000u32;
    let mut make = |count: usize, phones: &str, active: bool| -> Vec<Fam> {
        (0..count)
            .map(|i| {
                let phone = format!("{phones}{i:05}");
                let chfid = Chfid::from_base(next_chfid).unwrap();
                next_chfid += 1;
                seed_family(&store, chfid, &phone, active);
                Fam {
                    chfid: chfid.to_string(),
                    phone,
                }
            })
            .collect()
    };
    let seeded = Seeded {
        ussd: make(rounds * 40 + 20, "2557560", false),
        renew: make(rounds * 3 + 6, "2557570", false),
        add: make(rounds * 3 + 6, "2557580", true),
    };
    store.flush().unwrap();
    seeded
}

fn seed_family(store: &Store, chfid: Chfid, phone: &str, active: bool) {
    let today = demo::today_eat();
    let product = store.product_by_code("CHF01").unwrap().expect("CHF01");
    let village = store.location_by_code("V0111").unwrap().expect("V0111").id;
    let officer = store.officer_by_code("EO0001").unwrap().map(|o| o.id);
    let ids: Vec<Id> = (0..4).map(|_| store.next_id().unwrap()).collect();
    let (family, head, policy, ip) = (ids[0], ids[1], ids[2], ids[3]);
    // Expired ten days ago (within the renewal grace), or active for most of a year.
    let (enroll, status) = if active {
        (today - chrono::Duration::days(100), PolicyStatus::Active)
    } else {
        (today - chrono::Duration::days(374), PolicyStatus::Expired)
    };
    let expiry = enroll + chrono::Duration::days(364);
    store
        .write(|tx| -> TxResult<()> {
            tx.put_family(&common::seed::family(family, head, village))?;
            tx.put_insuree(&Insuree {
                id: head,
                uuid: Uuid::new_v4(),
                chfid,
                family,
                is_head: true,
                last_name: "Kombo".into(),
                other_names: "Rehema".into(),
                dob: chrono::NaiveDate::from_ymd_opt(1984, 4, 2).unwrap(),
                gender: Gender::Female,
                relationship: None,
                phone: Some(Msisdn::parse(phone).unwrap()),
                card_issued: false,
            })?;
            tx.put_policy(&Policy {
                id: policy,
                uuid: Uuid::new_v4(),
                family,
                product: product.id,
                officer,
                stage: PolicyStage::New,
                status,
                value: Money::tzs(30_000),
                enroll_date: enroll,
                start_date: enroll,
                effective_date: Some(enroll),
                expiry_date: expiry,
                self_renewed: false,
            })?;
            tx.put_insuree_policy(&InsureePolicy {
                id: ip,
                insuree: head,
                policy,
                enrollment_date: enroll,
                start_date: enroll,
                effective_date: Some(enroll),
                expiry_date: expiry,
            })?;
            Ok(())
        })
        .unwrap();
}

// ------------------------------------------------------------------------------ ledger

/// What the load did and what the server acknowledged, shared by the load threads.
#[derive(Default)]
struct Ledger {
    next_ussd: usize,
    /// USSD families whose journey was cut (a kill): tried again until acknowledged.
    ussd_retry: Vec<usize>,
    /// Acknowledged USSD renewals by family CHFID.
    ussd: BTreeMap<String, Renewal>,
    /// Control numbers to pay, from USSD screens and officer replies.
    bills: BTreeMap<String, Bill>,
    mos: Vec<MoRec>,
    next_reg: usize,
    next_renew: usize,
    next_add: usize,
    next_status: usize,
    violations: Vec<String>,
    ussd_journeys: u64,
    payment_posts: u64,
    /// 503 answers to payment notifications (try again later).
    payment_retry_later: u64,
}

#[derive(Debug, Clone)]
struct Renewal {
    cn: String,
    phone: String,
}

#[derive(Debug, Clone)]
struct Bill {
    amount: i64,
    /// Where the number came from, for messages.
    from: String,
    /// 7101 answers received.
    acked: u32,
    /// The run in which it was last delivered (GePG delivers again in a later run).
    last_run: Option<usize>,
}

impl Bill {
    fn trx(cn: &str) -> String {
        format!("CR{cn}")
    }

    /// The PSP receipt `payment_trx` puts in the notification; the confirmation SMS quotes it.
    fn receipt(cn: &str) -> String {
        format!("MP{}", Bill::trx(cn))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Reg,
    Add,
    Renew,
    Status,
}

#[derive(Debug, Clone)]
struct MoRec {
    kind: Kind,
    text: String,
    /// What identifies this command's reply and its effect: the new insuree's last name
    /// (REG, ADD) or the family's CHFID (RENEW, STATUS).
    token: String,
    /// REG: the new head's phone, which gets its own SMS.
    head_phone: Option<String>,
    /// The peer's ids of every delivery of this MO.
    ids: Vec<u64>,
    acked: bool,
    last_run: usize,
}

/// A name made of letters only (officer names reject digits): 0 → "aaa", 1 → "aab"...
fn letters(mut n: usize) -> String {
    let mut s = Vec::new();
    for _ in 0..3 {
        s.push(b'a' + (n % 26) as u8);
        n /= 26;
    }
    while n > 0 {
        s.push(b'a' + (n % 26) as u8);
        n /= 26;
    }
    s.reverse();
    String::from_utf8(s).unwrap()
}

fn contains_ci(hay: &str, needle: &str) -> bool {
    hay.to_lowercase().contains(&needle.to_lowercase())
}

/// The amount after "TZS ": "TZS 30,000" → 30000.
fn amount_in(text: &str) -> Option<i64> {
    let rest = text.split("TZS ").nth(1)?;
    let digits: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ',')
        .filter(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

// ------------------------------------------------------------------------------ HTTP

/// A load thread's HTTP client: transport errors are results (the server may be dead).
struct Client {
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
    base: String,
}

type Screen = (bool, String);

impl Client {
    fn new(base: &str) -> Client {
        Client {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            base: base.to_string(),
        }
    }

    /// POSTs to `path`, the body set by `with`; the status and the body as text.
    fn post(
        &self,
        path: &str,
        with: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<(u16, String), String> {
        self.rt.block_on(async {
            let r = with(self.http.post(format!("{}{path}", self.base)))
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let s = r.status().as_u16();
            Ok((s, r.text().await.map_err(|e| e.to_string())?))
        })
    }

    fn at(&self, session: &str, phone: &str, text: &str) -> Result<Screen, String> {
        let form = ussd::at_form(session, phone, "*152*00#", text);
        let (status, body) = self.post("/ussd/africastalking", |r| r.form(&form))?;
        if status != 200 {
            return Err(format!("HTTP {status}: {body}"));
        }
        ussd::at_screen(&body)
    }

    /// One hop over the JSON adapter: `body` from [`ussd::json_hop`].
    fn json(&self, body: &Value) -> Result<Screen, String> {
        let (status, text) = self.post("/ussd/json", |r| r.json(body))?;
        if status != 200 {
            return Err(format!("HTTP {status}: {text}"));
        }
        let v: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        ussd::json_screen(&v)
    }

    /// Delivers `body` `copies` times at once; the answers that arrived.
    fn pay(&self, body: &[u8], copies: usize) -> Vec<Result<(u16, Vec<u8>), String>> {
        let url = format!("{}/gepg/payment", self.base);
        self.rt.block_on(async {
            let sends = (0..copies).map(|_| post_async(&self.http, &url, body.to_vec()));
            futures_util::future::join_all(sends)
                .await
                .into_iter()
                .map(|r| r.map_err(|e| e.to_string()))
                .collect()
        })
    }

    fn health(&self) -> Result<Value, String> {
        self.rt.block_on(async {
            self.http
                .get(format!("{}/health", self.base))
                .send()
                .await
                .map_err(|e| e.to_string())?
                .json::<Value>()
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// How a USSD journey ended.
enum Journey {
    /// The control number and amount were on screen.
    Acked(String, i64),
    /// "We will SMS you": the action outran the hop budget (a slow machine); the member
    /// dials again later, as with a cut session.
    Holding,
    /// The server answered something else (a violation: the journey must end with a
    /// control number).
    Wrong(String),
}

/// Renews `fam` by USSD from its head's phone: `2*1*CHFID` in the first hop (a dial string
/// is never offered "continue" for an earlier cut session), the product, yes.
fn renew_by_ussd(c: &Client, json_gw: bool, session: &str, fam: &Fam) -> Result<Journey, String> {
    let first = format!("2*1*{}", fam.chfid);
    let steps: [(&str, &str); 3] = [(&first, "CHF01"), ("1", "Kulipia"), ("1", "")];
    let mut typed = Vec::new();
    for (hop, (input, want)) in steps.iter().enumerate() {
        typed.push(*input);
        let (end, screen) = if json_gw {
            let kind = if hop == 0 { "begin" } else { "continue" };
            c.json(&ussd::json_hop(
                session, &fam.phone, kind, input, hop as u32,
            ))?
        } else {
            c.at(session, &fam.phone, &typed.join("*"))?
        };
        if hop < 2 {
            if end || !screen.contains(want) {
                return Ok(Journey::Wrong(screen));
            }
            continue;
        }
        return Ok(
            match (end, control_number_in(&screen), amount_in(&screen)) {
                (true, Some(cn), Some(amount)) => Journey::Acked(cn, amount),
                _ if screen.contains("Tutakutumia majibu kwa SMS") => Journey::Holding,
                _ => Journey::Wrong(screen),
            },
        );
    }
    unreachable!("the last step returns")
}

// ------------------------------------------------------------------------------ load

struct Ctx<'a> {
    seeded: &'a Seeded,
    keys: &'a TestKeys,
    /// The SMSC peer's control port (the peer handle itself stays with the main thread).
    smsc: u16,
    ledger: &'a Mutex<Ledger>,
    stop: &'a AtomicBool,
    run: usize,
}

impl Ctx<'_> {
    fn violation(&self, v: String) {
        eprintln!("VIOLATION: {v}");
        self.ledger.lock().unwrap().violations.push(v);
    }
}

fn ussd_load(ctx: &Ctx<'_>, base: &str, mut rng: ChaCha8Rng) {
    let c = Client::new(base);
    let mut n = 0;
    while !ctx.stop.load(Ordering::Relaxed) {
        let pick = {
            let mut l = ctx.ledger.lock().unwrap();
            match l.ussd_retry.pop() {
                Some(i) => Some(i),
                None if l.next_ussd < ctx.seeded.ussd.len() => {
                    l.next_ussd += 1;
                    Some(l.next_ussd - 1)
                }
                None => None,
            }
        };
        let Some(i) = pick else {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        let fam = &ctx.seeded.ussd[i];
        n += 1;
        let session = format!("crash-{}-{}-{n}", ctx.run, fam.chfid);
        let json_gw = rng.gen_bool(0.5);
        let result = renew_by_ussd(&c, json_gw, &session, fam);
        let mut l = ctx.ledger.lock().unwrap();
        l.ussd_journeys += 1;
        let violation = match result {
            Ok(Journey::Acked(cn, amount)) => match l.ussd.get(&fam.chfid) {
                Some(old) if old.cn != cn => Some(format!(
                    "USSD renewal of {}: control number {cn} after {} was acknowledged",
                    fam.chfid, old.cn
                )),
                _ => {
                    acked_renewal(&mut l, fam, cn, amount);
                    None
                }
            },
            Ok(Journey::Wrong(screen)) => {
                l.ussd_retry.push(i);
                Some(format!(
                    "run {}: USSD renewal of {} ({}) ended without a control number: {screen:?}",
                    ctx.run,
                    fam.chfid,
                    if json_gw { "JSON" } else { "AT" }
                ))
            }
            // Cut by the kill: maybe written, maybe not; the member dials again later.
            Ok(Journey::Holding) | Err(_) => {
                l.ussd_retry.push(i);
                None
            }
        };
        drop(l);
        if let Some(v) = violation {
            ctx.violation(v);
        }
        std::thread::sleep(Duration::from_millis(rng.gen_range(10..60)));
    }
}

/// Records a control number shown on a USSD screen, and the bill to pay.
fn acked_renewal(l: &mut Ledger, fam: &Fam, cn: String, amount: i64) {
    l.ussd.insert(
        fam.chfid.clone(),
        Renewal {
            cn: cn.clone(),
            phone: fam.phone.clone(),
        },
    );
    l.bills.entry(cn).or_insert(Bill {
        amount,
        from: format!("USSD renewal of {}", fam.chfid),
        acked: 0,
        last_run: None,
    });
}

/// Delivers one bill (`copies` at once); returns how many 7101 came back. A 200 with another
/// code is a violation: a notification of the amount billed must be accepted.
fn deliver(ctx: &Ctx<'_>, c: &Client, cn: &str, bill: &Bill, copies: usize) -> u32 {
    let trx = payment_trx(&Bill::trx(cn), cn, "", bill.amount);
    let body = ctx.keys.signed(&notification_xml(&trx));
    let mut acked = 0;
    // A transport error is no answer (the server died): not acknowledged.
    for (status, raw) in c.pay(&body, copies).into_iter().flatten() {
        // 503 (7201) asks GePG to try again later: not acknowledged, not wrong.
        if status == 503 {
            ctx.ledger.lock().unwrap().payment_retry_later += 1;
            continue;
        }
        if status != 200 {
            ctx.violation(format!("payment {cn} ({}): HTTP {status}", bill.from));
            continue;
        }
        match ack_of(ctx.keys, &raw).1.as_str() {
            "7101" => acked += 1,
            code => ctx.violation(format!("payment {cn} ({}): ack {code}", bill.from)),
        }
    }
    acked
}

fn payment_load(ctx: &Ctx<'_>, base: &str, mut rng: ChaCha8Rng) {
    let c = Client::new(base);
    while !ctx.stop.load(Ordering::Relaxed) {
        // Unpaid bills first (GePG redelivers what it has no 7101 for), then a duplicate
        // of a paid one now and then.
        let pick = {
            let mut l = ctx.ledger.lock().unwrap();
            let due = l
                .bills
                .iter()
                .find(|(_, b)| b.acked == 0 && b.last_run != Some(ctx.run))
                .map(|(cn, b)| (cn.clone(), b.clone()));
            let pick = due.or_else(|| {
                let paid: Vec<_> = l.bills.iter().filter(|(_, b)| b.acked > 0).collect();
                (!paid.is_empty() && rng.gen_bool(0.1)).then(|| {
                    let (cn, b) = paid[rng.gen_range(0..paid.len())];
                    (cn.clone(), b.clone())
                })
            });
            if let Some((cn, _)) = &pick {
                if let Some(b) = l.bills.get_mut(cn) {
                    b.last_run = Some(ctx.run);
                }
            }
            pick
        };
        let Some((cn, bill)) = pick else {
            std::thread::sleep(Duration::from_millis(30));
            continue;
        };
        let copies = if rng.gen_bool(0.25) { 2 } else { 1 };
        let acked = deliver(ctx, &c, &cn, &bill, copies);
        {
            let mut l = ctx.ledger.lock().unwrap();
            l.payment_posts += copies as u64;
            if let Some(b) = l.bills.get_mut(&cn) {
                b.acked += acked;
            }
        }
        std::thread::sleep(Duration::from_millis(rng.gen_range(5..40)));
    }
}

/// Sends one MO through the peer; the peer's ids (none when no session was bound).
fn send_mo(smsc: u16, text: &str) -> Vec<u64> {
    let (_, v) = smsc::http(
        smsc,
        "POST",
        "/mo",
        Some(&json!({"from": EO1, "to": "15200", "text": text})),
    );
    v["mo_ids"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default()
}

/// A new officer command: mostly enrolments, then renewals, members and status reads.
fn next_command(ctx: &Ctx<'_>, rng: &mut ChaCha8Rng) -> MoRec {
    let mut l = ctx.ledger.lock().unwrap();
    let roll: f64 = rng.gen();
    let kind = if roll < 0.4 {
        Kind::Reg
    } else if roll < 0.6 && l.next_renew < ctx.seeded.renew.len() {
        Kind::Renew
    } else if roll < 0.8 && l.next_add < ctx.seeded.add.len() {
        Kind::Add
    } else if roll >= 0.8 && l.next_status < 200 {
        Kind::Status
    } else {
        Kind::Reg
    };
    let (text, token, head_phone) = match kind {
        Kind::Reg => {
            let i = l.next_reg;
            l.next_reg += 1;
            let last = format!("Ajali{}", letters(i));
            let phone = format!("07559{i:05}");
            let sex = if i.is_multiple_of(2) { "KE" } else { "ME" };
            (
                format!("SAJILI 1234 MPYA {last} Tumaini 01/01/1990 {sex} V0111 {phone}"),
                last,
                Some(format!("255{}", &phone[1..])),
            )
        }
        Kind::Add => {
            let fam = &ctx.seeded.add[l.next_add];
            let last = format!("Mgeni{}", letters(l.next_add));
            l.next_add += 1;
            (
                format!(
                    "ONGEZA 1234 {} MPYA {last} Neema 01/02/2015 KE MTOTO",
                    fam.chfid
                ),
                last,
                None,
            )
        }
        Kind::Renew => {
            let fam = &ctx.seeded.renew[l.next_renew];
            l.next_renew += 1;
            (
                format!("HUISHA 1234 {}", fam.chfid),
                fam.chfid.clone(),
                None,
            )
        }
        Kind::Status => {
            let chfid = Chfid::from_base(20_000_000 + l.next_status as u32).unwrap();
            l.next_status += 1;
            let chfid = chfid.to_string();
            (format!("HALI {chfid}"), chfid, None)
        }
    };
    MoRec {
        kind,
        text,
        token,
        head_phone,
        ids: Vec::new(),
        acked: false,
        last_run: ctx.run,
    }
}

fn officer_load(ctx: &Ctx<'_>, mut rng: ChaCha8Rng) {
    // The SMSC delivers again every MO a dead server never acknowledged.
    let redeliver: Vec<usize> = {
        let l = ctx.ledger.lock().unwrap();
        (0..l.mos.len())
            .filter(|&i| !l.mos[i].acked && l.mos[i].last_run < ctx.run)
            .collect()
    };
    for i in redeliver {
        if ctx.stop.load(Ordering::Relaxed) {
            return;
        }
        let text = ctx.ledger.lock().unwrap().mos[i].text.clone();
        let ids = send_mo(ctx.smsc, &text);
        let mut l = ctx.ledger.lock().unwrap();
        l.mos[i].ids.extend(ids);
        l.mos[i].last_run = ctx.run;
    }
    while !ctx.stop.load(Ordering::Relaxed) {
        let mut mo = next_command(ctx, &mut rng);
        mo.ids = send_mo(ctx.smsc, &mo.text);
        ctx.ledger.lock().unwrap().mos.push(mo);
        std::thread::sleep(Duration::from_millis(rng.gen_range(100..350)));
    }
}

/// Every submit_sm the peer accepted, in arrival order.
fn peer_submits(smsc: u16) -> Vec<Value> {
    match smsc::http(smsc, "GET", "/submits", None).1 {
        Value::Array(v) => v,
        other => panic!("submits: {other}"),
    }
}

/// Marks the MOs the server answered with status 0.
fn resolve_mo_acks(smsc: u16, ledger: &Mutex<Ledger>) {
    let (_, results) = smsc::http(smsc, "GET", "/mo_results", None);
    let ok = |id: &u64| results[id.to_string()].as_u64() == Some(0);
    for mo in ledger.lock().unwrap().mos.iter_mut() {
        if mo.ids.iter().any(ok) {
            mo.acked = true;
        }
    }
}

// ------------------------------------------------------------------------------ server

struct Env {
    vars: Vec<(String, String)>,
}

impl Env {
    fn new(smsc: &Smsc, keys: &TestKeys, pg: &Pg) -> Env {
        let mut vars = smsc.gateway_env();
        vars.extend(keys.env());
        for (k, v) in [
            ("IMIS_GATEWAY_SMPP__WINDOW", WINDOW.to_string()),
            ("IMIS_GATEWAY_SMPP__BINDS", BINDS.to_string()),
            ("IMIS_GATEWAY_SMPP__TPS", "1000".into()),
            // Slow answers under a loaded machine must not re-send (only kills may).
            ("IMIS_GATEWAY_SMPP__RESPONSE_TIMEOUT_SECS", "20".into()),
            ("IMIS_GATEWAY_MIRROR__ENABLED", "true".into()),
            ("IMIS_GATEWAY_MIRROR__DSN", pg.dsn()),
            ("IMIS_GATEWAY_MIRROR__LEASE_SECS", "1".into()),
            ("IMIS_GATEWAY_MIRROR__PULL_INTERVAL_SECS", "0".into()),
            ("IMIS_GATEWAY_MIRROR__BACKOFF_BASE_MS", "100".into()),
            ("IMIS_GATEWAY_MIRROR__BACKOFF_CAP_SECS", "1".into()),
            ("IMIS_GATEWAY_GEPG__RECONCILE_AT", String::new()),
            // Only a kill may cut a journey, not a machine slowed by other work.
            ("IMIS_GATEWAY_USSD__HOP_BUDGET_MS", "20000".into()),
            // One officer here sends far more commands than a person could; the per-phone
            // limits have their own tests (tests/security.rs).
            ("IMIS_GATEWAY_LIMITS__SMS_MO_PER_HOUR", "0".into()),
            ("IMIS_GATEWAY_LIMITS__USSD_HOPS_PER_MINUTE", "0".into()),
            // Daily jobs would add SMS nobody here owes.
            ("IMIS_GATEWAY_SCHEDULER__ENABLED", "false".into()),
        ] {
            vars.push((k.to_string(), v));
        }
        Env { vars }
    }

    /// Starts the server and waits until it bound to the SMSC.
    fn start(&self, dir: &Path, smsc: &Smsc) -> Server {
        let binds = smsc.stats()["binds"].as_u64().unwrap_or(0);
        let env: Vec<(&str, &str)> = self
            .vars
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let server = Server::start(dir, &[], &env);
        smsc.wait("the server's bind", Duration::from_secs(60), |s| {
            s.stats()["binds"].as_u64().unwrap_or(0) > binds && s.bound() >= 1
        });
        server
    }
}

/// Right after a kill: what was acknowledged must already be on disk.
fn check_durable(dir: &Path, ledger: &Mutex<Ledger>, run: usize) {
    let store = Store::open(dir, StoreOptions::default()).unwrap();
    let mut l = ledger.lock().unwrap();
    let mut found = Vec::new();
    for (cn, b) in l.bills.iter().filter(|(_, b)| b.acked > 0) {
        if notify::transaction(&store, SP_CODE, &Bill::trx(cn))
            .unwrap()
            .is_none()
        {
            found.push(format!(
                "run {run}: payment {cn} ({}) was acknowledged 7101 but is not stored after kill -9",
                b.from
            ));
        }
    }
    for (chfid, r) in &l.ussd {
        if store.payment_by_control_number(&r.cn).unwrap().is_none() {
            found.push(format!(
                "run {run}: control number {} shown for {chfid} is not stored after kill -9",
                r.cn
            ));
        }
    }
    for v in &found {
        eprintln!("VIOLATION: {v}");
    }
    l.violations.extend(found);
}

// ------------------------------------------------------------------------------ the test

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

#[test]
fn kill9_under_mixed_load_loses_nothing_acknowledged_and_applies_nothing_twice() {
    let started = Instant::now();
    let rounds = env_usize("CRASH_ROUNDS", 5);
    let seed: u64 = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("crash test: {rounds} rounds, seed {seed} (rerun with CRASH_SEED={seed})");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);

    let pg = Pg::start();
    let smsc = Smsc::start(&[]);
    let keys = TestKeys::new();
    let dir = tempfile::tempdir().unwrap();
    let seeded = seed_store(dir.path(), rounds, &pg);
    let env = Env::new(&smsc, &keys, &pg);
    let ledger = Mutex::new(Ledger::default());
    let mut kills = 0;
    eprintln!("set up in {:.1} s", started.elapsed().as_secs_f64());

    // What the load of every run shares; each run clears `stop` and sets its number.
    let stop = AtomicBool::new(false);
    let shared = Ctx {
        seeded: &seeded,
        keys: &keys,
        smsc: smsc.ctrl_port,
        ledger: &ledger,
        stop: &stop,
        run: 0,
    };
    for run in 0..rounds {
        let server = env.start(dir.path(), &smsc);
        let base = server.url("");
        stop.store(false, Ordering::Relaxed);
        let ctx = Ctx { run, ..shared };
        let kill_after = Duration::from_millis(rng.gen_range(0..2000));
        let seeds: [u64; 3] = rng.gen();
        std::thread::scope(|s| {
            s.spawn(|| ussd_load(&ctx, &base, ChaCha8Rng::seed_from_u64(seeds[0])));
            s.spawn(|| payment_load(&ctx, &base, ChaCha8Rng::seed_from_u64(seeds[1])));
            s.spawn(|| officer_load(&ctx, ChaCha8Rng::seed_from_u64(seeds[2])));
            std::thread::sleep(kill_after);
            server.kill9();
            stop.store(true, Ordering::Relaxed);
        });
        kills += 1;
        smsc.wait(
            "the killed server's session closed",
            Duration::from_secs(10),
            |s| s.bound() == 0,
        );
        resolve_mo_acks(smsc.ctrl_port, &ledger);
        check_durable(dir.path(), &ledger, run);
        eprintln!(
            "run {run}: killed after {kill_after:?} of load ({:.1} s)",
            started.elapsed().as_secs_f64()
        );
    }

    // The last run: no kill. The peers deliver again what was never acknowledged.
    let server = env.start(dir.path(), &smsc);
    let c = Client::new(&server.url(""));
    stop.store(false, Ordering::Relaxed);
    let ctx = Ctx {
        run: rounds,
        ..shared
    };
    finish(&ctx, &c);
    eprintln!(
        "final run: redeliveries done ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
    let summary = check(&ctx, &c, server, &pg, dir.path(), kills);
    eprintln!("{summary}; {:.1} s", started.elapsed().as_secs_f64());
    let l = ledger.lock().unwrap();
    assert!(
        l.violations.is_empty(),
        "{} invariant violations (seed {seed}):\n{}",
        l.violations.len(),
        l.violations.join("\n")
    );
}

/// Every unacknowledged MO, cut USSD journey and unpaid bill again, until acknowledged.
fn finish(ctx: &Ctx<'_>, c: &Client) {
    for attempt in 0..5 {
        let unacked: Vec<(usize, String)> = {
            let l = ctx.ledger.lock().unwrap();
            l.mos
                .iter()
                .enumerate()
                .filter(|(_, m)| !m.acked)
                .map(|(i, m)| (i, m.text.clone()))
                .collect()
        };
        if unacked.is_empty() {
            break;
        }
        for (i, text) in &unacked {
            let ids = send_mo(ctx.smsc, text);
            ctx.ledger.lock().unwrap().mos[*i].ids.extend(ids);
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            resolve_mo_acks(ctx.smsc, ctx.ledger);
            let l = ctx.ledger.lock().unwrap();
            if unacked.iter().all(|(i, _)| l.mos[*i].acked) || Instant::now() > deadline {
                break;
            }
            drop(l);
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!(
            "final run: {} MO delivered again (attempt {attempt})",
            unacked.len()
        );
    }
    let retry: Vec<usize> = std::mem::take(&mut ctx.ledger.lock().unwrap().ussd_retry);
    for i in retry {
        let fam = &ctx.seeded.ussd[i];
        match renew_by_ussd(c, false, &format!("crash-final-{}", fam.chfid), fam) {
            Ok(Journey::Acked(cn, amount)) => {
                acked_renewal(&mut ctx.ledger.lock().unwrap(), fam, cn, amount)
            }
            Ok(Journey::Wrong(screen)) => ctx.violation(format!(
                "final run: USSD renewal of {} ended without a control number: {screen:?}",
                fam.chfid
            )),
            Ok(Journey::Holding) => ctx.violation(format!(
                "final run: USSD renewal of {} outran the 20 s hop budget",
                fam.chfid
            )),
            Err(e) => ctx.violation(format!("final run: USSD renewal of {}: {e}", fam.chfid)),
        }
    }
}

/// The officer replies owed for acknowledged MOs, waited for (bounded); the control numbers
/// in REG and RENEW replies become bills.
fn collect_officer_bills(ctx: &Ctx<'_>) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let replies = common::sms::texts_to(&peer_submits(ctx.smsc), EO1);
        let mut l = ctx.ledger.lock().unwrap();
        let mut missing = 0;
        let mut found = Vec::new();
        for mo in l.mos.iter().filter(|m| m.acked) {
            match replies.iter().find(|r| contains_ci(r, &mo.token)) {
                None => missing += 1,
                Some(r) if matches!(mo.kind, Kind::Reg | Kind::Renew) => {
                    if let (Some(cn), Some(amount)) = (control_number_in(r), amount_in(r)) {
                        found.push((cn, amount, format!("officer {:?} {}", mo.kind, mo.token)));
                    }
                }
                Some(_) => {}
            }
        }
        for (cn, amount, from) in found {
            l.bills.entry(cn).or_insert(Bill {
                amount,
                from,
                acked: 0,
                last_run: None,
            });
        }
        if missing == 0 || Instant::now() > deadline {
            return;
        }
        drop(l);
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// An SMS owed: to whom, a text that identifies it, and a text that must not be in it.
struct Owed {
    what: String,
    to: Option<String>,
    has: String,
    not: Option<String>,
}

fn copies(msgs: &[(String, String)], o: &Owed) -> usize {
    msgs.iter()
        .filter(|(to, text)| {
            o.to.as_deref().is_none_or(|t| t == to)
                && contains_ci(text, &o.has)
                && o.not.as_deref().is_none_or(|n| !contains_ci(text, n))
        })
        .count()
}

/// Drains the last run, stops it cleanly and checks every invariant; the summary line.
fn check(ctx: &Ctx<'_>, c: &Client, server: Server, pg: &Pg, dir: &Path, kills: usize) -> String {
    let t = Instant::now();
    collect_officer_bills(ctx);
    eprintln!(
        "final run: officer replies in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    // GePG delivers every bill once more: the unpaid ones for the first time since a kill,
    // the paid ones as harmless duplicates. Every answer must be 7101.
    let bills: Vec<(String, Bill)> = ctx
        .ledger
        .lock()
        .unwrap()
        .bills
        .iter()
        .map(|(cn, b)| (cn.clone(), b.clone()))
        .collect();
    for (cn, bill) in &bills {
        let mut acked = 0;
        for _ in 0..3 {
            acked = deliver(ctx, c, cn, bill, 1);
            if acked > 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        if acked == 0 {
            ctx.violation(format!(
                "final run: payment {cn} ({}) got no 7101",
                bill.from
            ));
        }
        ctx.ledger.lock().unwrap().bills.get_mut(cn).unwrap().acked += acked;
    }

    eprintln!(
        "final run: bills delivered again in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let owed = owed_sms(ctx);
    // Bounded drain: every owed SMS at the SMSC, nothing left for the mirror.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut quiet = 0;
    while Instant::now() < deadline {
        let msgs = common::sms::messages(&peer_submits(ctx.smsc));
        let sent = owed.iter().all(|o| copies(&msgs, o) > 0);
        let h = c.health().unwrap_or(Value::Null);
        let drained = h["components"]["mirror"]["lag_secs"] == 0.0
            && h["smpp"]["counters"]["queue_depth"] == 0;
        quiet = if sent && drained { quiet + 1 } else { 0 };
        if quiet >= 3 {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!(
        "final run: drained in {:.1} s ({quiet} quiet polls)",
        t.elapsed().as_secs_f64()
    );
    let (status, logs) = server.terminate();
    if !status.success() {
        ctx.violation(format!(
            "the last run did not stop cleanly: {status}\n{}",
            logs.join("\n")
        ));
    }

    let submits = peer_submits(ctx.smsc);
    let msgs = common::sms::messages(&submits);
    for o in &owed {
        let n = copies(&msgs, o);
        if n == 0 {
            ctx.violation(format!("{} never reached the SMSC", o.what));
        } else if n > 1 + kills {
            ctx.violation(format!(
                "{} reached the SMSC {n} times (> 1 + {kills} kills)",
                o.what
            ));
        }
    }
    let mut per_text: HashMap<&(String, String), usize> = HashMap::new();
    for m in &msgs {
        *per_text.entry(m).or_default() += 1;
    }
    let duplicates: usize = per_text.values().map(|n| n - 1).sum();
    let bound = kills * WINDOW * BINDS;
    if duplicates > bound {
        ctx.violation(format!(
            "{duplicates} duplicate SMS > {bound} (kills × window × binds)"
        ));
    }
    for ((to, text), n) in per_text.iter().filter(|(_, n)| **n > 1 + kills) {
        ctx.violation(format!("SMS to {to} sent {n} times: {text:?}"));
    }

    check_store(ctx, dir, &msgs);
    eprintln!("store checked in {:.1} s", t.elapsed().as_secs_f64());
    check_central(ctx, pg, dir);
    eprintln!(
        "central database checked in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let l = ctx.ledger.lock().unwrap();
    let acked_mo = l.mos.iter().filter(|m| m.acked).count();
    let enrolments = l
        .mos
        .iter()
        .filter(|m| m.acked && matches!(m.kind, Kind::Reg | Kind::Add))
        .count();
    let paid = l.bills.values().filter(|b| b.acked > 0).count();
    format!(
        "crash test summary: runs {} kills {kills} acked MO {acked_mo} (of {} sent, {} deliveries) \
         enrolments {enrolments} USSD renewals {} (journeys {}) payments {paid} (posts {}, 503 {}) \
         SMS {} duplicates {duplicates} (bound {bound}) invariant violations {}",
        kills + 1,
        l.mos.len(),
        l.mos.iter().map(|m| m.ids.len()).sum::<usize>(),
        l.ussd.len(),
        l.ussd_journeys,
        l.payment_posts + bills.len() as u64,
        l.payment_retry_later,
        msgs.len(),
        l.violations.len()
    )
}

/// Every SMS an acknowledgement made us owe.
fn owed_sms(ctx: &Ctx<'_>) -> Vec<Owed> {
    let l = ctx.ledger.lock().unwrap();
    let replies = common::sms::texts_to(&peer_submits(ctx.smsc), EO1);
    let mut owed = Vec::new();
    for mo in l.mos.iter().filter(|m| m.acked) {
        owed.push(Owed {
            what: format!("the reply to MO {:?}", mo.text),
            to: Some(EO1.into()),
            has: mo.token.clone(),
            not: None,
        });
        if let Some(phone) = &mo.head_phone {
            // The head's own SMS quotes the control number of the reply.
            if let Some(cn) = replies
                .iter()
                .find(|r| contains_ci(r, &mo.token))
                .and_then(|r| control_number_in(r))
            {
                owed.push(Owed {
                    what: format!("the SMS to the new head {phone} of {}", mo.token),
                    to: Some(phone.clone()),
                    has: cn.clone(),
                    not: Some(Bill::receipt(&cn)),
                });
            }
        }
    }
    for (chfid, r) in &l.ussd {
        owed.push(Owed {
            what: format!("the control number SMS of {} for {chfid}", r.cn),
            to: Some(r.phone.clone()),
            has: r.cn.clone(),
            not: Some(Bill::receipt(&r.cn)),
        });
    }
    for (cn, b) in l.bills.iter().filter(|(_, b)| b.acked > 0) {
        owed.push(Owed {
            what: format!("the confirmation SMS of payment {cn} ({})", b.from),
            to: None,
            has: Bill::receipt(cn),
            not: None,
        });
    }
    owed
}

/// The stopped server's store: every acknowledged effect exactly once, nothing left over.
fn check_store(ctx: &Ctx<'_>, dir: &Path, msgs: &[(String, String)]) {
    let store = Store::open(dir, StoreOptions::default()).unwrap();
    let mut v = Vec::new();
    for topic in [
        MIRROR_TOPIC,
        imis_gateway::sms::SMS_TOPIC,
        imis_gateway::officer::worker::TOPIC,
    ] {
        let pending = store.pending_count(topic).unwrap();
        if pending > 0 {
            v.push(format!(
                "outbox topic {topic}: {pending} entries still pending"
            ));
        }
        let dead = store.dead(topic).unwrap();
        if !dead.is_empty() {
            v.push(format!(
                "outbox topic {topic}: {} dead letters: {dead:?}",
                dead.len()
            ));
        }
    }
    let l = ctx.ledger.lock().unwrap();
    // Payments: one premium, matched for exactly the amount paid, policy active.
    for (cn, b) in l.bills.iter().filter(|(_, b)| b.acked > 0) {
        let Some(p) = store.payment_by_control_number(cn).unwrap() else {
            v.push(format!(
                "payment {cn} ({}): no payment in the store",
                b.from
            ));
            continue;
        };
        if p.status != PaymentStatus::Matched || p.received_amount != Some(Money::tzs(b.amount)) {
            v.push(format!(
                "payment {cn} ({}): status {:?}, received {:?}, expected TZS {} once",
                b.from, p.status, p.received_amount, b.amount
            ));
        }
        let Some(policy) = p.details.first().and_then(|d| d.policy) else {
            v.push(format!("payment {cn}: no policy"));
            continue;
        };
        let premiums = store.premiums_of_policy(policy).unwrap().len();
        let status = store.policy(policy).unwrap().map(|p| p.status);
        if premiums != 1 || status != Some(PolicyStatus::Active) {
            v.push(format!(
                "payment {cn} ({}): policy {policy} has {premiums} premiums, status {status:?}",
                b.from
            ));
        }
    }
    // No control number on two payments.
    let mut by_cn: HashMap<String, usize> = HashMap::new();
    for p in store.payments().unwrap() {
        if let Some(cn) = p.control_number {
            *by_cn.entry(cn).or_default() += 1;
        }
    }
    for (cn, n) in by_cn.iter().filter(|(_, n)| **n > 1) {
        v.push(format!("control number {cn} is on {n} payments"));
    }
    // No effect without its cause on disk: an SMS quoting a control number that no stored
    // payment has was sent for a write a crash then lost.
    for (to, text) in msgs {
        if let Some(cn) = control_number_in(text) {
            if !by_cn.contains_key(&cn) {
                v.push(format!(
                    "SMS to {to} quotes control number {cn}, which no stored payment has: {text:?}"
                ));
            }
        }
    }
    for (chfid, r) in &l.ussd {
        if !by_cn.contains_key(&r.cn) {
            v.push(format!(
                "USSD renewal of {chfid}: control number {} not stored",
                r.cn
            ));
        }
    }
    // MOs: each acknowledged command ran once; enrolments exist once.
    let eo1 = store.officer_by_code("EO0001").unwrap().unwrap();
    let trail = audit::of_officer(&store, eo1.id).unwrap();
    for mo in l.mos.iter().filter(|m| m.acked) {
        let runs = trail
            .iter()
            .filter(|e| contains_ci(&e.text, &mo.token))
            .count();
        if runs != 1 {
            v.push(format!("MO {:?} ran {runs} times", mo.text));
        }
        match mo.kind {
            Kind::Reg => {
                let phone = Msisdn::parse(mo.head_phone.as_deref().unwrap()).unwrap();
                let families = store.families_by_phone(&phone).unwrap();
                let heads: Vec<String> = families
                    .iter()
                    .filter_map(|f| store.insuree(f.head).unwrap())
                    .map(|i| i.last_name)
                    .collect();
                if heads.len() != 1 || !contains_ci(&heads[0], &mo.token) {
                    v.push(format!(
                        "enrolment {}: families of {phone:?} in the store: {heads:?}",
                        mo.token
                    ));
                }
            }
            Kind::Add => {
                let chfid = mo.text.split_whitespace().nth(2).unwrap();
                let head = store
                    .insuree_by_chfid(Chfid::parse(chfid).unwrap())
                    .unwrap()
                    .unwrap();
                let n = store
                    .family_members(head.family)
                    .unwrap()
                    .iter()
                    .filter(|m| contains_ci(&m.last_name, &mo.token))
                    .count();
                if n != 1 {
                    v.push(format!(
                        "member {} of family {chfid}: {n} in the store",
                        mo.token
                    ));
                }
            }
            Kind::Renew | Kind::Status => {}
        }
    }
    drop(l);
    for x in v {
        ctx.violation(x);
    }
}

/// Prints what the store and the central database hold for a payment that broke an
/// invariant: the family's policies and payments on both sides, history rows included.
fn diagnose(pg: &Pg, store: &Store, cn: &str, p: &Payment) {
    let chfid = p
        .details
        .first()
        .map(|d| d.chfid.to_string())
        .unwrap_or_default();
    eprintln!("--- diagnosis of payment {cn} (family {chfid}) ---");
    eprintln!(
        "store payment {} {} {:?} received {:?} details {:?}",
        p.id, p.uuid, p.status, p.received_amount, p.details
    );
    if let Ok(Some(head)) = store.insuree_by_chfid(Chfid::parse(&chfid).unwrap()) {
        for pol in store.family_policies(head.family).unwrap() {
            eprintln!(
                "store policy {} {} {:?} {:?} premiums {}",
                pol.id,
                pol.uuid,
                pol.stage,
                pol.status,
                store.premiums_of_policy(pol.id).unwrap().len()
            );
        }
    }
    eprintln!(
        "central policies (id|uuid|stage|status|current|legacy|premiums):\n{}",
        pg.query(&format!(
            r#"SELECT p."PolicyID", p."PolicyUUID", p."PolicyStage", p."PolicyStatus",
                      p."ValidityTo" IS NULL, p."LegacyID",
                      (SELECT count(*) FROM "tblPremium" pr WHERE pr."PolicyID" = p."PolicyID")
               FROM "tblPolicy" p WHERE p."FamilyID" IN
                 (SELECT "FamilyID" FROM "tblInsuree" WHERE "CHFID" = '{chfid}')
               ORDER BY 1"#
        ))
    );
    eprintln!(
        "central payments (id|uuid|status|received|current|legacy|control numbers):\n{}",
        pg.query(&format!(
            r#"SELECT p."PaymentID", p."PaymentUUID", p."PaymentStatus", p."ReceivedAmount",
                      p."ValidityTo" IS NULL, p."LegacyID",
                      (SELECT string_agg(c."ControlNumber" || '/' || (c."ValidityTo" IS NULL)::text, ',')
                       FROM "tblControlNumber" c WHERE c."PaymentID" = p."PaymentID")
               FROM "tblPayment" p WHERE p."PaymentID" IN
                 (SELECT "PaymentID" FROM "tblPaymentDetails" WHERE "InsuranceNumber" = '{chfid}')
                 OR p."PaymentUUID" = '{}'
               ORDER BY 1"#,
            p.uuid
        ))
    );
}

/// Rows `a|b` of a two-column query as a map.
fn pairs(pg: &Pg, sql: &str) -> HashMap<String, String> {
    pg.query(sql)
        .lines()
        .filter_map(|l| l.split_once('|'))
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// The central database: every acknowledged effect exactly once, and no difference from
/// the store (`mirror verify`).
fn check_central(ctx: &Ctx<'_>, pg: &Pg, dir: &Path) {
    let store = Store::open(dir, StoreOptions::default()).unwrap();
    let mut v = Vec::new();
    let insurees = pairs(
        pg,
        r#"SELECT lower("LastName"), count(*) FROM "tblInsuree" WHERE "ValidityTo" IS NULL
           AND ("LastName" ILIKE 'ajali%' OR "LastName" ILIKE 'mgeni%') GROUP BY 1"#,
    );
    let heads = pairs(
        pg,
        r#"SELECT lower(i."LastName"), count(*) FROM "tblFamilies" f
           JOIN "tblInsuree" i ON i."InsureeID" = f."InsureeID"
           WHERE f."ValidityTo" IS NULL AND i."ValidityTo" IS NULL AND i."LastName" ILIKE 'ajali%'
           GROUP BY 1"#,
    );
    let premiums = pairs(
        pg,
        r#"SELECT p."PolicyUUID", count(*) FROM "tblPremium" pr
           JOIN "tblPolicy" p ON p."PolicyID" = pr."PolicyID"
           WHERE pr."ValidityTo" IS NULL AND p."ValidityTo" IS NULL GROUP BY 1"#,
    );
    let policies = pairs(
        pg,
        r#"SELECT "PolicyUUID", string_agg("PolicyStatus"::text, ',') FROM "tblPolicy"
           WHERE "ValidityTo" IS NULL GROUP BY 1"#,
    );
    let payments = pairs(
        pg,
        r#"SELECT "PaymentUUID", string_agg("PaymentStatus"::text || ':' || "ReceivedAmount"::text, ',')
           FROM "tblPayment" WHERE "ValidityTo" IS NULL GROUP BY 1"#,
    );
    let payment_rows = pairs(
        pg,
        r#"SELECT "PaymentUUID", count(*) FROM "tblPayment" WHERE "ValidityTo" IS NULL GROUP BY 1"#,
    );
    let numbers = pairs(
        pg,
        r#"SELECT "ControlNumber", count(*) FROM "tblControlNumber" WHERE "ValidityTo" IS NULL GROUP BY 1"#,
    );
    let l = ctx.ledger.lock().unwrap();
    let mut diagnosed = 0;
    for mo in l.mos.iter().filter(|m| m.acked) {
        let key = mo.token.to_lowercase();
        match mo.kind {
            Kind::Reg | Kind::Add => {
                let n = insurees.get(&key).map(String::as_str).unwrap_or("0");
                if n != "1" {
                    v.push(format!(
                        "enrolment {}: {n} current tblInsuree rows",
                        mo.token
                    ));
                }
            }
            Kind::Renew | Kind::Status => {}
        }
        if mo.kind == Kind::Reg {
            let n = heads.get(&key).map(String::as_str).unwrap_or("0");
            if n != "1" {
                v.push(format!(
                    "enrolment {}: {n} current tblFamilies rows",
                    mo.token
                ));
            }
        }
    }
    for (cn, b) in &l.bills {
        let n = numbers.get(cn).map(String::as_str).unwrap_or("0");
        if n != "1" {
            v.push(format!(
                "control number {cn} ({}): {n} current tblControlNumber rows",
                b.from
            ));
        }
        let Some(p) = store.payment_by_control_number(cn).unwrap() else {
            continue;
        };
        if b.acked == 0 {
            if payment_rows.get(&p.uuid.to_string()).map(String::as_str) != Some("1") {
                v.push(format!("payment {cn} ({}): not once in tblPayment", b.from));
            }
            continue;
        }
        let before = v.len();
        let want = format!("5:{}.00", b.amount);
        let got = payments
            .get(&p.uuid.to_string())
            .cloned()
            .unwrap_or_default();
        if got != want {
            v.push(format!(
                "payment {cn} ({}): tblPayment {got:?}, want {want:?}",
                b.from
            ));
        }
        let Some(policy) = p.details.first().and_then(|d| d.policy) else {
            continue;
        };
        let Some(policy) = store.policy(policy).unwrap() else {
            continue;
        };
        let uuid = policy.uuid.to_string();
        let n = premiums.get(&uuid).map(String::as_str).unwrap_or("0");
        let status = policies.get(&uuid).cloned().unwrap_or_default();
        if n != "1" || status != "2" {
            v.push(format!(
                "payment {cn} ({}): policy {uuid} has {n} current tblPremium rows, status {status:?}",
                b.from
            ));
        }
        if v.len() > before && diagnosed < 3 {
            diagnosed += 1;
            diagnose(pg, &store, cn, &p);
        }
    }
    // No central row without its record in the store (a write mirrored, then lost by a
    // crash, would leave one behind).
    let mut local: HashMap<&str, std::collections::HashSet<String>> = HashMap::new();
    for p in store.payments().unwrap() {
        local
            .entry("tblPayment")
            .or_default()
            .insert(p.uuid.to_string());
    }
    store
        .for_each_policy(|p| {
            for pr in store.premiums_of_policy(p.id)? {
                local
                    .entry("tblPremium")
                    .or_default()
                    .insert(pr.uuid.to_string());
            }
            local
                .entry("tblPolicy")
                .or_default()
                .insert(p.uuid.to_string());
            Ok(true)
        })
        .unwrap();
    for (table, col) in [
        ("tblPayment", "PaymentUUID"),
        ("tblPolicy", "PolicyUUID"),
        ("tblPremium", "PremiumUUID"),
    ] {
        let known = local.remove(table).unwrap_or_default();
        let sql = format!(r#"SELECT "{col}" FROM "{table}" WHERE "ValidityTo" IS NULL"#);
        for uuid in pg.query(&sql).lines().filter(|u| !known.contains(*u)) {
            v.push(format!(
                "{table} {uuid}: a current central row the store does not have"
            ));
        }
    }
    drop(l);
    drop(store);
    let out = common::run(
        &[
            "mirror",
            "verify",
            "--dsn",
            &pg.dsn(),
            "--data-dir",
            dir.to_str().unwrap(),
        ],
        &[],
    );
    // The demo data is bulk loaded into the store, never through the mirror, and the central
    // database starts empty: those records are "never mirrored". Anything else is a
    // difference between what the store holds and what PostgreSQL holds.
    let text = String::from_utf8_lossy(&out.stdout);
    let summary = text
        .lines()
        .find(|l| l.starts_with("checked "))
        .unwrap_or("");
    if summary.is_empty() {
        v.push(format!(
            "mirror verify did not run: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    for line in text.lines().filter(|l| {
        !l.starts_with("checked ") && !l.contains("never mirrored") && !l.trim().is_empty()
    }) {
        v.push(format!("mirror verify: {line}"));
    }
    for x in v {
        ctx.violation(x);
    }
}
