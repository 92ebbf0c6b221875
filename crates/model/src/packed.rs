//! The value encoding of binary captures from version 2: serde's data model,
//! self-describing like MessagePack (so optional fields may be left out and a
//! newer writer's extra fields are skipped), but with every struct field name
//! and enum variant name written as an index into a table of names that the
//! capture defines once (see [`crate::capture`]). Reading an event then
//! neither validates nor compares its keys' text, which was a fifth of the
//! MessagePack decoder's time.
//!
//! ```text
//! value   = NIL | FALSE | TRUE
//!         | UINT varint | SINT zigzag-varint | F64 f64le
//!         | STR len:varint utf8 | BYTES len:varint bytes
//!         | SEQ value* END | MAP (value value)* END
//!         | STRUCT (1+name:varint value)* 0      (fields, by name)
//!         | NAME name:varint                     (a unit variant)
//!         | VARIANT name:varint value            (a variant with content)
//! ```
//!
//! Strings are as serde's human-readable forms give them (addresses as text,
//! as in JSON lines). The reader takes records from inside containers: every
//! length is checked against what is left, nesting is bounded, and a name
//! index must be defined.

use crate::hash::FxBuild;
use serde::de::{self, DeserializeSeed, Visitor};
use serde::ser::{self, Serialize};
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

const NIL: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;
const UINT: u8 = 3;
const SINT: u8 = 4;
const F64: u8 = 5;
const STR: u8 = 6;
const BYTES: u8 = 7;
const SEQ: u8 = 8;
const MAP: u8 = 9;
const STRUCT: u8 = 10;
const NAME: u8 = 11;
const VARIANT: u8 = 12;
const END: u8 = 13;

/// Nesting a value may have (an event has about five levels).
pub const MAX_DEPTH: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error(msg.to_string())
    }
}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error(msg.to_string())
    }
}

type Result<T> = std::result::Result<T, Error>;

/// The writer's table of names: index by name, and the names given an index
/// since [`Names::take_new`] was last called (to be defined before the record
/// that uses them).
#[derive(Default)]
pub struct Names {
    index: HashMap<Cow<'static, str>, u32, FxBuild>,
    new: Vec<u32>,
    by_index: Vec<Cow<'static, str>>,
}

impl Names {
    pub(crate) fn len(&self) -> usize {
        self.by_index.len()
    }

    pub(crate) fn clear(&mut self) {
        self.index.clear();
        self.new.clear();
        self.by_index.clear();
    }

    /// A `Cow`, not a `str`: a static name is kept without a copy.
    #[allow(clippy::ptr_arg)]
    pub(crate) fn index(&mut self, name: &Cow<'static, str>) -> u32 {
        if let Some(&i) = self.index.get(&**name) {
            return i;
        }
        let i = self.by_index.len() as u32;
        self.by_index.push(name.clone());
        self.index.insert(name.clone(), i);
        self.new.push(i);
        i
    }

    /// The names indexed since the last call, with their indexes.
    pub(crate) fn take_new(&mut self) -> impl Iterator<Item = (u32, &str)> + '_ {
        self.new.drain(..).map(|i| (i, &*self.by_index[i as usize]))
    }
}

/// Appends `v`'s encoding to `out`, indexing its names in `names`.
pub fn to_vec<T: Serialize + ?Sized>(v: &T, names: &mut Names, out: &mut Vec<u8>) -> Result<()> {
    v.serialize(&mut Ser { out, names })
}

/// `v` from `bytes` (all of them), its names looked up in `names`.
pub fn from_slice<'de, T: de::Deserialize<'de>>(
    bytes: &'de [u8],
    names: &[Option<Cow<'static, str>>],
) -> Result<T> {
    let mut d = De { input: bytes, names, depth: 0 };
    let v = T::deserialize(&mut d)?;
    if !d.input.is_empty() {
        return Err(Error(format!("{} bytes after the value", d.input.len())));
    }
    Ok(v)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Narrow numbers are written as their widest kind.
macro_rules! widen {
    ($($method:ident($ty:ty) => $to:ident),*) => {$(
        fn $method(self, v: $ty) -> Result<()> {
            self.$to(v.into())
        }
    )*};
}

struct Ser<'a> {
    out: &'a mut Vec<u8>,
    names: &'a mut Names,
}

impl Ser<'_> {
    fn name(&mut self, tag: u8, name: &'static str) {
        let i = self.names.index(&Cow::Borrowed(name));
        self.out.push(tag);
        put_varint(self.out, u64::from(i));
    }
}

