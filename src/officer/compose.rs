//! Replies that fit in [`super::MAX_SEGMENTS`] SMS without ever losing what matters.
//!
//! Owns: the `[fit]` marking of the grammar file (which placeholders are essential, which
//! may be shortened, which may be dropped), [`compose`]: a reply rendered so that it fits,
//! and [`check`]: whether a reply text can fit at all with its essential values at their
//! longest (what `sms check-templates` reports for the officer grammar).
//!
//! How a reply is made to fit, one step at a time until it does:
//! 1. as written;
//! 2. characters outside the GSM 03.38 alphabet in shortenable values (’ “ ”) replaced by
//!    their plain forms (' "), because one such character makes the whole SMS UCS2 (70
//!    characters a segment instead of 160): only in the reply, never in the record;
//! 3. middle names to initials ("Baraka Emmanuel Joseph Kimaro" → "Baraka E. J. Kimaro");
//! 4. shortenable values cut to the longest common length that fits, ending in ".";
//! 5. optional values left out, in the order listed, each time with step 4 again.
//!
//! Must never: shorten or drop an essential value (CHFID, control number, amount, dates),
//! or return a text over the segment limit (a text the marking cannot save is cut as a
//! last resort, and `sms check-templates` rejects the texts that could need it).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::MAX_SEGMENTS;
use crate::sms::gsm7;
use crate::sms::segment::segment_count;

/// The shortest a shortened value gets: one letter and the full stop.
const MIN_SHORT: usize = 2;

/// The `[fit]` table of the grammar file. A placeholder in none of the lists is kept as
/// it is (and `check` reports it, since its length is unknown).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FitRules {
    /// Essential placeholders and the longest value each can take.
    #[serde(default)]
    pub keep: BTreeMap<String, usize>,
    /// Names and places, shortened first.
    #[serde(default)]
    pub shorten: Vec<String>,
    /// Optional text, left out (in this order) when shortening is not enough.
    #[serde(default)]
    pub drop: Vec<String>,
}

impl FitRules {
    /// A placeholder in two lists is a mistake in the file.
    pub fn validate(&self) -> Result<(), String> {
        for s in self.shorten.iter().chain(&self.drop) {
            if self.keep.contains_key(s) {
                return Err(format!("[fit] {s:?} is both in keep and in shorten/drop"));
            }
        }
        if let Some(s) = self.shorten.iter().find(|s| self.drop.contains(s)) {
            return Err(format!("[fit] {s:?} is both in shorten and in drop"));
        }
        Ok(())
    }
}

/// Whether `text` goes in 1 to [`MAX_SEGMENTS`] SMS.
pub fn fits(text: &str) -> bool {
    (1..=MAX_SEGMENTS).contains(&segment_count(text).0)
}

/// `body` (a grammar text with `{placeholders}`) filled with `vars` so that it fits: see
/// the module doc for the steps.
pub fn compose(body: &str, vars: &[(&str, &str)], rules: &FitRules) -> String {
    let mut vals: Vec<(&str, String)> = vars.iter().map(|(k, v)| (*k, v.to_string())).collect();
    let render = |vals: &[(&str, String)]| {
        let refs: Vec<(&str, &str)> = vals.iter().map(|(k, v)| (*k, v.as_str())).collect();
        super::grammar::fill(body, &refs).trim().to_string()
    };
    let text = render(&vals);
    if fits(&text) {
        return text;
    }
    let short = |k: &str| rules.shorten.iter().any(|s| s == k);
    for step in [plain as fn(&str) -> String, initials] {
        for (_, v) in vals.iter_mut().filter(|(k, _)| short(k)) {
            *v = step(v);
        }
        let text = render(&vals);
        if fits(&text) {
            return text;
        }
    }
    let longest = vals
        .iter()
        .filter(|(k, _)| short(k))
        .map(|(_, v)| v.chars().count())
        .max()
        .unwrap_or(0);
    for dropped in 0..=rules.drop.len() {
        let mut base = vals.clone();
        for (k, v) in base.iter_mut() {
            if rules.drop[..dropped].iter().any(|d| d == k) {
                v.clear();
            }
        }
        let at = |len: usize| {
            let capped: Vec<(&str, String)> = base
                .iter()
                .map(|(k, v)| (*k, if short(k) { cut(v, len) } else { v.clone() }))
                .collect();
            render(&capped)
        };
        // Fitting only gets easier as the cap shrinks: bisect for the longest that fits.
        if fits(&at(MIN_SHORT)) {
            let (mut lo, mut hi) = (MIN_SHORT, longest.max(MIN_SHORT));
            while lo < hi {
                let mid = (lo + hi).div_ceil(2);
                if fits(&at(mid)) {
                    lo = mid;
                } else {
                    hi = mid - 1;
                }
            }
            return at(lo);
        }
    }
    // Only for a text `check` rejects, or values over their declared longest.
    super::fit(&render(&vals))
}

