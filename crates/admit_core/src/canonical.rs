//! Canonical CBOR (RFC 8949 deterministic encoding) of the JSON data model.
//!
//! Identity hashes are taken over these bytes, so the rules are fixed:
//! shortest-form heads; definite lengths; map keys (text only) sorted by encoded length, then
//! bytewise; `null`/`true`/`false` as `f6`/`f5`/`f4`; an integer-valued float encodes as the
//! integer; any other finite float in the shortest IEEE 754 width (half, single, double) that
//! keeps its value; NaN and infinities are refused with the path of the offending field.
//!
//! The encoder is a serde `Serializer`, so any `Serialize` type (including `serde_json::Value`)
//! encodes the same way it would after a trip through JSON: byte strings become arrays of
//! integers, enums follow serde_json's externally tagged layout.

use serde::Serialize;
use serde::ser::{self, Impossible};

/// Why a value could not be encoded canonically.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CanonicalError {
    /// NaN or an infinity: JSON cannot carry it and the hash would not be reproducible.
    #[error("non-finite float ({value}) at `{path}`: NaN and infinities have no canonical form")]
    NonFiniteFloat {
        /// Where in the value the float sits, e.g. `facts[3].size`.
        path: String,
        /// `NaN`, `inf` or `-inf`.
        value: String,
    },
    /// A map key that is not a string.
    #[error("map key at `{path}` is not a string; canonical maps have text keys only")]
    NonStringKey {
        /// Where in the value the map sits.
        path: String,
    },
    /// The same key twice in one map.
    #[error("duplicate map key `{key}` at `{path}`")]
    DuplicateKey {
        /// Where in the value the map sits.
        path: String,
        /// The repeated key.
        key: String,
    },
    /// An integer outside the range CBOR major types 0 and 1 can carry.
    #[error("integer {value} at `{path}` is outside the CBOR integer range")]
    IntegerOutOfRange {
        /// Where in the value the integer sits.
        path: String,
        /// The integer, in decimal.
        value: String,
    },
    /// A custom error raised by a `Serialize` implementation.
    #[error("cannot encode `{path}`: {message}")]
    Custom {
        /// Where in the value the error arose.
        path: String,
        /// The implementation's message.
        message: String,
    },
}

impl CanonicalError {
    fn path_mut(&mut self) -> &mut String {
        match self {
            CanonicalError::NonFiniteFloat { path, .. }
            | CanonicalError::NonStringKey { path }
            | CanonicalError::DuplicateKey { path, .. }
            | CanonicalError::IntegerOutOfRange { path, .. }
            | CanonicalError::Custom { path, .. } => path,
        }
    }

    /// Prepends a path segment (`.field` or `[index]`) as the error travels outwards.
    fn within(mut self, segment: Segment<'_>) -> Self {
        let path = self.path_mut();
        let rest = std::mem::take(path);
        let mut joined = match segment {
            Segment::Field(name) => name.to_owned(),
            Segment::Index(index) => format!("[{index}]"),
        };
        if !rest.is_empty() {
            if !rest.starts_with('[') {
                joined.push('.');
            }
            joined.push_str(&rest);
        }
        *path = joined;
        self
    }
}

enum Segment<'a> {
    Field(&'a str),
    Index(usize),
}

impl ser::Error for CanonicalError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        CanonicalError::Custom { path: String::new(), message: msg.to_string() }
    }
}

/// Encodes `value` as canonical CBOR.
pub fn to_canonical_cbor<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CanonicalError> {
    let mut out = Vec::new();
    write_canonical_cbor(value, &mut out)?;
    Ok(out)
}

/// The canonical CBOR encodings of `values`, one after another in one buffer, with the byte
/// range of each: many small values encoded with one encoder and one allocation.
pub(crate) fn encode_each<T: Serialize>(
    values: &[T],
) -> Result<(Vec<u8>, Vec<std::ops::Range<usize>>), CanonicalError> {
    let mut out = Vec::new();
    let mut ranges = Vec::with_capacity(values.len());
    let mut encoder = Encoder { out: &mut out, entries: Vec::new(), scratch: Vec::new() };
    for value in values {
        let start = encoder.out.len();
        value.serialize(&mut encoder)?;
        ranges.push(start..encoder.out.len());
    }
    Ok((out, ranges))
}

