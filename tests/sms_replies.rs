//! Officer replies that never lose what matters, and names kept as written (issue 15,
//! items 1 and 7).
//!
//! - A property over the shipped grammar: for random names, villages and products (with
//!   characters outside the GSM alphabet, in both languages) every officer reply that
//!   carries a number keeps its CHFID, control number, amount and date, and fits in 2 SMS.
//! - The reported case against the real binary, over `POST /sms/inbound` and over SMPP
//!   from the npm SMSC peer: `SAJILI 1234 MPYA Kimaro Baraka Emmanuel Joseph 05/06/1985 ME
//!   V0112` was answered "... Namba ya malipo.." with no number.
//! - Names as written (O'Brien, Mary-Jane) and a character that cannot be stored named in
//!   the error, in the officer's language.
//! - `sms check-templates` rejecting a reply text that cannot fit.

mod common;
mod smsc;

use std::time::{Duration, Instant};

use common::officer::seeded_dir;
use common::Server;
use imis_gateway::domain::Language;
use imis_gateway::officer::{Grammar, MAX_SEGMENTS};
use imis_gateway::sms::segment::segment_count;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;
use smsc::Smsc;

const EO1: &str = "255754000001";
const EO2: &str = "255754000002";

#[path = "common/inbound_post.rs"]
mod inbound_post;
use inbound_post::post_inbound;

const NAME_CHARS: &[char] = &[
    'a', 'b', 'e', 'i', 'k', 'm', 'o', 'u', 'z', 'A', 'K', 'M', 'N', 'é', 'ë', 'ñ', 'ç', 'ö', '’',
    '\'', '-', '.', 'ā', 'ł',
];

fn word(rng: &mut ChaCha8Rng, chars: &[char], max: usize) -> String {
    let n = rng.gen_range(1..=max);
    (0..n)
        .map(|_| chars[rng.gen_range(0..chars.len())])
        .collect()
}

fn words(rng: &mut ChaCha8Rng, chars: &[char], max_words: usize, max_len: usize) -> String {
    let n = rng.gen_range(1..=max_words);
    (0..n)
        .map(|_| word(rng, chars, max_len))
        .collect::<Vec<_>>()
        .join(" ")
}

fn digits(rng: &mut ChaCha8Rng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
        .collect()
}

#[test]
fn every_officer_reply_keeps_its_numbers_and_fits_for_random_names_villages_and_products() {
    let g = Grammar::shipped().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(15);
    let village_chars: Vec<char> = NAME_CHARS.iter().copied().chain(['1', '2', ' ']).collect();
    let code_chars: Vec<char> = "ABCHFXYZ0123456789".chars().collect();
    // The replies that carry a number, and the values their code passes.
    let keys = [
        "registered",
        "added",
        "added_no_policy",
        "renewed",
        "renew_waiting",
        "head_registered",
        "head_renewed",
        "chfid_taken",
        "family_not_yours",
        "status_none",
    ];
    for case in 0..3000 {
        let lang = if rng.gen_bool(0.5) {
            Language::Sw
        } else {
            Language::En
        };
        let name = words(&mut rng, NAME_CHARS, 7, 25);
        let village = words(&mut rng, &village_chars, 4, 20);
        let product = word(&mut rng, &code_chars, 8);
        let chfid = digits(&mut rng, 9);
        let family = digits(&mut rng, 9);
        let cn = if rng.gen_bool(0.8) {
            digits(&mut rng, 12)
        } else {
            g.text("cn_pending", lang, &[])
        };
        let amount = format!(
            "{},{:03}",
            rng.gen_range(1..999_999),
            rng.gen_range(0..1000)
        );
        let start = format!(
            "{:02}/{:02}/20{:02}",
            rng.gen_range(1..29),
            rng.gen_range(1..13),
            rng.gen_range(20..99)
        );
        let extra = g.text("added_cn", lang, &[("cn", &cn)]);
        let vars = [
            ("chfid", chfid.as_str()),
            ("name", &name),
            ("village", &village),
            ("product", &product),
            ("amount", &amount),
            ("start", &start),
            ("cn", &cn),
            ("family", &family),
            ("members", "12"),
            ("officer", "EO0001"),
            ("extra", &extra),
        ];
        let key = keys[case % keys.len()];
        let reply = g.compose(key, lang, &vars);
        let (segments, _) = segment_count(&reply);
        assert!(
            (1..=MAX_SEGMENTS).contains(&segments),
            "{key} {lang:?} in {segments} SMS: {reply}"
        );
        let body = g.text(key, lang, &[]);
        for (var, value) in [
            ("chfid", &chfid),
            ("cn", &cn),
            ("amount", &amount),
            ("start", &start),
            ("product", &product),
            ("family", &family),
        ] {
            if body.contains(&format!("{{{var}}}")) || (var == "cn" && body.contains("{extra}")) {
                assert!(
                    reply.contains(value.as_str()),
                    "{key} {lang:?} lost {var} {value:?}: {reply}"
                );
            }
        }
    }
}

