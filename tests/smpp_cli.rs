//! The operator's SMS commands, run as the real binary: `sms check-templates` reports each
//! template's alphabet and segment count and fails on a problem; `sms send` queues one SMS
//! on the durable outbox (idempotent with `--key`) that the server then submits to a real
//! SMSC peer (npm `smpp` 0.5.1).

mod common;
mod smsc;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{run, Server};
use imis_gateway::store::{Store, StoreOptions};
use smsc::Smsc;

fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sms-templates")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn check_templates_reports_alphabet_and_segments_and_fails_on_a_problem() {
    let dir = shipped();
    let out = run(&["sms", "check-templates", dir.to_str().unwrap()], &[]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    for name in [
        "help",
        "control_number",
        "command_error",
        "coverage_summary",
    ] {
        for lang in ["sw", "en"] {
            let line = stdout
                .lines()
                .find(|l| l.starts_with(&format!("{lang}/{name}: ")))
                .unwrap_or_else(|| panic!("{lang}/{name} missing:\n{stdout}"));
            assert!(line.contains("GSM-7, 1 segment"), "{line}");
        }
    }

    let bad = tempfile::tempdir().unwrap();
    let write = |rel: &str, body: &str| {
        let p = bad.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    };
    write("sw/asante.txt", "Asante {{ jina }} ✓");
    write(
        "en/asante.txt",
        &format!("Thank you {{{{ jina }}}}. {}", "x".repeat(300)),
    );
    write("sw/pole.txt", "Pole {{ jina }} {{ siku }}");
    write("en/pole.txt", "Sorry {{ jina }}");
    write(
        "samples.toml",
        "[asante]\njina = \"Juma\"\n[pole]\njina = \"Juma\"\n",
    );
    let out = run(
        &["sms", "check-templates", bad.path().to_str().unwrap()],
        &[],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("sw/asante: UCS2, 1 segment"), "{stdout}");
    assert!(stdout.contains("en/asante: GSM-7, 3 segments"), "{stdout}");
    assert!(
        stdout.contains("sw/pole: PROBLEM") && stdout.contains("\"siku\""),
        "{stdout}"
    );
    assert!(
        text(&out.stderr).contains("1 problem"),
        "{}",
        text(&out.stderr)
    );

    write("en/only.txt", "English only");
    let out = run(
        &["sms", "check-templates", bad.path().to_str().unwrap()],
        &[],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("sw/only.txt"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn sms_send_queues_once_per_key_and_the_server_submits_it() {
    let data = tempfile::tempdir().unwrap();
    let tpl = shipped();
    let env = [("IMIS_GATEWAY_SMS__TEMPLATES_DIR", tpl.to_str().unwrap())];
    let dd = data.path().to_str().unwrap();
    let send = |extra: &[&str]| {
        let mut args = vec!["sms", "send", "--data-dir", dd, "--to", "0754100001"];
        args.extend_from_slice(extra);
        run(&args, &env)
    };
    let vars = [
        "--template",
        "control_number",
        "--lang",
        "en",
        "--var",
        "control_number=991110000025",
        "--var",
        "amount=30,000",
        "--var",
        "chfid=100000025",
        "--var",
        "product=CHF01",
        "--key",
        "ops-1",
    ];
    let out = send(&vars);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("GSM-7, 1 segment(s)"), "{stdout}");
    assert!(
        !stdout.contains("255754100001"),
        "the number is masked: {stdout}"
    );
    assert!(send(&vars).status.success(), "same key again");

    // Clear refusals, nothing queued.
    let out = send(&["--template", "control_number", "--var", "amount=1"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("control_number"),
        "{}",
        text(&out.stderr)
    );
    let out = send(&["--template", "nope"]);
    assert!(text(&out.stderr).contains("no SMS template named \"nope\""));
    let out = run(
        &[
            "sms",
            "send",
            "--data-dir",
            dd,
            "--to",
            "hello",
            "--template",
            "help",
        ],
        &env,
    );
    assert!(text(&out.stderr).contains("--to"), "{}", text(&out.stderr));
    {
        let store = Store::open(data.path(), StoreOptions::default()).unwrap();
        assert_eq!(
            store.pending_count("sms").unwrap(),
            1,
            "one SMS for key ops-1"
        );
    }

    let smsc = Smsc::start(&[]);
    let mut genv = smsc.gateway_env();
    genv.push((
        "IMIS_GATEWAY_SMS__TEMPLATES_DIR".into(),
        tpl.display().to_string(),
    ));
    let genv: Vec<(&str, &str)> = genv.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server = Server::start(data.path(), &[], &genv);
    smsc.wait("the SMS", Duration::from_secs(20), |s| {
        !s.submits().is_empty()
    });
    let s = &smsc.submits()[0];
    assert_eq!(s["to"], "255754100001");
    assert_eq!(
        s["text"],
        "CHF: Control number 991110000025. Pay TZS 30,000 for CHFID 100000025 (CHF01) by mobile money or bank."
    );
    let (st, _) = server.terminate();
    assert!(st.success());
    assert_eq!(smsc.submits().len(), 1);
}
