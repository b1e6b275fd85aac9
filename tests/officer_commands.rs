//! Officer SMS commands through the inbound pipeline (store MO → router → job → worker →
//! one durable transaction) on a real store with the demo data, in-process: every command,
//! both languages, and the unhappy paths. The same commands over SMPP and HTTP against the
//! real server binary are in `officer_e2e.rs`.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::Utc;
use imis_gateway::config::Config;
use imis_gateway::demo::{self, DemoOptions};
use imis_gateway::domain::{Chfid, Language, Money, PaymentStatus, PolicyStage, PolicyStatus};
use imis_gateway::officer::{self, activation, audit, auth, worker, Officers, Processed};
use imis_gateway::sms::inbound::{self, Channel, Dedupe, Mo};
use imis_gateway::sms::segment::segment_count;
use imis_gateway::sms::{outbound, MoPipeline, Templates, SMS_TOPIC};
use imis_gateway::store::Store;

const EO1: &str = "255754000001"; // Kongwa, substitute of EO0003 (Mpwapwa)
const EO2: &str = "255754000002"; // Mpwapwa; made English below
const EO3: &str = "255754000003"; // left the scheme

struct World {
    store: Store,
    officers: Officers,
    pipeline: MoPipeline,
    rt: tokio::runtime::Runtime,
}

static NEXT: AtomicU64 = AtomicU64::new(1);

impl World {
    fn new() -> World {
        World::with(|_| {})
    }

    /// The demo world, with `configure` applied to the default configuration.
    fn with(configure: impl FnOnce(&mut Config)) -> World {
        let store = Store::open_temporary().unwrap();
        let opts = DemoOptions {
            families: 10,
            ..DemoOptions::default()
        };
        demo::seed_if_empty(&store, &opts).unwrap();
        officer::pending::backfill(&store).unwrap();
        let mut eo2 = store.officer_by_code("EO0002").unwrap().unwrap();
        eo2.language = Language::En;
        store
            .write(|tx| -> imis_gateway::store::TxResult<()> {
                tx.put_officer(&eo2)?;
                Ok(())
            })
            .unwrap();
        let mut config = Config::default();
        // Control numbers from the simulator's pool, as `serve --demo` has them (payments
        // are disabled by default).
        config.gepg.mode = imis_gateway::config::GepgMode::Simulator;
        config.officer.grammar_file =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("sms-templates/officer/commands.toml");
        configure(&mut config);
        World {
            store,
            officers: Officers::from_config(&config).unwrap(),
            // The pipeline `serve` builds with officer commands enabled.
            pipeline: MoPipeline::new(
                std::sync::Arc::new(
                    Templates::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("sms-templates"))
                        .unwrap(),
                ),
                vec![std::sync::Arc::new(officer::SmsCommands)],
            ),
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
        }
    }

    /// Sends an MO with its own aggregator id; returns every SMS it caused, (to, text).
    fn send(&self, from: &str, text: &str) -> Vec<(String, String)> {
        let id = format!("t{}", NEXT.fetch_add(1, Ordering::Relaxed));
        self.send_as(from, text, &id)
    }

    fn send_as(&self, from: &str, text: &str, id: &str) -> Vec<(String, String)> {
        let mo = Mo {
            from: from.into(),
            to: "15200".into(),
            text: text.into(),
            channel: Channel::Http,
            dedupe: Dedupe::Forever(id.into()),
            parts: 1,
            complete: true,
        };
        self.rt
            .block_on(inbound::accept(
                &self.store,
                &self.pipeline,
                &mo,
                Utc::now(),
            ))
            .unwrap();
        worker::drain_blocking(&self.officers, &self.store).unwrap();
        let items = self
            .store
            .claim(SMS_TOPIC, 100, Duration::from_secs(60), Utc::now())
            .unwrap();
        let mut out = Vec::new();
        for i in items {
            let sms = outbound::decode(&i.payload).unwrap();
            assert!(
                (1..=2).contains(&segment_count(&sms.text).0),
                "reply over 2 SMS: {}",
                sms.text
            );
            out.push((sms.to.as_str().to_string(), sms.text));
            self.store.ack(SMS_TOPIC, i.seq).unwrap();
        }
        out
    }

    /// The one reply to `from`.
    fn reply(&self, from: &str, text: &str) -> String {
        let all = self.send(from, text);
        let mine: Vec<&String> = all
            .iter()
            .filter(|(to, _)| to == from)
            .map(|(_, t)| t)
            .collect();
        assert_eq!(mine.len(), 1, "{text}: {all:?}");
        mine[0].clone()
    }

    fn families(&self) -> usize {
        self.store.counts().unwrap().families
    }
}

