//! `Secret`: a value that never shows itself.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What every rendering of a secret prints instead of the value.
pub const REDACTED: &str = "[REDACTED]";

/// A token, key or password. `Debug`, `Display` and `Serialize` print [`REDACTED`]; only
/// [`Secret::expose`] gives the value, so every place that uses it is greppable.
///
/// ```
/// use pal::Secret;
/// let token = Secret::new("tok-123");
/// assert_eq!(format!("{token:?} {token}"), "[REDACTED] [REDACTED]");
/// assert_eq!(serde_json::to_string(&token).unwrap(), "\"[REDACTED]\"");
/// assert_eq!(token.expose(), "tok-123");
/// ```
#[derive(Clone, PartialEq, Eq, Default, JsonSchema)]
#[schemars(with = "String")]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for the one place that must send it (a header, a connection string).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

/// Scrubs known secret values out of text (error messages from vendors may echo a token).
#[derive(Clone, Default)]
pub struct Redactor {
    values: Vec<String>,
}

impl Redactor {
    /// A redactor for these secrets (empty values are ignored: they would match everywhere).
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a Secret>) -> Self {
        let mut values: Vec<String> =
            secrets.into_iter().filter(|s| !s.is_empty()).map(|s| s.expose().to_owned()).collect();
        // Longest first, so a secret containing another is scrubbed whole.
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        Redactor { values }
    }

    /// Adds more secrets.
    pub fn extend<'a>(&mut self, secrets: impl IntoIterator<Item = &'a Secret>) {
        let mut all: Vec<Secret> = self.values.iter().map(Secret::new).collect();
        all.extend(secrets.into_iter().cloned());
        *self = Redactor::new(all.iter());
    }

    /// `text` with every known secret replaced by [`REDACTED`].
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for value in &self.values {
            if out.contains(value.as_str()) {
                out = out.replace(value.as_str(), REDACTED);
            }
        }
        out
    }
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Redactor({} secrets)", self.values.len())
    }
}
