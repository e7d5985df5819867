//! Self-describing content digests: `blake3:<hex>` (default) and `sha256:<hex>`.
//!
//! The algorithm travels with the value, so two digests of different algorithms never compare
//! equal, and re-checking a digest always recomputes it with the algorithm it names.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::canonical::{CanonicalError, to_canonical_cbor};

/// A hash algorithm an artifact digest may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum DigestAlgorithm {
    /// BLAKE3, 256-bit output. The default for new artifacts.
    #[default]
    Blake3,
    /// SHA-256, for compatibility with artifacts of the reference implementation.
    Sha256,
}

impl DigestAlgorithm {
    /// Every supported algorithm, in the order they are documented.
    pub const ALL: [DigestAlgorithm; 2] = [DigestAlgorithm::Blake3, DigestAlgorithm::Sha256];

    /// The prefix written before the hex digits.
    pub fn prefix(self) -> &'static str {
        match self {
            DigestAlgorithm::Blake3 => "blake3",
            DigestAlgorithm::Sha256 => "sha256",
        }
    }

    /// Starts an incremental hash with this algorithm.
    pub fn hasher(self) -> DigestHasher {
        match self {
            DigestAlgorithm::Blake3 => DigestHasher::Blake3(Box::new(blake3::Hasher::new())),
            DigestAlgorithm::Sha256 => DigestHasher::Sha256(<sha2::Sha256 as sha2::Digest>::new()),
        }
    }

    /// Hashes `data` in one go.
    pub fn digest(self, data: &[u8]) -> Digest {
        let mut hasher = self.hasher();
        hasher.update(data);
        hasher.finalize()
    }

    /// Hashes the canonical CBOR encoding of `value`.
    pub fn digest_canonical<T: Serialize + ?Sized>(self, value: &T) -> Result<Digest, CanonicalError> {
        Ok(self.digest(&to_canonical_cbor(value)?))
    }
}

impl fmt::Display for DigestAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.prefix())
    }
}

impl FromStr for DigestAlgorithm {
    type Err = DigestParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DigestAlgorithm::ALL
            .into_iter()
            .find(|alg| alg.prefix() == s)
            .ok_or_else(|| DigestParseError::UnknownAlgorithm { prefix: s.to_owned() })
    }
}

/// An incremental hasher for either algorithm (used to stream file contents).
#[derive(Debug, Clone)]
pub enum DigestHasher {
    /// BLAKE3 state.
    Blake3(Box<blake3::Hasher>),
    /// SHA-256 state.
    Sha256(sha2::Sha256),
}

impl DigestHasher {
    /// Feeds more bytes.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            DigestHasher::Blake3(h) => {
                h.update(data);
            }
            DigestHasher::Sha256(h) => sha2::Digest::update(h, data),
        }
    }

    /// Finishes the hash.
    pub fn finalize(self) -> Digest {
        match self {
            DigestHasher::Blake3(h) => Digest { algorithm: DigestAlgorithm::Blake3, bytes: *h.finalize().as_bytes() },
            DigestHasher::Sha256(h) => {
                Digest { algorithm: DigestAlgorithm::Sha256, bytes: sha2::Digest::finalize(h).into() }
            }
        }
    }
}

/// A 256-bit digest that names its algorithm: `blake3:<64 hex>` or `sha256:<64 hex>`.
///
/// Equality compares the algorithm too: a BLAKE3 digest never equals a SHA-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: DigestAlgorithm,
    bytes: [u8; 32],
}

impl Digest {
    /// Builds a digest from raw output bytes.
    pub fn from_bytes(algorithm: DigestAlgorithm, bytes: [u8; 32]) -> Self {
        Digest { algorithm, bytes }
    }

    /// The algorithm this digest was made with.
    pub fn algorithm(&self) -> DigestAlgorithm {
        self.algorithm
    }

