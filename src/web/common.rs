//! Pieces shared by the JSON API and the HTML pages: parsing listing parameters and URLs.

use crate::domain::key::{percent_encode_query, prefix_end, RawQuery};
use crate::domain::listing::{Cursor, ListReq, Mode};
use crate::error::AppError;

/// Largest page a client may ask for.
pub const MAX_LIMIT: usize = 1000;

/// Parses `mode`, `prefix`/`prefix_b64`, `limit`, `after`, `start`/`start_b64`, `sep` into a listing
/// request. Every malformed parameter is a 400 that names it.
pub fn list_request(
    q: &RawQuery,
    default_sep: &str,
    page_size: usize,
) -> Result<ListReq, AppError> {
    let bad = AppError::BadRequest;
    let sep = match q.text("sep").map_err(bad)? {
        Some("") => {
            return Err(AppError::BadRequest(
                "parameter `sep` must not be empty".into(),
            ))
        }
        Some(s) => s.as_bytes().to_vec(),
        None => default_sep.as_bytes().to_vec(),
    };
    let mode = match q.text("mode").map_err(bad)? {
        None | Some("tree") => Mode::Tree { sep },
        Some("flat") => Mode::Flat,
        Some(other) => {
            return Err(AppError::BadRequest(format!(
                "parameter `mode` must be `tree` or `flat`, not `{other}`"
            )))
        }
    };
    let limit = match q.text("limit").map_err(bad)? {
        None => page_size,
        Some(t) => t
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                AppError::BadRequest(format!("parameter `limit` must be 1..={MAX_LIMIT}"))
            })?,
    };
    let prefix = q.bytes_or_b64("prefix").map_err(bad)?.unwrap_or_default();
    let mut req = ListReq::first(prefix, mode, limit);
    if let Some(after) = q.text("after").map_err(bad)? {
        let cursor = Cursor::decode(after).ok_or_else(|| {
            AppError::BadRequest("parameter `after` is not a valid cursor".into())
        })?;
        let inside = cursor.start >= req.prefix
            && prefix_end(&req.prefix).is_none_or(|end| cursor.start < end);
        if !inside {
            return Err(AppError::BadRequest(
                "parameter `after` is a cursor of another listing (outside this prefix)".into(),
            ));
        }
        req.start = cursor.start;
        req.revision = Some(cursor.revision);
        req.hint = Some(cursor.hint);
    } else if let Some(start) = q.bytes_or_b64("start").map_err(bad)? {
        if start > req.prefix {
            req.start = start;
        }
    }
    Ok(req)
}

/// The mode's name in URLs.
pub fn mode_name(mode: &Mode) -> &'static str {
    match mode {
        Mode::Flat => "flat",
        Mode::Tree { .. } => "tree",
    }
}

/// URL builder for one cluster's pages, aware of the base path.
#[derive(Debug, Clone)]
pub struct Urls {
    base: String,
    cluster: String,
}

impl Urls {
    /// URLs under `base` for `cluster`.
    pub fn new(base: &str, cluster: &str) -> Urls {
        Urls {
            base: base.to_string(),
            cluster: cluster.to_string(),
        }
    }

    fn with(mut url: String, name: &str, value: Option<&[u8]>) -> String {
        if let Some(v) = value {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(name);
            url.push('=');
            url.push_str(&percent_encode_query(v));
        }
        url
    }

    /// The key browser page.
    pub fn page(&self, mode: &str, prefix: Option<&[u8]>, key: Option<&[u8]>) -> String {
        let url = format!("{}/clusters/{}/keys?mode={mode}", self.base, self.cluster);
        let url = Self::with(url, "prefix", prefix.filter(|p| !p.is_empty()));
        Self::with(url, "key", key)
    }

    /// The key browser page, with a listing continued from a cursor.
    pub fn page_after(&self, mode: &str, prefix: &[u8], after: &str) -> String {
        let url = self.page(mode, Some(prefix), None);
        Self::with(url, "after", Some(after.as_bytes()))
    }

    /// A level of the tree (or a page of the list) as `<li>` rows.
    pub fn nodes(&self, mode: &str, prefix: &[u8], after: Option<&str>) -> String {
        let url = format!(
            "{}/clusters/{}/ui/nodes?mode={mode}",
            self.base, self.cluster
        );
        let url = Self::with(url, "prefix", Some(prefix).filter(|p| !p.is_empty()));
        Self::with(url, "after", after.map(str::as_bytes))
    }

    /// The value's bytes, as a download.
    pub fn value(&self, key: &[u8]) -> String {
        let url = format!("{}/api/v1/clusters/{}/value", self.base, self.cluster);
        Self::with(url, "key", Some(key))
    }

    /// The key view fragment.
    pub fn key_view(&self, key: &[u8], full: bool) -> String {
        let url = format!("{}/clusters/{}/ui/key", self.base, self.cluster);
        let url = Self::with(url, "key", Some(key));
        if full {
            url + "&full=1"
        } else {
            url
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> RawQuery {
        RawQuery::parse(Some(s))
    }

    #[test]
    fn listing_parameters_are_checked_and_named() {
        let r = list_request(&q("prefix=%2Fa%2F&mode=flat&limit=5"), "/", 100).unwrap();
        assert_eq!(r.prefix, b"/a/");
        assert_eq!(r.mode, Mode::Flat);
        assert_eq!(r.limit, 5);
        for (query, word) in [
            ("mode=x", "mode"),
            ("limit=0", "limit"),
            ("limit=5000", "limit"),
            ("after=zz", "after"),
            ("sep=", "sep"),
            ("prefix_b64=*", "prefix_b64"),
        ] {
            let e = list_request(&q(query), "/", 100).unwrap_err().to_string();
            assert!(e.contains(word), "{query}: {e}");
        }
    }

    #[test]
    fn a_cursor_from_another_prefix_is_refused() {
        let c = Cursor {
            revision: 3,
            start: b"/b/x".to_vec(),
            hint: 0,
        }
        .encode();
        assert!(list_request(&q(&format!("prefix=/a/&after={c}")), "/", 100).is_err());
        let r = list_request(&q(&format!("prefix=/b/&after={c}")), "/", 100).unwrap();
        assert_eq!((r.start, r.revision), (b"/b/x".to_vec(), Some(3)));
    }

    #[test]
    fn start_before_the_prefix_starts_at_the_prefix() {
        let r = list_request(&q("prefix=/b/&start=/a"), "/", 100).unwrap();
        assert_eq!(r.start, b"/b/");
        let r = list_request(&q("start_b64=_w"), "/", 100).unwrap();
        assert_eq!(r.start, vec![0xff]);
    }

    #[test]
    fn urls_carry_the_base_path_and_exact_bytes() {
        let u = Urls::new("/etcd", "prod");
        assert_eq!(
            u.page("tree", Some(b""), Some(b"/a b\xff")),
            "/etcd/clusters/prod/keys?mode=tree&key=/a%20b%FF"
        );
        assert_eq!(
            u.key_view(b"k&x=1", true),
            "/etcd/clusters/prod/ui/key?key=k%26x%3D1&full=1"
        );
    }
}