impl<'a, 'b> ser::Serializer for &'a mut Ser<'b> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    widen!(
        serialize_i8(i8) => serialize_i64, serialize_i16(i16) => serialize_i64, serialize_i32(i32) => serialize_i64,
        serialize_u8(u8) => serialize_u64, serialize_u16(u16) => serialize_u64, serialize_u32(u32) => serialize_u64,
        serialize_f32(f32) => serialize_f64
    );

    fn is_human_readable(&self) -> bool {
        true
    }
    fn serialize_bool(self, v: bool) -> Result<()> {
        self.out.push(if v { TRUE } else { FALSE });
        Ok(())
    }
    fn serialize_i64(self, v: i64) -> Result<()> {
        if v >= 0 {
            return self.serialize_u64(v as u64);
        }
        self.out.push(SINT);
        put_varint(self.out, ((v << 1) ^ (v >> 63)) as u64);
        Ok(())
    }
    fn serialize_u64(self, v: u64) -> Result<()> {
        self.out.push(UINT);
        put_varint(self.out, v);
        Ok(())
    }
    fn serialize_f64(self, v: f64) -> Result<()> {
        self.out.push(F64);
        self.out.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<()> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<()> {
        self.out.push(STR);
        put_varint(self.out, v.len() as u64);
        self.out.extend_from_slice(v.as_bytes());
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<()> {
        self.out.push(BYTES);
        put_varint(self.out, v.len() as u64);
        self.out.extend_from_slice(v);
        Ok(())
    }
    fn serialize_none(self) -> Result<()> {
        self.out.push(NIL);
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<()> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<()> {
        self.serialize_none()
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<()> {
        self.serialize_none()
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result<()> {
        self.name(NAME, variant);
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, v: &T) -> Result<()> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<()> {
        self.name(VARIANT, variant);
        v.serialize(self)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self> {
        self.out.push(SEQ);
        Ok(self)
    }
    fn serialize_tuple(self, len: usize) -> Result<Self> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<Self> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Self> {
        self.name(VARIANT, variant);
        self.out.push(SEQ);
        Ok(self)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self> {
        self.out.push(MAP);
        Ok(self)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self> {
        self.out.push(STRUCT);
        Ok(self)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Self> {
        self.name(VARIANT, variant);
        self.out.push(STRUCT);
        Ok(self)
    }
}

impl ser::SerializeSeq for &mut Ser<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<()> {
        v.serialize(&mut **self)
    }
    fn end(self) -> Result<()> {
        self.out.push(END);
        Ok(())
    }
}

/// Tuples of every kind are sequences.
macro_rules! like_a_sequence {
    ($($trait:ident :: $method:ident),*) => {$(
        impl ser::$trait for &mut Ser<'_> {
            type Ok = ();
            type Error = Error;
            fn $method<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<()> {
                v.serialize(&mut **self)
            }
            fn end(self) -> Result<()> {
                ser::SerializeSeq::end(self)
            }
        }
    )*};
}

like_a_sequence!(
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

impl ser::SerializeMap for &mut Ser<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> Result<()> {
        k.serialize(&mut **self)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<()> {
        v.serialize(&mut **self)
    }
    fn end(self) -> Result<()> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeStruct for &mut Ser<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, v: &T) -> Result<()> {
        let i = self.names.index(&Cow::Borrowed(key));
        put_varint(self.out, u64::from(i) + 1);
        v.serialize(&mut **self)
    }
    fn end(self) -> Result<()> {
        self.out.push(0);
        Ok(())
    }
}

impl ser::SerializeStructVariant for &mut Ser<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, v: &T) -> Result<()> {
        ser::SerializeStruct::serialize_field(self, key, v)
    }
    fn end(self) -> Result<()> {
        ser::SerializeStruct::end(self)
    }
}

struct De<'de, 'n> {
    input: &'de [u8],
    names: &'n [Option<Cow<'static, str>>],
    depth: usize,
}

impl<'de, 'n> De<'de, 'n> {
    #[inline]
    fn byte(&mut self) -> Result<u8> {
        let (&b, rest) = self.input.split_first().ok_or_else(|| Error("value cut short".into()))?;
        self.input = rest;
        Ok(b)
    }

    fn peek(&self) -> Result<u8> {
        self.input.first().copied().ok_or_else(|| Error("value cut short".into()))
    }

    #[inline]
    fn varint(&mut self) -> Result<u64> {
        // Most are one byte: names, small numbers, lengths.
        if let Some((&b, rest)) = self.input.split_first() {
            if b < 0x80 {
                self.input = rest;
                return Ok(u64::from(b));
            }
        }
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(Error("varint over 64 bits".into()))
    }

    fn take(&mut self) -> Result<&'de [u8]> {
        let len = self.varint()?;
        if len > self.input.len() as u64 {
            return Err(Error(format!("length {len} past the {} bytes left", self.input.len())));
        }
        let (s, rest) = self.input.split_at(len as usize);
        self.input = rest;
        Ok(s)
    }

    fn name(&mut self) -> Result<&'n str> {
        let i = self.varint()?;
        self.name_at(i)
    }

    #[inline]
    fn name_at(&self, i: u64) -> Result<&'n str> {
        let names: &'n [Option<Cow<'static, str>>] = self.names;
        match usize::try_from(i).ok().and_then(|i| names.get(i)) {
            Some(Some(n)) => Ok(n),
            _ => Err(undefined(i)),
        }
    }

    fn nest(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Error(format!("nesting over {MAX_DEPTH} levels (recursion limit: depth)")));
        }
        Ok(())
    }

    /// Runs `f` one level deeper.
    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        self.nest()?;
        let v = f(self)?;
        self.depth -= 1;
        Ok(v)
    }

    fn end(&mut self) -> Result<()> {
        match self.byte()? {
            END => Ok(()),
            t => Err(Error(format!("expected the end of a sequence or map, found tag {t}"))),
        }
    }
}