fn chfid_in(reply: &str) -> Chfid {
    reply
        .split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 9)
        .and_then(|w| Chfid::parse(w).ok())
        .unwrap_or_else(|| panic!("no CHFID in {reply}"))
}

#[test]
fn register_new_family_in_kiswahili_with_every_effect_in_one_write() {
    let w = World::new();
    let before = w.store.counts().unwrap();
    let all = w.send(
        EO1,
        "SAJILI 1234 MPYA Mushi Neema Juma 12/03/1990 KE V0111 0754111222",
    );
    let reply = &all.iter().find(|(to, _)| to == EO1).unwrap().1;
    assert!(reply.contains("imesajiliwa"), "{reply}");
    assert!(reply.contains("CHF01 TZS 30,000"), "{reply}");
    let chfid = chfid_in(reply);
    // The head approved SMS by giving a phone: she hears about it too.
    let head_sms = &all.iter().find(|(to, _)| to == "255754111222").unwrap().1;
    assert!(
        head_sms.contains(&chfid.to_string()) && head_sms.contains("TZS 30,000"),
        "{head_sms}"
    );
    let head = w.store.insuree_by_chfid(chfid).unwrap().unwrap();
    assert_eq!(
        (head.last_name.as_str(), head.other_names.as_str()),
        ("Mushi", "Neema Juma")
    );
    let family = w.store.family(head.family).unwrap().unwrap();
    assert!(family.sms.approved);
    let policies = w.store.family_policies(family.id).unwrap();
    assert_eq!(policies.len(), 1);
    let p = &policies[0];
    assert_eq!(
        (p.status, p.stage, p.value),
        (PolicyStatus::Idle, PolicyStage::New, Money::tzs(30_000))
    );
    assert_eq!(w.store.insuree_policies_of_policy(p.id).unwrap().len(), 1);
    let after = w.store.counts().unwrap();
    assert_eq!(after.families, before.families + 1);
    assert_eq!(after.payments, before.payments + 1);
    assert_eq!(after.control_numbers, before.control_numbers + 1);
    let cn = reply
        .split_whitespace()
        .last()
        .unwrap()
        .trim_end_matches('.');
    let pay = w.store.payment_by_control_number(cn).unwrap().unwrap();
    assert_eq!(pay.status, PaymentStatus::Assigned);
    assert_eq!(pay.officer_code.as_deref(), Some("EO0001"));
    assert_eq!(pay.details[0].policy, Some(p.id));
}

#[test]
fn a_resend_within_24h_and_a_redelivered_mo_give_the_same_reply_and_no_second_family() {
    let w = World::new();
    let text = "REG 1234 NEW Kimaro Asha 01/01/1985 F V0112";
    let first = w.reply(EO1, text);
    let n = w.families();
    // The officer sends it again (new MO), with other spacing and case.
    let again = w.reply(EO1, "reg  1234 new KIMARO asha 01-01-1985 f v0112");
    assert_eq!(again, first);
    assert_eq!(w.families(), n);
    // A resend is no way around the PIN.
    let wrong = w.reply(EO1, "REG 9999 NEW Kimaro Asha 01/01/1985 F V0112");
    assert!(wrong.contains("PIN si sahihi"), "{wrong}");
    // The SMSC/aggregator redelivers the same MO: no job, no reply, nothing stored.
    let _ = w.send_as(EO1, "STATUS 070707070", "same-id");
    assert!(w.send_as(EO1, "STATUS 070707070", "same-id").is_empty());
    let eo1 = w.store.officer_by_code("EO0001").unwrap().unwrap();
    let audit = audit::of_officer(&w.store, eo1.id).unwrap();
    assert!(audit.iter().any(|e| e.command == "register-repeat"));
    assert!(
        audit.iter().all(|e| !e.text.contains("1234")),
        "PIN kept in clear"
    );
    // Nor does the stored MO keep it once its command is done (the wrong PIN included).
    let stored = inbound::all(&w.store).unwrap();
    assert!(stored
        .iter()
        .any(|m| m.text.starts_with("REG **** NEW Kimaro")));
    for m in &stored {
        assert!(
            !m.text.contains("1234") && !m.text.contains("9999"),
            "PIN at rest in MO {}: {}",
            m.id,
            m.text
        );
    }
}

