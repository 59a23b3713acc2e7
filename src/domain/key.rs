//! Keys are bytes, end to end.
//!
//! etcd keys are arbitrary byte strings, so nothing here assumes UTF-8. Text is only a *view* of a key:
//! [`display_text`] says whether a key can be shown as text, and [`b64_std`] / [`b64_url_decode`] carry
//! the exact bytes through JSON and URLs.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;

/// The smallest key strictly greater than every key that starts with `prefix`, or `None` when no such
/// key exists (the empty prefix, or a prefix of only 0xff bytes): the range then has no upper end.
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.last_mut() {
        if *last < 0xff {
            *last += 1;
            return Some(end);
        }
        end.pop();
    }
    None
}

/// The smallest key strictly greater than `key` (the key with a 0x00 byte appended).
pub fn key_after(key: &[u8]) -> Vec<u8> {
    let mut next = Vec::with_capacity(key.len() + 1);
    next.extend_from_slice(key);
    next.push(0);
    next
}

/// `Some(text)` when the bytes are valid UTF-8, so that JSON can carry them as a string; `None` otherwise.
pub fn display_text(bytes: &[u8]) -> Option<&str> {
    std::str::from_utf8(bytes).ok()
}

/// Standard base64 (RFC 4648 §4, padded), as the API returns `key_b64` / `value_b64`.
pub fn b64_std(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Base64url without padding (RFC 4648 §5), used inside URLs and cursors.
pub fn b64_url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url with or without padding; also accepts the standard alphabet so that a `key_b64`
/// copied from a response works as a parameter.
pub fn b64_url_decode(text: &str) -> Option<Vec<u8>> {
    let trimmed = text.trim_end_matches('=');
    let normalised: String = trimmed
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            other => other,
        })
        .collect();
    URL_SAFE_NO_PAD.decode(normalised.as_bytes()).ok()
}

/// Percent-encodes arbitrary bytes for a query parameter value: unreserved characters and `/` stay
/// readable (deep links to `/app/config` look like the key), everything else is `%XX`.
pub fn percent_encode_query(bytes: &[u8]) -> String {
    const UNRESERVED_AND_SLASH: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~')
        .remove(b'/');
    percent_encoding::percent_encode(bytes, UNRESERVED_AND_SLASH).to_string()
}

/// A parsed query string: parameter names are text, values are the exact bytes after percent-decoding
/// (`+` is a space), so a key with any bytes survives the URL.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RawQuery {
    pairs: Vec<(String, Vec<u8>)>,
}

impl RawQuery {
    /// Parses `a=1&b=%FF`; never fails (malformed escapes are kept literally, as browsers do).
    pub fn parse(query: Option<&str>) -> RawQuery {
        let mut pairs = Vec::new();
        for part in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            let name = String::from_utf8_lossy(&decode_component(name)).into_owned();
            pairs.push((name, decode_component(value)));
        }
        RawQuery { pairs }
    }

    /// The first value of `name`, as bytes.
    pub fn bytes(&self, name: &str) -> Option<&[u8]> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// The first value of `name` as text; `Err` names the parameter when it is not UTF-8.
    pub fn text(&self, name: &str) -> Result<Option<&str>, String> {
        match self.bytes(name) {
            None => Ok(None),
            Some(b) => std::str::from_utf8(b)
                .map(Some)
                .map_err(|_| format!("parameter `{name}` must be text")),
        }
    }

    /// Reads a byte parameter given either raw (`name=`) or as base64url (`name_b64=`); the base64
    /// twin wins when both are present. `Err` says which parameter is malformed.
    pub fn bytes_or_b64(&self, name: &str) -> Result<Option<Vec<u8>>, String> {
        let b64_name = format!("{name}_b64");
        if let Some(encoded) = self.text(&b64_name)? {
            return b64_url_decode(encoded)
                .map(Some)
                .ok_or_else(|| format!("parameter `{b64_name}` is not valid base64url"));
        }
        Ok(self.bytes(name).map(<[u8]>::to_vec))
    }
}

fn decode_component(text: &str) -> Vec<u8> {
    let spaced = text.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced).collect()
}

