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
    /// A JSON object or array, re-indented: every string and number exactly as written (escapes,
    /// duplicate keys and order kept); only the whitespace between tokens differs from the value.
    Json(Vec<(Tok, String)>),
    /// A YAML mapping or sequence (or a stream of them), as stored, highlighted.
    Yaml(Vec<(Tok, String)>),
    /// Other UTF-8 text with nothing invisible in it but line breaks and tabs.
    Text(String),
    /// Not UTF-8, or text with control characters: hex dump lines `(offset, hex, ascii)`.
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
///
/// Text that holds control characters other than `\n`, `\t` and the `\r` of a `\r\n` is shown as
/// binary: a browser shows such characters as nothing or as an empty box, and drops a lone `\r`,
/// so a text view would hide bytes that are stored. [`value_note`] says why next to the label.
pub fn render(bytes: &[u8]) -> Rendered {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Rendered::Binary(hex_dump(bytes));
    };
    if has_hidden_controls(text) || text.chars().any(invisible_in_text) {
        return Rendered::Binary(hex_dump(bytes));
    }
    if let Some(tokens) = json::pretty_tokens(text) {
        return Rendered::Json(tokens);
    }
    if looks_like_yaml(text) {
        return Rendered::Yaml(yaml_tokens(text));
    }
    Rendered::Text(text.to_string())
}

/// What the format label alone does not tell about a value: why UTF-8 text is shown as binary,
/// or that its line breaks are `\r\n` (which a browser shows, and copies from the page, as `\n`).
pub fn value_note(bytes: &[u8]) -> Option<&'static str> {
    let text = std::str::from_utf8(bytes).ok()?;
    if has_hidden_controls(text) {
        return Some("UTF-8 text with control characters");
    }
    if text.chars().any(invisible_in_text) {
        return Some("UTF-8 text with invisible or direction-changing characters");
    }
    let crlf = text.matches("\r\n").count();
    if crlf == 0 {
        None
    } else if crlf < text.matches('\n').count() {
        Some("mixed CRLF and LF line endings")
    } else {
        Some("CRLF line endings")
    }
}

/// Characters a browser shows as nothing, or that reorder the text around them (a right-to-left
/// override makes `abc\u{202E}fed.exe` read `abcexe.def`): a value holding one is shown as bytes.
/// Joiners and no-break spaces are ordinary in text and are not counted.
fn invisible_in_text(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}' // soft hyphen
            | '\u{061C}' // Arabic letter mark
            | '\u{180E}' // Mongolian vowel separator
            | '\u{200B}' // zero-width space
            | '\u{200E}'..='\u{200F}' // left-to-right / right-to-left marks
            | '\u{202A}'..='\u{202E}' // bidi embeddings and overrides
            | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
            | '\u{2066}'..='\u{2069}' // bidi isolates
            | '\u{FEFF}' // byte order mark
            | '\u{FFF9}'..='\u{FFFB}' // interlinear annotations
    )
}

/// Control characters (C0, DEL, C1) other than `\n`, `\t` and the `\r` of `\r\n`.
fn has_hidden_controls(text: &str) -> bool {
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let shown = match c {
            '\n' | '\t' => true,
            '\r' => chars.peek() == Some(&'\n'),
            c => !c.is_control(),
        };
        if !shown {
            return true;
        }
    }
    false
}

/// YAML only when it holds structure: a mapping or a sequence, or a `---` stream of them (empty
/// documents allowed). Any plain text parses as a YAML scalar; that is text, not YAML.
fn looks_like_yaml(text: &str) -> bool {
    use serde::Deserialize as _;
    use serde_yaml::Value;
    if !text.contains('\n') && !text.contains(": ") {
        return false;
    }
    let mut structured = false;
    for document in serde_yaml::Deserializer::from_str(text) {
        let mut value = match Value::deserialize(document) {
            Ok(value) => value,
            Err(_) => return false,
        };
        while let Value::Tagged(tagged) = value {
            value = tagged.value;
        }
        match value {
            Value::Mapping(_) | Value::Sequence(_) => structured = true,
            Value::Null => {}
            _ => return false,
        }
    }
    structured
}

/// The JSON view: a validating tokenizer that re-indents the source without re-encoding it.
mod json {
    use super::Tok;

    /// Deepest nesting shown as JSON (serde_json's own limit, which this view used before).
    /// Deeper documents are not JSON to this view; the tokenizer itself never recurses.
    pub const MAX_DEPTH: usize = 128;

