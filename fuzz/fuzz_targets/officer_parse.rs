//! The officer SMS command parser (src/officer/parse.rs) with the shipped grammar: any text
//! parses or fails without a panic; an error's reply and any text cut by `officer::fit` fit
//! in [`officer::MAX_SEGMENTS`] SMS; a parsed command never keeps a PIN once
//! `without_pins` blanked it, and parsing is deterministic.
#![no_main]

use std::sync::OnceLock;

use chrono::NaiveDate;
use imis_gateway::domain::Language;
use imis_gateway::officer::{self, parse, Grammar};
use imis_gateway::sms::segment::segment_count;
use libfuzzer_sys::fuzz_target;

fn grammar() -> &'static Grammar {
    static G: OnceLock<Grammar> = OnceLock::new();
    G.get_or_init(|| Grammar::shipped().expect("the shipped grammar loads"))
}

fn fits(text: &str) -> bool {
    (1..=officer::MAX_SEGMENTS).contains(&segment_count(text).0)
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let g = grammar();
    let today = NaiveDate::from_ymd_opt(2026, 6, 15).expect("date");
    let first = parse::parse(g, &text, today);
    assert_eq!(
        first,
        parse::parse(g, &text, today),
        "parse is not deterministic"
    );
    match first {
        Ok(cmd) => {
            let blank = cmd.without_pins();
            assert!(blank.pin().is_none_or(str::is_empty), "{blank:?}");
            assert_eq!(blank.kind(), cmd.kind());
        }
        Err(e) => {
            for lang in [Language::En, Language::Sw] {
                let reply = officer::error_reply(g, lang, &e);
                assert!(
                    fits(&reply),
                    "error reply over {} SMS: {reply:?}",
                    officer::MAX_SEGMENTS
                );
            }
        }
    }
    let cut = officer::fit(&text);
    assert!(fits(&cut), "fit() returned {cut:?}");
    let masked = parse::mask_pin(&text);
    if !text.is_empty() && text.chars().all(|c| c.is_ascii_digit()) {
        assert!(
            masked.chars().all(|c| c == '*'),
            "mask_pin({text:?}) = {masked:?}"
        );
    }
});
