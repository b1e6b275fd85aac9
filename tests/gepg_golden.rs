//! Golden GePG messages against the real server: signed with a key made by the test, in the
//! compact wire form; a re-indented copy of a signed message, a forged signature, a DTD and
//! an oversize body are refused with nothing stored; element-order variants are accepted.

mod common;
mod gepg_support;

use common::Server;
use gepg_support::*;
use imis_gateway::store::Store;

/// The same element, pretty-printed as documentation shows it (whitespace between elements).
fn reindent(inner: &str) -> String {
    inner.replace("><", ">\n  <").replace("\n  </", "\n</")
}

#[test]
fn signed_notifications_are_verified_on_their_exact_bytes() {
    let keys = TestKeys::new();
    let dir = tempfile::tempdir().unwrap();
    let waiting = seed_waiting(dir.path(), 3);
    let mut env = keys.env();
    env.push(("IMIS_GATEWAY_GEPG__POOL_LOW_WATER".into(), "0".into()));
    env.push(("IMIS_GATEWAY_GEPG__MAX_BODY_BYTES".into(), "8192".into()));
    let server = Server::start(dir.path(), &[], &env_refs(&env));
    let http = Poster::new(server.url(""));

    // 1. A re-indented copy of a correctly signed message: same signature, other bytes.
    let w0 = &waiting[0];
    let trx = payment_trx(
        "GOLD-1",
        &w0.control_number,
        &w0.payment.to_string(),
        30_000,
    );
    let inner = notification_xml(&trx);
    let signed = String::from_utf8(keys.signed(&inner)).unwrap();
    let sig = signed.split("<gepgSignature>").nth(1).unwrap();
    let pretty = format!("<Gepg>\n{}\n<gepgSignature>{sig}", reindent(&inner));
    assert_ne!(pretty.as_bytes(), signed.as_bytes());
    let (status, body) = http.post("/gepg/payment", pretty.into_bytes());
    assert_eq!(
        (status, ack_of(&keys, &body)),
        (200, ("gepgPmtSpInfoAck".into(), "7303".into()))
    );

    // 2. Signed by someone else.
    let (other, _) = imis_gateway::payments::sign::generate_identity("forger").unwrap();
    let forged = imis_gateway::payments::sign::SigningKey::from_pkey(other)
        .envelope(&inner)
        .unwrap();
    let (_, body) = http.post("/gepg/payment", forged);
    assert_eq!(ack_of(&keys, &body).1, "7303");

    // 3. A DTD with an entity, well signed: refused before anything else.
    let dtd = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE Gepg [<!ENTITY x \"y\">]>{}",
        String::from_utf8(keys.signed(&inner)).unwrap()
    );
    let (status, body) = http.post("/gepg/payment", dtd.into_bytes());
    assert_eq!((status, ack_of(&keys, &body).1), (400, "7242".into()));

    // 4. Over the configured size.
    let big = keys.signed(&inner.replace("Mwajuma Hassan", &"x".repeat(9000)));
    let (status, body) = http.post("/gepg/payment", big);
    assert_eq!((status, ack_of(&keys, &body).1), (413, "7242".into()));

    // 5. Another message kind on the payment endpoint.
    let wrong = keys
        .signed("<gepgBillSubResp><BillTrxInf><BillId>1</BillId></BillTrxInf></gepgBillSubResp>");
    let (status, body) = http.post("/gepg/payment", wrong);
    assert_eq!((status, ack_of(&keys, &body).1), (400, "7242".into()));

    // 6. The compact original is accepted; the openIMIS element order (PyrEmail before
    //    PyrName, `Ccy`, `PayCntrNum`) too, on the openIMIS path.
    let (status, body) = http.post("/gepg/payment", signed.clone().into_bytes());
    assert_eq!((status, ack_of(&keys, &body).1), (200, "7101".into()));
    let w1 = &waiting[1];
    let reordered = format!(
        "<gepgPmtSpInfo><PymtTrxInf><TrxId>GOLD-2</TrxId><SpCode>SP111</SpCode>\
         <PayRefId>PRGOLD-2</PayRefId><BillId>{}</BillId><PayCntrNum>{}</PayCntrNum>\
         <BillAmt>30000</BillAmt><PaidAmt>30000.00</PaidAmt><BillPayOpt>3</BillPayOpt>\
         <Ccy>TZS</Ccy><TrxDtTm>2025-06-15T08:01:44</TrxDtTm><UsdPayChnl>IB</UsdPayChnl>\
         <PyrCellNum>255754000000</PyrCellNum><PyrEmail></PyrEmail><PyrName>Asha &amp; Co</PyrName>\
         <PspReceiptNumber>RC2</PspReceiptNumber><PspName>NMB BANK</PspName>\
         <CtrAccNum>0150211612834</CtrAccNum></PymtTrxInf></gepgPmtSpInfo>",
        w1.payment, w1.control_number
    );
    let (status, body) = http.post("/api/GetPaymentData", keys.signed(&reordered));
    assert_eq!((status, ack_of(&keys, &body).1), (200, "7101".into()));
    // Wrapped in whitespace outside the signed element (as the GePG PHP sample sends it).
    let w2 = &waiting[2];
    let inner3 = notification_xml(&payment_trx("GOLD-3", &w2.control_number, "", 30_000));
    let spaced = String::from_utf8(keys.signed(&inner3))
        .unwrap()
        .replace("<gepgSignature>", " \n <gepgSignature>")
        .replace("<Gepg>", "<Gepg>\n  ");
    let (status, body) = http.post("/gepg/payment", spaced.into_bytes());
    assert_eq!((status, ack_of(&keys, &body).1), (200, "7101".into()));

    let metrics = http.get("/payments/metrics");
    assert!(metrics.contains("gepg_bad_signature_total 2"), "{metrics}");
    assert!(metrics.contains("gepg_malformed_total 3"), "{metrics}");
    assert!(
        metrics.contains("gepg_payments_applied_total 3"),
        "{metrics}"
    );

    let (status, logs) = server.terminate();
    assert!(status.success(), "{}", logs.join("\n"));
    assert!(
        logs.iter().any(|l| l.contains("invalid signature")),
        "refusals are logged"
    );
    let store = Store::open(dir.path(), Default::default()).unwrap();
    for w in &waiting {
        let p = store.policy(w.policy).unwrap().unwrap();
        assert_eq!(
            p.status,
            imis_gateway::domain::PolicyStatus::Active,
            "{w:?}"
        );
        assert_eq!(
            store.premiums_of_policy(w.policy).unwrap().len(),
            1,
            "{w:?}"
        );
    }
    let bank = store.premiums_of_policy(w1.policy).unwrap();
    assert_eq!(bank[0].pay_type, imis_gateway::domain::PayType::Bank);
}

