//! Decoding CBOR back into the JSON data model, and checking that bytes are canonical.
//!
//! The decoder is deliberately tolerant of *non-canonical* forms (long heads, unsorted keys,
//! wide floats) so that [`check_canonical`] can say exactly how an artifact deviates; it is
//! strict about everything that is not JSON-shaped or not safe to read from hostile input.

use serde_json::{Map, Number, Value};

use crate::canonical::{f16_to_f64, to_canonical_cbor};

/// Nesting deeper than this is refused, so hostile input cannot exhaust the stack.
pub const MAX_DEPTH: usize = 256;

/// Why bytes could not be read as CBOR in the JSON data model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ended inside an item.
    #[error("CBOR input ends early at byte {offset}")]
    UnexpectedEnd {
        /// Where more bytes were needed.
        offset: usize,
    },
    /// Bytes remain after the top-level item.
    #[error("{count} trailing bytes after the CBOR item, starting at byte {offset}")]
    TrailingBytes {
        /// Where the extra bytes start.
        offset: usize,
        /// How many there are.
        count: usize,
    },
    /// A construct the JSON data model has no place for.
    #[error("unsupported CBOR at byte {offset}: {what}")]
    Unsupported {
        /// Where the construct starts.
        offset: usize,
        /// What it is.
        what: String,
    },
    /// A text string that is not UTF-8.
    #[error("text string at byte {offset} is not valid UTF-8")]
    InvalidUtf8 {
        /// Where the string starts.
        offset: usize,
    },
    /// A map key that is not a text string.
    #[error("map key at byte {offset} is not a text string")]
    NonTextKey {
        /// Where the key starts.
        offset: usize,
    },
    /// The same key twice in one map.
    #[error("duplicate map key `{key}` at byte {offset}")]
    DuplicateKey {
        /// Where the second occurrence starts.
        offset: usize,
        /// The key.
        key: String,
    },
    /// Too deeply nested.
    #[error("nesting deeper than {MAX_DEPTH} levels at byte {offset}")]
    TooDeep {
        /// Where the limit was crossed.
        offset: usize,
    },
}

/// Decodes one CBOR item (JSON data model only) from `bytes`.
pub fn from_cbor(bytes: &[u8]) -> Result<Value, DecodeError> {
    let mut reader = Reader { bytes, pos: 0 };
    let value = reader.item(0)?;
    if reader.pos != bytes.len() {
        return Err(DecodeError::TrailingBytes { offset: reader.pos, count: bytes.len() - reader.pos });
    }
    Ok(value)
}

/// The outcome of checking bytes against their canonical re-encoding.
#[derive(Debug, Clone, PartialEq)]
pub enum CanonicalCheck {
    /// The bytes are exactly the canonical encoding of the value they hold.
    Canonical(Value),
    /// The bytes decode, but differ from the canonical encoding from `first_difference` on.
    NotCanonical {
        /// The decoded value.
        value: Value,
        /// The first byte offset at which input and canonical re-encoding differ.
        first_difference: usize,
    },
}