/// Appends the canonical CBOR encoding of `value` to `out`.
///
/// On error `out` holds a partial encoding and should be discarded.
pub fn write_canonical_cbor<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
    let mut encoder = Encoder { out, entries: Vec::new(), scratch: Vec::new() };
    value.serialize(&mut encoder)
}

const MAJOR_UNSIGNED: u8 = 0;
const MAJOR_NEGATIVE: u8 = 1;
const MAJOR_TEXT: u8 = 3;
const MAJOR_ARRAY: u8 = 4;
const MAJOR_MAP: u8 = 5;

fn write_head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    if n < 24 {
        out.push(m | n as u8);
    } else if n <= u64::from(u8::MAX) {
        out.extend_from_slice(&[m | 24, n as u8]);
    } else if n <= u64::from(u16::MAX) {
        out.push(m | 25);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else if n <= u64::from(u32::MAX) {
        out.push(m | 26);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// Writes the head of a definite-length array (for callers that stream pre-encoded elements).
pub(crate) fn write_array_head(out: &mut Vec<u8>, len: usize) {
    write_head(out, MAJOR_ARRAY, len as u64);
}

fn write_text(out: &mut Vec<u8>, text: &str) {
    write_head(out, MAJOR_TEXT, text.len() as u64);
    out.extend_from_slice(text.as_bytes());
}

/// Appends `text` as canonical CBOR, for a hand-written encoder of a hot type (its output must
/// be exactly what [`write_canonical_cbor`] writes; test it against that).
pub fn write_cbor_text(out: &mut Vec<u8>, text: &str) {
    write_text(out, text);
}

/// Appends the head of a map of `len` entries; the caller then writes each key and value, keys
/// in canonical order (by encoded length, then bytewise).
pub fn write_cbor_map_head(out: &mut Vec<u8>, len: usize) {
    write_head(out, MAJOR_MAP, len as u64);
}

/// Appends an integer as canonical CBOR (every `i64` and `u64` fits).
pub fn write_cbor_integer(out: &mut Vec<u8>, value: impl Into<i128>) {
    let value: i128 = value.into();
    if value >= 0 {
        write_head(out, MAJOR_UNSIGNED, u64::try_from(value).unwrap_or(u64::MAX));
    } else {
        write_head(out, MAJOR_NEGATIVE, u64::try_from(-1 - value).unwrap_or(u64::MAX));
    }
}

/// 2^64 as an f64: the first integer-valued float CBOR's integer majors cannot carry.
const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;

fn write_float(out: &mut Vec<u8>, value: f64) -> Result<(), CanonicalError> {
    if !value.is_finite() {
        return Err(CanonicalError::NonFiniteFloat {
            path: String::new(),
            value: if value.is_nan() {
                "NaN".to_owned()
            } else if value > 0.0 {
                "inf".to_owned()
            } else {
                "-inf".to_owned()
            },
        });
    }
    if value.fract() == 0.0 && (-TWO_POW_64..TWO_POW_64).contains(&value) {
        // Integer-valued: the range checks above make the casts exact. The negative argument
        // `|value| - 1` is taken in integers: in f64, `-1.0 - value` rounds once |value| > 2^53.
        if value >= 0.0 {
            write_head(out, MAJOR_UNSIGNED, value as u64);
        } else {
            write_head(out, MAJOR_NEGATIVE, ((-value) as u128 - 1) as u64);
        }
        return Ok(());
    }
    let single = value as f32;
    if f64::from(single) == value {
        if let Some(half) = f32_to_f16_exact(single) {
            out.push(0xf9);
            out.extend_from_slice(&half.to_be_bytes());
        } else {
            out.push(0xfa);
            out.extend_from_slice(&single.to_bits().to_be_bytes());
        }
    } else {
        out.push(0xfb);
        out.extend_from_slice(&value.to_bits().to_be_bytes());
    }
    Ok(())
}

/// The IEEE 754 half-precision bits of `value` when the conversion loses nothing.
fn f32_to_f16_exact(value: f32) -> Option<u16> {
    let bits = value.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exponent = ((bits >> 23) & 0xff) as i32 - 127;
    let mantissa = bits & 0x007f_ffff;
    if (-14..=15).contains(&exponent) {
        // Normal half: 10 mantissa bits, so the low 13 bits of the single mantissa must be zero.
        if mantissa & 0x1fff != 0 {
            return None;
        }
        return Some(sign | (((exponent + 15) as u16) << 10) | (mantissa >> 13) as u16);
    }
    if (-24..-14).contains(&exponent) {
        // Subnormal half: value = m * 2^-24 with m in 1..1024.
        let significand = mantissa | 0x0080_0000; // implicit leading 1, value = sig * 2^(exp-23)
        let shift = (-exponent - 14 + 13) as u32; // bits dropped going to m
        if significand & ((1 << shift) - 1) != 0 {
            return None;
        }
        return Some(sign | (significand >> shift) as u16);
    }
    None
}

/// Converts IEEE 754 half-precision bits to f64 (used by the decoder).
pub(crate) fn f16_to_f64(bits: u16) -> f64 {
    let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exponent = i32::from((bits >> 10) & 0x1f);
    let mantissa = f64::from(bits & 0x03ff);
    match exponent {
        0 => sign * mantissa * 2f64.powi(-24),
        31 if mantissa == 0.0 => sign * f64::INFINITY,
        31 => f64::NAN,
        _ => sign * (1.0 + mantissa / 1024.0) * 2f64.powi(exponent - 15),
    }
}

/// Key and value boundaries of one map entry inside the output buffer.
#[derive(Clone, Copy)]
struct Entry {
    key_start: usize,
    value_start: usize,
    end: usize,
}

struct Encoder<'a> {
    out: &'a mut Vec<u8>,
    /// A stack of map entries shared by all nesting levels, so maps allocate nothing.
    entries: Vec<Entry>,
    /// Reused buffer for reordering map entries.
    scratch: Vec<u8>,
}

impl<'b> Encoder<'b> {
    fn int(&mut self, value: i128) -> Result<(), CanonicalError> {
        if value >= 0 {
            let n = u64::try_from(value).map_err(|_| out_of_range(value))?;
            write_head(self.out, MAJOR_UNSIGNED, n);
        } else {
            let n = u64::try_from(-1 - value).map_err(|_| out_of_range(value))?;
            write_head(self.out, MAJOR_NEGATIVE, n);
        }
        Ok(())
    }

    fn begin_map(&mut self) -> MapEncoder<'_, 'b> {
        let start = self.out.len();
        let base = self.entries.len();
        MapEncoder { start, base, variant: None, encoder: self }
    }

    /// Writes a single-entry map `{variant: <value written by f>}` (serde's external tagging).
    fn tagged<F>(&mut self, variant: &str, f: F) -> Result<(), CanonicalError>
    where
        F: FnOnce(&mut Self) -> Result<(), CanonicalError>,
    {
        write_head(self.out, MAJOR_MAP, 1);
        write_text(self.out, variant);
        f(self).map_err(|e| e.within(Segment::Field(variant)))
    }
}

fn out_of_range(value: i128) -> CanonicalError {
    CanonicalError::IntegerOutOfRange { path: String::new(), value: value.to_string() }
}

impl<'a, 'b> ser::Serializer for &'a mut Encoder<'b> {
    type Ok = ();
    type Error = CanonicalError;
    type SerializeSeq = SeqEncoder<'a, 'b>;
    type SerializeTuple = SeqEncoder<'a, 'b>;
    type SerializeTupleStruct = SeqEncoder<'a, 'b>;
    type SerializeTupleVariant = SeqEncoder<'a, 'b>;
    type SerializeMap = MapEncoder<'a, 'b>;
    type SerializeStruct = MapEncoder<'a, 'b>;
    type SerializeStructVariant = MapEncoder<'a, 'b>;

    fn serialize_bool(self, v: bool) -> Result<(), CanonicalError> {
        self.out.push(if v { 0xf5 } else { 0xf4 });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), CanonicalError> {
        self.int(i128::from(v))
    }
    fn serialize_i16(self, v: i16) -> Result<(), CanonicalError> {
        self.int(i128::from(v))
    }
    fn serialize_i32(self, v: i32) -> Result<(), CanonicalError> {
        self.int(i128::from(v))
    }
    fn serialize_i64(self, v: i64) -> Result<(), CanonicalError> {
        self.int(i128::from(v))
    }
    fn serialize_i128(self, v: i128) -> Result<(), CanonicalError> {
        self.int(v)
    }
    fn serialize_u8(self, v: u8) -> Result<(), CanonicalError> {
        write_head(self.out, MAJOR_UNSIGNED, u64::from(v));
        Ok(())
    }
    fn serialize_u16(self, v: u16) -> Result<(), CanonicalError> {
        write_head(self.out, MAJOR_UNSIGNED, u64::from(v));
        Ok(())
    }
    fn serialize_u32(self, v: u32) -> Result<(), CanonicalError> {
        write_head(self.out, MAJOR_UNSIGNED, u64::from(v));
        Ok(())
    }
    fn serialize_u64(self, v: u64) -> Result<(), CanonicalError> {
        write_head(self.out, MAJOR_UNSIGNED, v);
        Ok(())
    }
    fn serialize_u128(self, v: u128) -> Result<(), CanonicalError> {
        let n = u64::try_from(v)
            .map_err(|_| CanonicalError::IntegerOutOfRange { path: String::new(), value: v.to_string() })?;
        write_head(self.out, MAJOR_UNSIGNED, n);
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result<(), CanonicalError> {
        write_float(self.out, f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> Result<(), CanonicalError> {
        write_float(self.out, v)
    }
    fn serialize_char(self, v: char) -> Result<(), CanonicalError> {
        write_text(self.out, v.encode_utf8(&mut [0u8; 4]));
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), CanonicalError> {
        write_text(self.out, v);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), CanonicalError> {
        // The JSON data model has no byte strings; serde_json writes an array of numbers.
        write_head(self.out, MAJOR_ARRAY, v.len() as u64);
        for byte in v {
            write_head(self.out, MAJOR_UNSIGNED, u64::from(*byte));
        }
        Ok(())
    }
    fn serialize_none(self) -> Result<(), CanonicalError> {
        self.serialize_unit()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), CanonicalError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), CanonicalError> {
        self.out.push(0xf6);
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), CanonicalError> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), CanonicalError> {
        write_text(self.out, variant);
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), CanonicalError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), CanonicalError> {
        self.tagged(variant, |enc| value.serialize(enc))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SeqEncoder<'a, 'b>, CanonicalError> {
        let start = self.out.len();
        if let Some(len) = len {
            write_head(self.out, MAJOR_ARRAY, len as u64);
        }
        Ok(SeqEncoder { encoder: self, start, known_len: len, count: 0, variant: None })
    }
    fn serialize_tuple(self, len: usize) -> Result<SeqEncoder<'a, 'b>, CanonicalError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<SeqEncoder<'a, 'b>, CanonicalError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<SeqEncoder<'a, 'b>, CanonicalError> {
        write_head(self.out, MAJOR_MAP, 1);
        write_text(self.out, variant);
        let mut seq = self.serialize_seq(Some(len))?;
        seq.variant = Some(variant);
        Ok(seq)
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<MapEncoder<'a, 'b>, CanonicalError> {
        Ok(self.begin_map())
    }
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<MapEncoder<'a, 'b>, CanonicalError> {
        Ok(self.begin_map())
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<MapEncoder<'a, 'b>, CanonicalError> {
        write_head(self.out, MAJOR_MAP, 1);
        write_text(self.out, variant);
        let mut map = self.begin_map();
        map.variant = Some(variant);
        Ok(map)
    }
}

struct SeqEncoder<'a, 'b> {
    encoder: &'a mut Encoder<'b>,
    start: usize,
    known_len: Option<usize>,
    count: usize,
    variant: Option<&'static str>,
}

impl SeqEncoder<'_, '_> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CanonicalError> {
        let index = self.count;
        self.count += 1;
        value.serialize(&mut *self.encoder).map_err(|e| {
            let e = e.within(Segment::Index(index));
            match self.variant {
                Some(variant) => e.within(Segment::Field(variant)),
                None => e,
            }
        })
    }

    fn finish(self) -> Result<(), CanonicalError> {
        match self.known_len {
            Some(len) if len == self.count => {}
            Some(_) => {
                return Err(ser::Error::custom("sequence length hint did not match its elements"));
            }
            None => {
                let mut head = Vec::with_capacity(9);
                write_head(&mut head, MAJOR_ARRAY, self.count as u64);
                self.encoder.out.splice(self.start..self.start, head);
            }
        }
        Ok(())
    }
}

macro_rules! impl_seq {
    ($trait:ident, $method:ident) => {
        impl ser::$trait for SeqEncoder<'_, '_> {
            type Ok = ();
            type Error = CanonicalError;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CanonicalError> {
                self.element(value)
            }
            fn end(self) -> Result<(), CanonicalError> {
                self.finish()
            }
        }
    };
}
impl_seq!(SerializeSeq, serialize_element);
impl_seq!(SerializeTuple, serialize_element);
impl_seq!(SerializeTupleStruct, serialize_field);
impl_seq!(SerializeTupleVariant, serialize_field);

struct MapEncoder<'a, 'b> {
    encoder: &'a mut Encoder<'b>,
    start: usize,
    base: usize,
    /// For struct variants: the variant name, so error paths include it.
    variant: Option<&'static str>,
}

impl MapEncoder<'_, '_> {
    fn key_text(&self, entry_index: usize) -> String {
        let entry = self.encoder.entries[entry_index];
        decoded_text(&self.encoder.out[entry.key_start..entry.value_start])
    }

    fn wrap(&self, error: CanonicalError, key: &str) -> CanonicalError {
        let error = error.within(Segment::Field(key));
        match self.variant {
            Some(variant) => error.within(Segment::Field(variant)),
            None => error,
        }
    }

    fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), CanonicalError> {
        let key_start = self.encoder.out.len();
        write_text(self.encoder.out, key);
        let value_start = self.encoder.out.len();
        value.serialize(&mut *self.encoder).map_err(|e| self.wrap(e, key))?;
        let end = self.encoder.out.len();
        self.encoder.entries.push(Entry { key_start, value_start, end });
        Ok(())
    }

    fn finish(self) -> Result<(), CanonicalError> {
        let MapEncoder { encoder, start, base, .. } = self;
        let entries = &mut encoder.entries[base..];
        let out = &encoder.out;
        let key = |e: &Entry| &out[e.key_start..e.value_start];
        entries.sort_unstable_by(|a, b| {
            let (ka, kb) = (key(a), key(b));
            ka.len().cmp(&kb.len()).then_with(|| ka.cmp(kb))
        });
        if let Some(pair) = entries.windows(2).find(|pair| key(&pair[0]) == key(&pair[1])) {
            let duplicate = decoded_text(key(&pair[0]));
            encoder.entries.truncate(base);
            return Err(CanonicalError::DuplicateKey { path: String::new(), key: duplicate });
        }
        encoder.scratch.clear();
        encoder.scratch.extend_from_slice(&encoder.out[start..]);
        encoder.out.truncate(start);
        write_head(encoder.out, MAJOR_MAP, (encoder.entries.len() - base) as u64);
        for entry in &encoder.entries[base..] {
            let from = entry.key_start - start;
            let to = entry.end - start;
            encoder.out.extend_from_slice(&encoder.scratch[from..to]);
        }
        encoder.entries.truncate(base);
        Ok(())
    }
}

/// Reads back the text of an encoded key (for error messages only).
fn decoded_text(encoded: &[u8]) -> String {
    let skip = match encoded.first().map(|b| b & 0x1f) {
        Some(n) if n < 24 => 1,
        Some(24) => 2,
        Some(25) => 3,
        Some(26) => 5,
        _ => 9,
    };
    String::from_utf8_lossy(encoded.get(skip..).unwrap_or_default()).into_owned()
}

impl ser::SerializeMap for MapEncoder<'_, '_> {
    type Ok = ();
    type Error = CanonicalError;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), CanonicalError> {
        let key_start = self.encoder.out.len();
        key.serialize(KeyEncoder { out: &mut *self.encoder.out })?;
        let value_start = self.encoder.out.len();
        // The end is fixed once the value is written.
        self.encoder.entries.push(Entry { key_start, value_start, end: value_start });
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CanonicalError> {
        let index = self.encoder.entries.len() - 1;
        if let Err(error) = value.serialize(&mut *self.encoder) {
            let key = self.key_text(index);
            return Err(self.wrap(error, &key));
        }
        let end = self.encoder.out.len();
        self.encoder.entries[index].end = end;
        Ok(())
    }

    fn end(self) -> Result<(), CanonicalError> {
        self.finish()
    }
}

impl ser::SerializeStruct for MapEncoder<'_, '_> {
    type Ok = ();
    type Error = CanonicalError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), CanonicalError> {
        self.field(key, value)
    }

    fn end(self) -> Result<(), CanonicalError> {
        self.finish()
    }
}

impl ser::SerializeStructVariant for MapEncoder<'_, '_> {
    type Ok = ();
    type Error = CanonicalError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), CanonicalError> {
        self.field(key, value)
    }

    fn end(self) -> Result<(), CanonicalError> {
        self.finish()
    }
}