/// Waits for the next reply to `to` (there were `before`), joined if multipart.
fn next_reply(smsc: &Smsc, to: &str, before: usize) -> String {
    let start = Instant::now();
    loop {
        let all = common::sms::texts_to(&smsc.submits(), to);
        if all.len() > before {
            return all[before].clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no reply to {to}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends `text` from `from` over HTTP or SMPP and returns the reply.
fn ask(server: &Server, smsc: &Smsc, over_smpp: bool, from: &str, text: &str, id: &str) -> String {
    let before = common::sms::texts_to(&smsc.submits(), from).len();
    if over_smpp {
        assert_eq!(
            smsc.mo(json!({"from": from, "to": "15200", "text": text})),
            1
        );
    } else {
        post_inbound(server, from, text, id);
    }
    next_reply(smsc, from, before)
}

/// The control number in a REG reply: the digits after "Namba ya malipo " / "Control no ".
fn control_number(reply: &str) -> String {
    let after = reply
        .split("Namba ya malipo ")
        .nth(1)
        .or_else(|| reply.split("Control no ").nth(1))
        .unwrap_or_else(|| panic!("no control number in {reply}"));
    after.chars().take_while(char::is_ascii_digit).collect()
}

#[test]
fn a_long_head_name_keeps_the_control_number_and_names_are_kept_as_written_over_http_and_smpp() {
    let smsc = Smsc::start(&[]);
    let dir = seeded_dir();
    let env = smsc.gateway_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server = Server::start(dir.path(), &["--demo"], &env);
    smsc.wait("bound", Duration::from_secs(30), |s| s.bound() > 0);
    for (over_smpp, last) in [(false, "Kimaro"), (true, "Mwakyusa")] {
        // The reported case (issue 15 item 1): the reply ended "Namba ya malipo.." on main.
        let text = format!("SAJILI 1234 MPYA {last} Baraka Emmanuel Joseph 05/06/1985 ME V0112");
        let r = ask(
            &server,
            &smsc,
            over_smpp,
            EO1,
            &text,
            &format!("reg-{last}"),
        );
        let cn = control_number(&r);
        assert!(
            cn.len() >= 10,
            "control number cut (smpp: {over_smpp}): {r}"
        );
        assert!(r.ends_with(&format!("Namba ya malipo {cn}.")), "{r}");
        assert!(r.contains(&format!("Baraka Emmanuel Joseph {last}")), "{r}");
        assert!(r.contains("CHF01 TZS 30,000"), "{r}");
    }
    // Names as written (issue 15 item 7: O'Brien became O'brien), and a character that
    // cannot be stored named, in the officer's language.
    for (over_smpp, from, text, want) in [
        (
            false,
            EO2,
            "REG 1234 NEW O'Brien Mary-Jane 01/02/1980 F V0211",
            "Mary-Jane O'Brien (",
        ),
        (
            false,
            EO2,
            "REG 1234 NEW Mushi Ne%ema 01/02/1980 F V0211",
            "Other names \"Ne%ema\": the character \"%\" cannot be stored",
        ),
        (
            true,
            EO1,
            "SAJILI 1234 MPYA Mu&hi Neema 01/02/1980 KE V0111",
            "Jina la ukoo \"Mu&hi\": herufi \"&\" haikubaliki",
        ),
    ] {
        let r = ask(&server, &smsc, over_smpp, from, text, text);
        assert!(r.contains(want), "{text}\n  got: {r}\n  want: {want}");
    }
    server.terminate();
    smsc.kill();
}

#[test]
fn check_templates_rejects_an_officer_reply_that_cannot_fit_with_its_numbers_at_their_longest() {
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sms-templates");
    let ok = common::run(&["sms", "check-templates", shipped.to_str().unwrap()], &[]);
    let out = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{out}");
    assert!(out.contains("every one fits in 2 SMS"), "{out}");

    let dir = tempfile::tempdir().unwrap();
    for sub in ["sw", "en", "officer"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        for e in std::fs::read_dir(shipped.join(sub)).unwrap() {
            let p = e.unwrap().path();
            std::fs::copy(&p, dir.path().join(sub).join(p.file_name().unwrap())).unwrap();
        }
    }
    std::fs::copy(
        shipped.join("samples.toml"),
        dir.path().join("samples.toml"),
    )
    .unwrap();
    let grammar = dir.path().join("officer/commands.toml");
    let text = std::fs::read_to_string(&grammar).unwrap();
    let padding = "Asante sana kwa kusajili familia hii leo. ".repeat(6);
    let long = text.replacen(
        "registered = { sw = \"Familia",
        &format!("registered = {{ sw = \"{padding}Familia"),
        1,
    );
    assert_ne!(long, text);
    std::fs::write(&grammar, long).unwrap();
    let bad = common::run(
        &["sms", "check-templates", dir.path().to_str().unwrap()],
        &[],
    );
    let out = String::from_utf8_lossy(&bad.stdout);
    assert!(!bad.status.success(), "{out}");
    assert!(
        out.contains("officer/registered (sw): PROBLEM: needs 3 SMS"),
        "{out}"
    );
}
