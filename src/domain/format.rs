//! How a value is shown: detected format, pretty-printed and split into highlight tokens, or a hex
//! dump when the bytes are not text. Rendering never changes what is stored; it only chooses a view.

/// A highlight class for one token (maps to a CSS class `t-…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tok {
    /// Object key.
    Key,
    /// String.
    Str,
    /// Number.
    Num,
    /// true / false.
    Bool,
    /// null.
    Null,
    /// Brackets, commas, colons.
    Punct,
    /// A comment.
    Comment,
    /// Anything else.
    Plain,
}

impl Tok {
    /// CSS class name.
    pub fn class(self) -> &'static str {
        match self {
            Tok::Key => "t-key",
            Tok::Str => "t-str",
            Tok::Num => "t-num",
            Tok::Bool => "t-bool",
            Tok::Null => "t-null",
            Tok::Punct => "t-punct",
            Tok::Comment => "t-comment",
            Tok::Plain => "",
        }
    }
}

/// A value prepared for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rendered {
    /// Valid JSON object or array, pretty-printed.
    Json(Vec<(Tok, String)>),
    /// A YAML mapping or sequence, as stored, highlighted.
    Yaml(Vec<(Tok, String)>),
    /// Other UTF-8 text.
    Text(String),
    /// Not UTF-8: hex dump lines `(offset, hex, ascii)`.
    Binary(Vec<(String, String, String)>),
}

impl Rendered {
    /// Short name of the format ("JSON", "YAML", "text", "binary").
    pub fn label(&self) -> &'static str {
        match self {
            Rendered::Json(_) => "JSON",
            Rendered::Yaml(_) => "YAML",
            Rendered::Text(_) => "text",
            Rendered::Binary(_) => "binary",
        }
    }
}

/// Chooses the view of `bytes`.
pub fn render(bytes: &[u8]) -> Rendered {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Rendered::Binary(hex_dump(bytes));
    };
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
            if let Ok(pretty) = serde_json::to_string_pretty(&value) {
                return Rendered::Json(json_tokens(&pretty));
            }
        }
    }
    if looks_like_yaml(text) {
        return Rendered::Yaml(yaml_tokens(text));
    }
    Rendered::Text(text.to_string())
}

fn looks_like_yaml(text: &str) -> bool {
    if !text.contains('\n') && !text.contains(": ") {
        return false;
    }
    matches!(
        serde_yaml::from_str::<serde_yaml::Value>(text),
        Ok(serde_yaml::Value::Mapping(_)) | Ok(serde_yaml::Value::Sequence(_))
    )
}

/// Splits pretty JSON into tokens; a string followed by `:` is a key.
fn json_tokens(pretty: &str) -> Vec<(Tok, String)> {
    let mut out: Vec<(Tok, String)> = Vec::new();
    let chars: Vec<char> = pretty.chars().collect();
    let mut i = 0;
    let push = |out: &mut Vec<(Tok, String)>, tok: Tok, s: String| {
        if let Some(last) = out.last_mut() {
            if last.0 == tok && matches!(tok, Tok::Plain | Tok::Punct) {
                last.1.push_str(&s);
                return;
            }
        }
        out.push((tok, s));
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '"' {
            let start = i;
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i = (i + 1).min(chars.len());
            let s: String = chars[start..i].iter().collect();
            let is_key = chars[i..].iter().find(|c| !c.is_whitespace()) == Some(&':');
            push(&mut out, if is_key { Tok::Key } else { Tok::Str }, s);
        } else if c == '-' || c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || "+-.".contains(chars[i]))
            {
                i += 1;
            }
            push(&mut out, Tok::Num, chars[start..i].iter().collect());
        } else if c.is_ascii_alphabetic() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_alphabetic() {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let tok = if word == "null" { Tok::Null } else { Tok::Bool };
            push(&mut out, tok, word);
        } else if "{}[],:".contains(c) {
            push(&mut out, Tok::Punct, c.to_string());
            i += 1;
        } else {
            push(&mut out, Tok::Plain, c.to_string());
            i += 1;
        }
    }
    out
}

