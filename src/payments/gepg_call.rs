//! A signed request to GePG and its signed acknowledgement: the one HTTP exchange bills and
//! reconciliation requests share.
//!
//! Owns: posting a signed body with GePG's headers, and verifying the answer (status, envelope
//! name, GePG's signature) before its codes are believed.
//! Must never: trust an ack it could not verify (the caller retries instead).

use super::service::Payments;
use super::xml::{self, Ack};

/// Why a signed request to GePG got no verified answer (the request is sent again later).
#[derive(Debug, thiserror::Error)]
pub enum GepgCallError {
    #[error("signing the request: {0}")]
    Sign(#[from] super::sign::SignError),
    #[error("HTTP: {0}")]
    Http(#[from] reqwest::Error),
    #[error("HTTP {0}")]
    Status(reqwest::StatusCode),
    #[error("GePG's answer: {0}")]
    Xml(#[from] xml::XmlError),
    #[error("unexpected answer <{0}>")]
    Unexpected(String),
    #[error("GePG's answer has an invalid signature")]
    BadSignature,
}

/// POSTs a signed request to GePG and returns the codes of its verified, signed ack.
pub(crate) async fn send_signed(
    p: &Payments,
    path: &str,
    sp_code: &str,
    body: Vec<u8>,
    ack_name: &str,
) -> Result<Vec<String>, GepgCallError> {
    let resp = p
        .http
        .post(format!("{}{path}", p.gepg_url))
        .header("Content-Type", "application/xml")
        .header("Gepg-Code", sp_code)
        .header("Gepg-Com", "default.sp.in")
        .body(body)
        .send()
        .await?;
    let status = resp.status();
    let raw = resp.bytes().await?;
    if !status.is_success() {
        return Err(GepgCallError::Status(status));
    }
    let signed = xml::split_envelope(&raw, p.config.max_body_bytes)?;
    if signed.name != ack_name {
        return Err(GepgCallError::Unexpected(signed.name.to_string()));
    }
    if !p.keys.gepg.verify(signed.inner, &signed.signature) {
        return Err(GepgCallError::BadSignature);
    }
    let el = xml::parse(signed.inner, p.config.max_body_bytes)?;
    Ok(Ack::parse(&el).codes)
}
