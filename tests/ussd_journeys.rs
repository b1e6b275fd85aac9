//! Member journeys through the real server, over both adapters (Africa's Talking form and
//! JSON): coverage, renewal, control numbers, language; pagination, back/home, invalid input,
//! dial strings, duplicate hops, malformed requests and metrics per gateway. Every screen is
//! checked against its encoding's limit by the client helpers. Names and control numbers
//! are looked up from the family's own phone (JUMA): what other phones see is
//! tests/security_ussd.rs's.

mod common;

use common::ussd::{control_number, metric, queued_sms, walk, Dialog, Gw, Ussd};
use common::Server;
use imis_gateway::store::{Store, StoreOptions};

const JUMA: &str = "255754100001";
const NEEMA: &str = "255754100002";
const BARAKA: &str = "255754100003";
const STRANGER: &str = "255700000009";

fn demo_server(dir: &std::path::Path) -> Server {
    Server::start(dir, &["--demo"], &[])
}

#[test]
fn central_chfids_that_fail_the_rule_are_found_when_typed() {
    // Members of Juma's family (070707070) with an 8-digit number and one with a wrong
    // check digit (due: 4), as the central database may hold them.
    let dir = common::officer::seeded_dir();
    {
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        common::seed::central_chfids(&store, "070707070", &["07070708", "100000010"]);
    }
    let server = demo_server(dir.path());
    let u = Ussd::new(&server);
    // The third fails the rule and is nobody's: refused, naming the expected form.
    let cases = [("07070708", true), ("100000010", true), ("07070709", false)];
    for gw in Gw::BOTH {
        for (typed, found) in cases {
            let (mut s, _) = Dialog::dial(&u, gw, &format!("central-{typed}"), JUMA);
            let (end, reply) = walk(&mut s, &["1", "1", typed]);
            let ok = if found {
                reply.contains("Juma H. A") && reply.contains("CHF01")
            } else {
                reply.starts_with("Namba ya CHF ina tarakimu 9;")
            };
            assert!(!end && ok, "{gw:?} {typed}: {reply}");
        }
    }
}

#[test]
fn the_typed_chfid_rule_and_its_texts_follow_the_domain_config() {
    let dir = tempfile::tempdir().unwrap();
    let eight = [
        ("IMIS_GATEWAY_DOMAIN__CHFID_LENGTH", "8"),
        ("IMIS_GATEWAY_DOMAIN__CHFID_CHECK", "none"),
    ];
    let server = Server::start(dir.path(), &["--demo"], &eight);
    let u = Ussd::new(&server);
    let (mut s, _) = Dialog::dial(&u, Gw::At, "rule-8", JUMA);
    // Each answer and what the screen after it must say: the prompt and the refusal name
    // 8 digits, and 070707070, which fails an 8-digit rule, is still Juma's.
    let steps = [
        ("1", "Namba ya CHF"),
        ("1", "(tarakimu 8)"),
        ("1234567", "Namba ya CHF ina tarakimu 8;"),
        ("070707070", "Juma H. A"),
    ];
    for (answer, want) in steps {
        let (end, screen) = s.send(answer);
        assert!(!end && screen.contains(want), "{answer}: {screen}");
    }
}