impl<'de> de::Deserializer<'de> for &mut De<'de, '_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value> {
        match self.byte()? {
            NIL => v.visit_unit(),
            FALSE => v.visit_bool(false),
            TRUE => v.visit_bool(true),
            UINT => v.visit_u64(self.varint()?),
            SINT => {
                let z = self.varint()?;
                v.visit_i64((z >> 1) as i64 ^ -((z & 1) as i64))
            }
            F64 => {
                let (b, rest) =
                    self.input.split_first_chunk::<8>().ok_or_else(|| Error("value cut short".into()))?;
                self.input = rest;
                v.visit_f64(f64::from_le_bytes(*b))
            }
            STR => {
                let s = self.take()?;
                v.visit_borrowed_str(std::str::from_utf8(s).map_err(|e| Error(e.to_string()))?)
            }
            BYTES => v.visit_borrowed_bytes(self.take()?),
            SEQ => self.nested(|d| {
                let value = v.visit_seq(Seq(d))?;
                d.end()?;
                Ok(value)
            }),
            MAP => self.nested(|d| {
                let value = v.visit_map(Map(d))?;
                d.end()?;
                Ok(value)
            }),
            STRUCT => self.nested(|d| {
                let mut fields = Struct { de: d, value_next: false, ended: false };
                let value = v.visit_map(&mut fields)?;
                match fields.ended {
                    true => Ok(value),
                    false => Err(Error("a struct's fields were not all read".into())),
                }
            }),
            NAME => v.visit_str(self.name()?),
            // As JSON writes a variant with content: a map of one entry.
            VARIANT => self.nested(|d| {
                let name = d.name()?;
                v.visit_map(OneEntry { name: Some(name), de: d })
            }),
            t => Err(Error(format!("unknown tag {t}"))),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value> {
        if self.peek()? == NIL {
            self.input = &self.input[1..];
            return v.visit_none();
        }
        v.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _: &'static str, v: V) -> Result<V::Value> {
        v.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        v: V,
    ) -> Result<V::Value> {
        match self.peek()? {
            NAME | STR => v.visit_enum(de::value::StrDeserializer::<Error>::new(self.identifier()?)),
            VARIANT => {
                self.input = &self.input[1..];
                self.nested(|d| {
                    let name = d.name()?;
                    v.visit_enum(Variant { name, de: d })
                })
            }
            t => Err(Error(format!("expected an enum variant, found tag {t}"))),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, v: V) -> Result<V::Value> {
        v.visit_str(self.identifier()?)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct ignored_any
    }
}

impl<'de, 'n> De<'de, 'n> {
    /// A name or a string, as text (an identifier: a variant or a key).
    fn identifier(&mut self) -> Result<&str> {
        match self.byte()? {
            NAME => self.name(),
            STR => std::str::from_utf8(self.take()?).map_err(|e| Error(e.to_string())),
            t => Err(Error(format!("expected a name, found tag {t}"))),
        }
    }
}

#[cold]
fn undefined(i: u64) -> Error {
    Error(format!("name {i} is not defined"))
}

struct Seq<'a, 'de, 'n>(&'a mut De<'de, 'n>);

impl<'de> de::SeqAccess<'de> for Seq<'_, 'de, '_> {
    type Error = Error;
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        if self.0.peek()? == END {
            return Ok(None);
        }
        seed.deserialize(&mut *self.0).map(Some)
    }
}