    /// Pretty output larger than `8 × input + 1 MiB` (pathological nesting of tiny values)
    /// is not built: such a document is highlighted with its own whitespace instead.
    fn budget(input: usize) -> usize {
        input.saturating_mul(8).saturating_add(1 << 20)
    }

    /// `text` as highlight tokens, indented by two spaces per level (as `serde_json`'s pretty
    /// printer does), or `None` when it is not a JSON object or array.
    pub fn pretty_tokens(text: &str) -> Option<Vec<(Tok, String)>> {
        // Validate first: nothing is built for text that is not JSON.
        let mut lexer = Lexer::new(text);
        while lexer.next().ok()?.is_some() {}
        pretty(text, budget(text.len())).or_else(|| verbatim(text))
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Kind {
        Open,
        Close,
        Comma,
        Colon,
        Key,
        Str,
        Num,
        Bool,
        Null,
    }

    impl Kind {
        fn tok(self) -> Tok {
            match self {
                Kind::Open | Kind::Close | Kind::Comma | Kind::Colon => Tok::Punct,
                Kind::Key => Tok::Key,
                Kind::Str => Tok::Str,
                Kind::Num => Tok::Num,
                Kind::Bool => Tok::Bool,
                Kind::Null => Tok::Null,
            }
        }
    }

    /// One token: its kind and where it is in the source.
    #[derive(Debug, Clone, Copy)]
    struct Lexeme {
        kind: Kind,
        start: usize,
        end: usize,
    }

    /// What the grammar allows next.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Expect {
        /// The document starts: `{` or `[`.
        Start,
        /// A value (after `:` or `,` in an array).
        Value,
        /// A value or `]` (after `[`).
        ValueOrClose,
        /// A key or `}` (after `{`).
        KeyOrClose,
        /// A key (after `,` in an object).
        Key,
        /// `:` after a key.
        Colon,
        /// `,` or the closing bracket, after a value inside a container.
        CommaOrClose,
        /// Only whitespace, after the document.
        End,
    }

