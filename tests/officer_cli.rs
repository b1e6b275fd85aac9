//! `imis-gateway officer set-pin` through the real binary: an administrator gives an officer
//! (one imported from openIMIS has no PIN) a PIN read from standard input, which also lifts a
//! lockout; a malformed PIN or an unknown officer changes nothing and says why.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use imis_gateway::domain::pin;
use imis_gateway::officer::auth::{self, PinState, NS_PIN};
use imis_gateway::store::{codec, Store, StoreOptions};

fn set_pin(dir: &Path, code: &str, stdin: &str) -> Output {
    let mut child = Command::new(common::BIN)
        .args(["officer", "set-pin", "--code", code, "--data-dir"])
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run imis-gateway");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write the PIN");
    child.wait_with_output().expect("wait for imis-gateway")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn pin_hash(dir: &Path, code: &str) -> Option<String> {
    let store = Store::open(dir, StoreOptions::default()).unwrap();
    store.officer_by_code(code).unwrap().unwrap().pin_hash
}

#[test]
fn an_administrator_sets_a_pin_from_stdin_and_lifts_the_lockout() {
    let dir = common::officer::seeded_dir();
    // EO0001 is locked out after wrong PINs.
    {
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let eo1 = store.officer_by_code("EO0001").unwrap().unwrap();
        let locked = PinState {
            failures: 5,
            locked_until_ms: Some(chrono::Utc::now().timestamp_millis() + 3_600_000),
        };
        store
            .aux_put(
                NS_PIN,
                &eo1.id.to_be_bytes(),
                &codec::encode(&locked).unwrap(),
            )
            .unwrap();
        store.flush().unwrap();
    }
    let before = pin_hash(dir.path(), "EO0001").expect("the demo officer has a PIN");
    assert!(pin::verify("1234", &before));

    let out = set_pin(dir.path(), "EO0001", "9876\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("EO0001: PIN set"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        !text(&out.stdout).contains("9876") && !text(&out.stderr).contains("9876"),
        "the PIN is never echoed"
    );

    let after = pin_hash(dir.path(), "EO0001").unwrap();
    assert!(pin::verify("9876", &after));
    assert!(!pin::verify("1234", &after));
    assert!(!after.contains("9876"), "stored as a hash only");
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let eo1 = store.officer_by_code("EO0001").unwrap().unwrap();
    assert_eq!(
        auth::pin_state(&store, eo1.id).unwrap(),
        PinState::default()
    );
}

#[test]
fn a_malformed_pin_or_an_unknown_officer_changes_nothing_and_says_why() {
    let dir = common::officer::seeded_dir();
    let before = pin_hash(dir.path(), "EO0002");

    let out = set_pin(dir.path(), "EO0002", "12a4\n");
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("PIN must be 4 to 8 digits"), "{err}");
    assert!(!err.contains("12a4"), "the PIN is never echoed: {err}");
    assert_eq!(pin_hash(dir.path(), "EO0002"), before);

    let out = set_pin(dir.path(), "EO0002", "");
    assert!(!out.status.success(), "no PIN on stdin is refused");
    assert_eq!(pin_hash(dir.path(), "EO0002"), before);

    let out = set_pin(dir.path(), "EO9999", "4321\n");
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no officer with code EO9999"),
        "{}",
        text(&out.stderr)
    );
}

/// The SMS waiting on the outbox, claimed.
fn queued_sms(store: &Store) -> Vec<imis_gateway::store::OutboxItem> {
    store
        .claim(
            imis_gateway::sms::SMS_TOPIC,
            100,
            std::time::Duration::from_secs(60),
            chrono::Utc::now(),
        )
        .unwrap()
}

fn send_activation(dir: &Path, code: &str) -> Output {
    Command::new(common::BIN)
        .args(["officer", "send-activation", "--code", code, "--data-dir"])
        .arg(dir)
        .output()
        .expect("run imis-gateway")
}

#[test]
fn send_activation_queues_the_code_by_sms_to_the_officer_only_and_never_prints_it() {
    let dir = common::officer::seeded_dir();
    let out = send_activation(dir.path(), "EO0001");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        said.contains("EO0001: activation code queued by SMS to"),
        "{said}"
    );

    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let eo1 = store.officer_by_code("EO0001").unwrap().unwrap();
    let items = queued_sms(&store);
    assert_eq!(items.len(), 1);
    let sms = imis_gateway::sms::outbound::decode(&items[0].payload).unwrap();
    assert_eq!(Some(&sms.to), eo1.phone.as_ref());
    let code: String = sms
        .text
        .split(|c: char| !c.is_ascii_digit())
        .find(|t| t.len() == 6)
        .expect("a 6-digit code in the SMS")
        .to_string();
    assert!(
        !said.contains(&code),
        "the administrator never sees the code"
    );
    assert!(!text(&out.stderr).contains(&code));
    let raw = store
        .aux_get(
            imis_gateway::officer::activation::NS_ACTIVATION,
            &eo1.id.to_be_bytes(),
        )
        .unwrap()
        .expect("the code's hash is stored");
    assert!(
        !String::from_utf8_lossy(&raw).contains(&code),
        "only a hash of the code is kept"
    );
    drop(store);

    let out = send_activation(dir.path(), "EO9999");
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("no officer with code EO9999"));
}

#[test]
fn send_activation_to_an_officer_without_a_phone_says_so_and_sends_nothing() {
    let dir = common::officer::seeded_dir();
    {
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let mut eo2 = store.officer_by_code("EO0002").unwrap().unwrap();
        eo2.phone = None;
        store
            .write(|tx| -> imis_gateway::store::TxResult<()> {
                tx.put_officer(&eo2)?;
                Ok(())
            })
            .unwrap();
        store.flush().unwrap();
    }
    let out = send_activation(dir.path(), "EO0002");
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("has no phone number"),
        "{}",
        text(&out.stderr)
    );
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let items = queued_sms(&store);
    assert!(items.is_empty());
}