struct Map<'a, 'de, 'n>(&'a mut De<'de, 'n>);

impl<'de> de::MapAccess<'de> for Map<'_, 'de, '_> {
    type Error = Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        if self.0.peek()? == END {
            return Ok(None);
        }
        seed.deserialize(&mut *self.0).map(Some)
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        seed.deserialize(&mut *self.0)
    }
}

/// A struct's fields: each key a name index (plus one; 0 ends the struct).
struct Struct<'a, 'de, 'n> {
    de: &'a mut De<'de, 'n>,
    value_next: bool,
    ended: bool,
}

impl<'de> de::MapAccess<'de> for &mut Struct<'_, 'de, '_> {
    type Error = Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        if self.ended {
            return Ok(None);
        }
        if self.value_next {
            return Err(Error("a struct's key read before the last key's value".into()));
        }
        let Some(key) = self.de.varint()?.checked_sub(1) else {
            self.ended = true;
            return Ok(None);
        };
        let key = self.de.name_at(key)?;
        self.value_next = true;
        seed.deserialize(de::value::StrDeserializer::<Error>::new(key)).map(Some)
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        if !std::mem::take(&mut self.value_next) {
            return Err(Error("a struct's value read before its key".into()));
        }
        seed.deserialize(&mut *self.de)
    }
}

/// A variant with content read as a map of one entry (name to content).
struct OneEntry<'a, 'de, 'n> {
    name: Option<&'n str>,
    de: &'a mut De<'de, 'n>,
}

impl<'de> de::MapAccess<'de> for OneEntry<'_, 'de, '_> {
    type Error = Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        match self.name {
            Some(name) => seed.deserialize(de::value::StrDeserializer::<Error>::new(name)).map(Some),
            None => Ok(None),
        }
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        if self.name.take().is_none() {
            return Err(Error("a variant's content read twice".into()));
        }
        seed.deserialize(&mut *self.de)
    }
}

/// A variant with content, for `deserialize_enum`.
struct Variant<'a, 'de, 'n> {
    name: &'n str,
    de: &'a mut De<'de, 'n>,
}

impl<'a, 'de, 'n> de::EnumAccess<'de> for Variant<'a, 'de, 'n> {
    type Error = Error;
    type Variant = Self;
    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self)> {
        let v = seed.deserialize(de::value::StrDeserializer::<Error>::new(self.name))?;
        Ok((v, self))
    }
}

