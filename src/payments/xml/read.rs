//! The strict reader: raw bytes into a tree of [`Element`]s, and the signed inner element
//! cut out of a `<Gepg>` envelope as the exact bytes that arrived.
//!
//! Owns: the size, depth and element-count limits, and the refusal of DTDs, entities and
//! processing instructions. Must never: re-serialise what it read (signatures cover the bytes
//! as sent).

use quick_xml::events::Event;
use quick_xml::Reader;

use super::{parse_amount, Malformed, XmlError};
use crate::domain::Money;

/// Deepest nesting a GePG message needs (envelope → message → list → item → field).
const MAX_DEPTH: usize = 12;
/// Most elements one message may hold.
const MAX_ELEMENTS: usize = 50_000;

/// One element: its local name, its text (unescaped, untrimmed) and its children in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    pub name: String,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    /// The first child with any of `names`.
    pub fn child(&self, names: &[&str]) -> Option<&Element> {
        self.children
            .iter()
            .find(|c| names.contains(&c.name.as_str()))
    }

    /// Every child named `name`.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The trimmed text of the first child with any of `names`; `""` when absent.
    pub fn text_of(&self, names: &[&str]) -> &str {
        self.child(names).map(|c| c.text.trim()).unwrap_or("")
    }

    /// Every child named `name`, each read by `read`; none at all is an error of `element`,
    /// since a GePG message with an empty list carries nothing to act on.
    pub(super) fn each<T>(
        &self,
        element: &'static str,
        name: &'static str,
        read: impl Fn(&Element) -> Result<T, XmlError>,
    ) -> Result<Vec<T>, XmlError> {
        let items = self.all(name).map(read).collect::<Result<Vec<_>, _>>()?;
        if items.is_empty() {
            return Err(XmlError::Missing {
                element,
                field: name,
            });
        }
        Ok(items)
    }

    pub(super) fn required(
        &self,
        element: &'static str,
        field: &'static str,
        alts: &[&str],
    ) -> Result<String, XmlError> {
        let mut names = vec![field];
        names.extend_from_slice(alts);
        match self.child(&names).map(|c| c.text.trim()) {
            Some(t) if !t.is_empty() => Ok(t.to_string()),
            _ => Err(XmlError::Missing { element, field }),
        }
    }

    pub(super) fn money(
        &self,
        element: &'static str,
        field: &'static str,
        required: bool,
    ) -> Result<Money, XmlError> {
        let raw = self.text_of(&[field]);
        if raw.is_empty() && !required {
            return Ok(Money::ZERO);
        }
        if raw.is_empty() {
            return Err(XmlError::Missing { element, field });
        }
        parse_amount(raw).ok_or_else(|| XmlError::Invalid {
            element,
            field,
            value: raw.to_string(),
        })
    }
}

fn malformed(e: impl Into<Malformed>) -> XmlError {
    XmlError::Malformed(e.into())
}

fn reader(bytes: &[u8]) -> Reader<&[u8]> {
    let mut r = Reader::from_reader(bytes);
    let c = r.config_mut();
    c.trim_text(false);
    c.check_end_names = true;
    c.expand_empty_elements = false;
    r
}

