//! Member journeys through the real server, over both adapters: coverage, renewal, control
//! numbers, language; pagination, back/home, invalid input, duplicate hops, malformed
//! requests and metrics. Every screen is checked against its encoding's limit.

mod common;

use common::ussd::{queued_sms, AtSession, Ussd};
use common::Server;

const JUMA: &str = "255754100001";
const NEEMA: &str = "255754100002";
const BARAKA: &str = "255754100003";
const STRANGER: &str = "255700000009";

fn demo_server(dir: &std::path::Path) -> Server {
    Server::start(dir, &["--demo"], &[])
}

#[test]
fn coverage_by_chfid_with_pagination_back_and_home() {
    let dir = tempfile::tempdir().unwrap();
    let server = demo_server(dir.path());
    let u = Ussd::new(&server);
    let (mut s, home) = AtSession::dial(&u, "at-cov-1", STRANGER);
    assert!(
        home.contains("Karibu") && home.contains("1 Angalia bima"),
        "{home}"
    );
    assert!(!home.contains("Rudi"), "home has no back key: {home}");
    let (_, menu) = s.send("1");
    assert!(
        menu.contains("1 Namba ya CHF") && menu.contains("0 Rudi 00 Mwanzo"),
        "{menu}"
    );
    let (_, prompt) = s.send("1");
    assert!(prompt.contains("Weka namba ya CHF"), "{prompt}");
    // Back one screen, then forward again, then home.
    let (_, back) = s.send("0");
    assert_eq!(back, menu);
    s.send("1");
    let (_, home_again) = s.send("00");
    assert_eq!(home_again, home);
    s.send("1");
    s.send("1");
    let (end, result) = s.send("070707070");
    assert!(!end);
    assert!(
        result.contains("Juma H.:") && result.contains("CHF01"),
        "{result}"
    );
    assert!(
        result.contains("Juma H. A"),
        "masked name and letter: {result}"
    );
    assert!(!result.contains("Hamisi"), "surnames are masked: {result}");
    // A wrong choice adds a notice, which pushes the screen onto two pages.
    let (_, page1) = s.send("7");
    assert!(page1.starts_with("Chaguo si sahihi."), "{page1}");
    assert!(page1.contains("98 Zaidi"), "{page1}");
    let (_, page2) = s.send("98");
    assert!(
        page2.contains("1 Angalia nyingine") && !page2.contains("98 Zaidi"),
        "{page2}"
    );
    let (_, back_to_page1) = s.send("0");
    assert!(
        back_to_page1.contains("98 Zaidi"),
        "0 on page 2 goes to page 1: {back_to_page1}"
    );
    let (end, bye) = s.send("98");
    assert!(!end, "{bye}");
    let (end, bye) = s.send("2");
    assert!(end && bye.contains("Asante"), "{bye}");
}

#[test]
fn invalid_and_unknown_chfids_are_retried_three_times() {
    let dir = tempfile::tempdir().unwrap();
    let server = demo_server(dir.path());
    let u = Ussd::new(&server);
    let (mut s, _) = AtSession::dial(&u, "at-bad-1", STRANGER);
    s.send("1");
    s.send("1");
    let (end, bad) = s.send("12345");
    assert!(
        !end && bad.starts_with("Namba ya CHF ina tarakimu 9"),
        "{bad}"
    );
    // Valid check digit, but nobody has it.
    let (end, unknown) = s.send("555555556");
    assert!(
        !end && unknown.contains("555555556 haijasajiliwa"),
        "{unknown}"
    );
    let (end, last) = s.send("070707071");
    assert!(end && last.contains("Umekosea mara tatu"), "{last}");
    // A re-dial starts clean, and a correct CHFID after one mistake works.
    let (mut s, _) = AtSession::dial(&u, "at-bad-2", STRANGER);
    s.send("1");
    s.send("1");
    s.send("070707071");
    let (_, ok) = s.send("070707070");
    assert!(ok.contains("Juma H. A"), "{ok}");
}

#[test]
fn dial_string_inputs_on_the_first_hop_are_applied_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let server = demo_server(dir.path());
    let u = Ussd::new(&server);
    let (end, screen) = u.at("at-dial-1", STRANGER, "*152*00#", "1*1*070707070");
    assert!(!end && screen.contains("Juma H. A"), "{screen}");
    // The next hop continues from there with the cumulative text.
    let (end, bye) = u.at("at-dial-1", STRANGER, "*152*00#", "1*1*070707070*2");
    assert!(end && bye.contains("Asante"), "{bye}");
    // Inputs in the service code itself.
    let (_, menu) = u.at("at-dial-2", STRANGER, "*152*00*1#", "");
    assert!(menu.contains("Angalia bima kwa"), "{menu}");
    let (_, prompt) = u.at("at-dial-2", STRANGER, "*152*00*1#", "1");
    assert!(prompt.contains("Weka namba ya CHF"), "{prompt}");
}