#[test]
fn control_number_callbacks_are_verified_and_acknowledged_once_applied() {
    let keys = TestKeys::new();
    let dir = tempfile::tempdir().unwrap();
    seed_waiting(dir.path(), 1);
    let mut env = keys.env();
    env.push(("IMIS_GATEWAY_GEPG__POOL_LOW_WATER".into(), "0".into()));
    let server = Server::start(dir.path(), &[], &env_refs(&env));
    let http = Poster::new(server.url(""));
    let unknown =
        "<gepgBillSubResp><BillTrxInf><BillId>424242</BillId><PayCntrNum>991080222529</PayCntrNum>\
                   <TrxSts>GS</TrxSts><TrxStsCode>7101</TrxStsCode></BillTrxInf></gepgBillSubResp>";
    let (status, body) = http.post("/gepg/control-number", keys.signed(unknown));
    assert_eq!(
        (status, ack_of(&keys, &body)),
        (200, ("gepgBillSubRespAck".into(), "7204".into()))
    );
    let pretty = String::from_utf8(keys.signed(unknown))
        .unwrap()
        .replace("<BillId>", "\n    <BillId>");
    let (_, body) = http.post("/api/GetReqControlNumber", pretty.into_bytes());
    assert_eq!(ack_of(&keys, &body).1, "7303");
    drop(server);
}
