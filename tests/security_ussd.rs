//! USSD privacy and session binding (issue 14), attacked through the real server over both
//! HTTP adapters, as a caller on the aggregator's side could: looking up someone else's
//! family by CHFID, their pending control number, continuing or ending someone else's
//! session by its id. The same over SMPP is tests/smpp_ussd.rs's.

mod common;

use common::ussd::{walk, Dialog, Gw, Ussd};
use common::Server;

/// Juma Hamisi, head of family 070707070 (Active CHF01), and that family's phone.
const JUMA: &str = "255754100001";
/// Phones linked to no family.
const STRANGER: &str = "255700000009";
const STRANGER2: &str = "255700000008";

/// AT's end-of-session event for `session`, as from `phone`; returns the HTTP status.
fn end_event(u: &Ussd, session: &str, phone: &str) -> u16 {
    u.rt.block_on(async {
        u.client
            .post(format!("{}/ussd/africastalking/events", u.base))
            .form(&[
                ("sessionId", session),
                ("phoneNumber", phone),
                ("serviceCode", "*152*00#"),
                ("status", "Incomplete"),
            ])
            .send()
            .await
            .expect("POST")
            .status()
            .as_u16()
    })
}

/// A demo server in its own data directory (kept alive by the returned guard).
fn demo(env: &[(&str, &str)]) -> (tempfile::TempDir, Server, Ussd) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--demo"], env);
    let u = Ussd::new(&server);
    (dir, server, u)
}

/// Stops the server; it must exit cleanly.
fn stop(server: Server) {
    let (status, logs) = server.terminate();
    assert!(status.success(), "{}", logs.join("\n"));
}

#[test]
fn a_phone_not_linked_to_the_family_sees_cover_without_any_name() {
    let (_dir, server, u) = demo(&[]);
    for gw in Gw::BOTH {
        // A stranger: the family is named by the CHFID they typed; of the members only that
        // CHFID's own letter; product and expiry still told.
        let stranger = if gw == Gw::At { STRANGER } else { STRANGER2 };
        let (_, (end, seen)) =
            Dialog::dial_with(&u, gw, "priv-1", stranger, "*152*00#", "1*1*070707070");
        assert!(!end, "{gw:?}: {seen}");
        assert!(
            seen.starts_with("Bima ya familia ya 070707070:\nCHF01 "),
            "{gw:?}: {seen}"
        );
        assert!(seen.contains("\n070707070 A\n"), "{gw:?}: {seen}");
        assert!(!seen.contains("Juma") && !seen.contains("H."), "{seen}");
        // One member line only: the family's size is not told either.
        assert_eq!(
            seen.lines()
                .filter(|l| l.ends_with(" A") || l.ends_with(" I"))
                .count(),
            1,
            "{gw:?}: {seen}"
        );
        // The family's own phone sees every member, names masked as before.
        let (_, (_, own)) = Dialog::dial_with(&u, gw, "priv-2", JUMA, "*152*00#", "1*1*070707070");
        assert!(own.contains("Bima ya familia ya Juma H.:"), "{gw:?}: {own}");
        assert!(own.contains("Juma H. A"), "{gw:?}: {own}");
    }
    stop(server);
}

/// Baraka Kimaro, head of family 100000025, whose demo renewal waits for payment under
/// control number 991110000025.
const BARAKA: &str = "255754100003";
const BARAKA_CHFID: &str = "100000025";
const BARAKA_CN: &str = "991110000025";

#[test]
fn names_to_anyone_shows_names_to_every_phone() {
    let (_dir, server, u) = demo(&[
        ("IMIS_GATEWAY_PRIVACY__NAMES_TO", "anyone"),
        ("IMIS_GATEWAY_PRIVACY__CONTROL_NUMBERS_TO", "anyone"),
    ]);
    let (_, (_, seen)) =
        Dialog::dial_with(&u, Gw::At, "any-1", STRANGER, "*152*00#", "1*1*070707070");
    assert!(seen.contains("Juma H. A"), "{seen}");
    let code = format!("3*2*{BARAKA_CHFID}");
    let (_, (_, cn)) = Dialog::dial_with(&u, Gw::Json, "any-2", STRANGER, "*152*00#", &code);
    assert!(cn.contains(BARAKA_CN), "{cn}");
    stop(server);
}