/// `v` with characters outside the GSM 03.38 alphabet replaced by plain forms (`?` when
/// there is none).
pub fn plain(v: &str) -> String {
    v.chars()
        .map(|c| {
            if gsm7::septets_of(c).is_some() {
                return c;
            }
            match c {
                '’' | '‘' | '`' | '´' | 'ʼ' => '\'',
                '“' | '”' | '„' => '"',
                '–' | '—' | '‐' => '-',
                'á' | 'â' | 'ã' | 'ā' => 'a',
                'Á' | 'Â' | 'Ã' | 'Ā' => 'A',
                'ê' | 'ë' | 'ē' => 'e',
                'È' | 'Ê' | 'Ë' | 'Ē' => 'E',
                'í' | 'î' | 'ï' | 'ī' => 'i',
                'Í' | 'Î' | 'Ï' | 'Ì' | 'Ī' => 'I',
                'ó' | 'ô' | 'õ' | 'ō' => 'o',
                'Ó' | 'Ô' | 'Õ' | 'Ò' | 'Ō' => 'O',
                'ú' | 'û' | 'ū' => 'u',
                'Ú' | 'Û' | 'Ù' | 'Ū' => 'U',
                'ç' => 'c',
                _ if c.is_whitespace() => ' ',
                _ => '?',
            }
        })
        .collect()
}