    /// RFC 8259 JSON, token by token, with the open containers on an explicit stack.
    struct Lexer<'a> {
        src: &'a [u8],
        pos: usize,
        stack: Vec<u8>,
        expect: Expect,
    }

    impl<'a> Lexer<'a> {
        fn new(text: &'a str) -> Lexer<'a> {
            Lexer {
                src: text.as_bytes(),
                pos: 0,
                stack: Vec::new(),
                expect: Expect::Start,
            }
        }

        fn peek(&self, at: usize) -> Option<u8> {
            self.src.get(self.pos + at).copied()
        }

        /// The next token; `Ok(None)` at the end of a complete document, `Err` where the text
        /// stops being JSON.
        fn next(&mut self) -> Result<Option<Lexeme>, ()> {
            while matches!(self.peek(0), Some(b' ' | b'\t' | b'\n' | b'\r')) {
                self.pos += 1;
            }
            let Some(c) = self.peek(0) else {
                return match self.expect {
                    Expect::End => Ok(None),
                    _ => Err(()),
                };
            };
            let start = self.pos;
            let value_here = matches!(self.expect, Expect::Value | Expect::ValueOrClose);
            let kind = match c {
                b'{' | b'[' => {
                    if !(value_here || self.expect == Expect::Start)
                        || self.stack.len() >= MAX_DEPTH
                    {
                        return Err(());
                    }
                    self.stack.push(c);
                    self.pos += 1;
                    self.expect = if c == b'{' {
                        Expect::KeyOrClose
                    } else {
                        Expect::ValueOrClose
                    };
                    Kind::Open
                }
                b'}' | b']' => {
                    let (open, allowed) = if c == b'}' {
                        (b'{', Expect::KeyOrClose)
                    } else {
                        (b'[', Expect::ValueOrClose)
                    };
                    if !(self.expect == allowed || self.expect == Expect::CommaOrClose)
                        || self.stack.last() != Some(&open)
                    {
                        return Err(());
                    }
                    self.stack.pop();
                    self.pos += 1;
                    self.after_value();
                    Kind::Close
                }
                b',' if self.expect == Expect::CommaOrClose => {
                    self.pos += 1;
                    self.expect = if self.stack.last() == Some(&b'{') {
                        Expect::Key
                    } else {
                        Expect::Value
                    };
                    Kind::Comma
                }
                b':' if self.expect == Expect::Colon => {
                    self.pos += 1;
                    self.expect = Expect::Value;
                    Kind::Colon
                }
                b'"' if matches!(self.expect, Expect::KeyOrClose | Expect::Key) => {
                    self.string()?;
                    self.expect = Expect::Colon;
                    Kind::Key
                }
                b'"' if value_here => {
                    self.string()?;
                    self.after_value();
                    Kind::Str
                }
                b'-' | b'0'..=b'9' if value_here => {
                    self.number()?;
                    self.after_value();
                    Kind::Num
                }
                b't' if value_here => self.word(b"true", Kind::Bool)?,
                b'f' if value_here => self.word(b"false", Kind::Bool)?,
                b'n' if value_here => self.word(b"null", Kind::Null)?,
                _ => return Err(()),
            };
            Ok(Some(Lexeme {
                kind,
                start,
                end: self.pos,
            }))
        }

        fn after_value(&mut self) {
            self.expect = if self.stack.is_empty() {
                Expect::End
            } else {
                Expect::CommaOrClose
            };
        }

        fn word(&mut self, word: &[u8], kind: Kind) -> Result<Kind, ()> {
            if !self
                .src
                .get(self.pos..)
                .is_some_and(|s| s.starts_with(word))
            {
                return Err(());
            }
            self.pos += word.len();
            self.after_value();
            Ok(kind)
        }

        /// A string from its opening quote: escapes must be JSON's, raw control characters are
        /// not allowed.
        fn string(&mut self) -> Result<(), ()> {
            self.pos += 1;
            loop {
                match self.peek(0).ok_or(())? {
                    b'"' => {
                        self.pos += 1;
                        return Ok(());
                    }
                    b'\\' => match self.peek(1).ok_or(())? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.pos += 2,
                        b'u' => {
                            let hex = self.src.get(self.pos + 2..self.pos + 6).ok_or(())?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return Err(());
                            }
                            self.pos += 6;
                        }
                        _ => return Err(()),
                    },
                    0x00..=0x1f => return Err(()),
                    _ => self.pos += 1,
                }
            }
        }

        /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
        fn number(&mut self) -> Result<(), ()> {
            if self.peek(0) == Some(b'-') {
                self.pos += 1;
            }
            match self.peek(0) {
                Some(b'0') => self.pos += 1,
                Some(b'1'..=b'9') => self.digits(),
                _ => return Err(()),
            }
            if self.peek(0) == Some(b'.') {
                self.pos += 1;
                self.some_digits()?;
            }
            if matches!(self.peek(0), Some(b'e' | b'E')) {
                self.pos += 1;
                if matches!(self.peek(0), Some(b'+' | b'-')) {
                    self.pos += 1;
                }
                self.some_digits()?;
            }
            Ok(())
        }

        fn digits(&mut self) {
            while self.peek(0).is_some_and(|b| b.is_ascii_digit()) {
                self.pos += 1;
            }
        }

        fn some_digits(&mut self) -> Result<(), ()> {
            let from = self.pos;
            self.digits();
            if self.pos == from {
                Err(())
            } else {
                Ok(())
            }
        }
    }

    /// Tokens being built; adjacent punctuation and adjacent whitespace share a token.
    #[derive(Default)]
    struct Out {
        tokens: Vec<(Tok, String)>,
        bytes: usize,
    }

    impl Out {
        fn push(&mut self, tok: Tok, text: &str) {
            self.bytes += text.len();
            if let Some(last) = self.tokens.last_mut() {
                if last.0 == tok && matches!(tok, Tok::Plain | Tok::Punct) {
                    last.1.push_str(text);
                    return;
                }
            }
            self.tokens.push((tok, text.to_string()));
        }

        fn newline(&mut self, depth: usize) {
            let mut line = String::with_capacity(1 + 2 * depth);
            line.push('\n');
            for _ in 0..depth {
                line.push_str("  ");
            }
            self.push(Tok::Plain, &line);
        }
    }

    /// Re-indented: a line per member and element, `": "` after keys, `{}` and `[]` when empty.
    /// `None` when the output would exceed `budget` bytes.
    fn pretty(text: &str, budget: usize) -> Option<Vec<(Tok, String)>> {
        let mut out = Out::default();
        let mut lexer = Lexer::new(text);
        let mut depth = 0usize;
        let mut ahead: Option<Lexeme> = None;
        loop {
            let lexeme = match ahead.take() {
                Some(l) => l,
                None => match lexer.next().ok()? {
                    Some(l) => l,
                    None => break,
                },
            };
            let token = text.get(lexeme.start..lexeme.end)?;
            match lexeme.kind {
                Kind::Open => {
                    out.push(Tok::Punct, token);
                    // A complete document never ends right after an opening bracket.
                    let next = lexer.next().ok()??;
                    if next.kind == Kind::Close {
                        out.push(Tok::Punct, text.get(next.start..next.end)?);
                    } else {
                        depth += 1;
                        out.newline(depth);
                        ahead = Some(next);
                    }
                }
                Kind::Close => {
                    depth = depth.saturating_sub(1);
                    out.newline(depth);
                    out.push(Tok::Punct, token);
                }
                Kind::Comma => {
                    out.push(Tok::Punct, token);
                    out.newline(depth);
                }
                Kind::Colon => {
                    out.push(Tok::Punct, token);
                    out.push(Tok::Plain, " ");
                }
                kind => out.push(kind.tok(), token),
            }
            if out.bytes > budget {
                return None;
            }
        }
        Some(out.tokens)
    }

    /// Highlighted with the whitespace it is stored with.
    fn verbatim(text: &str) -> Option<Vec<(Tok, String)>> {
        let mut out = Out::default();
        let mut lexer = Lexer::new(text);
        let mut at = 0;
        while let Some(lexeme) = lexer.next().ok()? {
            out.push(Tok::Plain, text.get(at..lexeme.start)?);
            out.push(lexeme.kind.tok(), text.get(lexeme.start..lexeme.end)?);
            at = lexeme.end;
        }
        out.push(Tok::Plain, text.get(at..)?);
        out.tokens.retain(|(_, s)| !s.is_empty());
        Some(out.tokens)
    }

    #[cfg(test)]
    pub(super) fn pretty_with_budget(text: &str, budget: usize) -> Option<Vec<(Tok, String)>> {
        let mut lexer = Lexer::new(text);
        while lexer.next().ok()?.is_some() {}
        pretty(text, budget).or_else(|| verbatim(text))
    }
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