#[test]
fn every_malformed_field_is_named_with_what_was_received_in_both_languages() {
    let w = World::new();
    let n = w.families();
    let cases = [
        (
            EO2,
            "REG 1234 NEW Mushi Neema 31/02/1990 F V0211",
            "DOB \"31/02/1990\" is not a date; use DD/MM/YYYY",
        ),
        (
            EO1,
            "SAJILI 1234 MPYA Mushi Neema 31/02/1990 KE V0111",
            "Tarehe ya kuzaliwa \"31/02/1990\" si tarehe; tumia DD/MM/YYYY",
        ),
        (
            EO2,
            "REG 12x4 NEW Mushi Neema 12/03/1990 F V0211",
            "PIN \"12x4\" is not a PIN",
        ),
        (
            EO2,
            "REG 1234 12345 Mushi Neema 12/03/1990 F V0211",
            "CHFID \"12345\" is not valid",
        ),
        (
            EO2,
            "REG 1234 NEW Mu$hi Neema 12/03/1990 F V0211",
            "Last name \"Mu$hi\"",
        ),
        (
            EO2,
            "REG 1234 NEW Mushi Ne@ma 12/03/1990 F V0211",
            "Other names \"Ne@ma\"",
        ),
        (
            EO2,
            "REG 1234 NEW Mushi 12/03/1990 F V0211",
            "Other names missing",
        ),
        (
            EO2,
            "REG 1234 NEW Mushi Neema 12/03/1990 Q V0211",
            "Gender \"Q\" is not a gender; use M, F or O",
        ),
        (
            EO2,
            "REG 1234 NEW Mushi Neema 12/03/1990 F V9999",
            "Village \"V9999\" is not a known village",
        ),
        (
            EO2,
            "REG 1234 NEW Mushi Neema 12/03/1990 F V0211 07541",
            "Phone \"07541\"",
        ),
        (
            EO2,
            "REG 1234 NEW Mushi Neema 12/03/1990 F V0211 XYZ99",
            "Product \"XYZ99\" is not a known product",
        ),
        (
            EO2,
            "REG 1234 NEW Mushi Neema 12/03/2090 F V0211",
            "DOB \"12/03/2090\" is in the future",
        ),
        (
            EO2,
            "ADD 1234 070707070 NEW Hamisi Asha 01/02/2015 F COUSIN",
            "Relation \"COUSIN\" is not a relation",
        ),
        (
            EO2,
            "ADD 1234 123456789 NEW Hamisi Asha 01/02/2015 F CHILD",
            "Family CHFID \"123456789\" is not valid",
        ),
        (EO2, "RENEW 1234", "CHFID missing"),
        (EO2, "STATUS 070707070 extra", "Unexpected \"extra\""),
        (EO2, "PENDING x", "Page \"x\" is not a number"),
        (EO2, "FOO 1", "Command \"FOO\" is not a command; send HELP"),
        (EO1, "FOO 1", "Amri \"FOO\" haijulikani"),
    ];
    for (from, text, want) in cases {
        let reply = w.reply(from, text);
        assert!(reply.contains(want), "{text}: {reply}");
    }
    assert_eq!(w.families(), n, "nothing stored by a rejected command");
}