/// Middle words to initials: "Baraka Emmanuel Joseph Kimaro" → "Baraka E. J. Kimaro".
/// Two words or fewer are left as they are.
pub fn initials(v: &str) -> String {
    let words: Vec<&str> = v.split_whitespace().collect();
    if words.len() <= 2 {
        return v.to_string();
    }
    let last = words.len() - 1;
    words
        .iter()
        .enumerate()
        .map(|(i, w)| match (i, w.chars().next()) {
            (0, _) => w.to_string(),
            (i, _) if i == last => w.to_string(),
            (_, Some(c)) if c.is_alphabetic() => format!("{c}."),
            _ => w.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `v` in at most `len` characters (at least [`MIN_SHORT`]): cut, ending in ".".
pub fn cut(v: &str, len: usize) -> String {
    let len = len.max(MIN_SHORT);
    if v.chars().count() <= len {
        return v.to_string();
    }
    let kept: String = v.chars().take(len - 1).collect();
    format!("{}.", kept.trim_end())
}

/// Why text `body` cannot be trusted to fit: a placeholder the `[fit]` table does not
/// mark, or too long even with essential values at their longest, shortenable values at
/// their shortest and optional ones left out. `None`: it always fits.
pub fn check(body: &str, rules: &FitRules) -> Option<String> {
    let names = placeholders(body);
    let mut vars: Vec<(&str, String)> = Vec::new();
    for name in &names {
        let value = if let Some(n) = rules.keep.get(name.as_str()) {
            "9".repeat(*n)
        } else if rules.shorten.contains(name) {
            "x".repeat(MIN_SHORT)
        } else if rules.drop.contains(name) {
            String::new()
        } else {
            return Some(format!(
                "{{{name}}} is in no list of [fit] (keep with its longest length, shorten or drop)"
            ));
        };
        vars.push((name.as_str(), value));
    }
    let refs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let text = super::grammar::fill(body, &refs).trim().to_string();
    if fits(&text) {
        return None;
    }
    let (segments, gsm) = segment_count(&text);
    Some(format!(
        "needs {segments} SMS ({}, {} chars) with its essential values at their longest; \
         the limit is {MAX_SEGMENTS}: shorten the text",
        if gsm { "GSM-7" } else { "UCS2" },
        text.chars().count()
    ))
}

/// The `{placeholder}` names `body` uses, in order, each once.
pub fn placeholders(body: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = body;
    while let Some(i) = rest.find('{') {
        let after = &rest[i + 1..];
        let Some(end) = after.find('}') else { break };
        let name = after[..end].to_string();
        if !out.contains(&name) {
            out.push(name);
        }
        rest = &after[end + 1..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> FitRules {
        FitRules {
            keep: BTreeMap::from([("chfid".into(), 12), ("cn".into(), 20)]),
            shorten: vec!["name".into()],
            drop: vec!["tail".into()],
        }
    }

    #[test]
    fn a_text_that_fits_is_left_alone() {
        let t = compose(
            "Family {chfid} {name}.",
            &[("chfid", "1"), ("name", "A B C")],
            &rules(),
        );
        assert_eq!(t, "Family 1 A B C.");
    }

    #[test]
    fn names_are_shortened_before_anything_else_and_the_number_stays() {
        let body = "Family {chfid} {name} registered{tail}. Control no {cn}.";
        let long = format!("Baraka Emmanuel Joseph {}", "Kimaro".repeat(60));
        let tail = " and more text".repeat(3);
        let t = compose(
            body,
            &[
                ("chfid", "062860781"),
                ("name", &long),
                ("cn", "991110000025"),
                ("tail", &tail),
            ],
            &rules(),
        );
        assert!(fits(&t), "{t}");
        assert!(t.ends_with("Control no 991110000025."), "{t}");
        assert!(t.starts_with("Family 062860781 Baraka E. J. Kimaro"), "{t}");
        assert!(
            t.contains(&tail),
            "optional text kept while names can shrink: {t}"
        );
    }

    #[test]
    fn optional_text_goes_when_names_at_their_shortest_are_not_enough() {
        let body = "{chfid} {name}{tail} {cn}";
        let tail = "y".repeat(400);
        let t = compose(
            body,
            &[
                ("chfid", "1"),
                ("name", "Neema Mushi"),
                ("cn", "42"),
                ("tail", &tail),
            ],
            &rules(),
        );
        assert_eq!(t, "1 Neema Mushi 42");
    }

    #[test]
    fn a_non_gsm_apostrophe_in_a_name_does_not_make_the_reply_ucs2_when_that_would_not_fit() {
        let body = format!("{} {{name}} {{cn}}", "w".repeat(120));
        let t = compose(
            &body,
            &[("name", "O’Brien"), ("cn", "991110000025")],
            &rules(),
        );
        assert!(t.ends_with("O'Brien 991110000025"), "{t}");
        // Short enough as UCS2: kept as written.
        let t = compose("{name} {cn}", &[("name", "O’Brien"), ("cn", "9")], &rules());
        assert_eq!(t, "O’Brien 9");
    }

    #[test]
    fn worked_examples_of_the_steps() {
        assert_eq!(
            initials("Baraka Emmanuel Joseph Kimaro"),
            "Baraka E. J. Kimaro"
        );
        assert_eq!(initials("Neema Mushi"), "Neema Mushi");
        assert_eq!(cut("Kimaro", 4), "Kim.");
        assert_eq!(cut("Kimaro", 0), "K.");
        assert_eq!(cut("Kim", 4), "Kim");
        assert_eq!(plain("Zoë O’Brien"), "Zoe O'Brien");
        assert_eq!(placeholders("{a} {b} {a}"), ["a", "b"]);
    }

    #[test]
    fn check_rejects_a_text_too_long_at_the_longest_values_and_unmarked_placeholders() {
        let r = rules();
        assert_eq!(check("Family {chfid} {name}: {cn}{tail}", &r), None);
        let long = format!("{} {{cn}}", "z".repeat(300));
        assert!(check(&long, &r).unwrap().contains("needs 3 SMS"));
        assert!(check("{chfid} {what}", &r).unwrap().contains("{what}"));
    }
}