/// A key or key segment as text for display, one-to-one so that different keys never look the
/// same: printable UTF-8 (any script) is shown as is, a backslash as `\\`, and every other byte
/// as `\xNN`: bytes that are not UTF-8, control characters (C0 including newline and tab, DEL,
/// C1) and invisible format characters (zero-width, bidi controls), byte by byte.
/// [`parse_display`] reads it back.
pub fn display_bytes(bytes: &[u8]) -> String {
    // Spaces at either end cannot be seen: `a ` would look like `a`.
    let lead = bytes.iter().take_while(|b| **b == b' ').count();
    if lead > 0 || bytes.last() == Some(&b' ') {
        let trail = bytes[lead..]
            .iter()
            .rev()
            .take_while(|b| **b == b' ')
            .count();
        let mut out = String::new();
        (0..lead).for_each(|_| push_hex_escape(&mut out, b' '));
        out.push_str(&display_bytes(&bytes[lead..bytes.len() - trail]));
        (0..trail).for_each(|_| push_hex_escape(&mut out, b' '));
        return out;
    }
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\\' {
                out.push_str("\\\\");
            } else if hidden_in_key(c) {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    push_hex_escape(&mut out, b);
                }
            } else {
                out.push(c);
            }
        }
        for &b in chunk.invalid() {
            push_hex_escape(&mut out, b);
        }
    }
    out
}

/// The bytes a [`display_bytes`] label stands for, so that a label typed or pasted (into the
/// search box) finds its key: `\\` is a backslash, `\xNN` (either case) the byte `NN`; any other
/// backslash is itself. Never fails: text without escapes is its own bytes.
pub fn parse_display(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut rest = text;
    while let Some((&first, tail)) = rest.split_first() {
        if first == b'\\' {
            match tail {
                [b'\\', after @ ..] => {
                    out.push(b'\\');
                    rest = after;
                    continue;
                }
                [b'x', hi, lo, after @ ..] => {
                    if let (Some(hi), Some(lo)) = (hex_value(*hi), hex_value(*lo)) {
                        out.push(hi << 4 | lo);
                        rest = after;
                        continue;
                    }
                }
                _ => {}
            }
        }
        out.push(first);
        rest = tail;
    }
    out
}

