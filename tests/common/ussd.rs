//! USSD client helpers: both adapters over HTTP, and the screen-length check every rendered
//! screen must pass.
#![allow(dead_code)]

use serde_json::{json, Value};

use super::Server;

/// GSM 03.38 basic table (without ESC) and extension table, written out again here so the
/// tests do not trust the code under test to judge itself.
const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM_EXT: &str = "\u{c}^{}\\[~]|€";

/// Panics unless `text` fits one USSD screen: 182 GSM-7 septets, or 80 UCS2 units.
pub fn assert_fits(text: &str) {
    let gsm: Option<usize> = text
        .chars()
        .map(|c| {
            if GSM_BASIC.contains(c) {
                Some(1)
            } else if GSM_EXT.contains(c) {
                Some(2)
            } else {
                None
            }
        })
        .sum();
    match gsm {
        Some(n) => assert!(n <= 182, "{n} GSM-7 septets > 182:\n{text}"),
        None => {
            let n: usize = text.chars().map(char::len_utf16).sum();
            assert!(n <= 80, "{n} UCS2 units > 80:\n{text}");
        }
    }
}

/// The Africa's Talking form of one hop: `text` is the cumulative input.
pub fn at_form<'a>(
    session: &'a str,
    phone: &'a str,
    code: &'a str,
    text: &'a str,
) -> [(&'a str, &'a str); 5] {
    [
        ("sessionId", session),
        ("serviceCode", code),
        ("phoneNumber", phone),
        ("networkCode", "64002"),
        ("text", text),
    ]
}

/// An Africa's Talking reply body as (ended, screen), or why it is none.
pub fn at_screen(body: &str) -> Result<(bool, String), String> {
    if let Some(s) = body.strip_prefix("CON ") {
        Ok((false, s.to_string()))
    } else if let Some(s) = body.strip_prefix("END ") {
        Ok((true, s.to_string()))
    } else {
        Err(format!("reply does not start with CON or END: {body:?}"))
    }
}

/// The JSON adapter's request for one hop of `kind` (begin, continue) on `*152*00#`.
pub fn json_hop(session: &str, phone: &str, kind: &str, input: &str, hop: u32) -> Value {
    json!({"sessionId": session, "msisdn": phone, "serviceCode": "*152*00#",
        "input": input, "type": kind, "hop": hop})
}

/// A JSON adapter reply as (ended, screen), or why it is none.
pub fn json_screen(v: &Value) -> Result<(bool, String), String> {
    let screen = v["message"]
        .as_str()
        .ok_or_else(|| format!("no message in {v}"))?;
    match v["action"].as_str() {
        Some("CON") => Ok((false, screen.to_string())),
        Some("END") => Ok((true, screen.to_string())),
        other => Err(format!("action {other:?} in {v}")),
    }
}

/// The control number in a screen or SMS: a 12-digit number starting 99.
pub fn control_number_in(text: &str) -> Option<String> {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 12 && w.starts_with("99"))
        .map(str::to_string)
}

/// The control number on `screen`; panics when there is none.
pub fn control_number(screen: &str) -> String {
    control_number_in(screen).unwrap_or_else(|| panic!("no control number in {screen}"))
}

pub struct Ussd {
    pub rt: tokio::runtime::Runtime,
    pub client: reqwest::Client,
    pub base: String,
}

impl Ussd {
    pub fn new(server: &Server) -> Ussd {
        Ussd {
            rt: tokio::runtime::Runtime::new().expect("runtime"),
            client: reqwest::Client::new(),
            base: server.url(""),
        }
    }

    /// Posts an AT form; returns (status, body).
    pub fn at_raw(&self, form: &[(&str, &str)]) -> (u16, String) {
        self.rt.block_on(async {
            let r = self
                .client
                .post(format!("{}/ussd/africastalking", self.base))
                .form(form)
                .send()
                .await
                .expect("POST");
            (r.status().as_u16(), r.text().await.expect("body"))
        })
    }

    /// One AT hop: `text` is the cumulative input. Returns (ended, screen).
    pub fn at(&self, session: &str, phone: &str, code: &str, text: &str) -> (bool, String) {
        let (status, body) = self.at_raw(&at_form(session, phone, code, text));
        assert_eq!(status, 200, "{body}");
        let (end, screen) = at_screen(&body).unwrap_or_else(|e| panic!("{e}"));
        assert_fits(&screen);
        (end, screen)
    }