#[test]
fn renewal_over_json_is_durable_idempotent_and_sms_is_queued() {
    let dir = tempfile::tempdir().unwrap();
    let server = demo_server(dir.path());
    let u = Ussd::new(&server);
    let sid = "json-renew-1";
    let (_, home) = u.json(sid, NEEMA, "begin", "", 0);
    assert!(home.contains("Karibu"), "{home}");
    u.json(sid, NEEMA, "continue", "2", 1);
    u.json(sid, NEEMA, "continue", "1", 2);
    let (_, products) = u.json(sid, NEEMA, "continue", "100000014", 3);
    assert!(products.contains("1 CHF01 TZS 30,000"), "{products}");
    let (_, ask) = u.json(sid, NEEMA, "continue", "1", 4);
    assert!(ask.contains("Kulipia CHF01"), "{ask}");
    let (end, done) = u.json(sid, NEEMA, "continue", "1", 5);
    assert!(end, "{done}");
    let cn = done
        .split_whitespace()
        .find(|w| w.len() == 12 && w.starts_with("99"))
        .unwrap_or_else(|| panic!("no control number in {done}"))
        .to_string();
    // The gateway re-sends the confirm hop: same screen, nothing written again.
    let (_, again) = u.json(sid, NEEMA, "continue", "1", 5);
    assert_eq!(again, done);
    // A second renewal of the same family shows the waiting one.
    let sid2 = "json-renew-2";
    u.json(sid2, NEEMA, "begin", "2*1*100000014*1", 0);
    let (end, existing) = u.json(sid2, NEEMA, "continue", "1", 1);
    assert!(
        end && existing.contains("Tayari") && existing.contains(&cn),
        "{existing}"
    );
    // My control number lists it, from the family's phone.
    let (_, list) = u.json("json-cn-1", NEEMA, "begin", "3*1", 0);
    assert!(list.contains(&cn) && list.contains("TZS 30,000"), "{list}");
    let metrics = u.metrics();
    assert!(
        metrics.contains("ussd_duplicate_hops_total{gateway=\"json\"} 1"),
        "{metrics}"
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
    let (mut s, _) = AtSession::dial(&u, "at-idle-1", BARAKA);
    s.send("2");
    let (_, families) = s.send("2");
    assert!(families.contains("1 Baraka K. 100000025"), "{families}");
    let (_, products) = s.send("1");
    assert!(products.contains("CHF01"), "{products}");
    s.send("1");
    let (end, existing) = s.send("1");
    assert!(end && existing.contains("991110000025"), "{existing}");
    // A phone with no family is told so and asked for a CHFID.
    let (mut s, _) = AtSession::dial(&u, "at-idle-2", STRANGER);
    s.send("1");
    let (_, none) = s.send("2");
    assert!(none.starts_with("Simu hii haijaunganishwa"), "{none}");
    assert!(none.contains("Weka namba ya CHF"), "{none}");
}

#[test]
fn language_choice_is_remembered_per_phone() {
    let dir = tempfile::tempdir().unwrap();
    let server = demo_server(dir.path());
    let u = Ussd::new(&server);
    let (mut s, _) = AtSession::dial(&u, "at-lang-1", JUMA);
    s.send("4");
    let (end, done) = s.send("2");
    assert!(end && done.contains("Language changed"), "{done}");
    let (mut s, home) = AtSession::dial(&u, "at-lang-2", JUMA);
    assert!(
        home.contains("Welcome") && home.contains("Check coverage"),
        "{home}"
    );
    s.send("1");
    let (_, prompt) = s.send("1");
    assert!(prompt.contains("0 Back 00 Home"), "{prompt}");
    let (_, other) = AtSession::dial(&u, "at-lang-3", STRANGER);
    assert!(other.contains("Karibu"), "{other}");
}

#[test]
fn malformed_requests_get_a_clear_400_and_metrics_are_exposed() {
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
    // A continue for a session nobody began is over, not a crash.
    let (end, over) = u.json("never-begun", JUMA, "continue", "1", 3);
    assert!(end && over.contains("Kikao hiki kimekwisha"), "{over}");
    AtSession::dial(&u, "at-metrics", JUMA);
    let m = u.metrics();
    assert!(
        m.contains("ussd_hops_total{gateway=\"africastalking\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("ussd_sessions_total{gateway=\"africastalking\",event=\"started\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("ussd_hop_latency_seconds_count{gateway=\"africastalking\"} 1"),
        "{m}"
    );
}