#[test]
fn wrong_pins_lock_the_officer_out_until_an_administrator_unlocks() {
    let w = World::new();
    let text = |i: usize| format!("RENEW 999{i} 100000014");
    for i in 1..=4 {
        let r = w.reply(EO2, &text(i));
        assert!(r.contains(&format!("{} tries left", 5 - i)), "{r}");
    }
    let locked = w.reply(EO2, &text(5));
    assert!(locked.contains("locked"), "{locked}");
    // The right PIN does not help while locked, and nothing is written.
    let n = w.store.counts().unwrap().policies;
    let still = w.reply(EO2, "RENEW 1234 100000014");
    assert!(still.contains("locked"), "{still}");
    assert_eq!(w.store.counts().unwrap().policies, n);
    assert_eq!(auth::unlock(&w.store, "EO0002").unwrap(), Some(true));
    let ok = w.reply(EO2, "RENEW 1234 100000014");
    assert!(ok.contains("Renewal 100000014 CHF01: TZS 30,000"), "{ok}");
    let eo2 = w.store.officer_by_code("EO0002").unwrap().unwrap();
    assert_eq!(auth::pin_state(&w.store, eo2.id).unwrap().failures, 0);
}

/// The 6-digit code in the activation SMS to `phone` (what the officer reads on the phone).
fn activation_code(w: &World, code: &str, valid_h: i64, now: chrono::DateTime<Utc>) -> String {
    let sent = activation::issue(
        &w.store,
        &w.officers.grammar,
        code,
        chrono::Duration::hours(valid_h),
        now,
    )
    .unwrap();
    assert!(sent.to_masked.contains('*'), "{sent:?}");
    let items = w
        .store
        .claim(SMS_TOPIC, 100, Duration::from_secs(60), Utc::now())
        .unwrap();
    assert_eq!(items.len(), 1, "one SMS, to the officer");
    let sms = outbound::decode(&items[0].payload).unwrap();
    w.store.ack(SMS_TOPIC, items[0].seq).unwrap();
    assert_eq!(sms.to.as_str(), EO2);
    let digits: Vec<&str> = sms
        .text
        .split(|c: char| !c.is_ascii_digit())
        .filter(|t| t.len() == 6)
        .collect();
    assert!(!digits.is_empty(), "{}", sms.text);
    digits[0].to_string()
}

#[test]
fn an_officer_without_a_pin_sets_one_with_a_code_sent_to_their_phone() {
    let w = World::new();
    let mut eo2 = w.store.officer_by_code("EO0002").unwrap().unwrap();
    eo2.pin_hash = None;
    w.store
        .write(|tx| -> imis_gateway::store::TxResult<()> {
            tx.put_officer(&eo2)?;
            Ok(())
        })
        .unwrap();
    let no_pin = w.reply(EO2, "RENEW 1234 100000014");
    assert!(no_pin.contains("activation code"), "{no_pin}");

    let code = activation_code(&w, "EO0002", 24, Utc::now());
    // A slip in the new PIN does not use the code up.
    let slip = w.reply(EO2, &format!("PIN {code} 5678 5679"));
    assert!(slip.contains("new PINs differ"), "{slip}");
    let set = w.reply(EO2, &format!("PIN {code} 5678 5678"));
    assert!(set.contains("PIN changed"), "{set}");
    let ok = w.reply(EO2, "RENEW 5678 100000014");
    assert!(ok.contains("Renewal 100000014 CHF01: TZS 30,000"), "{ok}");
    // Used once: the code is no PIN now.
    let again = w.reply(EO2, &format!("PIN {code} 1111 1111"));
    assert!(again.contains("Wrong PIN"), "{again}");
    let eo2 = w.store.officer_by_code("EO0002").unwrap().unwrap();
    assert!(imis_gateway::domain::pin::verify(
        "5678",
        eo2.pin_hash.as_deref().unwrap()
    ));
    for e in audit::of_officer(&w.store, eo2.id).unwrap() {
        assert!(
            !e.text.contains(&code),
            "the code is masked in the audit: {}",
            e.text
        );
    }
}

