//! D-Bus values flint writes (little-endian), with their signatures: what
//! systemd's manager answers `systemctl` with (object paths, variants,
//! property dictionaries, arrays of structs) beyond the strings the rest
//! of [`crate::bus`] writes.
//!
//! Every value is laid out as if its buffer started at a multiple of 8 in
//! the message, which is where a body starts: alignment within the buffer
//! is then the message's.

use super::{align, len32, push_string};

/// A value with its D-Bus type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `s`
    Str(String),
    /// `o`
    Path(String),
    /// `b`
    Bool(bool),
    /// `i`
    I32(i32),
    /// `u`
    U32(u32),
    /// `t`
    U64(u64),
    /// `as`
    Strings(Vec<String>),
    /// `ay`
    Bytes(Vec<u8>),
    /// `(…)`
    Struct(Vec<Value>),
    /// `a…` of the element signature given (so that an empty array has
    /// one).
    Array(String, Vec<Value>),
    /// `v`
    Variant(Box<Value>),
    /// `a{sv}`: a property dictionary.
    Properties(Vec<(String, Value)>),
}

impl Value {
    /// The value's signature.
    pub fn signature(&self) -> String {
        match self {
            Value::Str(_) => "s".into(),
            Value::Path(_) => "o".into(),
            Value::Bool(_) => "b".into(),
            Value::I32(_) => "i".into(),
            Value::U32(_) => "u".into(),
            Value::U64(_) => "t".into(),
            Value::Strings(_) => "as".into(),
            Value::Bytes(_) => "ay".into(),
            Value::Struct(fields) => {
                let inner: String = fields.iter().map(Value::signature).collect();
                format!("({inner})")
            }
            Value::Array(element, _) => format!("a{element}"),
            Value::Variant(_) => "v".into(),
            Value::Properties(_) => "a{sv}".into(),
        }
    }

    /// Appends the value to `buf` (whose start is 8-aligned in the
    /// message).
    pub fn write(&self, buf: &mut Vec<u8>) {
        match self {
            Value::Str(s) | Value::Path(s) => push_string(buf, s),
            Value::Bool(b) => push_u32(buf, u32::from(*b)),
            Value::I32(n) => {
                align(buf, 4);
                buf.extend_from_slice(&n.to_le_bytes());
            }
            Value::U32(n) => push_u32(buf, *n),
            Value::U64(n) => {
                align(buf, 8);
                buf.extend_from_slice(&n.to_le_bytes());
            }
            Value::Strings(items) => write_array(buf, 4, |b| {
                for s in items {
                    push_string(b, s);
                }
            }),
            Value::Bytes(bytes) => write_array(buf, 1, |b| b.extend_from_slice(bytes)),
            Value::Struct(fields) => {
                align(buf, 8);
                for f in fields {
                    f.write(buf);
                }
            }
            Value::Array(element, items) => write_array(buf, alignment(element), |b| {
                for i in items {
                    i.write(b);
                }
            }),
            Value::Variant(inner) => {
                let sig = inner.signature();
                buf.push(u8::try_from(sig.len()).unwrap_or(u8::MAX));
                buf.extend_from_slice(sig.as_bytes());
                buf.push(0);
                inner.write(buf);
            }
            Value::Properties(entries) => write_array(buf, 8, |b| {
                for (name, value) in entries {
                    align(b, 8);
                    push_string(b, name);
                    Value::Variant(Box::new(value.clone())).write(b);
                }
            }),
        }
    }
}

/// The signature and the body of `args`, in order.
pub fn body(args: &[Value]) -> (String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut sig = String::new();
    for a in args {
        sig.push_str(&a.signature());
        a.write(&mut buf);
    }
    (sig, buf)
}

/// The alignment of the first type of `signature`.
fn alignment(signature: &str) -> usize {
    match signature.as_bytes().first() {
        Some(b't' | b'x' | b'd' | b'(' | b'{') => 8,
        Some(b'y' | b'g' | b'v') => 1,
        Some(b'n' | b'q') => 2,
        _ => 4,
    }
}

fn push_u32(buf: &mut Vec<u8>, n: u32) {
    align(buf, 4);
    buf.extend_from_slice(&n.to_le_bytes());
}

/// An array: its length in bytes, padding to its elements' alignment
/// (not counted in the length, there even when it is empty), then the
/// elements `items` writes.
fn write_array(buf: &mut Vec<u8>, element_alignment: usize, items: impl FnOnce(&mut Vec<u8>)) {
    align(buf, 4);
    let at = buf.len();
    buf.extend_from_slice(&[0; 4]);
    align(buf, element_alignment);
    let start = buf.len();
    items(buf);
    let len = len32(buf.len() - start);
    buf[at..at + 4].copy_from_slice(&len.to_le_bytes());
}

