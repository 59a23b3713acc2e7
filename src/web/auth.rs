//! Who is calling: identity from trusted proxy headers, a signed login cookie, or anonymous.

/// The user a request was served for, set on every response by the identity middleware so the
/// request log line can name them (`"anonymous"` when nobody logged in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestUser(pub String);