#[test]
fn wrong_codes_void_a_code_an_expired_one_fails_and_a_fresh_one_opens_a_lockout() {
    let w = World::new();
    // Locked out by wrong PINs: an administrator sends a code.
    for i in 1..=5 {
        w.reply(EO2, &format!("RENEW 999{i} 100000014"));
    }
    let code = activation_code(&w, "EO0002", 24, Utc::now());
    let wrong = if code == "000000" { "000001" } else { "000000" };
    for left in (1..=4).rev() {
        let r = w.reply(EO2, &format!("PIN {wrong} 5678 5678"));
        assert!(r.contains(&format!("{left} tries left")), "{r}");
    }
    let void = w.reply(EO2, &format!("PIN {wrong} 5678 5678"));
    assert!(void.contains("cancelled"), "{void}");
    let late = w.reply(EO2, &format!("PIN {code} 5678 5678"));
    assert!(late.contains("locked"), "a void code is no way in: {late}");

    // A code issued two hours ago, valid for one: expired.
    let old = activation_code(&w, "EO0002", 1, Utc::now() - chrono::Duration::hours(2));
    let expired = w.reply(EO2, &format!("PIN {old} 5678 5678"));
    assert!(expired.contains("locked"), "{expired}");

    let fresh = activation_code(&w, "EO0002", 24, Utc::now());
    let set = w.reply(EO2, &format!("PIN {fresh} 5678 5678"));
    assert!(set.contains("PIN changed"), "{set}");
    let eo2 = w.store.officer_by_code("EO0002").unwrap().unwrap();
    assert_eq!(
        auth::pin_state(&w.store, eo2.id).unwrap(),
        auth::PinState::default()
    );
    let ok = w.reply(EO2, "RENEW 5678 100000014");
    assert!(ok.contains("Renewal 100000014"), "{ok}");
}

#[test]
fn officers_enrol_only_in_their_villages_and_substitutes_inherit_them() {
    let w = World::new();
    // EO0002 works in Mpwapwa; V0111 is Kongwa.
    let r = w.reply(EO2, "REG 1234 NEW Mushi Neema 12/03/1990 F V0111");
    assert!(r.contains("Village V0111 is not in your area"), "{r}");
    // EO0001 (Kongwa) substitutes EO0003, who left: Mpwapwa villages are open to EO0001.
    let r = w.reply(EO1, "SAJILI 1234 MPYA Mushi Neema 12/03/1990 KE V0211");
    assert!(r.contains("imesajiliwa"), "{r}");
    // EO0003 itself can no longer act.
    let r = w.reply(EO3, "HALI 070707070");
    assert!(r.contains("akaunti imeisha"), "{r}");
    // A Kongwa family cannot be changed by EO0002.
    let r = w.reply(EO1, "SAJILI 1234 MPYA Mushi Rehema 12/03/1990 KE V0111");
    let shown = chfid_in(&r).to_string();
    let r = w.reply(
        EO2,
        &format!("ADD 1234 {shown} NEW Mushi Asha 01/02/2015 F CHILD"),
    );
    assert!(r.contains("not in your area"), "{r}");
}