    /// The raw 32 output bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    /// Lower-case hex of the output bytes, without the algorithm prefix.
    pub fn hex(&self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(64);
        for byte in self.bytes {
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
        out
    }

    /// Recomputes the digest of `data` with this digest's own algorithm and compares.
    pub fn matches(&self, data: &[u8]) -> bool {
        self.algorithm.digest(data) == *self
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.prefix(), self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

/// Why a digest string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestParseError {
    /// No `<algorithm>:` prefix.
    #[error("digest `{input}` has no algorithm prefix; expected `blake3:<64 hex>` or `sha256:<64 hex>`")]
    MissingPrefix {
        /// The text that was given.
        input: String,
    },
    /// A prefix that names no supported algorithm.
    #[error("unknown digest algorithm `{prefix}`; supported: blake3, sha256")]
    UnknownAlgorithm {
        /// The prefix that was given.
        prefix: String,
    },
    /// Hex of the wrong length.
    #[error("{algorithm} digest must have 64 hex digits, found {found}")]
    WrongLength {
        /// The algorithm named by the prefix.
        algorithm: DigestAlgorithm,
        /// How many characters followed the prefix.
        found: usize,
    },
    /// A character that is not a lower-case hex digit.
    #[error("{algorithm} digest has `{character}` at position {position}; only lower-case hex digits are allowed")]
    InvalidHex {
        /// The algorithm named by the prefix.
        algorithm: DigestAlgorithm,
        /// The offending character.
        character: char,
        /// Its position in the hex part.
        position: usize,
    },
}

impl FromStr for Digest {
    type Err = DigestParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (prefix, hex) = s.split_once(':').ok_or_else(|| DigestParseError::MissingPrefix { input: s.to_owned() })?;
        let algorithm: DigestAlgorithm = prefix.parse()?;
        if hex.len() != 64 {
            return Err(DigestParseError::WrongLength { algorithm, found: hex.chars().count() });
        }
        let mut bytes = [0u8; 32];
        let digits = hex.as_bytes();
        for (i, byte) in bytes.iter_mut().enumerate() {
            let hi = hex_value(digits[2 * i]).ok_or(DigestParseError::InvalidHex {
                algorithm,
                character: char::from(digits[2 * i]),
                position: 2 * i,
            })?;
            let lo = hex_value(digits[2 * i + 1]).ok_or(DigestParseError::InvalidHex {
                algorithm,
                character: char::from(digits[2 * i + 1]),
                position: 2 * i + 1,
            })?;
            *byte = (hi << 4) | lo;
        }
        Ok(Digest { algorithm, bytes })
    }
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for Digest {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Digest".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "Self-describing digest: `blake3:<64 lower-case hex>` or `sha256:<64 lower-case hex>`.",
            "pattern": "^(blake3|sha256):[0-9a-f]{64}$"
        })
    }
}

impl Serialize for DigestAlgorithm {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.prefix())
    }
}

impl<'de> Deserialize<'de> for DigestAlgorithm {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        assert_eq!(
            DigestAlgorithm::Sha256.digest(b"abc").to_string(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            DigestAlgorithm::Blake3.digest(b"").to_string(),
            "blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
    }

    #[test]
    fn parse_display_round_trip() {
        for alg in DigestAlgorithm::ALL {
            let digest = alg.digest(b"cw");
            let parsed: Digest = digest.to_string().parse().unwrap();
            assert_eq!(parsed, digest);
            assert_eq!(parsed.algorithm(), alg);
        }
    }

    #[test]
    fn algorithms_never_compare_equal() {
        let b = DigestAlgorithm::Blake3.digest(b"x");
        let as_sha = Digest::from_bytes(DigestAlgorithm::Sha256, *b.as_bytes());
        assert_ne!(b, as_sha);
        assert!(b.matches(b"x"));
        assert!(!as_sha.matches(b"x"));
    }

    #[test]
    fn parse_errors_say_what_is_wrong() {
        let hex = "0".repeat(64);
        assert!(matches!(
            format!("md5:{hex}").parse::<Digest>(),
            Err(DigestParseError::UnknownAlgorithm { prefix }) if prefix == "md5"
        ));
        assert!(matches!(hex.parse::<Digest>(), Err(DigestParseError::MissingPrefix { .. })));
        assert!(matches!("blake3:abc".parse::<Digest>(), Err(DigestParseError::WrongLength { found: 3, .. })));
        let upper = format!("sha256:{}", "A".repeat(64));
        let err = upper.parse::<Digest>().unwrap_err();
        assert!(err.to_string().contains("lower-case"), "{err}");
        let non_ascii = format!("sha256:{}é", "0".repeat(62));
        assert!(non_ascii.parse::<Digest>().is_err());
    }
}
