//! `imis-gateway menus check` and `imis-gateway simulate`, as an operator runs them.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::ussd::assert_fits;
use common::{run, BIN};

#[test]
fn the_shipped_menus_pass_the_check() {
    let out = run(&["menus", "check", "menus"], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.is_empty(), "{stdout}");
}

#[test]
fn broken_menus_fail_with_precise_messages() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("menus/system.toml");
    std::fs::copy(shipped, dir.path().join("system.toml")).unwrap();
    let long = "x".repeat(190);
    std::fs::write(
        dir.path().join("bad.toml"),
        format!(
            r#"
[vars]
big = {{ max_len = 100 }}

[screens.home]
type = "menu"
sw = "Karibu"
en = "Welcome"
options = [
  {{ key = "1", sw = "Bima", en = "Cover", next = "long" }},
  {{ key = "98", sw = "Zaidi", next = "ucs2" }},
  {{ key = "1", sw = "Tena", en = "Again", next = "nowhere" }},
]

[screens.long]
type = "end"
sw = "{long}"
en = "Short"

[screens.ucs2]
type = "end"
sw = "Habari ç {{big}}"
en = "Hello {{who}}"

[screens.orphan]
type = "end"
sw = "Hakuna anayefika hapa"
en = "Nobody gets here"

[screens.act]
type = "action"
action = "launch_rockets"
on = {{ ok = "home" }}
"#
        ),
    )
    .unwrap();
    let out = run(&["menus", "check", dir.path().to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let expected = [
        "bad.toml: screen home: option 1 leads to \"nowhere\" is not a screen",
        "bad.toml: screen home: option key \"98\" clashes with the more navigation key",
        "bad.toml: screen home: option key \"1\" is used twice",
        "bad.toml: screen home: option 98: missing en label",
        "bad.toml: screen long (sw, GSM-7): worst case 190 characters > 182",
        "bad.toml: screen ucs2 (sw, UCS2): worst case 109 characters > 80",
        "bad.toml: screen ucs2: variable {who} is not declared in [vars]",
        "bad.toml: screen orphan is unreachable from home",
        "bad.toml: screen act: action \"launch_rockets\" is not one the engine has",
    ];
    for e in expected {
        assert!(stdout.contains(e), "missing {e:?} in:\n{stdout}");
    }
    // A file that is not TOML names itself; a missing directory is an error, not a pass.
    std::fs::write(dir.path().join("typo.toml"), "[screens.x\n").unwrap();
    let out = run(&["menus", "check", dir.path().to_str().unwrap()], &[]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("typo.toml:"));
    let out = run(&["menus", "check", "/nonexistent/menus"], &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/menus"));
}

#[test]
fn the_simulator_can_be_scripted_through_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["simulate", "--phone", "0754100003", "--demo", "--data-dir"])
        .arg(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Coverage of the demo Idle renewal family, then (after END) a new dial for the
    // control number, then quit.
    let script = "1\n1\n100000025\n2\n\n3\n1\n:quit\n";
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Baraka K. I") || stdout.contains("Baraka K. E"),
        "{stdout}"
    );
    assert!(stdout.contains("Asante kwa kutumia CHF."), "{stdout}");
    assert!(stdout.contains("991110000025 TZS 30,000 CHF01"), "{stdout}");
    // Screens are separated by `---` and `[...]` lines.
    let mut screen = Vec::new();
    let mut screens = 0;
    for line in stdout.lines() {
        if line == "---" || line.starts_with('[') {
            if !screen.is_empty() {
                assert_fits(&screen.join("\n"));
                screens += 1;
            }
            screen.clear();
        } else {
            screen.push(line);
        }
    }
    assert!(screens >= 7, "{stdout}");
}

#[test]
fn the_simulator_drops_resumes_and_remembers_the_language() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args([
            "simulate",
            "--phone",
            // Juma's own phone: his family's names are shown to it.
            "255754100001",
            "--demo",
            "--data-dir",
        ])
        .arg(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Coverage, dropped at the CHFID prompt; the redial offers to continue; continue, look
    // up, finish. Then choose English, and dial once more.
    let script = "1\n1\n:drop\n\n1\n070707070\n2\n\n4\n2\n\n:quit\n";
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let dropped = stdout.find("[network dropped the session]").expect("drop");
    let offer = stdout.find("1 Endelea").expect("resume offered");
    let result = stdout.find("Juma H. A").expect("coverage after resume");
    assert!(dropped < offer && offer < result, "{stdout}");
    let english = stdout.find("Language changed").expect("language");
    let welcome = stdout
        .rfind("Welcome to improved CHF")
        .expect("English home");
    assert!(english < welcome, "{stdout}");
    for screen in stdout.split(['-', '[']) {
        assert_fits(screen.trim());
    }
}