/// Serializes map keys: text only, as serde_json does (which also accepts char keys).
struct KeyEncoder<'a> {
    out: &'a mut Vec<u8>,
}

fn non_string_key() -> CanonicalError {
    CanonicalError::NonStringKey { path: String::new() }
}

macro_rules! refuse_key {
    ($($method:ident($($ty:ty),*)),* $(,)?) => {
        $(fn $method(self, $(_: $ty),*) -> Result<(), CanonicalError> { Err(non_string_key()) })*
    };
}

impl ser::Serializer for KeyEncoder<'_> {
    type Ok = ();
    type Error = CanonicalError;
    type SerializeSeq = Impossible<(), CanonicalError>;
    type SerializeTuple = Impossible<(), CanonicalError>;
    type SerializeTupleStruct = Impossible<(), CanonicalError>;
    type SerializeTupleVariant = Impossible<(), CanonicalError>;
    type SerializeMap = Impossible<(), CanonicalError>;
    type SerializeStruct = Impossible<(), CanonicalError>;
    type SerializeStructVariant = Impossible<(), CanonicalError>;

    fn serialize_str(self, v: &str) -> Result<(), CanonicalError> {
        write_text(self.out, v);
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), CanonicalError> {
        write_text(self.out, v.encode_utf8(&mut [0u8; 4]));
        Ok(())
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), CanonicalError> {
        write_text(self.out, variant);
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), CanonicalError> {
        value.serialize(self)
    }
    refuse_key!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_bytes(&[u8]),
        serialize_none(),
        serialize_unit(),
        serialize_unit_struct(&'static str),
    );
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<(), CanonicalError> {
        Err(non_string_key())
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), CanonicalError> {
        Err(non_string_key())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, CanonicalError> {
        Err(non_string_key())
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, CanonicalError> {
        Err(non_string_key())
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeTupleStruct, CanonicalError> {
        Err(non_string_key())
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, CanonicalError> {
        Err(non_string_key())
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, CanonicalError> {
        Err(non_string_key())
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, CanonicalError> {
        Err(non_string_key())
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, CanonicalError> {
        Err(non_string_key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn enc(value: &serde_json::Value) -> String {
        hex(&to_canonical_cbor(value).unwrap())
    }

    #[test]
    fn published_vectors() {
        assert_eq!(enc(&json!({"a": 1})), "a1616101");
        assert_eq!(enc(&json!({"b": 2, "a": 1})), "a2616101616202");
        assert_eq!(enc(&json!({"longer_key": 3, "b": 2, "a": 1})), "a36161016162026a6c6f6e6765725f6b657903");
        assert_eq!(enc(&json!(24)), "1818");
        assert_eq!(enc(&json!(256)), "190100");
        assert_eq!(enc(&json!(-25)), "3818");
        assert_eq!(enc(&json!(-100)), "3863");
        assert_eq!(enc(&json!("test")), "6474657374");
    }

    #[test]
    fn simple_values_and_heads() {
        assert_eq!(enc(&json!(null)), "f6");
        assert_eq!(enc(&json!(true)), "f5");
        assert_eq!(enc(&json!(false)), "f4");
        assert_eq!(enc(&json!(0)), "00");
        assert_eq!(enc(&json!(23)), "17");
        assert_eq!(enc(&json!(-1)), "20");
        assert_eq!(enc(&json!(65535)), "19ffff");
        assert_eq!(enc(&json!(65536)), "1a00010000");
        assert_eq!(enc(&json!(u64::MAX)), "1bffffffffffffffff");
        assert_eq!(enc(&json!(i64::MIN)), "3b7fffffffffffffff");
        assert_eq!(enc(&json!([1, [2, 3]])), "8201820203");
        assert_eq!(enc(&json!({})), "a0");
        assert_eq!(enc(&json!([])), "80");
    }

    #[test]
    fn floats_take_the_shortest_exact_form() {
        // Integer-valued floats are integers.
        assert_eq!(enc(&json!(1.0)), "01");
        assert_eq!(enc(&json!(-0.0)), "00");
        assert_eq!(enc(&json!(-24.0)), "37");
        // RFC 8949 Appendix A examples.
        assert_eq!(enc(&json!(1.5)), "f93e00");
        assert_eq!(enc(&json!(65504.5)), "fa477fe080");
        assert_eq!(enc(&json!(0.00006103515625)), "f90400");
        assert_eq!(enc(&json!(5.960464477539063e-8)), "f90001");
        assert_eq!(enc(&json!(-4.1)), "fbc010666666666666");
        assert_eq!(enc(&json!(100000.5)), "fa47c35040");
        assert_eq!(enc(&json!(1.0e300)), "fb7e37e43c8800759c");
        // Integer-valued but beyond the integer majors: stays a float.
        assert_eq!(enc(&json!(1.8446744073709552e19)), "fa5f800000");
    }

    #[test]
    fn non_finite_floats_are_refused_with_their_path() {
        #[derive(Serialize)]
        struct Inner {
            score: f64,
        }
        #[derive(Serialize)]
        struct Outer {
            items: Vec<Inner>,
        }
        let value = Outer { items: vec![Inner { score: 1.0 }, Inner { score: f64::NAN }] };
        let err = to_canonical_cbor(&value).unwrap_err();
        assert_eq!(err, CanonicalError::NonFiniteFloat { path: "items[1].score".into(), value: "NaN".into() });
        let err = to_canonical_cbor(&vec![f64::NEG_INFINITY]).unwrap_err();
        assert!(err.to_string().contains("-inf") && err.to_string().contains("[0]"), "{err}");
        let mut map = std::collections::HashMap::new();
        map.insert("k", f32::INFINITY);
        let err = to_canonical_cbor(&map).unwrap_err();
        assert!(err.to_string().contains("`k`"), "{err}");
    }

    #[test]
    fn non_string_keys_and_duplicates_are_refused() {
        let mut map = std::collections::BTreeMap::new();
        map.insert(1u32, "x");
        assert!(matches!(to_canonical_cbor(&map), Err(CanonicalError::NonStringKey { .. })));

        struct Twice;
        impl Serialize for Twice {
            fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use ser::SerializeMap;
                let mut m = s.serialize_map(None)?;
                m.serialize_entry("a", &1)?;
                m.serialize_entry("a", &2)?;
                m.end()
            }
        }
        assert!(matches!(
            to_canonical_cbor(&Twice),
            Err(CanonicalError::DuplicateKey { key, .. }) if key == "a"
        ));
    }

    #[test]
    fn enums_follow_serde_json_layout() {
        #[derive(Serialize)]
        enum E {
            Unit,
            New(u8),
            Tuple(u8, u8),
            Struct { b: u8, a: u8 },
        }
        let rust = to_canonical_cbor(&vec![E::Unit, E::New(1), E::Tuple(1, 2), E::Struct { b: 2, a: 1 }]).unwrap();
        let via_json =
            to_canonical_cbor(&json!(["Unit", {"New": 1}, {"Tuple": [1, 2]}, {"Struct": {"a": 1, "b": 2}}])).unwrap();
        assert_eq!(hex(&rust), hex(&via_json));
    }

    #[test]
    fn half_conversion_round_trips_every_exact_half() {
        for bits in 0u16..=u16::MAX {
            let value = f16_to_f64(bits);
            if !value.is_finite() || value == 0.0 {
                continue;
            }
            let back = f32_to_f16_exact(value as f32);
            assert_eq!(back, Some(bits), "bits {bits:#06x} value {value}");
        }
    }
}
