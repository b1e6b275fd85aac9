//! Security checks against the real server binary: oversize and malformed bodies on every
//! HTTP endpoint (a 4xx, the server stays up, nothing stored), DTDs and entity expansion in
//! GePG callbacks, forged, tampered and replayed GePG notifications, an officer PIN brute
//! force over `/sms/inbound` (lockout), and no PIN or full phone number in the logs.
//!
//! Per-phone rate limits on USSD and SMS are not tested here: the server has none yet.

mod common;
mod gepg_support;

use std::time::Duration;

use common::Server;
use gepg_support::*;
use imis_gateway::domain::PolicyStatus;
use imis_gateway::officer::audit;
use imis_gateway::sms::inbound;
use imis_gateway::store::{Store, StoreOptions};
use serde_json::json;

/// Larger than axum's 2 MB default body limit and than every configured limit.
const HUGE: usize = 3 * 1024 * 1024;

struct Http {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
    base: String,
}

impl Http {
    fn new(server: &Server) -> Http {
        Http {
            rt: tokio::runtime::Runtime::new().unwrap(),
            // A connection per request: a refused oversize upload may leave its connection
            // half-read, and a reused one would fail the next request for the wrong reason.
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .unwrap(),
            base: server.url(""),
        }
    }

    /// POSTs `body` as `content_type`; (status, answer as text).
    fn post(&self, path: &str, content_type: &str, body: impl Into<Vec<u8>>) -> (u16, String) {
        self.try_post(path, content_type, body.into())
            .unwrap_or_else(|e| panic!("POST {path}: {e}"))
    }

