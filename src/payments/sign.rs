//! GePG signatures: RSA PKCS#1 v1.5 with SHA-1 over the exact bytes of the inner element.
//!
//! Owns: loading our private key and GePG's certificate from PKCS#12 files, signing what we
//! send (requests and acks), verifying what GePG sends, building the `<Gepg>` envelope, and
//! generating throwaway identities (simulator, tests).
//! Must never: verify anything but the bytes as received, or accept a message whose
//! signature does not verify (there is no "signature not enforced" mode).

use std::path::Path;
use std::sync::OnceLock;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use openssl::hash::MessageDigest;
use openssl::pkcs12::Pkcs12;
use openssl::pkey::{PKey, Private, Public};
use openssl::rsa::Rsa;
use openssl::x509::X509;

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("cannot read keystore {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("keystore {path}: {message}")]
    Keystore { path: String, message: String },
    #[error("openssl: {0}")]
    Openssl(#[from] openssl::error::ErrorStack),
}

/// A private key that signs (ours; the simulator's).
#[derive(Clone)]
pub struct SigningKey {
    key: PKey<Private>,
}

/// A public key that verifies (GePG's certificate; ours, for the simulator).
#[derive(Clone)]
pub struct VerifyingKey {
    key: PKey<Public>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VerifyingKey(..)")
    }
}

impl SigningKey {
    pub fn from_pkey(key: PKey<Private>) -> SigningKey {
        SigningKey { key }
    }

    /// Base64 of RSA-SHA1 over `data`.
    pub fn sign(&self, data: &[u8]) -> Result<String, SignError> {
        let mut s = openssl::sign::Signer::new(MessageDigest::sha1(), &self.key)?;
        s.update(data)?;
        Ok(B64.encode(s.sign_to_vec()?))
    }

    /// `<Gepg>{inner}<gepgSignature>{sig}</gepgSignature></Gepg>`, signed over `inner`.
    pub fn envelope(&self, inner: &str) -> Result<Vec<u8>, SignError> {
        let sig = self.sign(inner.as_bytes())?;
        Ok(format!("<Gepg>{inner}<gepgSignature>{sig}</gepgSignature></Gepg>").into_bytes())
    }

    /// The matching public key.
    pub fn verifying_key(&self) -> Result<VerifyingKey, SignError> {
        let der = self.key.public_key_to_der()?;
        Ok(VerifyingKey {
            key: PKey::public_key_from_der(&der)?,
        })
    }
}

impl VerifyingKey {
    pub fn from_cert(cert: &X509) -> Result<VerifyingKey, SignError> {
        Ok(VerifyingKey {
            key: cert.public_key()?,
        })
    }

    /// Whether `signature_b64` is RSA-SHA1 over exactly `data`. Bad base64 is `false`.
    pub fn verify(&self, data: &[u8], signature_b64: &str) -> bool {
        let compact: String = signature_b64
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let Ok(sig) = B64.decode(compact) else {
            return false;
        };
        let Ok(mut v) = openssl::sign::Verifier::new(MessageDigest::sha1(), &self.key) else {
            return false;
        };
        v.update(data).is_ok() && v.verify(&sig).unwrap_or(false)
    }
}

/// Old keystores (RC2/3DES) need OpenSSL 3's legacy provider; loaded once, on demand.
fn load_legacy_provider() {
    static LEGACY: OnceLock<Option<(openssl::provider::Provider, openssl::provider::Provider)>> =
        OnceLock::new();
    LEGACY.get_or_init(|| {
        let legacy = openssl::provider::Provider::try_load(None, "legacy", true).ok()?;
        let default = openssl::provider::Provider::try_load(None, "default", true).ok()?;
        Some((legacy, default))
    });
}

fn parse_p12(path: &Path, password: &str) -> Result<openssl::pkcs12::ParsedPkcs12_2, SignError> {
    let shown = path.display().to_string();
    let der = std::fs::read(path).map_err(|source| SignError::Read {
        path: shown.clone(),
        source,
    })?;
    let keystore = |message: String| SignError::Keystore {
        path: shown.clone(),
        message,
    };
    let p12 = Pkcs12::from_der(&der).map_err(|e| keystore(format!("not PKCS#12: {e}")))?;
    match p12.parse2(password) {
        Ok(p) => Ok(p),
        Err(_) => {
            load_legacy_provider();
            p12.parse2(password)
                .map_err(|e| keystore(format!("wrong password or unsupported cipher: {e}")))
        }
    }
}