#[test]
fn coverage_by_chfid_with_pagination_back_home_and_masked_names() {
    let dir = tempfile::tempdir().unwrap();
    let server = demo_server(dir.path());
    let u = Ussd::new(&server);
    for gw in Gw::BOTH {
        let (mut s, home) = Dialog::dial(&u, gw, "cov-1", JUMA);
        assert!(
            home.contains("Karibu") && home.contains("1 Angalia bima"),
            "{gw:?}: {home}"
        );
        assert!(!home.contains("Rudi"), "home has no back key: {home}");
        let (_, menu) = s.send("1");
        assert!(
            menu.contains("1 Namba ya CHF") && menu.contains("0 Rudi 00 Mwanzo"),
            "{gw:?}: {menu}"
        );
        let (_, prompt) = s.send("1");
        assert!(prompt.contains("Weka namba ya CHF"), "{gw:?}: {prompt}");
        // Back one screen, then forward again, then home.
        let (_, back) = s.send("0");
        assert_eq!(back, menu, "{gw:?}");
        s.send("1");
        let (_, home_again) = s.send("00");
        assert_eq!(home_again, home, "{gw:?}");
        let (end, result) = walk(&mut s, &["1", "1", "070707070"]);
        assert!(!end, "{gw:?}: {result}");
        assert!(
            result.contains("Juma H.:") && result.contains("CHF01"),
            "{gw:?}: {result}"
        );
        assert!(
            result.contains("Juma H. A"),
            "masked name and status letter: {result}"
        );
        assert!(!result.contains("Hamisi"), "surnames are masked: {result}");
        assert!(!result.contains("98 Zaidi"), "one page: {result}");
        // A wrong choice adds a notice, which pushes the screen onto two pages.
        let (_, page1) = s.send("7");
        assert!(page1.starts_with("Chaguo si sahihi."), "{gw:?}: {page1}");
        assert!(page1.ends_with("98 Zaidi 0 Rudi 00 Mwanzo"), "{page1}");
        let (_, page2) = s.send("98");
        assert!(
            page2.contains("1 Angalia nyingine") && !page2.contains("98 Zaidi"),
            "{gw:?}: {page2}"
        );
        assert!(!page2.contains("Chaguo si sahihi"), "{page2}");
        // 0 on page 2 goes back to page 1 (not to the previous screen), notice and all.
        let (_, back_to_page1) = s.send("0");
        assert_eq!(back_to_page1, page1, "{gw:?}");
        // 98 on the last page is not an option: it stays put.
        s.send("98");
        let (_, last_again) = s.send("98");
        assert!(last_again.contains("1 Angalia nyingine"), "{last_again}");
        let (end, bye) = s.send("2");
        assert!(end && bye.contains("Asante"), "{gw:?}: {bye}");
    }
}

#[test]
fn invalid_and_unknown_chfids_are_retried_three_times() {
    let dir = tempfile::tempdir().unwrap();
    let server = demo_server(dir.path());
    let u = Ussd::new(&server);
    for gw in Gw::BOTH {
        let (mut s, _) = Dialog::dial(&u, gw, "bad-1", JUMA);
        walk(&mut s, &["1", "1"]);
        let (end, bad) = s.send("12345");
        assert!(
            !end && bad.starts_with("Namba ya CHF ina tarakimu 9"),
            "{gw:?}: {bad}"
        );
        assert!(bad.contains("Weka namba ya CHF"), "asked again: {bad}");
        // Valid check digit, but nobody has it.
        let (end, unknown) = s.send("555555556");
        assert!(
            !end && unknown.contains("555555556 haijasajiliwa"),
            "{gw:?}: {unknown}"
        );
        let (end, last) = s.send("070707071");
        assert!(end && last.contains("Umekosea mara tatu"), "{gw:?}: {last}");
        // A re-dial starts clean, and a correct CHFID after one mistake works.
        let (mut s, _) = Dialog::dial(&u, gw, "bad-2", JUMA);
        walk(&mut s, &["1", "1", "070707071"]);
        let (_, ok) = s.send("070707070");
        assert!(ok.contains("Juma H. A"), "{gw:?}: {ok}");
        // An invalid menu choice is not a "try": the menu says so and waits.
        let (mut s, _) = Dialog::dial(&u, gw, "bad-3", JUMA);
        for _ in 0..4 {
            let (end, again) = s.send("9");
            assert!(!end && again.starts_with("Chaguo si sahihi."), "{again}");
        }
        let (end, bye) = walk(&mut s, &["1", "1", "070707070", "2"]);
        assert!(end && bye.contains("Asante"), "{bye}");
    }
}

