//! USSD over SMPP against a real peer (npm `smpp` 0.5.1), issue 15: one PDU per screen,
//! paginated exactly as over HTTP, and input decoded by data_coding as SMS MO is. The
//! acceptance walk visits every screen of the shipped menus in both languages over SMPP
//! and over Africa's Talking (two servers on copies of one data directory, so the same
//! inputs meet the same state) and requires each PDU to be the screen AT returned.

mod common;
mod smsc;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use common::ussd::Ussd;
use common::Server;
use imis_gateway::domain::{Chfid, Language};
use imis_gateway::store::{Store, StoreOptions, TxResult};
use imis_gateway::ussd::menu::{Kind, Menus};
use serde_json::{json, Value};
use smsc::Smsc;

/// Juma Hamisi's phone: head of 070707070, so his family's names are shown to it.
const JUMA: &str = "255754100001";
const CODE: &str = "*152*00#";
/// A family of the seeded data with no policy at all, its head on Juma's phone: "no cover
/// yet", "cannot renew", "nothing due".
const NO_POLICY_CHFID: &str = "123456782";
/// Renewals, limits and nav keys leave the screens alike; hops are not rate limited here.
const ENV: [(&str, &str); 2] = [
    ("IMIS_GATEWAY_LIMITS__USSD_HOPS_PER_MINUTE", "100000"),
    ("IMIS_GATEWAY_LIMITS__USSD_HOP_BURST", "100000"),
];

/// USSD over the SMSC peer: one deliver_sm per hop, the reply is the next USSD submit_sm.
struct SmppUssd<'a> {
    smsc: &'a Smsc,
}

impl SmppUssd<'_> {
    /// Replies with a ussd_service_op (SMS submits are left out).
    fn replies(&self) -> Vec<Value> {
        self.smsc
            .submits()
            .into_iter()
            .filter(|s| !s["ussd_service_op"].is_null())
            .collect()
    }

    /// Sends one USSD deliver_sm and returns the reply PDU.
    fn hop(&self, from: &str, op: u8, session: u8, text: &str, data_coding: u8) -> Value {
        let before = self.replies().len();
        self.smsc.mo(json!({"from": from, "to": CODE, "text": text,
            "data_coding": data_coding, "ussd_service_op": op,
            "its_session_info": [session, 0]}));
        self.smsc.wait("USSD reply", Duration::from_secs(10), |_| {
            self.replies().len() > before
        });
        self.replies()[before].clone()
    }

    /// (ended, screen) of a reply PDU, checking its op and end-of-session bit agree.
    fn screen(reply: &Value) -> (bool, String) {
        let end = reply["ussd_service_op"] == 17;
        let bit = reply["its_session_info"][1].as_u64().unwrap_or(0) & 1 == 1;
        assert_eq!(end, bit, "op and end-of-session bit disagree: {reply}");
        let text = reply["text"].as_str().expect("text").to_string();
        (end, text)
    }
}

/// Starts a demo server once (so the demo world is written), stops it and adds a family
/// with no policy; returns the directory.
fn prepared_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let (status, logs) = Server::start(dir.path(), &["--demo"], &[]).terminate();
    assert!(status.success(), "{}", logs.join("\n"));
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let juma = store
        .insuree_by_chfid(Chfid::parse("070707070").unwrap())
        .unwrap()
        .expect("Juma");
    let village = store.family(juma.family).unwrap().expect("family").village;
    let mut head = juma.clone();
    head.id = 900_002;
    head.uuid = uuid::Uuid::from_u128(900_002);
    head.family = 900_001;
    head.chfid = Chfid::parse(NO_POLICY_CHFID).unwrap();
    head.other_names = "Zawadi".into();
    // Juma's phone is this family's too: "nothing due" for a family linked to it.
    store
        .write(|tx| -> TxResult<()> {
            tx.put_family(&common::seed::family(900_001, 900_002, village))?;
            tx.put_insuree(&head)?;
            Ok(())
        })
        .unwrap();
    store.flush().unwrap();
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// The dials of one language pass, each a list of answers after `*152*00#` (a dial stops
/// at its END). Together they reach every screen the shipped menus have (checked after the
/// walk). `lang_key` is the language menu's key for the pass's language; `renew` a CHFID
/// whose family can be renewed now.
fn scripts(lang_key: &'static str, renew: &'static str) -> Vec<Vec<&'static str>> {
    vec![
        // The language screen (the language does not change).
        vec!["4", lang_key],
        // Coverage by CHFID, with a wrong menu key, an invalid and an unknown CHFID, the
        // result on two pages (a notice pushes it over), "check another", back, home;
        // then by this phone's families; finish.
        vec![
            "9",
            "1",
            "1",
            "12345",
            "555555556",
            "070707070",
            "7",
            "98",
            "0",
            "1",
            "0",
            "00",
            "1",
            "2",
            "1",
            "2",
        ],
        // Three wrong CHFIDs.
        vec!["1", "1", "1", "2", "3"],
        // A family with no policy: no cover, and cannot be renewed.
        vec!["1", "1", NO_POLICY_CHFID],
        vec!["2", "1", NO_POLICY_CHFID],
        // Renew (a control number), then again (the waiting renewal).
        vec!["2", "1", renew, "1", "1"],
        vec!["2", "1", renew, "1", "1"],
        // Renew by this phone's families; decline at the question.
        vec!["2", "2", "1", "1", "2"],
        // Control numbers: this phone's families; a CHFID of a family not linked to it;
        // its own CHFID.
        vec!["3", "1", "1"],
        vec!["3", "2", "100000014"],
        vec!["3", "2", "070707070", "1"],
        vec!["3", "2", NO_POLICY_CHFID],
        // Left at a prompt, then redialled: the resume prompt; continue.
        vec!["1", "1"],
        vec!["1", "070707070", "2"],
    ]
}

