//! JSON encoding of values, siblings and contexts, and base64 (pure).
//!
//! Every base64 string this API writes (contexts, cursors, binary values and
//! keys) is URL-safe base64 without padding. On input both the URL-safe and
//! the standard alphabet are accepted, with or without padding, so values
//! produced by common tools decode too.
//!
//! This module may call `version` types only.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::version::Sibling;

use super::error::HttpError;

const CONFIG: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_encode_padding(false).with_decode_padding_mode(DecodePaddingMode::Indifferent);
const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, CONFIG);
const STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, CONFIG);

/// Encodes bytes as URL-safe base64 without padding.
pub(super) fn b64(bytes: &[u8]) -> String {
    URL_SAFE.encode(bytes)
}

/// Decodes base64 (either alphabet, padding optional); `field` names the
/// input in the error.
pub(super) fn unb64(field: &str, text: &str) -> Result<Bytes, HttpError> {
    URL_SAFE
        .decode(text.trim())
        .or_else(|_| STANDARD.decode(text.trim()))
        .map(Bytes::from)
        .map_err(|e| HttpError::BadBase64 { field: field.to_owned(), reason: e.to_string() })
}

/// Decodes an optional base64 context; absent or empty is a blind write.
pub(super) fn context_from(field: &str, text: Option<&str>) -> Result<Bytes, HttpError> {
    match text.map(str::trim) {
        None | Some("") => Ok(Bytes::new()),
        Some(t) => unb64(field, t),
    }
}

/// A value given either as text or as base64: exactly one of the two.
pub(super) fn value_from(field: &str, text: Option<String>, base64: Option<&str>) -> Result<Bytes, HttpError> {
    match (text, base64) {
        (Some(t), None) => Ok(Bytes::from(t)),
        (None, Some(b)) => unb64(&format!("{field}_base64"), b),
        (given_text, given_b64) => {
            Err(HttpError::ValueChoice { field: field.to_owned(), both: given_text.is_some() && given_b64.is_some() })
        }
    }
}

/// Adds `"value"` (UTF-8 text) or `"value_base64"` (anything else) to `obj`.
pub(super) fn put_value(obj: &mut Map<String, Value>, value: &[u8]) {
    match std::str::from_utf8(value) {
        Ok(text) => obj.insert("value".into(), Value::String(text.to_owned())),
        Err(_) => obj.insert("value_base64".into(), Value::String(b64(value))),
    };
}

/// Adds `"key"` (UTF-8 text) or `"key_base64"` (binary keys written over gRPC).
pub(super) fn put_key(obj: &mut Map<String, Value>, key: &[u8]) {
    match std::str::from_utf8(key) {
        Ok(text) => obj.insert("key".into(), Value::String(text.to_owned())),
        Err(_) => obj.insert("key_base64".into(), Value::String(b64(key))),
    };
}

/// `{"value"|"value_base64", "timestamp", "expires_at_ms"}` for each live sibling.
pub(super) fn siblings(siblings: &[Sibling]) -> Value {
    let list = siblings
        .iter()
        .map(|s| {
            let mut obj = Map::new();
            put_value(&mut obj, s.value.as_deref().unwrap_or_default());
            obj.insert("timestamp".into(), json!(s.timestamp_micros));
            obj.insert("expires_at_ms".into(), json!(s.expires_at_ms));
            Value::Object(obj)
        })
        .collect();
    Value::Array(list)
}

/// Turns a `json!({...})` object into its map (anything else gives an empty map).
pub(super) fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_and_accepts_both_alphabets() {
        let bytes = [0xfbu8, 0xff, 0x00, 0x10];
        let text = b64(&bytes);
        assert!(!text.contains('=') && !text.contains('+') && !text.contains('/'));
        assert_eq!(unb64("f", &text).ok().as_deref(), Some(&bytes[..]));
        assert_eq!(unb64("f", "+/8AEA==").ok().as_deref(), Some(&bytes[..]));
        assert!(matches!(unb64("f", "not base64!"), Err(HttpError::BadBase64 { .. })));
    }

    #[test]
    fn value_needs_exactly_one_form() {
        assert!(value_from("value", Some("x".into()), None).is_ok());
        assert!(matches!(value_from("value", None, None), Err(HttpError::ValueChoice { both: false, .. })));
        let both = value_from("value", Some("x".into()), Some("eA"));
        assert!(matches!(both, Err(HttpError::ValueChoice { both: true, .. })));
    }
}