    /// [`Http::post`], with the error when the server closed the connection instead.
    fn try_post(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<(u16, String), String> {
        self.rt.block_on(async {
            let r = self
                .client
                .post(format!("{}{path}", self.base))
                .header("Content-Type", content_type)
                // The test aggregator's credential (only /sms/inbound reads it).
                .header(
                    common::sms::inbound_headers().0,
                    common::sms::inbound_headers().1,
                )
                .body(body)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let status = r.status().as_u16();
            Ok((status, r.text().await.unwrap_or_default()))
        })
    }

    /// The SMS outbox depth (replies wait there: these tests run without SMPP).
    fn sms_queued(&self) -> i64 {
        let (_, m) = self.get("/sms/metrics");
        m.lines()
            .find_map(|l| l.strip_prefix("imis_sms_queue_depth "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no queue depth in {m}"))
    }

    /// Waits until `n` more SMS than `base` are queued.
    fn wait_queued(&self, base: i64, n: i64) {
        let start = std::time::Instant::now();
        while self.sms_queued() < base + n {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{} SMS queued, waited for {}",
                self.sms_queued() - base,
                n
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn get(&self, path: &str) -> (u16, String) {
        self.rt.block_on(async {
            let r = self
                .client
                .get(format!("{}{path}", self.base))
                .send()
                .await
                .unwrap_or_else(|e| panic!("GET {path}: {e}"));
            let status = r.status().as_u16();
            (status, r.text().await.unwrap_or_default())
        })
    }
}

fn assert_alive(server: &mut Server, http: &Http) {
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server exited"
    );
    assert_eq!(http.get("/health").0, 200);
}

/// The GePG ack code in an answer (`7101` success, `7303` bad signature, `7242` malformed).
fn ack_code(body: &str) -> String {
    ["TrxStsCode", "ReconcStsCode"]
        .iter()
        .find_map(|f| {
            let open = format!("<{f}>");
            let at = body.find(&open)? + open.len();
            let end = body[at..].find('<')? + at;
            Some(body[at..end].to_string())
        })
        .unwrap_or_default()
}

fn gepg_env(keys: &TestKeys) -> Vec<(String, String)> {
    let mut env = keys.env();
    env.push(("IMIS_GATEWAY_GEPG__POOL_LOW_WATER".into(), "0".into()));
    env.push(("IMIS_GATEWAY_GEPG__MAX_BODY_BYTES".into(), "8192".into()));
    env
}

#[test]
fn oversize_and_malformed_bodies_get_a_4xx_on_every_endpoint_and_store_nothing() {
    let keys = TestKeys::new();
    let dir = tempfile::tempdir().unwrap();
    let waiting = seed_waiting(dir.path(), 1);
    let before = Store::open(dir.path(), StoreOptions::default())
        .unwrap()
        .counts()
        .unwrap();
    let mut server = Server::start(dir.path(), &[], &env_refs(&gepg_env(&keys)));
    let http = Http::new(&server);

    const FORM: &str = "application/x-www-form-urlencoded";
    const JSON: &str = "application/json";
    const XML: &str = "application/xml";
    let huge = |prefix: &str| {
        let mut b = prefix.as_bytes().to_vec();
        b.resize(HUGE, b'A');
        b
    };
    let binary: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    let w = &waiting[0];
    let inner = notification_xml(&payment_trx(
        "SEC-1",
        &w.control_number,
        &w.payment.to_string(),
        30_000,
    ));
    let signed = String::from_utf8(keys.signed(&inner)).unwrap();
    let over_limit = keys.signed(&inner.replace("Mwajuma Hassan", &"x".repeat(9000)));
    let phone = "255754000001";

    let mut cases: Vec<(&str, &str, Vec<u8>)> = vec![
        // Africa's Talking USSD.
        ("/ussd/africastalking", FORM, vec![]),
        ("/ussd/africastalking", FORM, binary.clone()),
        (
            "/ussd/africastalking",
            FORM,
            b"sessionId=%ZZ&phoneNumber=1".to_vec(),
        ),
        (
            "/ussd/africastalking",
            FORM,
            b"serviceCode=*152*00%23&text=1".to_vec(),
        ),
        (
            "/ussd/africastalking",
            FORM,
            b"sessionId=s1&serviceCode=*152*00%23&phoneNumber=not-a-phone&text=".to_vec(),
        ),
        (
            "/ussd/africastalking",
            JSON,
            br#"{"sessionId":"s1"}"#.to_vec(),
        ),
        ("/ussd/africastalking", FORM, huge("sessionId=s1&text=")),
        ("/ussd/africastalking/events", FORM, binary.clone()),
        ("/ussd/africastalking/events", FORM, huge("sessionId=")),
        // The generic JSON USSD adapter.
        ("/ussd/json", JSON, vec![]),
        ("/ussd/json", JSON, b"{not json".to_vec()),
        ("/ussd/json", JSON, b"[1,2,3]".to_vec()),
        ("/ussd/json", JSON, binary.clone()),
        ("/ussd/json", FORM, b"sessionId=s1".to_vec()),
        (
            "/ussd/json",
            JSON,
            json!({"sessionId": "s1", "msisdn": phone, "type": "begin", "hop": -1})
                .to_string()
                .into_bytes(),
        ),
        (
            "/ussd/json",
            JSON,
            json!({"sessionId": "s1", "msisdn": phone, "type": "explode"})
                .to_string()
                .into_bytes(),
        ),
        (
            "/ussd/json",
            JSON,
            json!({"sessionId": "s1", "msisdn": "12", "type": "begin"})
                .to_string()
                .into_bytes(),
        ),
        ("/ussd/json", JSON, huge(r#"{"sessionId":""#)),
        // MO SMS from HTTP aggregators.
        ("/sms/inbound", JSON, vec![]),
        ("/sms/inbound", JSON, b"{\"from\": ".to_vec()),
        ("/sms/inbound", JSON, b"\"just a string\"".to_vec()),
        ("/sms/inbound", JSON, binary.clone()),
        ("/sms/inbound", FORM, b"from=%G1&text=HELP".to_vec()),
        ("/sms/inbound", FORM, b"from=%FF%FE&text=HELP".to_vec()),
        (
            "/sms/inbound",
            JSON,
            json!({"to": "15200", "text": "HELP"})
                .to_string()
                .into_bytes(),
        ),
        (
            "/sms/inbound",
            JSON,
            json!({"from": "nobody", "to": "15200", "text": "HELP"})
                .to_string()
                .into_bytes(),
        ),
        (
            "/sms/inbound",
            JSON,
            huge(r#"{"from":"255754000001","text":""#),
        ),
        // Payments.
        ("/payments/mobile-money", JSON, b"{".to_vec()),
        (
            "/payments/reconcile",
            JSON,
            b"{\"date\": \"yesterday\"}".to_vec(),
        ),
        ("/gepg-sim/pay", JSON, binary.clone()),
    ];
    for path in [
        "/gepg/payment",
        "/gepg/control-number",
        "/gepg/reconciliation",
    ] {
        cases.push((path, XML, vec![]));
        cases.push((path, XML, binary.clone()));
        cases.push((path, XML, b"<Gepg><gepgPmtSpInfo>".to_vec()));
        cases.push((path, XML, b"{\"Gepg\": 1}".to_vec()));
        // Well-formed, unsigned.
        cases.push((path, XML, format!("<Gepg>{inner}</Gepg>").into_bytes()));
        // Signed, then cut short.
        cases.push((path, XML, signed.as_bytes()[..signed.len() - 20].to_vec()));
        cases.push((path, XML, over_limit.clone()));
        cases.push((path, XML, huge("<Gepg>")));
    }
    cases.push(("/api/GetPaymentData", XML, binary.clone()));

    let mut wrong = Vec::new();
    for (path, ct, body) in &cases {
        let preview = String::from_utf8_lossy(&body[..body.len().min(60)]).into_owned();
        let (status, answer) = match http.try_post(path, ct, body.clone()) {
            Ok(r) => r,
            // Refusing to read a body over the limit may close the connection mid-upload.
            Err(_) if body.len() >= HUGE => continue,
            Err(e) => panic!("{path} {preview:?}: {e}"),
        };
        if !(400..500).contains(&status) {
            wrong.push(format!(
                "{path} [{ct}] {preview:?} ({} bytes) -> {status} {}",
                body.len(),
                &answer[..answer.len().min(200)]
            ));
        }
    }
    assert_alive(&mut server, &http);
    assert!(
        wrong.is_empty(),
        "not answered with a 4xx:\n{}",
        wrong.join("\n")
    );

    let (status, logs) = server.terminate();
    assert!(status.success(), "{}", logs.join("\n"));
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    assert!(inbound::all(&store).unwrap().is_empty(), "an MO was stored");
    assert_eq!(store.counts().unwrap(), before, "records were written");
    let p = store.policy(w.policy).unwrap().unwrap();
    assert_eq!(p.status, PolicyStatus::Idle, "the policy was activated");
}

#[test]
fn dtds_and_entity_expansion_in_gepg_callbacks_are_refused() {
    let keys = TestKeys::new();
    let dir = tempfile::tempdir().unwrap();
    let waiting = seed_waiting(dir.path(), 1);
    let mut server = Server::start(dir.path(), &[], &env_refs(&gepg_env(&keys)));
    let http = Http::new(&server);
    let w = &waiting[0];
    let trx = payment_trx("XXE-1", &w.control_number, &w.payment.to_string(), 30_000);
    let inner = notification_xml(&trx);
    let signed = String::from_utf8(keys.signed(&inner)).unwrap();

    let laughs = {
        let mut d = String::from("<?xml version=\"1.0\"?><!DOCTYPE Gepg [<!ENTITY l0 \"lol\">");
        for i in 1..10 {
            let prev = format!("&l{};", i - 1);
            d.push_str(&format!("<!ENTITY l{i} \"{}\">", prev.repeat(10)));
        }
        d.push_str("]>");
        d
    };
    let attacks: Vec<(&str, String)> = vec![
        // Billion laughs in front of a well-signed message, and used inside it.
        ("billion laughs", format!("{laughs}{signed}")),
        (
            "billion laughs used",
            format!(
                "{laughs}{}",
                String::from_utf8(keys.signed(&inner.replace("Mwajuma Hassan", "&l9;"))).unwrap()
            ),
        ),
        (
            "external entity",
            format!(
                "<?xml version=\"1.0\"?><!DOCTYPE Gepg [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>{}",
                String::from_utf8(keys.signed(&inner.replace("Mwajuma Hassan", "&xxe;"))).unwrap()
            ),
        ),
        (
            "parameter entity",
            format!(
                "<!DOCTYPE Gepg [<!ENTITY % p SYSTEM \"http://127.0.0.1:9/x.dtd\"> %p;]>{signed}"
            ),
        ),
        // An entity GePG's signature covers but no DTD declares.
        (
            "undeclared entity",
            String::from_utf8(keys.signed(&inner.replace("Mwajuma Hassan", "&xxe;"))).unwrap(),
        ),
        (
            "processing instruction",
            signed.replacen("<Gepg>", "<Gepg><?php system('id'); ?>", 1),
        ),
    ];
    let mut wrong = Vec::new();
    for path in [
        "/gepg/payment",
        "/gepg/control-number",
        "/gepg/reconciliation",
    ] {
        for (what, body) in &attacks {
            let (status, answer) = http.post(path, "application/xml", body.clone());
            let expanded =
                answer.len() > 4096 || answer.contains("lollol") || answer.contains("root:");
            if !(400..500).contains(&status) || ack_code(&answer) == "7101" || expanded {
                wrong.push(format!("{path} {what} -> {status} {answer}"));
            }
        }
    }
    assert_alive(&mut server, &http);
    assert!(wrong.is_empty(), "accepted:\n{}", wrong.join("\n"));

    // The same notification without the attack is applied: the refusals were not for
    // another reason.
    let (status, answer) = http.post("/gepg/payment", "application/xml", signed.clone());
    assert_eq!(
        (status, ack_code(&answer).as_str()),
        (200, "7101"),
        "{answer}"
    );

    let (status, logs) = server.terminate();
    assert!(status.success(), "{}", logs.join("\n"));
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(store.premiums_of_policy(w.policy).unwrap().len(), 1);
    let payment = store.payment(w.payment).unwrap().unwrap();
    assert!(
        !format!("{payment:?}").contains("lol"),
        "an entity was expanded into the store"
    );
}

#[test]
fn forged_tampered_and_replayed_gepg_notifications_change_nothing() {
    let keys = TestKeys::new();
    let dir = tempfile::tempdir().unwrap();
    let waiting = seed_waiting(dir.path(), 2);
    let mut server = Server::start(dir.path(), &[], &env_refs(&gepg_env(&keys)));
    let http = Http::new(&server);
    let (w0, w1) = (&waiting[0], &waiting[1]);
    let inner0 = notification_xml(&payment_trx(
        "SIG-1",
        &w0.control_number,
        &w0.payment.to_string(),
        30_000,
    ));
    let signed0 = String::from_utf8(keys.signed(&inner0)).unwrap();
    let sig0 = signed0
        .split("<gepgSignature>")
        .nth(1)
        .and_then(|s| s.split("</gepgSignature>").next())
        .unwrap()
        .to_string();
    let inner1 = notification_xml(&payment_trx(
        "SIG-2",
        &w1.control_number,
        &w1.payment.to_string(),
        30_000,
    ));
    let (other, _) = imis_gateway::payments::sign::generate_identity("forger").unwrap();
    let forger = imis_gateway::payments::sign::SigningKey::from_pkey(other);

    let forgeries: Vec<(&str, Vec<u8>)> = vec![
        ("signed by another key", forger.envelope(&inner0).unwrap()),
        (
            // GePG's signature, over a message whose amount was raised afterwards.
            "tampered after signing",
            signed0
                .replace("<PaidAmt>30000.00</PaidAmt>", "<PaidAmt>90000.00</PaidAmt>")
                .into_bytes(),
        ),
        (
            "another message's signature",
            format!("<Gepg>{inner1}<gepgSignature>{sig0}</gepgSignature></Gepg>").into_bytes(),
        ),
        (
            "empty signature",
            format!("<Gepg>{inner0}<gepgSignature></gepgSignature></Gepg>").into_bytes(),
        ),
        (
            "no signature",
            format!("<Gepg>{inner0}</Gepg>").into_bytes(),
        ),
        (
            "signature not base64",
            format!("<Gepg>{inner0}<gepgSignature>!!not base64!!</gepgSignature></Gepg>")
                .into_bytes(),
        ),
    ];
    assert_ne!(forgeries[1].1, signed0.as_bytes(), "the tamper took");
    let mut wrong = Vec::new();
    for (what, body) in &forgeries {
        // GePG's convention: a signed ack with TrxStsCode 7303 (invalid signature), or 7242
        // (malformed) for an envelope without a signature; never 7101.
        let (status, answer) = http.post("/gepg/payment", "application/xml", body.clone());
        if !["7303", "7242"].contains(&ack_code(&answer).as_str()) {
            wrong.push(format!("{what} -> {status} {answer}"));
        }
    }
    assert_alive(&mut server, &http);
    assert!(wrong.is_empty(), "accepted:\n{}", wrong.join("\n"));
    let (_, metrics) = http.get("/payments/metrics");
    assert!(
        metrics.contains("gepg_payments_applied_total 0"),
        "{metrics}"
    );

    // The genuine message, then a replay of it: applied once.
    for _ in 0..3 {
        let (status, answer) = http.post("/gepg/payment", "application/xml", signed0.clone());
        assert_eq!(
            (status, ack_code(&answer).as_str()),
            (200, "7101"),
            "{answer}"
        );
    }
    let (_, metrics) = http.get("/payments/metrics");
    assert!(
        metrics.contains("gepg_payments_applied_total 1"),
        "{metrics}"
    );

    let (status, logs) = server.terminate();
    assert!(status.success(), "{}", logs.join("\n"));
    assert!(
        logs.iter().any(|l| l.contains("signature")),
        "refusals are logged"
    );
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(store.premiums_of_policy(w0.policy).unwrap().len(), 1);
    assert!(store.premiums_of_policy(w1.policy).unwrap().is_empty());
    let p1 = store.policy(w1.policy).unwrap().unwrap();
    assert_eq!(p1.status, PolicyStatus::Idle);
}

const OFFICER: &str = imis_gateway::demo::DEMO_OFFICER_PHONE;

/// Sends an MO over `/sms/inbound` and waits for the officer worker's reply to be queued,
/// so that commands are processed in the order sent.
fn sms(http: &Http, from: &str, text: &str, id: &str) {
    let base = http.sms_queued();
    let body = json!({"from": from, "to": "15200", "text": text, "id": id}).to_string();
    let (status, answer) = http.post("/sms/inbound", "application/json", body);
    assert_eq!(status, 200, "{answer}");
    http.wait_queued(base, 1);
}

#[test]
fn an_officer_pin_brute_force_locks_the_account_even_for_the_right_pin() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--demo"], &[]);
    let http = Http::new(&server);
    // Ten guesses, then the right PIN (1234), in this order.
    let guesses: Vec<String> = (0..10).map(|i| format!("{:04}", 9000 + i)).collect();
    for (i, pin) in guesses
        .iter()
        .chain(std::iter::once(&"1234".to_string()))
        .enumerate()
    {
        sms(
            &http,
            OFFICER,
            &format!("HUISHA {pin} 100000014"),
            &format!("bf-{i}"),
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    std::thread::sleep(Duration::from_secs(2));
    let (status, logs) = server.terminate();
    assert!(status.success(), "{}", logs.join("\n"));

    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let eo = store
        .officer_by_phone(&imis_gateway::domain::Msisdn::parse(OFFICER).unwrap())
        .unwrap()
        .unwrap();
    let mut trail = audit::of_officer(&store, eo.id).unwrap();
    trail.sort_by_key(|e| (e.received_ms, e.mo_id));
    let renews: Vec<_> = trail
        .iter()
        .filter(|e| e.command.starts_with("renew"))
        .collect();
    assert_eq!(renews.len(), 11, "{trail:#?}");
    assert!(
        renews.iter().all(|e| !e.ok),
        "a renewal went through: {renews:#?}"
    );
    assert!(renews[0].reply.contains("majaribio"), "{}", renews[0].reply);
    for e in &renews[4..] {
        assert!(e.reply.contains("imefungwa"), "not locked: {}", e.reply);
    }
    assert!(
        renews[10].reply.contains("imefungwa"),
        "the right PIN got through the lockout: {}",
        renews[10].reply
    );
    assert!(
        trail.iter().all(|e| !guesses
            .iter()
            .chain(["1234".to_string()].iter())
            .any(|g| has_number(&e.text, g))),
        "a PIN in the audit trail"
    );
}

/// Whether `digits` occurs in `line` not as part of a longer number.
fn has_number(line: &str, digits: &str) -> bool {
    line.match_indices(digits).any(|(i, _)| {
        let before = line[..i].chars().next_back();
        let after = line[i + digits.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_digit()) && !after.is_some_and(|c| c.is_ascii_digit())
    })
}

#[test]
fn no_pin_or_full_phone_number_reaches_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &["--demo"],
        &[(
            "IMIS_GATEWAY_LOG",
            "debug,sled=info,hyper=info,reqwest=info,h2=info",
        )],
    );
    let http = Http::new(&server);
    let member = "255754000002";

    // A USSD session on both adapters: dial, then a few answers (coverage, back, renew).
    let mut text = String::new();
    for (i, input) in ["", "1", "0", "2", "1"].iter().enumerate() {
        if i > 1 {
            text.push('*');
        }
        text.push_str(input);
        let form = format!(
            "sessionId=logs-1&serviceCode=*152*00%23&phoneNumber=%2B{member}&networkCode=63902&text={text}"
        );
        let (status, answer) = http.post(
            "/ussd/africastalking",
            "application/x-www-form-urlencoded",
            form,
        );
        assert_eq!(status, 200, "{answer}");
        let j = json!({"sessionId": "logs-2", "msisdn": member, "serviceCode": "*152*00#",
            "input": input, "type": if i == 0 { "begin" } else { "continue" }, "hop": i});
        let (status, answer) = http.post("/ussd/json", "application/json", j.to_string());
        assert_eq!(status, 200, "{answer}");
    }
    // Officer commands with PINs: a PIN change to 7395, a command with it, a wrong one.
    sms(&http, OFFICER, "PIN 1234 7395 7395", "logs-pin");
    sms(&http, OFFICER, "HUISHA 7395 100000014", "logs-renew");
    sms(&http, OFFICER, "HUISHA 6081 100000014", "logs-wrong");
    let (status, logs) = server.terminate();
    assert!(status.success(), "{}", logs.join("\n"));
    assert!(
        logs.len() > 5,
        "the server logged almost nothing:\n{}",
        logs.join("\n")
    );

    let leaks: Vec<&String> = logs
        .iter()
        .filter(|l| {
            l.contains(member)
                || l.contains(OFFICER)
                || ["1234", "7395", "6081"]
                    .iter()
                    .any(|pin| has_number(l, pin))
        })
        .collect();
    assert!(
        leaks.is_empty(),
        "{} log lines carry a PIN or a full MSISDN:\n{}",
        leaks.len(),
        leaks
            .iter()
            .map(|l| l.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    // The commands did run (the test could otherwise pass on an idle server).
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let eo = store
        .officer_by_phone(&imis_gateway::domain::Msisdn::parse(OFFICER).unwrap())
        .unwrap()
        .unwrap();
    assert!(audit::of_officer(&store, eo.id).unwrap().len() >= 3);
}
