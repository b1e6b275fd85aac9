//! Property test of the officer command language: random and mutated command texts
//! (deterministic seed) never panic the parser, and every answer fits in 2 SMS, both for
//! parse errors and for commands run through the whole pipeline.

use std::path::Path;
use std::time::Duration;

use chrono::{NaiveDate, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use imis_gateway::config::Config;
use imis_gateway::demo::{self, DemoOptions};
use imis_gateway::domain::Language;
use imis_gateway::officer::{self, parse, worker, Grammar, Officers};
use imis_gateway::sms::inbound::{self, Channel, Dedupe, Mo};
use imis_gateway::sms::segment::segment_count;
use imis_gateway::sms::{outbound, MoPipeline, Templates, SMS_TOPIC};
use imis_gateway::store::Store;

const SEEDS: &[&str] = &[
    "REG 1234 NEW Mushi Neema Juma 12/03/1990 F V0111 0754111222 CHF01",
    "SAJILI 1234 MPYA Mushi Neema 12031990 KE V0211",
    "REG,1234,NEW,Van Mushi,Neema,1990-03-12,M,V0112",
    "ADD 1234 070707070 NEW Hamisi Asha 01/02/2015 F CHILD",
    "ONGEZA 1234 070707070 MPYA Hamisi Asha 01-02-2015 KE MTOTO",
    "RENEW 1234 100000014 CHF01",
    "HUISHA 1234 100000025",
    "STATUS 070707070",
    "HALI 100000014",
    "PENDING 2",
    "SUBIRI",
    "PIN 1234 8642 8642",
    "HELP ADD",
    "MSAADA",
];

const ALPHABET: &[char] = &[
    'A', 'e', 'Z', '0', '1', '9', ' ', ' ', ',', ';', '*', '#', '|', '/', '-', '.', '"', '\'',
    '\n', '\t', '€', 'ß', '😀', 'é', '\u{0}', '{', '}', '@', '$', '_',
];

fn mutate(rng: &mut ChaCha8Rng, s: &str) -> String {
    let mut chars: Vec<char> = s.chars().collect();
    for _ in 0..rng.gen_range(1..6) {
        let op = rng.gen_range(0..7);
        let at = if chars.is_empty() {
            0
        } else {
            rng.gen_range(0..chars.len())
        };
        match op {
            0 if !chars.is_empty() => {
                chars.remove(at);
            }
            1 => chars.insert(at, ALPHABET[rng.gen_range(0..ALPHABET.len())]),
            2 if !chars.is_empty() => chars[at] = ALPHABET[rng.gen_range(0..ALPHABET.len())],
            3 => {
                // Repeat a slice: very long fields.
                let end = (at + rng.gen_range(1..40)).min(chars.len());
                let piece: Vec<char> = chars[at..end].to_vec();
                for _ in 0..rng.gen_range(1..20) {
                    chars.splice(at..at, piece.iter().copied());
                }
            }
            4 => {
                // Swap two words.
                let mut words: Vec<String> = chars
                    .iter()
                    .collect::<String>()
                    .split(' ')
                    .map(String::from)
                    .collect();
                if words.len() > 2 {
                    let (a, b) = (rng.gen_range(0..words.len()), rng.gen_range(0..words.len()));
                    words.swap(a, b);
                }
                chars = words.join(" ").chars().collect();
            }
            5 => chars.truncate(at),
            _ => chars = chars.iter().map(|c| c.to_ascii_lowercase()).collect(),
        }
    }
    chars.into_iter().collect()
}

fn random_text(rng: &mut ChaCha8Rng) -> String {
    let n = rng.gen_range(0..200);
    (0..n)
        .map(|_| {
            if rng.gen_bool(0.1) {
                char::from_u32(rng.gen_range(0..0x2_0000)).unwrap_or('?')
            } else {
                ALPHABET[rng.gen_range(0..ALPHABET.len())]
            }
        })
        .collect()
}

fn texts(seed: u64, n: usize) -> Vec<String> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|i| match i % 3 {
            0 => random_text(&mut rng),
            _ => {
                let base = SEEDS[rng.gen_range(0..SEEDS.len())];
                mutate(&mut rng, base)
            }
        })
        .collect()
}

#[test]
fn the_parser_never_panics_and_every_error_reply_fits_in_two_sms() {
    let g = Grammar::shipped().unwrap();
    let today = NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
    let mut parsed = 0;
    for text in texts(0x5EED_0FF1, 20_000) {
        match parse::parse(&g, &text, today) {
            Ok(_) => parsed += 1,
            Err(e) => {
                for lang in [Language::Sw, Language::En] {
                    let reply = officer::error_reply(&g, lang, &e);
                    let (n, _) = segment_count(&reply);
                    assert!((1..=2).contains(&n), "{text:?} → {n} segments: {reply}");
                }
            }
        }
    }
    // The mutations keep some commands valid: both branches are exercised.
    assert!(parsed > 100, "only {parsed} texts parsed");
}

#[test]
fn mutated_commands_through_the_whole_pipeline_always_get_one_short_reply() {
    let store = Store::open_temporary().unwrap();
    demo::seed_if_empty(
        &store,
        &DemoOptions {
            families: 5,
            ..DemoOptions::default()
        },
    )
    .unwrap();
    let mut config = Config::default();
    config.officer.grammar_file =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("sms-templates/officer/commands.toml");
    // Mutations hit the PIN often: let the lockout not hide the other paths.
    config.officer.max_pin_failures = 1000;
    let officers = Officers::from_config(&config).unwrap();
    let templates =
        Templates::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("sms-templates")).unwrap();
    // The pipeline `serve` builds with officer commands enabled.
    let pipeline = MoPipeline::new(
        std::sync::Arc::new(templates),
        vec![std::sync::Arc::new(officer::SmsCommands)],
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for (i, text) in texts(0xF022, 200).into_iter().enumerate() {
        let from = if i % 2 == 0 {
            "255754000001"
        } else {
            "255754000002"
        };
        let mo = Mo {
            from: from.into(),
            to: "15200".into(),
            text: text.clone(),
            channel: Channel::Http,
            dedupe: Dedupe::Forever(format!("fuzz-{i}")),
            parts: 1,
            complete: true,
        };
        rt.block_on(inbound::accept(&store, &pipeline, &mo, Utc::now()))
            .unwrap();
        worker::drain_blocking(&officers, &store).unwrap();
        let items = store
            .claim(SMS_TOPIC, 10, Duration::from_secs(60), Utc::now())
            .unwrap();
        let to_officer: Vec<String> = items
            .iter()
            .map(|it| outbound::decode(&it.payload).unwrap())
            .filter(|s| s.to.as_str() == from)
            .map(|s| s.text)
            .collect();
        assert_eq!(to_officer.len(), 1, "{text:?}: {to_officer:?}");
        let (n, _) = segment_count(&to_officer[0]);
        assert!((1..=2).contains(&n), "{text:?}: {}", to_officer[0]);
        for it in items {
            store.ack(SMS_TOPIC, it.seq).unwrap();
        }
    }
}