    pub fn json_raw(&self, body: &str) -> (u16, String) {
        self.rt.block_on(async {
            let r = self
                .client
                .post(format!("{}/ussd/json", self.base))
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .await
                .expect("POST");
            (r.status().as_u16(), r.text().await.expect("body"))
        })
    }

    /// One JSON hop. Returns (ended, screen).
    pub fn json(
        &self,
        session: &str,
        phone: &str,
        kind: &str,
        input: &str,
        hop: u32,
    ) -> (bool, String) {
        let body = json_hop(session, phone, kind, input, hop);
        let (status, text) = self.json_raw(&body.to_string());
        assert_eq!(status, 200, "{text}");
        let v: Value = serde_json::from_str(&text).expect("json reply");
        let (end, screen) = json_screen(&v).unwrap_or_else(|e| panic!("{e}"));
        assert_fits(&screen);
        (end, screen)
    }

    pub fn metrics(&self) -> String {
        self.rt.block_on(async {
            self.client
                .get(format!("{}/metrics", self.base))
                .send()
                .await
                .expect("GET")
                .text()
                .await
                .expect("body")
        })
    }
}

/// An Africa's Talking session: keeps the cumulative `text` as AT does.
pub struct AtSession<'a> {
    pub ussd: &'a Ussd,
    pub id: String,
    pub phone: String,
    pub inputs: Vec<String>,
}

impl<'a> AtSession<'a> {
    pub fn dial(ussd: &'a Ussd, id: &str, phone: &str) -> (AtSession<'a>, String) {
        let s = AtSession {
            ussd,
            id: id.into(),
            phone: phone.into(),
            inputs: Vec::new(),
        };
        let (end, screen) = ussd.at(id, phone, "*152*00#", "");
        assert!(!end, "{screen}");
        (s, screen)
    }

    pub fn send(&mut self, input: &str) -> (bool, String) {
        self.inputs.push(input.into());
        self.resend()
    }

    /// Posts the current cumulative text again (a gateway retry).
    pub fn resend(&self) -> (bool, String) {
        self.ussd
            .at(&self.id, &self.phone, "*152*00#", &self.inputs.join("*"))
    }
}

/// Pending SMS texts in a stopped server's store.
pub fn queued_sms(data_dir: &std::path::Path) -> Vec<String> {
    let store = imis_gateway::store::Store::open(data_dir, Default::default()).expect("open store");
    let items = store
        .claim(
            imis_gateway::sms::SMS_TOPIC,
            1000,
            std::time::Duration::from_secs(60),
            chrono::Utc::now(),
        )
        .expect("claim");
    items
        .iter()
        .map(|i| {
            imis_gateway::sms::outbound::decode(&i.payload)
                .expect("sms")
                .text
        })
        .collect()
}

/// Which gateway adapter a [`Dialog`] speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gw {
    /// Africa's Talking: form posts, cumulative `text`, `CON `/`END ` bodies.
    At,
    /// The generic JSON adapter: latest input only, explicit hop index.
    Json,
}

impl Gw {
    pub const BOTH: [Gw; 2] = [Gw::At, Gw::Json];

    /// The `gateway` label in metrics.
    pub fn label(self) -> &'static str {
        match self {
            Gw::At => "africastalking",
            Gw::Json => "json",
        }
    }
}

/// One USSD session as a phone and its gateway produce it, over either adapter.
pub struct Dialog<'a> {
    pub ussd: &'a Ussd,
    pub gw: Gw,
    pub id: String,
    pub phone: String,
    pub code: String,
    /// AT: the cumulative inputs since the dial (dial-string inputs in `code` excluded).
    pub inputs: Vec<String>,
    pub hop: u32,
    last: (String, String),
}

impl<'a> Dialog<'a> {
    /// Dials `*152*00#`; the session id is prefixed with the adapter so both can run in one
    /// server. Returns the first screen, which must not be an END.
    pub fn dial(ussd: &'a Ussd, gw: Gw, id: &str, phone: &str) -> (Dialog<'a>, String) {
        let (d, (end, screen)) = Dialog::dial_with(ussd, gw, id, phone, "*152*00#", "");
        assert!(!end, "{screen}");
        (d, screen)
    }