#[test]
fn dial_string_inputs_on_the_first_hop_are_applied_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let server = demo_server(dir.path());
    let u = Ussd::new(&server);
    for gw in Gw::BOTH {
        // Inputs after the dial: AT's `text`, JSON's `input`.
        let (mut s, (end, screen)) =
            Dialog::dial_with(&u, gw, "dial-1", JUMA, "*152*00#", "1*1*070707070");
        assert!(!end && screen.contains("Juma H. A"), "{gw:?}: {screen}");
        let (end, bye) = s.send("2");
        assert!(end && bye.contains("Asante"), "{gw:?}: {bye}");
        // Inputs in the dialled code itself: *152*00*1#.
        let (mut s, (_, menu)) = Dialog::dial_with(&u, gw, "dial-2", JUMA, "*152*00*1#", "");
        assert!(menu.contains("Angalia bima kwa"), "{gw:?}: {menu}");
        let (_, prompt) = s.send("1");
        assert!(prompt.contains("Weka namba ya CHF"), "{gw:?}: {prompt}");
        // The whole journey in the code: *152*00*1*1*070707070#.
        let (_, (end, result)) =
            Dialog::dial_with(&u, gw, "dial-3", JUMA, "*152*00*1*1*070707070#", "");
        assert!(!end && result.contains("Juma H. A"), "{gw:?}: {result}");
        // Inputs that end the journey stop there; later ones are not applied.
        let (_, (end, bye)) = Dialog::dial_with(&u, gw, "dial-4", JUMA, "*152*00*4*1#", "7");
        assert!(end && bye.contains("Lugha imebadilishwa"), "{gw:?}: {bye}");
        // Another service code is not ours to parse: it just starts at home.
        let (_, (end, home)) = Dialog::dial_with(&u, gw, "dial-5", JUMA, "*150*1#", "");
        assert!(!end && home.contains("Karibu"), "{gw:?}: {home}");
    }
}

#[test]
fn renewal_is_durable_idempotent_over_both_adapters_and_sms_is_queued() {
    let dir = tempfile::tempdir().unwrap();
    let server = demo_server(dir.path());
    let u = Ussd::new(&server);
    // AT: a fresh renewal of Neema's family.
    let (mut s, _) = Dialog::dial(&u, Gw::At, "renew-1", NEEMA);
    walk(&mut s, &["2", "1"]);
    let (_, products) = s.send("100000014");
    assert!(products.contains("1 CHF01 TZS 30,000"), "{products}");
    let (_, ask) = s.send("1");
    assert!(ask.contains("Kulipia CHF01"), "{ask}");
    let (end, done) = s.send("1");
    assert!(end, "{done}");
    let cn = control_number(&done);
    assert!(done.contains("Lipa TZS 30,000 (CHF01)"), "{done}");
    // The gateway re-sends the confirm hop: same screen, nothing written again.
    assert_eq!(s.resend(), (true, done.clone()));
    assert_eq!(s.resend(), (true, done.clone()));
    // JSON: the same family again shows the waiting renewal, and a re-send is answered the
    // same way.
    let (mut j, _) = Dialog::dial(&u, Gw::Json, "renew-2", NEEMA);
    walk(&mut j, &["2", "1", "100000014", "1"]);
    let (end, existing) = j.send("1");
    assert!(
        end && existing.contains("Tayari") && existing.contains(&cn),
        "{existing}"
    );
    assert_eq!(j.resend(), (true, existing));
    // My control number lists it, from the family's phone, over both adapters.
    for gw in Gw::BOTH {
        let (_, (_, list)) = Dialog::dial_with(&u, gw, "cn-1", NEEMA, "*152*00#", "3*1");
        assert!(
            list.contains(&cn) && list.contains("TZS 30,000"),
            "{gw:?}: {list}"
        );
    }
    let m = u.metrics();
    assert_eq!(
        metric(&m, "ussd_duplicate_hops_total{gateway=\"africastalking\"}"),
        2,
        "{m}"
    );
    assert_eq!(
        metric(&m, "ussd_duplicate_hops_total{gateway=\"json\"}"),
        1,
        "{m}"
    );

    let (status, logs) = server.terminate();
    assert!(status.success(), "{}", logs.join("\n"));
    let store = imis_gateway::store::Store::open(dir.path(), Default::default()).unwrap();
    let payment = store
        .payment_by_control_number(&cn)
        .unwrap()
        .expect("payment");
    assert_eq!(payment.expected_amount.to_string(), "30,000");
    let policy_id = payment.details[0].policy.expect("policy");
    let policy = store.policy(policy_id).unwrap().expect("policy");
    assert_eq!(policy.status, imis_gateway::domain::PolicyStatus::Idle);
    assert_eq!(policy.stage, imis_gateway::domain::PolicyStage::Renewal);
    assert_eq!(
        store.insuree_policies_of_policy(policy_id).unwrap().len(),
        3
    );
    let renewals = store
        .family_policies(policy.family)
        .unwrap()
        .into_iter()
        .filter(|p| p.status == imis_gateway::domain::PolicyStatus::Idle)
        .count();
    assert_eq!(renewals, 1, "one renewal, whatever the retries");
    drop(store);
    let sms = queued_sms(dir.path());
    let with_cn: Vec<&String> = sms.iter().filter(|t| t.contains(&cn)).collect();
    assert_eq!(with_cn.len(), 1, "{sms:?}");
}