#[test]
fn central_chfids_that_fail_the_rule_are_found_but_a_new_member_must_pass_it() {
    let w = World::new();
    // An 8-digit number and one with a wrong check digit (due: 4), as the central
    // database may hold them.
    let members = common::seed::central_chfids(&w.store, "070707070", &["07070708", "100000010"]);
    for m in &members {
        let typed = m.chfid.to_string();
        let r = w.reply(EO2, &format!("STATUS {typed}"));
        let head = format!("{typed}:");
        assert!(r.starts_with(&head) && r.contains("CHF01"), "{r}");
        let r = w.reply(EO1, &format!("HALI {typed}"));
        assert!(r.starts_with(&head), "{r}");
    }
    let n = w.families();
    for (from, text, want) in [
        (
            EO2,
            "REG 1234 070707071 Mushi Neema 12/03/1990 F V0211",
            "CHFID \"070707071\" is not valid; 9 digits or NEW",
        ),
        (
            EO2,
            "REG 1234 07070709 Mushi Neema 12/03/1990 F V0211",
            "CHFID \"07070709\" is not valid; 9 digits or NEW",
        ),
        // A central number failing the rule is no number to give a NEW member either.
        (
            EO2,
            "REG 1234 100000010 Mushi Neema 12/03/1990 F V0211",
            "CHFID \"100000010\" is not valid; 9 digits or NEW",
        ),
        (
            EO1,
            "SAJILI 1234 070707071 Mushi Neema 12/03/1990 KE V0111",
            "CHFID \"070707071\" si sahihi; tarakimu 9 au MPYA",
        ),
        (
            EO2,
            "ADD 1234 07070708 070707071 Hamisi Asha 01/02/2015 F CHILD",
            "CHFID \"070707071\" is not valid; 9 digits or NEW",
        ),
        // Looked up and not found: a number failing the rule is named as not valid, with
        // the form; a valid one as not registered.
        (
            EO2,
            "STATUS 07070709",
            "CHFID \"07070709\" is not valid; 9 digits or NEW",
        ),
        (
            EO2,
            "ADD 1234 07070709 NEW Hamisi Asha 01/02/2015 F CHILD",
            "Family CHFID \"07070709\" is not valid; the head's 9 digits",
        ),
        (
            EO2,
            "STATUS 555555556",
            "CHFID \"555555556\" is not registered",
        ),
    ] {
        let r = w.reply(from, text);
        assert!(r.contains(want), "{text}: {r}");
    }
    assert_eq!(w.families(), n, "nothing stored by a refused command");
    // The family is found by a member's central number when adding to it.
    let r = w.reply(
        EO1,
        "ONGEZA 1234 07070708 MPYA Hamisi Asha 01/02/2015 KE MTOTO",
    );
    assert!(r.contains("Asha Hamisi ameongezwa"), "{r}");
}

#[test]
fn the_chfid_rule_and_the_form_replies_name_follow_the_domain_config() {
    let w = World::with(|c| {
        c.domain.chfid_length = 8;
        c.domain.chfid_check = imis_gateway::domain::ChfidCheck::None;
    });
    let r = w.reply(EO2, "REG 1234 070707070 Mushi Neema 12/03/1990 F V0211");
    assert!(
        r.contains("CHFID \"070707070\" is not valid; 8 digits or NEW"),
        "{r}"
    );
    let r = w.reply(EO2, "REG 1234 07070709 Mushi Neema 12/03/1990 F V0211");
    assert!(r.contains("Family 07070709 Neema Mushi"), "{r}");
    // A 9-digit central number still names its member.
    let r = w.reply(EO2, "STATUS 070707070");
    assert!(r.starts_with("070707070:"), "{r}");
    // NEW draws an 8-digit number under the rule.
    let r = w.reply(EO2, "REG 1234 NEW Lyimo Grace 01/01/1980 F V0211");
    let drawn = r
        .split(|c: char| !c.is_ascii_digit())
        .find(|t| t.len() == 8)
        .unwrap_or_else(|| panic!("no 8-digit CHFID in {r}"));
    let c = imis_gateway::domain::Chfid::from_central(drawn).unwrap();
    assert!(w.store.chfid_taken(c).unwrap(), "{r}");
}

#[test]
fn duplicate_chfid_is_refused_by_name_and_new_allocates_a_valid_one() {
    let w = World::new();
    let r = w.reply(EO2, "REG 1234 070707070 Mushi Neema 12/03/1990 F V0211");
    assert!(
        r.contains("CHFID 070707070 is already used (Juma Hamisi)"),
        "{r}"
    );
    let r = w.reply(EO2, "REG 1234 NEW Mushi Neema 12/03/1990 F V0211");
    let c = chfid_in(&r);
    assert!(w.store.chfid_taken(c).unwrap());
    let r = w.reply(EO2, "REG 1234 070707070 Other Person 12/03/1990 F V0211");
    assert!(r.contains("already used"), "{r}");
}

