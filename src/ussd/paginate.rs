//! Splitting a screen into pages that each fit one USSD message in the encoding it needs.
//!
//! Owns: the page layout (body lines, then one navigation line) and the split itself: whole
//! lines first, a line too long for any page is cut at a word (or character) boundary.
//! Must never: return a page over the limit of its own encoding.

use super::gsm;

/// Navigation labels, already rendered in the member's language (`98 Zaidi`...).
#[derive(Debug, Clone, Default)]
pub struct Footer {
    /// Shown on every page but the last.
    pub more: String,
    /// Shown on every page (back / home); empty for the home screen and end screens.
    pub nav: String,
}

/// `lines` laid out in pages; each page is the text of one hop.
pub fn paginate(lines: &[String], footer: &Footer) -> Vec<String> {
    let whole = compose(lines, &footer.nav, "");
    if gsm::fits(&whole) {
        return vec![whole];
    }
    let mut pages = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let mut queue: std::collections::VecDeque<String> = lines.iter().cloned().collect();
    while let Some(line) = queue.pop_front() {
        let mut candidate = current.clone();
        candidate.push(line.clone());
        // A page that is not the last carries "more".
        if gsm::fits(&compose(&candidate, &footer.nav, &footer.more)) {
            current = candidate;
            continue;
        }
        if current.is_empty() {
            // The line alone does not fit: cut it and put the rest back.
            let (head, tail) = cut(&line, footer);
            current.push(head);
            if !tail.is_empty() {
                queue.push_front(tail);
            }
            pages.push(std::mem::take(&mut current));
            continue;
        }
        pages.push(std::mem::take(&mut current));
        queue.push_front(line);
    }
    if !current.is_empty() || pages.is_empty() {
        pages.push(current);
    }
    let last = pages.len() - 1;
    pages
        .iter()
        .enumerate()
        .map(|(i, p)| compose(p, &footer.nav, if i < last { &footer.more } else { "" }))
        .collect()
}

fn compose(lines: &[String], nav: &str, more: &str) -> String {
    let mut out = lines.join("\n");
    let nav_line = match (more.is_empty(), nav.is_empty()) {
        (true, true) => return out,
        (false, true) => more.to_string(),
        (true, false) => nav.to_string(),
        (false, false) => format!("{more} {nav}"),
    };
    if !out.is_empty() {
        out.push('\n');
    }
    out.push_str(&nav_line);
    out
}

/// The longest head of `line` that fits a page with the footer, preferring a word break.
fn cut(line: &str, footer: &Footer) -> (String, String) {
    let chars: Vec<char> = line.chars().collect();
    let mut n = chars.len();
    while n > 1 {
        let head: String = chars[..n].iter().collect();
        if gsm::fits(&compose(&[head], &footer.nav, &footer.more)) {
            break;
        }
        n -= 1;
    }
    let mut split = n;
    if let Some(space) = chars[..n].iter().rposition(|c| *c == ' ') {
        if space > n / 2 {
            split = space;
        }
    }
    let head: String = chars[..split].iter().collect();
    let tail: String = chars[split..].iter().collect();
    (head, tail.trim_start().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn footer() -> Footer {
        Footer {
            more: "98 Zaidi".into(),
            nav: "0 Rudi 00 Mwanzo".into(),
        }
    }

    #[test]
    fn a_short_screen_is_one_page_with_its_nav_line() {
        let pages = paginate(&["Chagua".into(), "1 Bima".into()], &footer());
        assert_eq!(pages, vec!["Chagua\n1 Bima\n0 Rudi 00 Mwanzo"]);
        let bare = paginate(&["Asante".into()], &Footer::default());
        assert_eq!(bare, vec!["Asante"]);
    }

    #[test]
    fn long_lists_split_on_lines_and_every_page_fits() {
        let lines: Vec<String> = (1..=30)
            .map(|i| format!("{i} Mwanachama namba {i}"))
            .collect();
        let pages = paginate(&lines, &footer());
        assert!(pages.len() > 1);
        for (i, p) in pages.iter().enumerate() {
            assert!(gsm::fits(p), "page {i}: {p}");
            assert_eq!(
                p.ends_with("98 Zaidi 0 Rudi 00 Mwanzo"),
                i + 1 < pages.len()
            );
        }
        // Nothing is lost or reordered.
        let joined: Vec<&str> = pages
            .iter()
            .flat_map(|p| p.lines())
            .filter(|l| !l.contains("Rudi"))
            .collect();
        assert_eq!(joined.len(), 30);
        assert!(joined[29].starts_with("30 "));
    }

    #[test]
    fn ucs2_pages_are_cut_at_80_and_an_overlong_line_is_wrapped() {
        let line = format!("Ç {}", "ñoño ç ".repeat(40));
        let pages = paginate(&[line], &footer());
        assert!(pages.len() > 3);
        for p in &pages {
            assert!(gsm::fits(p), "{p}");
        }
    }
}