/// Decodes `bytes` and re-encodes the value canonically, reporting whether they are identical.
pub fn check_canonical(bytes: &[u8]) -> Result<CanonicalCheck, DecodeError> {
    let value = from_cbor(bytes)?;
    let canonical =
        to_canonical_cbor(&value).map_err(|e| DecodeError::Unsupported { offset: 0, what: e.to_string() })?;
    if canonical == bytes {
        return Ok(CanonicalCheck::Canonical(value));
    }
    let first_difference =
        canonical.iter().zip(bytes).position(|(a, b)| a != b).unwrap_or(canonical.len().min(bytes.len()));
    Ok(CanonicalCheck::NotCanonical { value, first_difference })
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or(DecodeError::UnexpectedEnd { offset: self.pos })?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn be(&mut self, n: usize) -> Result<u64, DecodeError> {
        Ok(self.take(n)?.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    /// Reads the argument of a head whose additional-information bits are `info`.
    fn argument(&mut self, info: u8, start: usize) -> Result<u64, DecodeError> {
        match info {
            0..=23 => Ok(u64::from(info)),
            24 => self.be(1),
            25 => self.be(2),
            26 => self.be(4),
            27 => self.be(8),
            31 => Err(DecodeError::Unsupported { offset: start, what: "indefinite-length item".to_owned() }),
            _ => {
                Err(DecodeError::Unsupported { offset: start, what: format!("reserved additional information {info}") })
            }
        }
    }

    /// A length that the remaining input could possibly hold (each element takes ≥ 1 byte).
    fn length(&mut self, info: u8, start: usize) -> Result<usize, DecodeError> {
        let n = self.argument(info, start)?;
        let remaining = (self.bytes.len() - self.pos) as u64;
        if n > remaining {
            return Err(DecodeError::UnexpectedEnd { offset: self.pos });
        }
        Ok(n as usize)
    }

    fn item(&mut self, depth: usize) -> Result<Value, DecodeError> {
        let start = self.pos;
        if depth > MAX_DEPTH {
            return Err(DecodeError::TooDeep { offset: start });
        }
        let initial = self.take(1)?[0];
        let major = initial >> 5;
        let info = initial & 0x1f;
        match major {
            0 => Ok(Value::Number(self.argument(info, start)?.into())),
            1 => {
                let n = self.argument(info, start)?;
                if let Ok(n) = i64::try_from(n) {
                    return Ok(Value::Number((-1 - n).into()));
                }
                // Below i64::MIN the JSON data model holds the number only as a float; accept it
                // when a float holds it exactly (the encoder writes integer-valued floats such as
                // -1e19 this way), refuse it otherwise rather than change its value.
                let value = -1 - i128::from(n);
                let float = value as f64;
                match Number::from_f64(float) {
                    Some(number) if float as i128 == value => Ok(Value::Number(number)),
                    _ => Err(DecodeError::Unsupported {
                        offset: start,
                        what: "negative integer below i64::MIN that no float holds exactly".to_owned(),
                    }),
                }
            }
            2 => Err(DecodeError::Unsupported { offset: start, what: "byte string".to_owned() }),
            3 => {
                let len = self.length(info, start)?;
                let text =
                    std::str::from_utf8(self.take(len)?).map_err(|_| DecodeError::InvalidUtf8 { offset: start })?;
                Ok(Value::String(text.to_owned()))
            }
            4 => {
                let len = self.length(info, start)?;
                let mut items = Vec::with_capacity(len);
                for _ in 0..len {
                    items.push(self.item(depth + 1)?);
                }
                Ok(Value::Array(items))
            }
            5 => {
                let len = self.length(info, start)?;
                let mut map = Map::new();
                for _ in 0..len {
                    let key_start = self.pos;
                    let Value::String(key) = self.item(depth + 1)? else {
                        return Err(DecodeError::NonTextKey { offset: key_start });
                    };
                    let value = self.item(depth + 1)?;
                    if map.contains_key(&key) {
                        return Err(DecodeError::DuplicateKey { offset: key_start, key });
                    }
                    map.insert(key, value);
                }
                Ok(Value::Object(map))
            }
            6 => Err(DecodeError::Unsupported { offset: start, what: "tagged item".to_owned() }),
            _ => self.simple(info, start),
        }
    }

    fn simple(&mut self, info: u8, start: usize) -> Result<Value, DecodeError> {
        let float = match info {
            20 => return Ok(Value::Bool(false)),
            21 => return Ok(Value::Bool(true)),
            22 => return Ok(Value::Null),
            25 => f16_to_f64(self.be(2)? as u16),
            26 => f64::from(f32::from_bits(self.be(4)? as u32)),
            27 => f64::from_bits(self.be(8)?),
            _ => {
                return Err(DecodeError::Unsupported { offset: start, what: format!("simple value {info}") });
            }
        };
        // Integer-valued floats within range come back as integers, as the encoder writes them.
        let number = if float.fract() == 0.0 && float.abs() < 9_007_199_254_740_992.0 {
            Some(Number::from(float as i64))
        } else {
            Number::from_f64(float)
        };
        number
            .map(Value::Number)
            .ok_or_else(|| DecodeError::Unsupported { offset: start, what: "NaN or infinite float".to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn decodes_published_vectors() {
        assert_eq!(
            from_cbor(&unhex("a36161016162026a6c6f6e6765725f6b657903")).unwrap(),
            json!({"longer_key": 3, "b": 2, "a": 1})
        );
        assert_eq!(from_cbor(&unhex("3863")).unwrap(), json!(-100));
        assert_eq!(from_cbor(&unhex("f93e00")).unwrap(), json!(1.5));
    }

    #[test]
    fn canonical_check_spots_each_deviation() {
        for (bytes, what) in [
            ("1817", "long head for 23"),
            ("a2616202616101", "unsorted keys"),
            ("fb3ff8000000000000", "double where half suffices"),
            ("f93c00", "float 1.0 where integer 1 is canonical"),
        ] {
            match check_canonical(&unhex(bytes)).unwrap() {
                CanonicalCheck::NotCanonical { .. } => {}
                CanonicalCheck::Canonical(_) => panic!("{what} accepted as canonical"),
            }
        }
        assert!(matches!(check_canonical(&unhex("a1616101")).unwrap(), CanonicalCheck::Canonical(_)));
    }

    #[test]
    fn hostile_input_is_refused_without_panic() {
        let cases = [
            ("", "ends early"),
            ("7bffffffffffffffff", "ends early"),
            ("9bffffffffffffffff", "ends early"),
            ("9f01ff", "indefinite"),
            ("4100", "byte string"),
            ("c100", "tagged"),
            ("62c328", "UTF-8"),
            ("a10101", "not a text string"),
            ("a2616101616102", "duplicate"),
            ("f97e00", "NaN"),
            ("f7", "simple value"),
            ("0000", "trailing"),
        ];
        for (bytes, expected) in cases {
            let err = from_cbor(&unhex(bytes)).unwrap_err();
            assert!(err.to_string().contains(expected), "{bytes}: {err}");
        }
        let deep = vec![0x81u8; MAX_DEPTH + 2];
        assert!(matches!(from_cbor(&deep), Err(DecodeError::TooDeep { .. })));
    }
}