/// Our private key from our PKCS#12 keystore.
pub fn load_signing_key(path: &Path, password: &str) -> Result<SigningKey, SignError> {
    let p = parse_p12(path, password)?;
    let key = p.pkey.ok_or_else(|| SignError::Keystore {
        path: path.display().to_string(),
        message: "no private key inside".into(),
    })?;
    Ok(SigningKey { key })
}

/// GePG's public key from its PKCS#12 file: the certificate, or the first extra certificate
/// (where PHP's `openssl_pkcs12_read` finds it in GePG's `gepgpubliccertificate.pfx`).
pub fn load_verifying_key(path: &Path, password: &str) -> Result<VerifyingKey, SignError> {
    let p = parse_p12(path, password)?;
    let cert = match p.cert {
        Some(c) => c,
        None => {
            p.ca.and_then(|mut ca| ca.pop())
                .ok_or_else(|| SignError::Keystore {
                    path: path.display().to_string(),
                    message: "no certificate inside".into(),
                })?
        }
    };
    VerifyingKey::from_cert(&cert)
}

/// A fresh 2048-bit RSA key and a self-signed certificate for it.
pub fn generate_identity(common_name: &str) -> Result<(PKey<Private>, X509), SignError> {
    let key = PKey::from_rsa(Rsa::generate(2048)?)?;
    let mut name = openssl::x509::X509NameBuilder::new()?;
    name.append_entry_by_text("CN", common_name)?;
    let name = name.build();
    let mut b = X509::builder()?;
    b.set_version(2)?;
    let serial = openssl::bn::BigNum::from_u32(1)?.to_asn1_integer()?;
    b.set_serial_number(&serial)?;
    b.set_subject_name(&name)?;
    b.set_issuer_name(&name)?;
    b.set_pubkey(&key)?;
    b.set_not_before(openssl::asn1::Asn1Time::days_from_now(0)?.as_ref())?;
    b.set_not_after(openssl::asn1::Asn1Time::days_from_now(3650)?.as_ref())?;
    b.sign(&key, MessageDigest::sha256())?;
    Ok((key, b.build()))
}

/// A PKCS#12 file holding `cert`, and `key` when given (ours), under `password`.
pub fn p12_der(
    key: Option<&PKey<Private>>,
    cert: &X509,
    password: &str,
    alias: &str,
) -> Result<Vec<u8>, SignError> {
    let mut b = Pkcs12::builder();
    b.name(alias).cert(cert);
    if let Some(k) = key {
        b.pkey(k);
    }
    Ok(b.build2(password)?.to_der()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_cover_exact_bytes_and_keys_load_from_pkcs12() {
        let (key, cert) = generate_identity("gepg-test").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let private = dir.path().join("ours.p12");
        let public = dir.path().join("gepg.p12");
        std::fs::write(
            &private,
            p12_der(Some(&key), &cert, "passpass", "gepgclient").unwrap(),
        )
        .unwrap();
        std::fs::write(&public, p12_der(None, &cert, "gepg@2018", "gepg").unwrap()).unwrap();
        let signer = load_signing_key(&private, "passpass").unwrap();
        let verifier = load_verifying_key(&public, "gepg@2018").unwrap();
        let inner = b"<gepgPmtSpInfoAck><TrxStsCode>7101</TrxStsCode></gepgPmtSpInfoAck>";
        let sig = signer.sign(inner).unwrap();
        assert_eq!(sig.len(), 344, "2048-bit signature in base64");
        assert!(verifier.verify(inner, &sig));
        // Line-wrapped base64 is still the same signature.
        let wrapped = format!("{}\n{}", &sig[..64], &sig[64..]);
        assert!(verifier.verify(inner, &wrapped));
        let mut tampered = inner.to_vec();
        tampered[30] = b'2';
        assert!(!verifier.verify(&tampered, &sig));
        assert!(!verifier.verify(inner, "not base64!"));
        assert!(!verifier.verify(inner, ""));
        // Another key's signature fails.
        let (other, _) = generate_identity("other").unwrap();
        let forged = SigningKey::from_pkey(other).sign(inner).unwrap();
        assert!(!verifier.verify(inner, &forged));
        // Wrong password, a missing file, and a keystore without a private key are errors.
        assert!(matches!(
            load_signing_key(&private, "wrong"),
            Err(SignError::Keystore { .. })
        ));
        assert!(matches!(
            load_signing_key(&dir.path().join("none.p12"), ""),
            Err(SignError::Read { .. })
        ));
        assert!(matches!(
            load_signing_key(&public, "gepg@2018"),
            Err(SignError::Keystore { .. })
        ));
    }
}