#[test]
fn adding_members_past_the_threshold_grows_the_value_as_the_rules_say() {
    let w = World::new();
    let r = w.reply(EO2, "REG 1234 NEW Lyimo Grace 01/01/1980 F V0211");
    let head = chfid_in(&r);
    let shown = head.to_string();
    // Members 2..=6 are inside the lump sum (threshold 6).
    for (i, rel) in ["SPOUSE", "CHILD", "CHILD", "CHILD", "CHILD"]
        .iter()
        .enumerate()
    {
        let r = w.reply(
            EO2,
            &format!(
                "ADD 1234 {shown} NEW Lyimo Kid{} 01/01/201{i} M {rel}",
                (b'a' + i as u8) as char
            ),
        );
        assert!(r.contains("CHF01 now TZS 30,000"), "{r}");
    }
    // The 7th is over the threshold: one more child premium (5,000).
    let r = w.reply(
        EO2,
        &format!("ADD 1234 {shown} NEW Lyimo Seven 01/01/2019 F CHILD"),
    );
    assert!(r.contains("(7 members). CHF01 now TZS 35,000"), "{r}");
    let family = w.store.insuree_by_chfid(head).unwrap().unwrap().family;
    let p = &w.store.family_policies(family).unwrap()[0];
    assert_eq!(p.value, Money::tzs(35_000));
    assert_eq!(w.store.insuree_policies_of_policy(p.id).unwrap().len(), 7);
    let cn = r.split_whitespace().last().unwrap().trim_end_matches('.');
    let pay = w.store.payment_by_control_number(cn).unwrap().unwrap();
    assert_eq!(
        pay.expected_amount,
        Money::tzs(35_000),
        "the pending payment is re-priced"
    );
    // A paid family (Active, 4 members): the 7th member must pay the difference.
    for name in ["Aa", "Bb"] {
        let r = w.reply(
            EO1,
            &format!("ONGEZA 1234 070707070 MPYA Hamisi {name} 01/02/2015 KE MTOTO"),
        );
        assert!(r.contains("sasa TZS 30,000"), "{r}");
    }
    let r = w.reply(
        EO1,
        "ONGEZA 1234 070707070 MPYA Hamisi Cc 01/02/2015 KE MTOTO",
    );
    assert!(
        r.contains("TZS 35,000") && r.contains("Lipa TZS 5,000 zaidi"),
        "{r}"
    );
}

#[test]
fn renew_status_pending_pin_and_help() {
    let w = World::new();
    // Expired family: a renewal with a control number; the head (English SMS) hears too.
    let all = w.send(EO1, "HUISHA 1234 100000014");
    let r = &all.iter().find(|(to, _)| to == EO1).unwrap().1;
    assert!(
        r.contains("Kuhuisha 100000014 CHF01: TZS 30,000, namba ya malipo 99"),
        "{r}"
    );
    let head = &all.iter().find(|(to, _)| to == "255754100002").unwrap().1;
    assert!(head.contains("renewal: pay TZS 30,000"), "{head}");
    // Already waiting for payment: the same control number, nothing new.
    let n = w.store.counts().unwrap().policies;
    let r = w.reply(EO1, "HUISHA 1234 100000025");
    assert!(r.contains("991110000025"), "{r}");
    assert_eq!(w.store.counts().unwrap().policies, n);
    // Status: CHFIDs and letters, no names (issue 14: STATUS carries no PIN).
    let r = w.reply(EO2, "STATUS 070707070");
    assert!(r.starts_with("070707070: CHF01"), "{r}");
    assert!(r.contains("070707070 A") && !r.contains("Juma"), "{r}");
    let r = w.reply(EO2, "STATUS 100000021");
    assert!(r.contains("\"100000021\" is not"), "{r}");
    // Pending renewals, paged within 2 SMS.
    let r = w.reply(EO1, "SUBIRI");
    assert!(r.starts_with("Kuhuisha 1/"), "{r}");
    // PIN change: the old PIN stops working.
    assert_eq!(
        w.reply(EO2, "PIN 1234 8642 8643"),
        "The new PINs differ; send PIN OLD NEW NEW."
    );
    assert_eq!(w.reply(EO2, "PIN 1234 8642 8642"), "PIN changed.");
    assert!(w.reply(EO2, "RENEW 1234 100000014").contains("Wrong PIN"));
    let officer = w.store.officer_by_code("EO0002").unwrap().unwrap();
    assert!(!officer.pin_hash.unwrap().contains("8642"));
    // HELP in both languages, and per command.
    let h = w.reply(EO2, "HELP");
    assert!(h.contains("REG, ADD, RENEW, STATUS, PENDING, PIN"), "{h}");
    let h = w.reply(EO1, "msaada");
    assert!(h.contains("SAJILI, ONGEZA, HUISHA, HALI, SUBIRI"), "{h}");
    assert!(w.reply(EO2, "HELP ADD").starts_with("ADD PIN FamilyCHFID"));
}

