//! The bearer token a metrics scraper presents (`--metrics-token-file`).
//!
//! Prometheus scrapes pods directly, past the ingress and its sign-in, and cannot sign in itself.
//! Where strangers may not see the pages (`--anonymous-role none`), `/metrics` would name every
//! cluster and its health to anyone who reaches the port; the token lets a scraper in without
//! opening it to them. Prometheus sends it as `Authorization: Bearer <token>` from
//! `authorization: {credentials_file: …}`.

use subtle::ConstantTimeEq;

/// Shortest token accepted: a guessable token would be no lock at all.
pub const MIN_LEN: usize = 16;

/// A scrape token, read once at start.
#[derive(Clone, PartialEq, Eq)]
pub struct ScrapeToken(Vec<u8>);

impl std::fmt::Debug for ScrapeToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScrapeToken(***)")
    }
}

impl ScrapeToken {
    /// The token in a file's contents: surrounding whitespace (a trailing newline) is dropped; it
    /// must be at least [`MIN_LEN`] visible ASCII characters with no spaces, since it travels in
    /// an HTTP header.
    pub fn from_file_bytes(bytes: &[u8]) -> Result<ScrapeToken, String> {
        let token = bytes.trim_ascii();
        if token.is_empty() {
            return Err("the file is empty".into());
        }
        if !token.iter().all(|b| b.is_ascii_graphic()) {
            return Err(
                "the token must be visible ASCII without spaces (it is sent in an HTTP header)"
                    .into(),
            );
        }
        if token.len() < MIN_LEN {
            return Err(format!(
                "the token has {} characters; use at least {MIN_LEN} (e.g. `head -c 32 /dev/urandom | base64`)",
                token.len()
            ));
        }
        Ok(ScrapeToken(token.to_vec()))
    }

    /// Whether an `Authorization` header value presents this token (`Bearer <token>`; the scheme
    /// is case-insensitive). The token is compared in constant time.
    pub fn admits(&self, authorization: &[u8]) -> bool {
        let Some((scheme, rest)) = authorization.split_at_checked(7) else {
            return false;
        };
        if !scheme.eq_ignore_ascii_case(b"bearer ") {
            return false;
        }
        let offered = rest.trim_ascii();
        bool::from(offered.ct_eq(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> ScrapeToken {
        ScrapeToken::from_file_bytes(b"s3cret-token-0123456789\n").unwrap()
    }

    #[test]
    fn a_file_with_a_trailing_newline_holds_the_token_without_it() {
        let t = token();
        assert!(t.admits(b"Bearer s3cret-token-0123456789"));
        assert_eq!(
            t,
            ScrapeToken::from_file_bytes(b"\t s3cret-token-0123456789").unwrap()
        );
    }

    #[test]
    fn only_the_exact_token_with_the_bearer_scheme_is_admitted() {
        let t = token();
        assert!(t.admits(b"bearer s3cret-token-0123456789"));
        assert!(t.admits(b"BEARER   s3cret-token-0123456789  "));
        for wrong in [
            &b""[..],
            b"Bearer",
            b"Bearer ",
            b"Basic s3cret-token-0123456789",
            b"s3cret-token-0123456789",
            b"Bearer s3cret-token-012345678",
            b"Bearer s3cret-token-01234567890",
            b"Bearer S3CRET-TOKEN-0123456789",
        ] {
            assert!(!t.admits(wrong), "{:?}", String::from_utf8_lossy(wrong));
        }
    }

    #[test]
    fn empty_short_or_unsendable_tokens_are_refused_with_the_reason() {
        assert!(ScrapeToken::from_file_bytes(b" \n")
            .unwrap_err()
            .contains("empty"));
        assert!(ScrapeToken::from_file_bytes(b"short\n")
            .unwrap_err()
            .contains("at least 16"));
        assert!(ScrapeToken::from_file_bytes(b"has a space in the middle")
            .unwrap_err()
            .contains("without spaces"));
        assert!(
            ScrapeToken::from_file_bytes("tökentökentökentöken".as_bytes())
                .unwrap_err()
                .contains("ASCII")
        );
    }

    #[test]
    fn the_token_never_appears_in_debug_output() {
        assert_eq!(format!("{:?}", token()), "ScrapeToken(***)");
    }
}