    /// Dials `code` (which may carry inputs, `*152*00*1#`) with `first` inputs already on
    /// the first hop (`1*1*070707070`: AT's `text`, JSON's `input`).
    pub fn dial_with(
        ussd: &'a Ussd,
        gw: Gw,
        id: &str,
        phone: &str,
        code: &str,
        first: &str,
    ) -> (Dialog<'a>, (bool, String)) {
        let mut d = Dialog {
            ussd,
            gw,
            id: format!("{}-{id}", gw.label()),
            phone: phone.into(),
            code: code.into(),
            inputs: first
                .split('*')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            hop: 0,
            last: ("begin".into(), first.into()),
        };
        if gw == Gw::At {
            d.hop = u32::try_from(d.inputs.len()).unwrap_or(0);
        }
        let r = d.post();
        (d, r)
    }

    /// The member answers the screen.
    pub fn send(&mut self, input: &str) -> (bool, String) {
        self.stage(input);
        self.post()
    }

    /// Prepares the next hop without sending it (send it with [`Dialog::resend`], for
    /// example from two threads at once).
    pub fn stage(&mut self, input: &str) {
        self.inputs.push(input.into());
        self.hop += 1;
        self.last = ("continue".into(), input.into());
    }

    /// The gateway re-sends the last hop (same session, same hop index).
    pub fn resend(&self) -> (bool, String) {
        self.post()
    }

    /// The gateway reports that the session ended without our END (AT: the events callback
    /// with `status=Incomplete`; JSON: `type: abort`).
    pub fn drop_by_network(&mut self) {
        match self.gw {
            Gw::At => {
                let (status, body) = self.ussd.rt.block_on(async {
                    let r = self
                        .ussd
                        .client
                        .post(format!("{}/ussd/africastalking/events", self.ussd.base))
                        .form(&[
                            ("sessionId", self.id.as_str()),
                            ("phoneNumber", self.phone.as_str()),
                            ("serviceCode", self.code.as_str()),
                            ("status", "Incomplete"),
                            ("errorMessage", "Subscriber terminated Session"),
                        ])
                        .send()
                        .await
                        .expect("POST");
                    (r.status().as_u16(), r.text().await.expect("body"))
                });
                assert_eq!(status, 200, "{body}");
            }
            Gw::Json => {
                self.hop += 1;
                self.last = ("abort".into(), String::new());
                let (end, _) = self.post();
                assert!(end);
            }
        }
    }

    fn post(&self) -> (bool, String) {
        match self.gw {
            Gw::At => self
                .ussd
                .at(&self.id, &self.phone, &self.code, &self.inputs.join("*")),
            Gw::Json => {
                let body = json!({"sessionId": self.id, "msisdn": self.phone,
                    "serviceCode": self.code, "input": self.last.1, "type": self.last.0,
                    "hop": self.hop});
                let (status, text) = self.ussd.json_raw(&body.to_string());
                assert_eq!(status, 200, "{text}");
                let v: Value = serde_json::from_str(&text).expect("json reply");
                let screen = v["message"].as_str().expect("message").to_string();
                let end = match v["action"].as_str() {
                    Some("CON") => false,
                    Some("END") => true,
                    other => panic!("action {other:?}"),
                };
                assert_fits(&screen);
                (end, screen)
            }
        }
    }
}

/// Walks `script` (one input per hop) and returns the last screen.
pub fn walk(d: &mut Dialog<'_>, script: &[&str]) -> (bool, String) {
    let mut last = (false, String::new());
    for input in script {
        last = d.send(input);
    }
    last
}

/// The value of a metric line `name{labels} value`, 0 if absent.
pub fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0)
}

/// Renews CHFID `chfid` by USSD from `phone` (renew → by CHFID → first product → confirm)
/// and pays the control number through the GePG simulator (`POST /gepg-sim/pay`, a signed
/// notification back to the server); returns the control number.
pub fn renew_and_pay(u: &Ussd, session: &str, phone: &str, chfid: &str) -> String {
    let (mut s, _) = Dialog::dial(u, Gw::Json, session, phone);
    walk(&mut s, &["2", "1", chfid, "1"]);
    let (end, done) = s.send("1");
    assert!(end, "{done}");
    let cn = control_number(&done);
    let (status, body) = u.rt.block_on(async {
        let r = u
            .client
            .post(format!("{}/gepg-sim/pay", u.base))
            .json(&serde_json::json!({ "control_number": cn }))
            .send()
            .await
            .expect("POST /gepg-sim/pay");
        (r.status().as_u16(), r.text().await.expect("body"))
    });
    assert_eq!(status, 200, "{body}");
    cn
}