#[test]
fn unknown_senders_get_the_member_help_and_nothing_runs() {
    let w = World::new();
    let n = w.families();
    let r = w.reply(
        "255799999999",
        "REG 1234 NEW Mushi Neema 12/03/1990 F V0111",
    );
    assert!(r.starts_with("CHF: Piga"), "{r}");
    assert_eq!(w.families(), n);
    assert_eq!(w.store.pending_count(officer::TOPIC).unwrap(), 0);
}

#[test]
fn a_job_run_again_after_a_crash_finds_its_done_marker_and_changes_nothing() {
    let w = World::new();
    let r = w.reply(EO1, "SAJILI 1234 MPYA Rerun Asha 01/01/1990 KE V0111");
    assert!(r.contains("imesajiliwa"), "{r}");
    let mo = inbound::all(&w.store).unwrap().into_iter().last().unwrap();
    let counts = w.store.counts().unwrap();
    // As after a crash between the command's commit and the job's ack.
    assert_eq!(
        w.officers.process(&w.store, mo.id).unwrap(),
        Processed::AlreadyDone
    );
    assert_eq!(w.store.counts().unwrap(), counts);
    assert_eq!(w.store.pending_count(SMS_TOPIC).unwrap(), 0);
}

#[test]
fn a_lockout_ends_by_itself_after_the_configured_time() {
    let w = World::new();
    let mut config = Config::default();
    config.gepg.mode = imis_gateway::config::GepgMode::Simulator;
    config.officer.grammar_file =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("sms-templates/officer/commands.toml");
    config.officer.max_pin_failures = 2;
    config.officer.lockout_minutes = 0;
    let w = World {
        officers: Officers::from_config(&config).unwrap(),
        ..w
    };
    assert!(w
        .reply(EO2, "RENEW 1111 100000014")
        .contains("1 tries left"));
    assert!(w.reply(EO2, "RENEW 2222 100000014").contains("locked"));
    // A lockout of 0 minutes is over at once: the right PIN works and resets the count.
    let ok = w.reply(EO2, "RENEW 1234 100000014");
    assert!(ok.contains("Renewal 100000014"), "{ok}");
    let eo2 = w.store.officer_by_code("EO0002").unwrap().unwrap();
    assert_eq!(
        auth::pin_state(&w.store, eo2.id).unwrap(),
        auth::PinState::default()
    );
}

#[test]
fn without_a_product_code_reg_uses_the_officer_s_latest_product() {
    let w = World::new();
    let r = w.reply(EO2, "REG 1234 NEW Mollel Rose 01/01/1990 F V0211");
    assert!(r.contains("CHF01 TZS 30,000"), "{r}");
    // The cycle product: 20,000 lump sum + 2,000 registration, less 10% if early enough.
    let r = w.reply(EO2, "REG 1234 NEW Mollel Anna 01/01/1990 F V0211 CHFC1");
    assert!(r.contains("CHFC1 TZS"), "{r}");
    let r = w.reply(EO2, "REG 1234 NEW Mollel Upendo 01/01/1990 F V0211");
    assert!(r.contains("CHFC1 TZS"), "{r}");
}