impl<'de> de::VariantAccess<'de> for Variant<'_, 'de, '_> {
    type Error = Error;
    fn unit_variant(self) -> Result<()> {
        de::Deserialize::deserialize(self.de)
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value> {
        seed.deserialize(self.de)
    }
    fn tuple_variant<V: Visitor<'de>>(self, _: usize, v: V) -> Result<V::Value> {
        de::Deserializer::deserialize_any(self.de, v)
    }
    fn struct_variant<V: Visitor<'de>>(self, _: &'static [&'static str], v: V) -> Result<V::Value> {
        de::Deserializer::deserialize_any(self.de, v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    /// The reader's view of a writer's names.
    fn table(names: &Names) -> Vec<Option<Cow<'static, str>>> {
        names.by_index.iter().cloned().map(Some).collect()
    }

    fn round_trip<T: Serialize + for<'de> Deserialize<'de> + PartialEq + fmt::Debug>(v: &T) {
        let (mut names, mut out) = (Names::default(), Vec::new());
        to_vec(v, &mut names, &mut out).unwrap();
        assert_eq!(&from_slice::<T>(&out, &table(&names)).unwrap(), v);
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Shape {
        Unit,
        Newtype(i8),
        Tuple(u8, String),
        Struct { x: f64 },
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(tag = "t")]
    enum Internal {
        A { n: i64 },
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct All {
        b: bool,
        i: i64,
        u: u64,
        s: String,
        bytes: serde_bytes_like::Bytes,
        opt: Option<u16>,
        none: Option<u16>,
        seq: Vec<Shape>,
        map: std::collections::BTreeMap<String, (i32, char)>,
        internal: Internal,
        unit: (),
    }

    /// Bytes serialized as bytes (not a sequence), without a crate for it.
    mod serde_bytes_like {
        #[derive(Debug, PartialEq)]
        pub struct Bytes(pub Vec<u8>);
        impl serde::Serialize for Bytes {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(&self.0)
            }
        }
        impl<'de> serde::Deserialize<'de> for Bytes {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = Bytes;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("bytes")
                    }
                    fn visit_bytes<E>(self, v: &[u8]) -> Result<Bytes, E> {
                        Ok(Bytes(v.to_vec()))
                    }
                }
                d.deserialize_bytes(V)
            }
        }
    }

    #[test]
    fn serdes_data_model_comes_back() {
        round_trip(&All {
            b: true,
            i: i64::MIN,
            u: u64::MAX,
            s: "é\u{0}\"".into(),
            bytes: serde_bytes_like::Bytes(vec![0, 255]),
            opt: Some(0),
            none: None,
            seq: vec![
                Shape::Unit,
                Shape::Newtype(-1),
                Shape::Tuple(7, "x".into()),
                Shape::Struct { x: -0.5 },
            ],
            map: [("k".to_string(), (-3, 'ß'))].into(),
            internal: Internal::A { n: -1 },
            unit: (),
        });
        for n in [0i64, 1, -1, 63, -64, 64, -65, i64::MAX, i64::MIN] {
            round_trip(&n);
        }
    }

    #[derive(Serialize)]
    struct Newer {
        a: u32,
        extra: Vec<Option<Shape>>,
        b: String,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Older {
        a: u32,
        b: String,
        #[serde(default)]
        c: Option<u8>,
    }

    #[test]
    fn unknown_fields_are_skipped_and_missing_ones_defaulted() {
        let (mut names, mut out) = (Names::default(), Vec::new());
        let newer = Newer { a: 1, extra: vec![None, Some(Shape::Struct { x: 1.0 })], b: "b".into() };
        to_vec(&newer, &mut names, &mut out).unwrap();
        let older: Older = from_slice(&out, &table(&names)).unwrap();
        assert_eq!(older, Older { a: 1, b: "b".into(), c: None });
    }

    #[test]
    fn each_name_is_indexed_once_and_new_ones_are_told() {
        let mut names = Names::default();
        let mut out = Vec::new();
        to_vec(&Older { a: 1, b: String::new(), c: None }, &mut names, &mut out).unwrap();
        let new: Vec<(u32, String)> = names.take_new().map(|(i, n)| (i, n.to_string())).collect();
        assert_eq!(new, [(0, "a".to_string()), (1, "b".into()), (2, "c".into())]);
        to_vec(&Older { a: 2, b: String::new(), c: Some(1) }, &mut names, &mut out).unwrap();
        assert_eq!(names.take_new().count(), 0);
    }

    #[test]
    fn hostile_values_are_errors() {
        let names = [Some(Cow::Borrowed("a"))];
        let err = |bytes: &[u8]| from_slice::<serde::de::IgnoredAny>(bytes, &names).unwrap_err().0;
        assert_eq!(err(&[]), "value cut short");
        assert_eq!(err(&[STR, 5, b'a']), "length 5 past the 1 bytes left");
        assert_eq!(
            err(&[STR, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
            "varint over 64 bits"
        );
        assert!(err(&[STR, 1, 0xff]).contains("invalid utf-8"));
        assert_eq!(err(&[NAME, 1]), "name 1 is not defined");
        assert_eq!(err(&[STRUCT, 2, NIL, 0]), "name 1 is not defined");
        assert_eq!(err(&[SEQ, NIL]), "value cut short");
        assert_eq!(err(&[99]), "unknown tag 99");
        assert_eq!(err(&[NIL, NIL]), "1 bytes after the value");
        // Nesting: a sequence of one sequence of ..., `levels` deep.
        let nested = |levels: usize| {
            let mut v = vec![SEQ; levels];
            v.extend(std::iter::repeat_n(END, levels));
            v
        };
        assert!(from_slice::<serde::de::IgnoredAny>(&nested(MAX_DEPTH), &names).is_ok());
        assert!(err(&nested(MAX_DEPTH + 1)).contains("depth"));
        assert!(err(&nested(100_000)).contains("depth"));
    }

    #[test]
    fn random_bytes_never_panic() {
        // A cheap stand-in for the fuzz target (capture_bin) in every test run.
        let names = [Some(Cow::Borrowed("type")), Some(Cow::Borrowed("args")), Some(Cow::Borrowed("open"))];
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            let len = (x % 48) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x % 16) as u8
                })
                .collect();
            let _ = from_slice::<crate::EventKind>(&bytes, &names);
            let _ = from_slice::<serde::de::IgnoredAny>(&bytes, &names);
        }
    }
}