/// Parses a whole document (or one element's bytes) into its root element.
pub fn parse(bytes: &[u8], max: usize) -> Result<Element, XmlError> {
    if bytes.len() > max {
        return Err(XmlError::TooLarge {
            len: bytes.len(),
            max,
        });
    }
    let mut r = reader(bytes);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    loop {
        let ev = r.read_event().map_err(malformed)?;
        match ev {
            Event::Decl(_) if stack.is_empty() && root.is_none() => {}
            Event::Decl(_) | Event::PI(_) | Event::DocType(_) => return Err(XmlError::Dtd),
            Event::Comment(_) => {}
            Event::Start(_) | Event::Empty(_) if root.is_some() => {
                return Err(malformed("content after the root element"));
            }
            Event::Start(e) => {
                count += 1;
                if stack.len() >= MAX_DEPTH || count > MAX_ELEMENTS {
                    return Err(malformed("too deep or too many elements"));
                }
                stack.push(Element {
                    name: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                    ..Element::default()
                });
            }
            Event::Empty(e) => {
                count += 1;
                if count > MAX_ELEMENTS {
                    return Err(malformed("too many elements"));
                }
                let el = Element {
                    name: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                    ..Element::default()
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::End(_) => {
                let el = stack.pop().ok_or_else(|| malformed("unbalanced end tag"))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                // Unknown entities (anything but XML's five and character references) fail here.
                let s = t.unescape().map_err(|e| match e {
                    quick_xml::Error::Escape(_) => XmlError::Dtd,
                    other => malformed(other),
                })?;
                match stack.last_mut() {
                    Some(el) => el.text.push_str(&s),
                    None if s.trim().is_empty() => {}
                    None => return Err(malformed("text outside the root element")),
                }
            }
            Event::CData(c) => {
                let s = std::str::from_utf8(c.as_ref()).map_err(malformed)?;
                match stack.last_mut() {
                    Some(el) => el.text.push_str(s),
                    None => return Err(malformed("CDATA outside the root element")),
                }
            }
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(malformed("unexpected end of document"));
    }
    root.ok_or_else(|| malformed("empty document"))
}

/// A `<Gepg>` envelope as received: the inner element's name, its exact bytes, and the
/// signature text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed<'a> {
    pub name: String,
    pub inner: &'a [u8],
    pub signature: String,
}

/// Cuts the signed inner element out of `raw` by the byte positions at which it starts and
/// ends, so that the signature is checked on exactly what GePG signed.
pub fn split_envelope(raw: &[u8], max: usize) -> Result<Signed<'_>, XmlError> {
    // A full parse first: refuses DTDs, entities and malformed input before anything else.
    let root = parse(raw, max)?;
    if root.name != "Gepg" {
        return Err(XmlError::Envelope(format!("root is <{}>", root.name)));
    }
    let mut r = reader(raw);
    let mut depth = 0usize;
    let mut inner: Option<(String, usize, usize)> = None;
    let mut start = 0usize;
    let mut in_sig = false;
    let mut signature = String::new();
    let mut sig_seen = false;
    loop {
        let before = r.buffer_position() as usize;
        let ev = r.read_event().map_err(malformed)?;
        match ev {
            Event::Start(e) => {
                depth += 1;
                if depth == 2 {
                    let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                    if name == "gepgSignature" {
                        in_sig = true;
                        sig_seen = true;
                    } else if inner.is_some() {
                        return Err(XmlError::Envelope(format!("second message <{name}>")));
                    } else {
                        start = before;
                        inner = Some((name, before, before));
                    }
                }
            }
            Event::Empty(e) if depth == 1 => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if name == "gepgSignature" {
                    sig_seen = true;
                } else if inner.is_some() {
                    return Err(XmlError::Envelope(format!("second message <{name}>")));
                } else {
                    let end = r.buffer_position() as usize;
                    inner = Some((name, before, end));
                }
            }
            Event::End(_) => {
                if depth == 2 {
                    if in_sig {
                        in_sig = false;
                    } else if let Some((_, s, e)) = inner.as_mut() {
                        if *s == start && *e == start {
                            *e = r.buffer_position() as usize;
                        }
                    }
                }
                depth = depth.saturating_sub(1);
            }
            Event::Text(t) if in_sig => {
                signature.push_str(&t.unescape().map_err(malformed)?);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let (name, s, e) = inner.ok_or_else(|| XmlError::Envelope("no message inside".into()))?;
    if !sig_seen {
        return Err(XmlError::Envelope("no <gepgSignature>".into()));
    }
    let inner = raw
        .get(s..e)
        .ok_or_else(|| XmlError::Envelope("message bounds".into()))?;
    Ok(Signed {
        name,
        inner,
        signature: signature.trim().to_string(),
    })
}