/// Reads the arguments of a call of `signature` made of `s`, `o`, `i`,
/// `u`, `b` and `as` only (what the manager's methods take); `None` when
/// the body does not hold them.
pub fn read_args(signature: &str, body: &[u8]) -> Option<Vec<Value>> {
    let mut at = 0usize;
    let mut out = Vec::new();
    let mut chars = signature.chars();
    while let Some(c) = chars.next() {
        match c {
            's' | 'o' => {
                let (s, next) = read_str(body, at)?;
                at = next;
                out.push(if c == 's' {
                    Value::Str(s)
                } else {
                    Value::Path(s)
                });
            }
            'i' | 'u' | 'b' => {
                at = at.next_multiple_of(4);
                let n = u32::from_le_bytes(body.get(at..at + 4)?.try_into().ok()?);
                at += 4;
                out.push(match c {
                    'i' => Value::I32(i32::from_le_bytes(n.to_le_bytes())),
                    'u' => Value::U32(n),
                    _ => Value::Bool(n != 0),
                });
            }
            't' => {
                at = at.next_multiple_of(8);
                let n = u64::from_le_bytes(body.get(at..at + 8)?.try_into().ok()?);
                at += 8;
                out.push(Value::U64(n));
            }
            'a' if chars.next() == Some('s') => {
                at = at.next_multiple_of(4);
                let len = u32::from_le_bytes(body.get(at..at + 4)?.try_into().ok()?) as usize;
                at += 4;
                let end = at.checked_add(len)?;
                if end > body.len() {
                    return None;
                }
                let mut items = Vec::new();
                while at < end {
                    let (s, next) = read_str(body, at)?;
                    items.push(s);
                    at = next;
                }
                out.push(Value::Strings(items));
            }
            _ => return None,
        }
    }
    Some(out)
}

/// Any value as read from a message: what a call's argument of any
/// signature holds (`StartTransientUnit`'s properties are variants of
/// every type).
#[derive(Debug, Clone, PartialEq)]
pub enum Any {
    /// `s`, `o` or `g`
    Str(String),
    /// `b`
    Bool(bool),
    /// `y`, `n`, `q`, `i`, `u`, `x`, `t`
    Int(i128),
    /// `d`
    Double(f64),
    /// `h`: an index into the message's file descriptors.
    Fd(u32),
    /// `a…`, with the element signature.
    Array(String, Vec<Any>),
    /// `(…)` or a dictionary entry `{…}`.
    Struct(Vec<Any>),
    /// `v`: the signature it carries and the value.
    Variant(String, Box<Any>),
}

/// How deep containers may nest (the specification's 32 arrays plus 32
/// structs).
const MAX_DEPTH: usize = 64;

/// Reads the arguments of a call of any `signature`; `None` when the body
/// does not hold them or the signature is not one.
pub fn read_any(signature: &str, body: &[u8]) -> Option<Vec<Any>> {
    let mut at = 0usize;
    complete_types(signature)?
        .into_iter()
        .map(|one| read_one(one.as_bytes(), body, &mut at, 0))
        .collect()
}

/// The single complete types `signature` is made of (`"sa(sv)"`: `s`,
/// `a(sv)`); `None` when it is not a signature.
pub fn complete_types(signature: &str) -> Option<Vec<&str>> {
    let sig = signature.as_bytes();
    let mut out = Vec::new();
    let mut s = 0;
    while s < sig.len() {
        let end = complete_type(sig, s, 0)?;
        out.push(&signature[s..end]);
        s = end;
    }
    Some(out)
}

/// The end of the single complete type starting at `sig[s]`.
fn complete_type(sig: &[u8], s: usize, depth: usize) -> Option<usize> {
    if depth > MAX_DEPTH {
        return None;
    }
    match *sig.get(s)? {
        b'y' | b'b' | b'n' | b'q' | b'i' | b'u' | b'x' | b't' | b'd' | b's' | b'o' | b'g'
        | b'v' | b'h' => Some(s + 1),
        b'a' => complete_type(sig, s + 1, depth + 1),
        open @ (b'(' | b'{') => {
            let close = if open == b'(' { b')' } else { b'}' };
            let mut i = s + 1;
            let mut fields = 0;
            while *sig.get(i)? != close {
                i = complete_type(sig, i, depth + 1)?;
                fields += 1;
            }
            // A dictionary entry holds a key and a value.
            if fields == 0 || (open == b'{' && fields != 2) {
                return None;
            }
            Some(i + 1)
        }
        _ => None,
    }
}