#[test]
fn the_demo_idle_renewal_shows_its_control_number_and_families_are_picked_by_phone() {
    let dir = tempfile::tempdir().unwrap();
    let server = demo_server(dir.path());
    let u = Ussd::new(&server);
    for gw in Gw::BOTH {
        let (mut s, _) = Dialog::dial(&u, gw, "idle-1", BARAKA);
        s.send("2");
        let (_, families) = s.send("2");
        assert!(
            families.contains("1 Baraka K. 100000025"),
            "{gw:?}: {families}"
        );
        assert!(!families.contains("Kimaro"), "masked: {families}");
        // Not on the list: invalid, asked again.
        let (_, again) = s.send("5");
        assert!(again.starts_with("Chaguo si sahihi."), "{again}");
        let (_, products) = s.send("1");
        assert!(products.contains("CHF01"), "{gw:?}: {products}");
        s.send("1");
        let (end, existing) = s.send("1");
        assert!(
            end && existing.contains("991110000025"),
            "{gw:?}: {existing}"
        );
        // A phone with no family is told so and asked for a CHFID.
        // (A phone per gateway: the first one's session stops at a prompt, and a redial
        // from the same phone would be offered to resume it.)
        let stranger = if gw == Gw::At {
            STRANGER
        } else {
            "255700000008"
        };
        let (mut s, _) = Dialog::dial(&u, gw, "idle-2", stranger);
        s.send("1");
        let (_, none) = s.send("2");
        assert!(
            none.starts_with("Simu hii haijaunganishwa"),
            "{gw:?}: {none}"
        );
        assert!(none.contains("Weka namba ya CHF"), "{none}");
        // My control number for a CHFID with nothing due, from the family's own phone
        // (another phone is not shown a family's control numbers: tests/security_ussd.rs).
        let (_, (end, nothing)) =
            Dialog::dial_with(&u, gw, "idle-3", JUMA, "*152*00#", "3*2*070707070");
        assert!(
            end && nothing.contains("Hakuna malipo"),
            "{gw:?}: {nothing}"
        );
    }
}

#[test]
fn language_choice_is_remembered_per_phone_across_gateways() {
    let dir = tempfile::tempdir().unwrap();
    let server = demo_server(dir.path());
    let u = Ussd::new(&server);
    // Chosen over AT...
    let (mut s, _) = Dialog::dial(&u, Gw::At, "lang-1", JUMA);
    s.send("4");
    let (end, done) = s.send("2");
    assert!(end && done.contains("Language changed"), "{done}");
    // ...remembered on the next dial over JSON, in every screen and the navigation keys.
    let (mut s, home) = Dialog::dial(&u, Gw::Json, "lang-2", JUMA);
    assert!(
        home.contains("Welcome") && home.contains("Check coverage"),
        "{home}"
    );
    s.send("1");
    let (_, prompt) = s.send("1");
    assert!(prompt.contains("0 Back 00 Home"), "{prompt}");
    let (_, bad) = s.send("12");
    assert!(bad.starts_with("A CHFID has 9 digits"), "{bad}");
    let (_, result) = s.send("070707070");
    assert!(result.contains("Cover of Juma H.'s family"), "{result}");
    // Other phones keep the default, Kiswahili.
    let (_, other) = Dialog::dial(&u, Gw::At, "lang-3", STRANGER);
    assert!(other.contains("Karibu"), "{other}");
    // Switched back over JSON, seen over AT.
    let (_, (end, _)) = Dialog::dial_with(&u, Gw::Json, "lang-4", JUMA, "*152*00#", "4*1");
    assert!(end);
    let (_, home) = Dialog::dial(&u, Gw::At, "lang-5", JUMA);
    assert!(home.contains("Karibu"), "{home}");
}