#[test]
fn pending_control_numbers_by_chfid_only_on_the_familys_phone() {
    // Were it shown to anyone, a control number appearing here would confirm a right PIN
    // guessed by spoofed officer SMS (RENEW creates one).
    let (_dir, server, u) = demo(&[]);
    let code = format!("3*2*{BARAKA_CHFID}");
    for gw in Gw::BOTH {
        let (_, (end, refused)) = Dialog::dial_with(&u, gw, "cn-1", STRANGER, "*152*00#", &code);
        assert!(end, "{gw:?}: {refused}");
        assert!(
            refused.starts_with("Namba za malipo huonyeshwa kwenye simu ya familia tu."),
            "{gw:?}: {refused}"
        );
        assert!(!refused.contains(BARAKA_CN), "{refused}");
        let (_, (end, shown)) = Dialog::dial_with(&u, gw, "cn-2", BARAKA, "*152*00#", &code);
        assert!(!end && shown.contains(BARAKA_CN), "{gw:?}: {shown}");
    }
    stop(server);
}

#[test]
fn another_msisdn_with_the_same_session_id_starts_its_own_session() {
    let (_dir, server, u) = demo(&[]);

    // Africa's Talking: Juma is at the CHFID prompt of session "bind".
    let (mut juma, _) = Dialog::dial(&u, Gw::At, "bind", JUMA);
    let (_, prompt) = walk(&mut juma, &["1", "1"]);
    assert!(prompt.contains("Weka namba ya CHF"), "{prompt}");
    // A caller with another number sends the next hop of that session id: it is a new
    // session of their own (the dial-string inputs applied), not Juma's.
    let (_, (end, theirs)) =
        Dialog::dial_with(&u, Gw::At, "bind", STRANGER, "*152*00#", "1*1*070707070");
    assert!(!end, "{theirs}");
    assert!(
        theirs.starts_with("Bima ya familia ya 070707070:") && !theirs.contains("Juma"),
        "the caller's own, unlinked view: {theirs}"
    );
    // Juma's session is where he left it: his answer is applied, not answered from a cache.
    let (_, mine) = juma.send("070707070");
    assert!(mine.contains("Juma H. A"), "{mine}");
    let (end, bye) = juma.send("2");
    assert!(end && bye.contains("Asante"), "{bye}");

    // JSON: a "continue" from another msisdn finds no session of its own.
    let (mut juma, _) = Dialog::dial(&u, Gw::Json, "bind", JUMA);
    let (_, menu) = juma.send("1");
    assert!(menu.contains("Angalia bima kwa"), "{menu}");
    let (end, over) = u.json("json-bind", STRANGER, "continue", "1", 2);
    assert!(end, "not Juma's next screen: {over}");
    assert!(!over.contains("Weka namba ya CHF"), "{over}");
    // A "begin" from another msisdn is a session of its own, at home.
    let (end, home) = u.json("json-bind", STRANGER2, "begin", "", 0);
    assert!(!end && home.contains("Karibu"), "{home}");
    let (end, prompt) = juma.send("1");
    assert!(!end && prompt.contains("Weka namba ya CHF"), "{prompt}");
    stop(server);
}

#[test]
fn an_end_event_from_another_msisdn_leaves_the_session_alone() {
    let (_dir, server, u) = demo(&[]);
    let (mut juma, _) = Dialog::dial(&u, Gw::At, "ev", JUMA);
    let (_, menu) = juma.send("1");
    assert!(menu.contains("Angalia bima kwa"), "{menu}");
    // The event names Juma's session but another phone.
    assert_eq!(end_event(&u, &juma.id, STRANGER), 200);
    let (end, prompt) = juma.send("1");
    assert!(!end && prompt.contains("Weka namba ya CHF"), "{prompt}");
    // The caller's own phone ends it.
    juma.drop_by_network();
    let (end, over) = juma.send("070707070");
    assert!(end, "ended by its own phone's event: {over}");
    stop(server);
}