/// Reads one value of the complete type `sig` at `*at`.
fn read_one(sig: &[u8], body: &[u8], at: &mut usize, depth: usize) -> Option<Any> {
    if depth > MAX_DEPTH {
        return None;
    }
    let fixed = |at: &mut usize, n: usize| -> Option<u64> {
        *at = at.next_multiple_of(n);
        let bytes = body.get(*at..at.checked_add(n)?)?;
        *at += n;
        let mut b = [0u8; 8];
        b[..n].copy_from_slice(bytes);
        Some(u64::from_le_bytes(b))
    };
    Some(match sig[0] {
        b'y' => Any::Int(i128::from(fixed(at, 1)?)),
        b'b' => match fixed(at, 4)? {
            0 => Any::Bool(false),
            1 => Any::Bool(true),
            _ => return None,
        },
        b'n' => Any::Int(i128::from(u16::try_from(fixed(at, 2)?).ok()?.cast_signed())),
        b'q' => Any::Int(i128::from(fixed(at, 2)?)),
        b'i' => Any::Int(i128::from(u32::try_from(fixed(at, 4)?).ok()?.cast_signed())),
        b'u' => Any::Int(i128::from(fixed(at, 4)?)),
        b'h' => Any::Fd(u32::try_from(fixed(at, 4)?).ok()?),
        b'x' => Any::Int(i128::from(fixed(at, 8)?.cast_signed())),
        b't' => Any::Int(i128::from(fixed(at, 8)?)),
        b'd' => Any::Double(f64::from_bits(fixed(at, 8)?)),
        b's' | b'o' => {
            let (text, next) = read_str(body, *at)?;
            *at = next;
            Any::Str(text)
        }
        b'g' => {
            let (text, next) = read_signature(body, *at)?;
            *at = next;
            Any::Str(text)
        }
        b'v' => {
            let (inner, next) = read_signature(body, *at)?;
            *at = next;
            let bytes = inner.as_bytes();
            // One complete type, no more.
            if complete_type(bytes, 0, depth + 1)? != bytes.len() {
                return None;
            }
            let value = read_one(bytes, body, at, depth + 1)?;
            Any::Variant(inner, Box::new(value))
        }
        b'a' => {
            let len = usize::try_from(fixed(at, 4)?).ok()?;
            let element = &sig[1..];
            *at = at.next_multiple_of(alignment(std::str::from_utf8(element).ok()?));
            let end = at.checked_add(len)?;
            if end > body.len() {
                return None;
            }
            let mut items = Vec::new();
            while *at < end {
                items.push(read_one(element, body, at, depth + 1)?);
            }
            if *at != end {
                return None;
            }
            Any::Array(String::from_utf8(element.to_vec()).ok()?, items)
        }
        b'(' | b'{' => {
            *at = at.next_multiple_of(8);
            let inner = &sig[1..sig.len() - 1];
            let mut fields = Vec::new();
            let mut s = 0;
            while s < inner.len() {
                let end = complete_type(inner, s, depth + 1)?;
                fields.push(read_one(&inner[s..end], body, at, depth + 1)?);
                s = end;
            }
            Any::Struct(fields)
        }
        _ => return None,
    })
}

/// A signature (`g`: one length byte, the text, a nul) at `at` and the
/// offset after it.
fn read_signature(body: &[u8], at: usize) -> Option<(String, usize)> {
    let len = usize::from(*body.get(at)?);
    let start = at + 1;
    let bytes = body.get(start..start + len)?;
    if body.get(start + len) != Some(&0) {
        return None;
    }
    Some((String::from_utf8(bytes.to_vec()).ok()?, start + len + 1))
}

