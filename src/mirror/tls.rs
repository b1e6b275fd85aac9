//! TLS to the central database, chosen in the DSN the way libpq users already write it.
//!
//! Owns: reading `sslmode` and `sslrootcert` from the DSN (key=value or URL form) and
//! building the matching connector (OpenSSL, the system's libssl the payments already use).
//! Must never: make an unverified TLS connection when the DSN asks for verification, or
//! silently fall back to plain text when it asks for TLS (`require` and stricter).
//!
//! | `sslmode` | Connection |
//! |---|---|
//! | absent, `disable`, `allow` | plain TCP |
//! | `prefer` | TLS if the server offers it, certificate not checked; else plain |
//! | `require` | TLS or fail; certificate checked only when `sslrootcert` is given (as libpq) |
//! | `verify-ca` | TLS, certificate chain checked (`sslrootcert`, else the system roots) |
//! | `verify-full` | as `verify-ca`, and the host name must match the certificate |

use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use postgres_openssl::MakeTlsConnector;

/// What the DSN asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Off,
    /// TLS without checking the certificate (`prefer`, or `require` without a root cert).
    Unverified {
        required: bool,
    },
    VerifyCa,
    VerifyFull,
}

/// The DSN split into what tokio-postgres understands and our TLS choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// The DSN with `sslrootcert` removed and `sslmode` mapped to disable/prefer/require.
    pub dsn: String,
    pub mode: Mode,
    pub root_cert: Option<String>,
}

fn mode_of(sslmode: Option<&str>, root: bool) -> Result<Mode, String> {
    Ok(match sslmode {
        None | Some("disable") | Some("allow") => Mode::Off,
        Some("prefer") => Mode::Unverified { required: false },
        Some("require") if root => Mode::VerifyCa,
        Some("require") => Mode::Unverified { required: true },
        Some("verify-ca") => Mode::VerifyCa,
        Some("verify-full") => Mode::VerifyFull,
        Some(other) => return Err(format!("unknown sslmode {other:?}")),
    })
}

/// tokio-postgres's own sslmode for a mode.
fn pg_mode(m: Mode) -> &'static str {
    match m {
        Mode::Off => "disable",
        Mode::Unverified { required: false } => "prefer",
        _ => "require",
    }
}

/// Splits the DSN; an unknown `sslmode` is an error (a typo must not mean "no TLS").
pub fn choose(dsn: &str) -> Result<Choice, String> {
    let url = dsn.starts_with("postgres://") || dsn.starts_with("postgresql://");
    let (base, pairs): (String, Vec<String>) = if url {
        match dsn.split_once('?') {
            Some((b, q)) => (b.to_string(), q.split('&').map(str::to_string).collect()),
            None => (dsn.to_string(), Vec::new()),
        }
    } else {
        (
            String::new(),
            dsn.split_whitespace().map(str::to_string).collect(),
        )
    };
    let mut sslmode = None;
    let mut root = None;
    let mut kept = Vec::new();
    for p in pairs {
        match p.split_once('=') {
            Some(("sslmode", v)) => sslmode = Some(v.to_string()),
            Some(("sslrootcert", v)) => root = Some(v.to_string()),
            _ => kept.push(p),
        }
    }
    let mode = mode_of(sslmode.as_deref(), root.is_some())?;
    if sslmode.is_some() || mode != Mode::Off {
        kept.push(format!("sslmode={}", pg_mode(mode)));
    }
    let dsn = if url {
        if kept.is_empty() {
            base
        } else {
            format!("{base}?{}", kept.join("&"))
        }
    } else {
        kept.join(" ")
    };
    Ok(Choice {
        dsn,
        mode,
        root_cert: root,
    })
}

/// The OpenSSL connector for a TLS mode.
pub fn connector(c: &Choice) -> Result<MakeTlsConnector, openssl::error::ErrorStack> {
    let mut b = SslConnector::builder(SslMethod::tls_client())?;
    match c.mode {
        Mode::Off | Mode::Unverified { .. } => b.set_verify(SslVerifyMode::NONE),
        Mode::VerifyCa | Mode::VerifyFull => {
            b.set_verify(SslVerifyMode::PEER);
            match &c.root_cert {
                Some(f) => b.set_ca_file(f)?,
                None => b.set_default_verify_paths()?,
            }
        }
    }
    let mut tls = MakeTlsConnector::new(b.build());
    if c.mode != Mode::VerifyFull {
        tls.set_callback(|cfg, _host| {
            cfg.set_verify_hostname(false);
            Ok(())
        });
    }
    Ok(tls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dsn_without_sslmode_stays_plain_and_unchanged() {
        let c = choose("host=db port=5432 user=imis dbname=imis").unwrap();
        assert_eq!(c.mode, Mode::Off);
        assert_eq!(c.dsn, "host=db port=5432 user=imis dbname=imis");
        let u = choose("postgres://imis:pw@db/imis").unwrap();
        assert_eq!(
            (u.mode, u.dsn.as_str()),
            (Mode::Off, "postgres://imis:pw@db/imis")
        );
    }

    #[test]
    fn libpq_modes_map_to_what_tokio_postgres_knows_and_the_root_cert_is_ours() {
        let c = choose("host=db sslmode=verify-full sslrootcert=/etc/imis/ca.pem user=x").unwrap();
        assert_eq!(c.mode, Mode::VerifyFull);
        assert_eq!(c.root_cert.as_deref(), Some("/etc/imis/ca.pem"));
        assert_eq!(c.dsn, "host=db user=x sslmode=require");
        let u = choose("postgresql://x@db/imis?sslmode=verify-ca&application_name=gw").unwrap();
        assert_eq!(u.mode, Mode::VerifyCa);
        assert_eq!(
            u.dsn,
            "postgresql://x@db/imis?application_name=gw&sslmode=require"
        );
        // libpq: require with a root cert checks the chain.
        let r = choose("host=db sslmode=require sslrootcert=ca.pem").unwrap();
        assert_eq!(r.mode, Mode::VerifyCa);
        let r = choose("host=db sslmode=require").unwrap();
        assert_eq!(r.mode, Mode::Unverified { required: true });
        let p = choose("host=db sslmode=prefer").unwrap();
        assert_eq!(
            (p.mode, p.dsn.as_str()),
            (
                Mode::Unverified { required: false },
                "host=db sslmode=prefer"
            )
        );
        let a = choose("host=db sslmode=allow").unwrap();
        assert_eq!(
            (a.mode, a.dsn.as_str()),
            (Mode::Off, "host=db sslmode=disable")
        );
    }

    #[test]
    fn an_unknown_sslmode_is_refused() {
        assert!(choose("host=db sslmode=requir")
            .unwrap_err()
            .contains("requir"));
    }

    #[test]
    fn connectors_build_for_every_mode_and_a_missing_root_cert_fails() {
        for dsn in [
            "host=db sslmode=prefer",
            "host=db sslmode=require",
            "host=db sslmode=verify-full",
        ] {
            assert!(connector(&choose(dsn).unwrap()).is_ok(), "{dsn}");
        }
        let bad = choose("host=db sslmode=verify-ca sslrootcert=/nonexistent/ca.pem").unwrap();
        assert!(connector(&bad).is_err());
    }
}