/// Highlights YAML line by line: comments, `key:` prefixes, and the rest as plain text.
fn yaml_tokens(text: &str) -> Vec<(Tok, String)> {
    let mut out = Vec::new();
    for line in text.split_inclusive('\n') {
        let body = line.trim_start();
        let indent = &line[..line.len() - body.len()];
        if !indent.is_empty() {
            out.push((Tok::Plain, indent.to_string()));
        }
        if body.starts_with('#') {
            out.push((Tok::Comment, body.to_string()));
            continue;
        }
        let (dash, rest) = match body.strip_prefix("- ") {
            Some(r) => ("- ", r),
            None => ("", body),
        };
        if !dash.is_empty() {
            out.push((Tok::Punct, dash.to_string()));
        }
        match rest
            .find(": ")
            .or_else(|| rest.trim_end().strip_suffix(':').map(|k| k.len()))
        {
            Some(at) if !rest.starts_with('"') || rest[..at].ends_with('"') => {
                out.push((Tok::Key, rest[..at].to_string()));
                out.push((Tok::Punct, ":".to_string()));
                out.push((Tok::Str, rest[at + 1..].to_string()));
            }
            _ => out.push((Tok::Str, rest.to_string())),
        }
    }
    out
}

/// Classic 16-bytes-a-line hex dump.
pub fn hex_dump(bytes: &[u8]) -> Vec<(String, String, String)> {
    bytes
        .chunks(16)
        .enumerate()
        .map(|(n, chunk)| {
            let mut hex = String::with_capacity(48);
            for (i, b) in chunk.iter().enumerate() {
                if i == 8 {
                    hex.push(' ');
                }
                hex.push_str(&format!("{b:02x} "));
            }
            let ascii: String = chunk
                .iter()
                .map(|b| {
                    if b.is_ascii_graphic() || *b == b' ' {
                        *b as char
                    } else {
                        '.'
                    }
                })
                .collect();
            (format!("{:08x}", n * 16), hex, ascii)
        })
        .collect()
}

/// A key or key segment as text for display: UTF-8 is shown as is (control characters escaped),
/// other bytes as `\xNN`, so nothing is hidden and nothing is lost.
pub fn display_bytes(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() {
                out.push_str(&c.escape_default().to_string());
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// Escapes text for HTML (for the few places that build HTML outside askama templates).
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_of(tokens: &[(Tok, String)]) -> String {
        tokens.iter().map(|(_, s)| s.as_str()).collect()
    }

    #[test]
    fn json_is_pretty_printed_and_keys_are_marked() {
        let r = render(br#"{"replicas":3,"name":"a","on":true,"x":null,"l":[1,-2.5e3]}"#);
        let Rendered::Json(t) = r else {
            panic!("not json")
        };
        assert!(text_of(&t).contains("\n  \"replicas\": 3"));
        assert!(t.contains(&(Tok::Key, "\"name\"".into())));
        assert!(t.contains(&(Tok::Str, "\"a\"".into())));
        assert!(
            t.contains(&(Tok::Num, "-2500.0".into())) || t.contains(&(Tok::Num, "-2500".into()))
        );
        assert!(t.contains(&(Tok::Null, "null".into())));
    }

    #[test]
    fn yaml_mapping_is_highlighted_and_kept_verbatim() {
        let src = "# deploy\nreplicas: 3\nimage: nginx:1.25\nports:\n  - 80\n";
        let Rendered::Yaml(t) = render(src.as_bytes()) else {
            panic!("not yaml")
        };
        assert_eq!(text_of(&t), src);
        assert!(t.contains(&(Tok::Comment, "# deploy\n".into())));
        assert!(t.contains(&(Tok::Key, "replicas".into())));
    }

    #[test]
    fn plain_text_and_binary_are_told_apart() {
        assert_eq!(render(b"hello"), Rendered::Text("hello".into()));
        assert_eq!(render(b"12345"), Rendered::Text("12345".into()));
        let Rendered::Binary(lines) = render(&[0xff, 0x00, b'A']) else {
            panic!()
        };
        assert_eq!(
            lines[0],
            ("00000000".into(), "ff 00 41 ".into(), "..A".into())
        );
    }

    #[test]
    fn display_bytes_escapes_what_is_not_printable_text() {
        assert_eq!(display_bytes(b"/bin/key-\xff\xfe"), "/bin/key-\\xff\\xfe");
        assert_eq!(display_bytes("/é/\n".as_bytes()), "/é/\\n");
        assert_eq!(display_bytes(b"<img src=x>"), "<img src=x>");
    }
}