/// A string at `at` (aligned first) and the offset after it.
fn read_str(body: &[u8], at: usize) -> Option<(String, usize)> {
    let at = at.next_multiple_of(4);
    let len = u32::from_le_bytes(body.get(at..at + 4)?.try_into().ok()?) as usize;
    let start = at + 4;
    let bytes = body.get(start..start.checked_add(len)?)?;
    if body.get(start + len) != Some(&0) {
        return None;
    }
    Some((String::from_utf8(bytes.to_vec()).ok()?, start + len + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_value_is_read_back_as_written() {
        let props = Value::Array(
            "(sv)".into(),
            vec![
                Value::Struct(vec![
                    Value::Str("Description".into()),
                    Value::Variant(Box::new(Value::Str("d".into()))),
                ]),
                Value::Struct(vec![
                    Value::Str("ExecStart".into()),
                    Value::Variant(Box::new(Value::Array(
                        "(sasb)".into(),
                        vec![Value::Struct(vec![
                            Value::Str("/bin/echo".into()),
                            Value::Strings(vec!["echo".into(), "hi".into()]),
                            Value::Bool(false),
                        ])],
                    ))),
                ]),
                Value::Struct(vec![
                    Value::Str("RuntimeMaxUSec".into()),
                    Value::Variant(Box::new(Value::U64(5_000_000))),
                ]),
            ],
        );
        let (sig, body) = body(&[Value::Str("x.service".into()), props]);
        assert_eq!(sig, "sa(sv)");
        let read = read_any(&sig, &body).unwrap();
        assert_eq!(read[0], Any::Str("x.service".into()));
        let Any::Array(element, items) = &read[1] else {
            panic!("{read:?}")
        };
        assert_eq!(element, "(sv)");
        assert_eq!(items.len(), 3);
        assert_eq!(
            items[1],
            Any::Struct(vec![
                Any::Str("ExecStart".into()),
                Any::Variant(
                    "a(sasb)".into(),
                    Box::new(Any::Array(
                        "(sasb)".into(),
                        vec![Any::Struct(vec![
                            Any::Str("/bin/echo".into()),
                            Any::Array(
                                "s".into(),
                                vec![Any::Str("echo".into()), Any::Str("hi".into())]
                            ),
                            Any::Bool(false),
                        ])]
                    ))
                ),
            ])
        );
        assert_eq!(
            items[2],
            Any::Struct(vec![
                Any::Str("RuntimeMaxUSec".into()),
                Any::Variant("t".into(), Box::new(Any::Int(5_000_000))),
            ])
        );
        // Truncated, lying lengths, bad booleans and signatures: nothing.
        for cut in 0..body.len() {
            assert!(read_any(&sig, &body[..cut]).is_none(), "{cut}");
        }
        assert!(read_any("b", &[2, 0, 0, 0]).is_none());
        assert!(read_any("a", &[0, 0, 0, 0]).is_none());
        assert!(read_any("(", &[]).is_none());
        assert!(read_any("{s}", &[]).is_none());
        assert!(read_any("as", &[0xff, 0xff, 0xff, 0x7f]).is_none());
        // A variant whose signature holds two types.
        assert!(read_any("v", &[2, b'u', b'u', 0, 1, 0, 0, 0, 1, 0, 0, 0]).is_none());
        let deep = "a".repeat(100) + "y";
        assert!(read_any(&deep, &[0; 8]).is_none());
    }

    #[test]
    fn values_are_laid_out_as_the_specification_says() {
        // A variant holding `u` 5: signature "u", padding, the number.
        let mut b = Vec::new();
        Value::Variant(Box::new(Value::U32(5))).write(&mut b);
        assert_eq!(b, [1, b'u', 0, 0, 5, 0, 0, 0]);
        // `a{sv}` with one entry: length 16 excludes the padding to 8
        // after it.
        let mut b = Vec::new();
        Value::Properties(vec![("A".into(), Value::Bool(true))]).write(&mut b);
        assert_eq!(
            b,
            [
                16, 0, 0, 0, 0, 0, 0, 0, // length, padding to the entry
                1, 0, 0, 0, b'A', 0, // "A"
                1, b'b', 0, // signature "b"
                0, 0, 0, 1, 0, 0, 0 // padding, true
            ]
        );
        // An empty array of structs still pads to 8 after its length.
        let mut b = Vec::new();
        Value::Array("(ss)".into(), Vec::new()).write(&mut b);
        assert_eq!(b, [0, 0, 0, 0, 0, 0, 0, 0]);
        let mut b = Vec::new();
        Value::Array("s".into(), Vec::new()).write(&mut b);
        assert_eq!(b, [0, 0, 0, 0]);
        assert_eq!(
            Value::Array(
                "(ss)".into(),
                vec![Value::Struct(vec![
                    Value::Str("a".into()),
                    Value::Str("b".into())
                ])]
            )
            .signature(),
            "a(ss)"
        );
        // `(uoss)`: JobRemoved's body.
        let (sig, b) = body(&[
            Value::U32(7),
            Value::Path("/j/7".into()),
            Value::Str("a".into()),
            Value::Str("done".into()),
        ]);
        assert_eq!(sig, "uoss");
        assert_eq!(
            read_args("uoss", &b),
            Some(vec![
                Value::U32(7),
                Value::Path("/j/7".into()),
                Value::Str("a".into()),
                Value::Str("done".into())
            ])
        );
    }

    #[test]
    fn calls_are_read_by_their_signature() {
        let (_, b) = body(&[
            Value::Str("x.service".into()),
            Value::Str("all".into()),
            Value::I32(-9),
        ]);
        assert_eq!(
            read_args("ssi", &b),
            Some(vec![
                Value::Str("x.service".into()),
                Value::Str("all".into()),
                Value::I32(-9)
            ])
        );
        let (_, b) = body(&[
            Value::Strings(vec!["failed".into()]),
            Value::Strings(vec!["a*".into(), "b".into()]),
        ]);
        assert_eq!(
            read_args("asas", &b),
            Some(vec![
                Value::Strings(vec!["failed".into()]),
                Value::Strings(vec!["a*".into(), "b".into()])
            ])
        );
        // Cut short: nothing.
        assert_eq!(read_args("ss", &b[..6]), None);
        assert_eq!(read_args("x", &b), None);
    }
}