/// `smpp` must be the AT screen `at`. The only thing allowed to differ is a control number:
/// each server takes it from its own pool, which the GePG simulator fills concurrently, so
/// two servers may hand out different numbers for the same renewal. Both must show one.
fn assert_same(smpp: &(bool, String), at: &(bool, String), what: &str) {
    let (a, b) = (
        without_control_numbers(&smpp.1),
        without_control_numbers(&at.1),
    );
    assert_eq!((smpp.0, &a.0), (at.0, &b.0), "{what}");
    assert_eq!(a.1, b.1, "{what}: control numbers on one screen only");
}

/// The text with each run of 12 digits (a control number) replaced, and how many there were.
fn without_control_numbers(text: &str) -> (String, usize) {
    let mut out = String::new();
    let mut found = 0;
    let mut run = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_digit() {
            run.push(c);
            continue;
        }
        if run.len() == 12 {
            out.push_str("<control number>");
            found += 1;
        } else {
            out.push_str(&run);
        }
        run.clear();
        out.push(c);
    }
    out.pop();
    (out, found)
}

/// Walks `scripts` as one phone over AT (server `at`) and over SMPP, hop by hop; every
/// SMPP PDU must be the AT screen. Returns the screens seen.
fn walk_both(
    u: &Ussd,
    smpp: &SmppUssd<'_>,
    tag: &str,
    scripts: &[Vec<&str>],
    n: &mut u8,
) -> Vec<String> {
    let mut seen = Vec::new();
    for (i, script) in scripts.iter().enumerate() {
        *n = n.wrapping_add(1);
        let session = format!("walk-{tag}-{i}");
        let mut inputs: Vec<&str> = Vec::new();
        let at = u.at(&session, JUMA, CODE, "");
        let over_smpp = SmppUssd::screen(&smpp.hop(JUMA, 1, *n, CODE, 0));
        assert_same(&over_smpp, &at, &format!("{tag} dial {i}"));
        seen.push(at.1);
        for input in script {
            inputs.push(input);
            let at = u.at(&session, JUMA, CODE, &inputs.join("*"));
            let over_smpp = SmppUssd::screen(&smpp.hop(JUMA, 18, *n, input, 0));
            assert_same(&over_smpp, &at, &format!("{tag} dial {i} after {inputs:?}"));
            seen.push(at.1);
            if at.0 {
                break;
            }
        }
    }
    seen
}

/// Panics unless every visible screen of the shipped menus (and the engine's resume,
/// invalid-choice and CHFID notices) showed up in `seen`, in `lang`. Screens that need a
/// live GePG (the number comes later by SMS) cannot be reached with the simulator.
fn assert_every_screen(seen: &[String], lang: Language) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("menus");
    let menus = Menus::load(&dir, imis_gateway::ussd::actions::NAMES).unwrap();
    let unreachable: BTreeSet<&str> = ["renew_pending"].into();
    let mut missing = Vec::new();
    let mut check = |id: &str, template: &str| {
        // The fixed text before the first placeholder or line break.
        let fixed = template.split(['{', '\n']).next().unwrap_or("").trim();
        if !seen.iter().any(|s| s.contains(fixed)) {
            missing.push(format!("{id}: {fixed:?}"));
        }
    };
    for (id, screen) in &menus.screens {
        // The facility staff journey (issue 21) starts only for a registered staff phone;
        // tests/facility_verify.rs walks it over AT and /ussd/json.
        let staff_only = id.starts_with("facility_");
        if screen.def.kind == Kind::Action || unreachable.contains(id.as_str()) || staff_only {
            continue;
        }
        check(id, screen.def.text().get(lang));
    }
    for key in ["resume", "invalid_choice", "chfid_invalid", "chfid_unknown"] {
        check(key, menus.text(key, lang));
    }
    assert!(missing.is_empty(), "{lang:?}: not walked: {missing:#?}");
}