/// A file name for downloading a key's value: its last segment after `/`, keeping only letters,
/// digits, `.`, `-` and `_` (nothing a browser or a shell could misread), or `value` when none
/// are left.
pub fn download_name(key: &[u8]) -> String {
    let last = key
        .rsplit(|b| *b == b'/')
        .find(|s| !s.is_empty())
        .unwrap_or_default();
    let name: String = last
        .iter()
        .filter(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        .map(|b| char::from(*b))
        .take(100)
        .collect();
    if name.trim_matches('.').is_empty() {
        "value".into()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_download_is_named_after_the_keys_last_segment_and_nothing_else() {
        assert_eq!(download_name(b"/certs/prod/ca.pem"), "ca.pem");
        assert_eq!(download_name(b"/apps/team-a/"), "team-a");
        assert_eq!(download_name(b"12345"), "12345");
        assert_eq!(download_name(b"/x/\"; rm -rf ..\xff"), "rm-rf..");
        assert_eq!(download_name(b"/x/.."), "value");
        assert_eq!(download_name(b"/"), "value");
        assert_eq!(download_name(b"\xff\xfe"), "value");
    }

    #[test]
    fn prefix_end_increments_last_byte_and_drops_trailing_ff() {
        assert_eq!(prefix_end(b"a/"), Some(b"a0".to_vec()));
        assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff\xff"), None);
        assert_eq!(prefix_end(b""), None);
    }

    #[test]
    fn query_values_keep_every_byte() {
        let q = RawQuery::parse(Some("key=%FF%00a+b&prefix=/x/&n=%zz"));
        assert_eq!(q.bytes("key"), Some(&b"\xff\x00a b"[..]));
        assert_eq!(q.bytes("prefix"), Some(&b"/x/"[..]));
        assert_eq!(q.bytes("n"), Some(&b"%zz"[..]));
        assert!(q.text("key").is_err());
    }

    #[test]
    fn b64_twin_wins_and_accepts_both_alphabets_and_padding() {
        let q = RawQuery::parse(Some("key=plain&key_b64=_-8="));
        assert_eq!(q.bytes_or_b64("key").unwrap(), Some(vec![0xff, 0xef]));
        let q = RawQuery::parse(Some("key_b64=/%2B8%3D"));
        assert_eq!(q.bytes_or_b64("key").unwrap(), Some(vec![0xff, 0xef]));
        let q = RawQuery::parse(Some("key_b64=***"));
        assert!(q.bytes_or_b64("key").is_err());
    }

    #[test]
    fn percent_encoding_round_trips_through_the_parser() {
        let key: Vec<u8> = (0u8..=255).collect();
        let url = format!("key={}", percent_encode_query(&key));
        assert_eq!(RawQuery::parse(Some(&url)).bytes("key"), Some(&key[..]));
        assert_eq!(percent_encode_query(b"/app/a b"), "/app/a%20b");
    }

    proptest::proptest! {
        #[test]
        fn any_key_survives_url_and_base64(key in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let url = format!("key={}&x=1", percent_encode_query(&key));
            let parsed = RawQuery::parse(Some(&url));
            proptest::prop_assert_eq!(parsed.bytes("key"), Some(&key[..]));
            proptest::prop_assert_eq!(b64_url_decode(&b64_url(&key)), Some(key.clone()));
            proptest::prop_assert_eq!(b64_url_decode(&b64_std(&key)), Some(key.clone()));
        }

        #[test]
        fn parsing_any_query_never_panics(query in ".{0,80}") {
            let q = RawQuery::parse(Some(&query));
            let _ = q.bytes_or_b64("key");
            let _ = q.text("mode");
        }

        #[test]
        fn every_key_encoding_a_client_may_send_gives_back_the_exact_bytes(
            key in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
            other in proptest::collection::vec(proptest::num::u8::ANY, 0..8),
        ) {
            let every_byte_escaped: String = key.iter().map(|b| format!("%{b:02X}")).collect();
            let queries = [
                format!("key={every_byte_escaped}"),
                format!("a=1&key={}&key={}", percent_encode_query(&key), percent_encode_query(&other)),
                format!("key={}&key_b64={}", percent_encode_query(&other), b64_url(&key)),
                format!("key_b64={}", percent_encode_query(b64_std(&key).as_bytes())),
                format!("key_b64={}=", b64_url(&key)),
            ];
            for query in queries {
                let parsed = RawQuery::parse(Some(&query)).bytes_or_b64("key");
                proptest::prop_assert_eq!(parsed, Ok(Some(key.clone())), "{}", query);
            }
        }

        #[test]
        fn base64_text_decodes_to_a_key_only_when_it_is_that_key_s_encoding(
            text in "[A-Za-z0-9+/_=-]{0,24}|[A-Za-z0-9_-]{0,24}"
        ) {
            // Garbage is an error, never a different key: whatever decodes re-encodes to the
            // same text (up to padding and the alphabet, which both spellings share).
            if let Some(key) = b64_url_decode(&text) {
                let canonical: String = text
                    .trim_end_matches('=')
                    .chars()
                    .map(|c| match c { '+' => '-', '/' => '_', c => c })
                    .collect();
                proptest::prop_assert_eq!(b64_url(&key), canonical);
            }
        }

        #[test]
        fn queries_of_arbitrary_bytes_and_broken_escapes_never_panic(
            raw in proptest::collection::vec(proptest::num::u8::ANY, 0..80),
            cut in 0usize..80,
        ) {
            // Valid escapes, cut short anywhere, with `%`, `+`, `&` and `=` in the mix.
            let escaped = percent_encode_query(&raw);
            let at = escaped.char_indices().map(|(i, _)| i).nth(cut).unwrap_or(escaped.len());
            let query = format!("key={}%&key_b64=%{}&=&&%%=+", &escaped[..at], &escaped[at..]);
            let q = RawQuery::parse(Some(&query));
            let _ = q.bytes_or_b64("key");
            let _ = q.bytes_or_b64("prefix");
            let _ = q.text("key");
        }
    }
}