/// Characters a key label shows as `\xNN` bytes: they are invisible, or move the text around it.
fn hidden_in_key(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00A0}' // no-break space (looks like a space)
                | '\u{1680}' // ogham space mark
                | '\u{2000}'..='\u{200A}' // en, em, thin … spaces
                | '\u{200C}'..='\u{200D}' // zero-width non-joiner and joiner
                | '\u{202F}' // narrow no-break space
                | '\u{205F}' // medium mathematical space
                | '\u{3000}' // ideographic space
                | '\u{00AD}' // soft hyphen
                | '\u{061C}' // Arabic letter mark
                | '\u{180E}' // Mongolian vowel separator
                | '\u{200B}' // zero-width space
                | '\u{200E}'..='\u{200F}' // left-to-right / right-to-left marks
                | '\u{2028}'..='\u{202E}' // line and paragraph separators, bidi embeddings
                | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
                | '\u{2066}'..='\u{2069}' // bidi isolates
                | '\u{FEFF}' // byte order mark
                | '\u{FFF9}'..='\u{FFFB}' // interlinear annotations
        )
}

fn push_hex_escape(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push_str("\\x");
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 0x0f)]));
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
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

    fn json_text(src: &str) -> String {
        match render(src.as_bytes()) {
            Rendered::Json(t) => text_of(&t),
            other => panic!("not JSON: {src:?} -> {other:?}"),
        }
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
        assert!(t.contains(&(Tok::Num, "-2.5e3".into())));
        assert!(t.contains(&(Tok::Bool, "true".into())));
        assert!(t.contains(&(Tok::Null, "null".into())));
    }

    #[test]
    fn json_duplicate_keys_are_all_shown_in_their_order() {
        assert_eq!(
            json_text(r#"{"b":0,"a":1,"a":2}"#),
            "{\n  \"b\": 0,\n  \"a\": 1,\n  \"a\": 2\n}"
        );
    }

    #[test]
    fn json_strings_are_shown_with_their_escapes_as_written() {
        let src = r#"{"\u00e9":"caf\u00e9 \"q\" \/ \\ \n é \ud83d\ude00"}"#;
        let Rendered::Json(t) = render(src.as_bytes()) else {
            panic!("not json")
        };
        assert!(t.contains(&(Tok::Key, r#""\u00e9""#.into())));
        assert!(t.contains(&(
            Tok::Str,
            r#""caf\u00e9 \"q\" \/ \\ \n é \ud83d\ude00""#.into()
        )));
    }

    #[test]
    fn json_numbers_are_shown_as_written() {
        let numbers = [
            "1.0",
            "1e2",
            "1E+2",
            "-0",
            "-0.0e-0",
            "123456789012345678901234567890",
            "0.1000000000000000055511151231257827",
            "1e400",
        ];
        let src = format!("[{}]", numbers.join(","));
        let Rendered::Json(t) = render(src.as_bytes()) else {
            panic!("not json")
        };
        let shown: Vec<&str> = t
            .iter()
            .filter(|(k, _)| *k == Tok::Num)
            .map(|(_, s)| s.as_str())
            .collect();
        assert_eq!(shown, numbers);
    }

    #[test]
    fn json_nesting_and_empty_containers_are_laid_out_as_before() {
        let src = " {\"a\" : [1, {}, [], {\"b\":[ ]}],\r\n\t\"c\":{\"d\":{\"e\":\"f\"}}} \n";
        assert_eq!(
            json_text(src),
            "{\n  \"a\": [\n    1,\n    {},\n    [],\n    {\n      \"b\": []\n    }\n  ],\n  \"c\": {\n    \"d\": {\n      \"e\": \"f\"\n    }\n  }\n}"
        );
        assert_eq!(json_text("{}"), "{}");
        assert_eq!(json_text("[ ]"), "[]");
        assert_eq!(json_text("[[[]]]"), "[\n  [\n    []\n  ]\n]");
    }

    #[test]
    fn what_is_not_a_json_object_or_array_falls_back() {
        for src in [
            r#"{"a":1,}"#,
            r#"[1,]"#,
            r#"{"a":01}"#,
            r#"[1 2]"#,
            r#"{"a"}"#,
            r#"{"a":1}}"#,
            r#"{"a":1} x"#,
            r#"{'a':1}"#,
            r#"["\x"]"#,
            r#"["\u12"]"#,
            "[\"a\tb\"]",
            "[tru]",
            "[truex]",
            "[1.]",
            "[-]",
            "[.5]",
            "[1e]",
            "[+1]",
            "[",
            "{",
            "]",
            r#""just a string""#,
            "123",
            "null",
            "",
        ] {
            assert!(
                !matches!(render(src.as_bytes()), Rendered::Json(_)),
                "{src:?} is not a JSON object or array"
            );
        }
        assert_eq!(render(b"[1 2]"), Rendered::Text("[1 2]".into()));
        assert!(matches!(render(b"{a: 1, b: [x, y]}\n"), Rendered::Yaml(_)));
    }

    #[test]
    fn json_nesting_is_bounded_without_recursion() {
        let at_limit = "[".repeat(json::MAX_DEPTH) + &"]".repeat(json::MAX_DEPTH);
        assert!(matches!(render(at_limit.as_bytes()), Rendered::Json(_)));
        let over = "[".repeat(json::MAX_DEPTH + 1) + &"]".repeat(json::MAX_DEPTH + 1);
        assert!(!matches!(render(over.as_bytes()), Rendered::Json(_)));
        let huge = "[".repeat(1_000_000) + &"]".repeat(1_000_000);
        assert!(matches!(render(huge.as_bytes()), Rendered::Text(_)));
    }

    #[test]
    fn json_too_large_to_indent_is_highlighted_with_its_own_whitespace() {
        let src = "[[1,2],\n [3, 4]]";
        let t = json::pretty_with_budget(src, 4).expect("json");
        assert_eq!(text_of(&t), src);
        assert!(t.contains(&(Tok::Num, "4".into())));
        assert!(t.contains(&(Tok::Plain, "\n ".into())));
        // A document of tiny values nested deep stays within a few times its own size.
        let deep = "[".repeat(120) + &"1,".repeat(300_000) + "1" + &"]".repeat(120);
        let Rendered::Json(t) = render(deep.as_bytes()) else {
            panic!("not json")
        };
        assert!(text_of(&t).len() <= 8 * deep.len() + (1 << 20));
    }

    /// The JSON view before it kept tokens as written: serde_json's pretty text, split like this.
    fn previous_view(pretty: &str) -> Vec<(Tok, String)> {
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
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || "+-.".contains(chars[i]))
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

    fn any_json() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        use serde_json::Value;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            // DEL and C1 are not escaped by serde_json and make a value binary (tested apart).
            "[^\u{7f}-\u{9f}]{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(5, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::vec(("[^\u{7f}-\u{9f}]{0,6}", inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn json_that_serde_would_print_unchanged_looks_exactly_as_before(value in any_json()) {
            let value = match value {
                v @ (serde_json::Value::Array(_) | serde_json::Value::Object(_)) => v,
                other => serde_json::Value::Array(vec![other]),
            };
            let compact = serde_json::to_string(&value).unwrap();
            let pretty = serde_json::to_string_pretty(&value).unwrap();
            // Invisible or direction-changing characters make a value binary (tested apart).
            proptest::prop_assume!(!compact.chars().any(invisible_in_text));
            proptest::prop_assert_eq!(render(compact.as_bytes()), Rendered::Json(previous_view(&pretty)));
            proptest::prop_assert_eq!(render(pretty.as_bytes()), Rendered::Json(previous_view(&pretty)));
        }

        #[test]
        fn rendering_any_bytes_never_panics_and_text_views_keep_every_token(
            bytes in proptest::collection::vec(proptest::sample::select(b"{}[],:\"\\ -01e.tnul\n\xc3\xa9a".to_vec()), 0..64)
        ) {
            match render(&bytes) {
                Rendered::Json(t) => {
                    let strip = |s: &[u8]| -> Vec<u8> { s.iter().copied().filter(|b| !b" \n\t\r".contains(b)).collect() };
                    proptest::prop_assert_eq!(strip(text_of(&t).as_bytes()), strip(&bytes));
                }
                Rendered::Yaml(t) => proptest::prop_assert_eq!(text_of(&t).into_bytes(), bytes),
                Rendered::Text(t) => proptest::prop_assert_eq!(t.into_bytes(), bytes),
                Rendered::Binary(_) => {}
            }
        }
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
    fn plain_text_is_text_not_a_yaml_scalar() {
        for src in [
            "hello world\nsecond line",
            "hello world\nsecond line\n",
            "one line",
            "a sentence: with a colon in it\nand a second line",
            "---\njust text\n",
            "12345\n",
            "\"quoted\"\n",
            "",
        ] {
            assert_eq!(
                render(src.as_bytes()),
                Rendered::Text(src.into()),
                "{src:?}"
            );
        }
    }

    #[test]
    fn yaml_sequences_and_streams_of_mappings_are_yaml() {
        for src in [
            "- a\n- b\n",
            "a: 1\n---\nb: 2\n",
            "---\na: 1\n---\n- x\n...\n",
            "!thing\nkind: Pod\n",
        ] {
            let Rendered::Yaml(t) = render(src.as_bytes()) else {
                panic!("{src:?} is YAML")
            };
            assert_eq!(text_of(&t), src);
        }
        // A stream with a plain-text document is not a YAML document set.
        assert_eq!(
            render(b"a: 1\n---\njust text\n").label(),
            "text",
            "a scalar document makes the stream text"
        );
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
    fn text_with_control_characters_is_shown_as_bytes_and_says_why() {
        for src in [
            "bell\x07 esc\x1b[31mred",
            "nul\0",
            "lone\rcarriage return",
            "crlf\r\nthen a lone cr\r",
            "del\x7f",
            "c1 \u{85} next line",
            "form\x0cfeed",
            "{\"a\":\"\x01\"}",
        ] {
            let Rendered::Binary(lines) = render(src.as_bytes()) else {
                panic!("{src:?} hides bytes as text")
            };
            assert!(!lines.is_empty());
            assert_eq!(
                value_note(src.as_bytes()),
                Some("UTF-8 text with control characters"),
                "{src:?}"
            );
        }
        assert_eq!(
            value_note(b"\xff\x07"),
            None,
            "not text at all: binary says it"
        );
    }

    #[test]
    fn crlf_text_stays_text_and_says_so() {
        let crlf = "line1\r\nline2\r\n";
        assert_eq!(render(crlf.as_bytes()), Rendered::Text(crlf.into()));
        assert_eq!(value_note(crlf.as_bytes()), Some("CRLF line endings"));
        let mixed = "line1\r\nline2\nline3";
        assert_eq!(render(mixed.as_bytes()), Rendered::Text(mixed.into()));
        assert_eq!(
            value_note(mixed.as_bytes()),
            Some("mixed CRLF and LF line endings")
        );
        assert_eq!(value_note(b"tabs\tand\nnewlines\n"), None);
        assert_eq!(value_note("é 中".as_bytes()), None);
        let yaml = "a: 1\r\nb: 2\r\n";
        assert_eq!(render(yaml.as_bytes()).label(), "YAML");
        assert_eq!(value_note(yaml.as_bytes()), Some("CRLF line endings"));
        assert_eq!(render(b"{\r\n\"a\": 1\r\n}").label(), "JSON");
    }

    #[test]
    fn display_bytes_escapes_what_is_not_printable_text() {
        assert_eq!(display_bytes(b"/bin/key-\xff\xfe"), "/bin/key-\\xff\\xfe");
        assert_eq!(display_bytes("/é/中/\n".as_bytes()), "/é/中/\\x0a");
        assert_eq!(display_bytes(b"tab\there"), "tab\\x09here");
        assert_eq!(display_bytes(b"<img src=x>"), "<img src=x>");
        assert_eq!(display_bytes(b"C:\\dir"), "C:\\\\dir");
        assert_eq!(display_bytes(b"del\x7f"), "del\\x7f");
        assert_eq!(display_bytes("c1\u{85}".as_bytes()), "c1\\xc2\\x85");
        assert_eq!(
            display_bytes("zw\u{200b}sp".as_bytes()),
            "zw\\xe2\\x80\\x8bsp"
        );
        assert_eq!(
            display_bytes("rlo\u{202e}txt".as_bytes()),
            "rlo\\xe2\\x80\\xaetxt"
        );
        assert_eq!(
            display_bytes("bom\u{feff}".as_bytes()),
            "bom\\xef\\xbb\\xbf"
        );
        assert_eq!(display_bytes("a b  c".as_bytes()), "a b  c");
        assert_eq!(display_bytes(b""), "");
    }

    #[test]
    fn keys_with_look_alike_spaces_joiners_or_end_spaces_are_told_apart() {
        let labels: Vec<String> = [
            "nbsp x",
            "nbsp\u{a0}x",
            "zwjx",
            "zw\u{200d}jx",
            "trail",
            "trail ",
            " lead",
        ]
        .iter()
        .map(|k| display_bytes(k.as_bytes()))
        .collect();
        assert_eq!(
            labels,
            [
                "nbsp x",
                "nbsp\\xc2\\xa0x",
                "zwjx",
                "zw\\xe2\\x80\\x8djx",
                "trail",
                "trail\\x20",
                "\\x20lead"
            ]
        );
        for k in ["trail ", " lead", "  ", "a b"] {
            assert_eq!(
                parse_display(display_bytes(k.as_bytes()).as_bytes()),
                k.as_bytes()
            );
        }
    }

    #[test]
    fn text_with_invisible_or_direction_changing_characters_is_shown_as_bytes() {
        for value in [
            "abc\u{202e}fed.exe",
            "pass\u{200b}word",
            "\u{feff}{\"a\":1}",
        ] {
            assert!(
                matches!(render(value.as_bytes()), Rendered::Binary(_)),
                "{value:?}"
            );
            assert_eq!(
                value_note(value.as_bytes()),
                Some("UTF-8 text with invisible or direction-changing characters")
            );
        }
        // Ordinary text with joiners and no-break spaces stays text.
        assert!(matches!(render("10\u{a0}km".as_bytes()), Rendered::Text(_)));
    }

    #[test]
    fn keys_that_looked_the_same_are_told_apart() {
        let pairs: [(&[u8], &[u8]); 4] = [
            (b"/odd/bin-\xff\x00\x01", b"/odd/bin-\\xff\\u{0}\\u{1}"),
            (b"/odd/bin-\xff\x00\x01", b"/odd/bin-\\xff\\x00\\x01"),
            (b"/odd/nl\nline", b"/odd/nl\\nline"),
            (b"/odd/tab\there", b"/odd/tab\\there"),
        ];
        for (a, b) in pairs {
            assert_ne!(display_bytes(a), display_bytes(b), "{a:?} vs {b:?}");
            assert_eq!(parse_display(display_bytes(a).as_bytes()), a);
            assert_eq!(parse_display(display_bytes(b).as_bytes()), b);
        }
        assert_eq!(
            display_bytes(b"/odd/bin-\xff\x00\x01"),
            "/odd/bin-\\xff\\x00\\x01"
        );
        assert_eq!(
            display_bytes(b"/odd/bin-\\xff\\u{0}\\u{1}"),
            "/odd/bin-\\\\xff\\\\u{0}\\\\u{1}"
        );
        assert_eq!(display_bytes(b"/odd/nl\nline"), "/odd/nl\\x0aline");
        assert_eq!(display_bytes(b"/odd/nl\\nline"), "/odd/nl\\\\nline");
    }

    #[test]
    fn parse_display_reads_escapes_and_keeps_other_text() {
        assert_eq!(parse_display(b"/a\\xffb"), b"/a\xffb");
        assert_eq!(parse_display(b"/a\\xFFb"), b"/a\xffb");
        assert_eq!(parse_display(b"C:\\\\dir"), b"C:\\dir");
        assert_eq!(
            parse_display(b"C:\\dir"),
            b"C:\\dir",
            "unknown escape: literal"
        );
        assert_eq!(parse_display(b"\\x4"), b"\\x4", "cut short: literal");
        assert_eq!(parse_display(b"\\xzz"), b"\\xzz");
        assert_eq!(parse_display(b"end\\"), b"end\\");
        assert_eq!(parse_display(b"\\\\x41"), b"\\x41");
        assert_eq!(parse_display(b"\\x5cx41"), b"\\x41");
        assert_eq!(parse_display("é中".as_bytes()), "é中".as_bytes());
        assert_eq!(parse_display(b"raw \xff stays"), b"raw \xff stays");
        assert_eq!(parse_display(b""), b"");
    }

    #[test]
    fn every_byte_and_pair_of_bytes_round_trips_through_its_label() {
        for a in 0..=255u8 {
            assert_eq!(parse_display(display_bytes(&[a]).as_bytes()), [a]);
            for b in 0..=255u8 {
                let key = [a, b];
                assert_eq!(parse_display(display_bytes(&key).as_bytes()), key);
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_round_trip_through_their_label(
            key in proptest::collection::vec(proptest::num::u8::ANY, 0..64)
        ) {
            proptest::prop_assert_eq!(parse_display(display_bytes(&key).as_bytes()), key);
        }

        #[test]
        fn any_text_round_trips_and_printable_text_is_shown_as_is(text in "\\PC{0,24}|[\\\\x0-9a-f\\n]{0,24}") {
            let label = display_bytes(text.as_bytes());
            proptest::prop_assert_eq!(parse_display(label.as_bytes()), text.as_bytes());
            // (Spaces at either end are escaped: they could not be seen.)
            if !text.contains('\\')
                && !text.chars().any(hidden_in_key)
                && !text.starts_with(' ')
                && !text.ends_with(' ')
            {
                proptest::prop_assert_eq!(label, text);
            }
        }
    }
}