#[test]
fn malformed_requests_get_a_clear_400_and_metrics_are_per_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let server = demo_server(dir.path());
    let u = Ussd::new(&server);
    let (code, body) = u.at_raw(&[("serviceCode", "*152*00#"), ("phoneNumber", JUMA)]);
    assert_eq!((code, body.as_str()), (400, "missing field sessionId"));
    let (code, body) = u.at_raw(&[
        ("sessionId", "x"),
        ("serviceCode", "*152*00#"),
        ("phoneNumber", "07x"),
    ]);
    assert_eq!(code, 400);
    assert!(body.starts_with("phoneNumber:"), "{body}");
    let (code, body) = u.json_raw("{not json");
    assert_eq!(code, 400);
    assert!(body.contains("JSON"), "{body}");
    let (code, body) = u.json_raw(r#"{"sessionId":"a","msisdn":"255754100001","type":"hello"}"#);
    assert_eq!(code, 400);
    assert!(body.contains("begin, continue, end or abort"), "{body}");
    let (code, body) =
        u.json_raw(r#"{"sessionId":"a","msisdn":"255754100001","type":"begin","hop":-1}"#);
    assert_eq!(code, 400, "{body}");
    let (code, body) = u.json_raw(r#"{"msisdn":"255754100001","type":"begin"}"#);
    assert_eq!(
        (code, body.as_str()),
        (400, "missing string field sessionId")
    );
    let (code, body) = u.rt.block_on(async {
        let r = u
            .client
            .post(format!("{}/ussd/africastalking/events", u.base))
            .form(&[("sessionId", "x"), ("phoneNumber", JUMA)])
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    });
    assert_eq!(code, 400);
    assert!(body.contains("status"), "{body}");
    // Nothing was stored for the rejected requests: no session started.
    let m = u.metrics();
    assert!(!m.contains("event=\"started\"} 1"), "{m}");
    // A continue for a session nobody began is over, not a crash.
    let (end, over) = u.json("never-begun", JUMA, "continue", "1", 3);
    assert!(end && over.contains("Kikao hiki kimekwisha"), "{over}");
    // Two hops over AT, three over JSON (one of them the continue above).
    let (mut s, _) = Dialog::dial(&u, Gw::At, "metrics-1", JUMA);
    s.send("1");
    let (mut j, _) = Dialog::dial(&u, Gw::Json, "metrics-2", STRANGER);
    let (end, _) = walk(&mut j, &["4", "1"]);
    assert!(end);
    let m = u.metrics();
    let at = |series: &str| metric(&m, &format!("{series}{{gateway=\"africastalking\"}}"));
    let js = |series: &str| metric(&m, &format!("{series}{{gateway=\"json\"}}"));
    assert_eq!(
        (at("ussd_hops_total"), js("ussd_hops_total")),
        (2, 4),
        "{m}"
    );
    assert_eq!(at("ussd_hop_latency_seconds_count"), 2, "{m}");
    assert_eq!(js("ussd_hop_latency_seconds_count"), 4, "{m}");
    let ev = |g: &str, e: &str| {
        metric(
            &m,
            &format!("ussd_sessions_total{{gateway=\"{g}\",event=\"{e}\"}}"),
        )
    };
    assert_eq!(ev("africastalking", "started"), 1, "{m}");
    assert_eq!(ev("africastalking", "completed"), 0, "{m}");
    assert_eq!(ev("json", "started"), 1, "{m}");
    assert_eq!(ev("json", "completed"), 1, "{m}");
}