#[test]
fn every_screen_over_smpp_is_the_screen_africas_talking_gets_in_both_languages() {
    let prepared = prepared_dir();
    let at_dir = tempfile::tempdir().unwrap();
    let smpp_dir = tempfile::tempdir().unwrap();
    copy_dir(prepared.path(), at_dir.path());
    copy_dir(prepared.path(), smpp_dir.path());
    let at_server = Server::start(at_dir.path(), &["--demo"], &ENV);
    let smsc = Smsc::start(&[]);
    let mut env = smsc.gateway_env();
    env.extend(ENV.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let smpp_server = Server::start(smpp_dir.path(), &["--demo"], &env);
    smsc.wait("bound", Duration::from_secs(20), |s| s.bound() == 1);
    let u = Ussd::new(&at_server);
    let smpp = SmppUssd { smsc: &smsc };
    let mut n = 0u8;

    // Kiswahili (the default), renewing Juma's family (so his phone has a control number
    // waiting); then English, renewing Neema's expired one. English is chosen first.
    let sw = walk_both(&u, &smpp, "sw", &scripts("1", "070707070"), &mut n);
    assert_every_screen(&sw, Language::Sw);
    walk_both(&u, &smpp, "switch", &[vec!["4", "2"]], &mut n);
    let en = walk_both(&u, &smpp, "en", &scripts("2", "100000014"), &mut n);
    assert_every_screen(&en, Language::En);

    for server in [at_server, smpp_server] {
        let (status, logs) = server.terminate();
        assert!(status.success(), "{}", logs.join("\n"));
    }
}

#[test]
fn a_screen_longer_than_an_sms_segment_is_one_pdu_and_ucs2_input_is_read() {
    let smsc = Smsc::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let mut env = smsc.gateway_env();
    env.extend(ENV.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server = Server::start(dir.path(), &["--demo"], &env);
    smsc.wait("bound", Duration::from_secs(20), |s| s.bound() == 1);
    let smpp = SmppUssd { smsc: &smsc };

    // *152*00# → 1 → 1 → 070707070 from the family's phone: a 176-character screen.
    smpp.hop(JUMA, 1, 1, CODE, 0);
    smpp.hop(JUMA, 18, 1, "1", 0);
    smpp.hop(JUMA, 18, 1, "1", 0);
    let reply = smpp.hop(JUMA, 18, 1, "070707070", 0);
    let (end, screen) = SmppUssd::screen(&reply);
    assert!(!end, "{screen}");
    assert!(
        screen.chars().count() > 153,
        "{} chars: {screen}",
        screen.len()
    );
    assert!(
        screen.contains("\n1 Angalia nyingine\n2 Maliza\n"),
        "{screen}"
    );
    assert!(screen.ends_with("0 Rudi 00 Mwanzo"), "{screen}");
    assert_eq!(reply["data_coding"], 0);
    assert_eq!(reply["udh"], "", "one PDU, no concatenation header");
    let (end, _) = SmppUssd::screen(&smpp.hop(JUMA, 18, 1, "2", 0));
    assert!(end);

    // A UCS2 "1" (0x0031, data_coding 8) is "1": the coverage menu, not "invalid choice".
    smpp.hop(JUMA, 1, 2, CODE, 0);
    let (_, menu) = SmppUssd::screen(&smpp.hop(JUMA, 18, 2, "1", 8));
    assert!(menu.starts_with("Angalia bima kwa:"), "{menu}");
    // A UCS2 dial string with inputs in it.
    let (_, prompt) = SmppUssd::screen(&smpp.hop(JUMA, 1, 3, "*152*00*1*1#", 8));
    assert!(prompt.contains("Weka namba ya CHF"), "{prompt}");
    smpp.hop(JUMA, 18, 3, "070707070", 0);
    let (end, _) = SmppUssd::screen(&smpp.hop(JUMA, 18, 3, "2", 0));
    assert!(end);

    // Another msisdn with Juma's its_session_info number continues nothing of his.
    smpp.hop(JUMA, 1, 4, CODE, 0);
    smpp.hop(JUMA, 18, 4, "1", 0);
    let (end, theirs) = SmppUssd::screen(&smpp.hop("255700000009", 18, 4, "1", 0));
    assert!(end && !theirs.contains("Weka namba"), "{theirs}");
    let (_, mine) = SmppUssd::screen(&smpp.hop(JUMA, 18, 4, "1", 0));
    assert!(mine.contains("Weka namba ya CHF"), "{mine}");

    let (status, logs) = server.terminate();
    assert!(status.success(), "{}", logs.join("\n"));
}
