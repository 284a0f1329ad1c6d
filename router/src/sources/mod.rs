//! Inbound webhook parsers: raw request bodies from Alertmanager and Sentry become `Group`s.
//!
//! This module holds what both parsers share: `InputError` (whose `Display` is the HTTP 400
//! body), the decoding of a body into a JSON object (UTF-8, JSON syntax, nesting depth) and a
//! small typed accessor over `serde_json` objects whose errors name the field's path
//! (`alerts[2].labels.severity`). Parsers read a `serde_json::Value` tree by hand rather than
//! deriving `Deserialize`, so that every problem gets a precise, stable message and unknown
//! fields are kept (Alertmanager's `notification_reason`) instead of dropped.

pub mod alertmanager;
pub mod sentry;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::model::LabelSet;

/// Deepest JSON nesting accepted (arrays and objects inside each other). This is what
/// `serde_json`'s built-in recursion limit lets through; it enforces it while parsing, so a
/// megabyte of `[` is rejected at the 128th bracket, long before the stack is at risk.
pub const MAX_JSON_DEPTH: usize = 127;

/// The longest piece of a received value quoted back in an error message.
const QUOTE_LIMIT: usize = 64;

/// Why a webhook body was rejected. The `Display` text is meant to be returned as the body of
/// an HTTP 400 answer: lowercase, names the payload kind and the field or position at fault,
/// and quotes received values only briefly (never secrets: bodies hold none).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// The body is empty or only whitespace.
    #[error("{payload} payload: body is empty")]
    Empty { payload: &'static str },
    /// The body is not UTF-8 (JSON must be).
    #[error("{payload} payload: body is not valid utf-8 (invalid byte at offset {offset})")]
    NotUtf8 {
        payload: &'static str,
        offset: usize,
    },
    /// JSON syntax error, with `serde_json`'s position (1-based line and column).
    #[error("{payload} payload: invalid json at line {line} column {column}: {reason}")]
    Json {
        payload: &'static str,
        line: usize,
        column: usize,
        reason: String,
    },
    /// Nesting deeper than `MAX_JSON_DEPTH`.
    #[error(
        "{payload} payload: json nested too deeply (more than {MAX_JSON_DEPTH} levels) at line \
         {line} column {column}"
    )]
    TooDeep {
        payload: &'static str,
        line: usize,
        column: usize,
    },
    /// Valid JSON whose top level is not an object.
    #[error("{payload} payload: expected a json object, got {found}")]
    NotObject {
        payload: &'static str,
        found: &'static str,
    },
    /// A required field is absent (or `null`).
    #[error("{payload} payload: missing field \"{field}\"")]
    MissingField {
        payload: &'static str,
        field: String,
    },
    /// A field has the wrong JSON type.
    #[error("{payload} payload: field \"{field}\" must be {expected}, got {found}")]
    WrongType {
        payload: &'static str,
        field: String,
        expected: &'static str,
        found: &'static str,
    },
    /// A field has the right type but an unacceptable value.
    #[error("{payload} payload: field \"{field}\" {problem}")]
    InvalidValue {
        payload: &'static str,
        field: String,
        problem: String,
    },
    /// An Alertmanager payload version other than "4".
    #[error("{payload} payload: unsupported version {version} (only version \"4\" is supported)")]
    UnsupportedVersion {
        payload: &'static str,
        /// The received version, quoted and shortened.
        version: String,
    },
    /// A request header the parser needs is unusable.
    #[error("{payload} payload: header \"{header}\" {problem}")]
    BadHeader {
        payload: &'static str,
        header: &'static str,
        problem: &'static str,
    },
}

/// Decodes a body into its top-level JSON object: UTF-8 first (so the error says so instead of
/// a confusing JSON error), then JSON with `serde_json`'s depth limit, then the object check.
pub(crate) fn parse_object(
    payload: &'static str,
    body: &[u8],
) -> Result<Map<String, Value>, InputError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(InputError::Empty { payload });
    }
    let text = std::str::from_utf8(body).map_err(|e| InputError::NotUtf8 {
        payload,
        offset: e.valid_up_to(),
    })?;
    let value: Value = serde_json::from_str(text).map_err(|e| json_error(payload, &e))?;
    match value {
        Value::Object(map) => Ok(map),
        other => Err(InputError::NotObject {
            payload,
            found: type_name(&other),
        }),
    }
}

/// Turns a `serde_json` error into an `InputError`, keeping its line and column. Its message is
/// "<what> at line L column C"; the position is reported separately, and the one capitalised
/// word serde_json uses ("EOF") is spelled out so messages stay lowercase. Parsing into a
/// `Value` never puts received text into these messages.
fn json_error(payload: &'static str, e: &serde_json::Error) -> InputError {
    let (line, column) = (e.line(), e.column());
    let full = e.to_string();
    let suffix = format!(" at line {line} column {column}");
    let what = full.strip_suffix(&suffix).unwrap_or(&full);
    if what == "recursion limit exceeded" {
        return InputError::TooDeep {
            payload,
            line,
            column,
        };
    }
    let reason = match what.strip_prefix("EOF") {
        Some(rest) => format!("unexpected end of input{rest}"),
        None => what.to_owned(),
    };
    InputError::Json {
        payload,
        line,
        column,
        reason,
    }
}

/// "a string", "an object", ...: the JSON type of a value, for error messages.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Quotes a received value for an error message, shortened to `QUOTE_LIMIT` characters so a
/// huge field cannot make a huge error.
pub(crate) fn quote(s: &str) -> String {
    match s.char_indices().nth(QUOTE_LIMIT) {
        Some((cut, _)) => format!("{:?}...", &s[..cut]),
        None => format!("{s:?}"),
    }
}

/// Lowercase hex SHA-256 of some bytes.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A JSON object being read, with the payload kind and the object's path for error messages.
#[derive(Debug, Clone)]
pub(crate) struct Obj<'a> {
    payload: &'static str,
    path: String,
    map: &'a Map<String, Value>,
}

/// A field's value with its full path, so nested accessors can report it.
#[derive(Debug, Clone)]
pub(crate) struct Field<'a> {
    payload: &'static str,
    path: String,
    value: Option<&'a Value>,
}

impl<'a> Obj<'a> {
    /// The top-level object of a payload.
    pub(crate) fn root(payload: &'static str, map: &'a Map<String, Value>) -> Self {
        Obj {
            payload,
            path: String::new(),
            map,
        }
    }

    /// A field of this object, absent or `null` both meaning "not there" (Go marshals nil maps
    /// and pointers as `null`).
    pub(crate) fn field(&self, key: &str) -> Field<'a> {
        let path = if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        };
        Field {
            payload: self.payload,
            path,
            value: self.map.get(key).filter(|v| !v.is_null()),
        }
    }

    /// The object's entries, for callers that keep unknown fields.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (&'a String, &'a Value)> {
        self.map.iter()
    }

    /// Shorthand for `field(key).req_str()`.
    pub(crate) fn req_str(&self, key: &str) -> Result<&'a str, InputError> {
        self.field(key).req_str()
    }

    /// Shorthand for `field(key).opt_str()`.
    pub(crate) fn opt_str(&self, key: &str) -> Result<Option<&'a str>, InputError> {
        self.field(key).opt_str()
    }

    /// An optional string with empty strings treated as absent (Sentry sends `""` for unset
    /// text fields such as `message` and `logger`).
    pub(crate) fn opt_text(&self, key: &str) -> Result<Option<&'a str>, InputError> {
        Ok(self.opt_str(key)?.filter(|s| !s.is_empty()))
    }

    /// Shorthand for `field(key).opt_obj()`.
    pub(crate) fn opt_obj(&self, key: &str) -> Result<Option<Obj<'a>>, InputError> {
        self.field(key).opt_obj()
    }

    /// Shorthand for `field(key).req_obj()`.
    pub(crate) fn req_obj(&self, key: &str) -> Result<Obj<'a>, InputError> {
        self.field(key).req_obj()
    }
}

impl<'a> Field<'a> {
    fn missing(&self) -> InputError {
        InputError::MissingField {
            payload: self.payload,
            field: self.path.clone(),
        }
    }

    fn wrong_type(&self, expected: &'static str, found: &Value) -> InputError {
        InputError::WrongType {
            payload: self.payload,
            field: self.path.clone(),
            expected,
            found: type_name(found),
        }
    }

    /// An "invalid value" error for this field.
    pub(crate) fn invalid(&self, problem: impl Into<String>) -> InputError {
        InputError::InvalidValue {
            payload: self.payload,
            field: self.path.clone(),
            problem: problem.into(),
        }
    }

    /// A required string.
    pub(crate) fn req_str(&self) -> Result<&'a str, InputError> {
        self.opt_str()?.ok_or_else(|| self.missing())
    }

    /// An optional string.
    pub(crate) fn opt_str(&self) -> Result<Option<&'a str>, InputError> {
        match self.value {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(self.wrong_type("a string", v)),
        }
    }

    /// An identifier that Sentry sends as a string in some payloads and a number in others
    /// (`"issue_id": "100"` vs `"issue_id": 100`); empty strings are refused.
    pub(crate) fn opt_id(&self) -> Result<Option<String>, InputError> {
        let id = match self.value {
            None => return Ok(None),
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) if n.is_u64() || n.is_i64() => n.to_string(),
            Some(v) => return Err(self.wrong_type("a string or an integer", v)),
        };
        if id.is_empty() {
            return Err(self.invalid("must not be empty"));
        }
        Ok(Some(id))
    }

    /// A required identifier (see `opt_id`).
    pub(crate) fn req_id(&self) -> Result<String, InputError> {
        self.opt_id()?.ok_or_else(|| self.missing())
    }

    /// An optional non-negative integer.
    pub(crate) fn opt_u64(&self) -> Result<Option<u64>, InputError> {
        match self.value {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(u) => Ok(Some(u)),
                None => Err(self.invalid(format!("must be a non-negative integer, got {n}"))),
            },
            Some(v) => Err(self.wrong_type("a non-negative integer", v)),
        }
    }

    /// An optional object.
    pub(crate) fn opt_obj(&self) -> Result<Option<Obj<'a>>, InputError> {
        match self.value {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(Obj {
                payload: self.payload,
                path: self.path.clone(),
                map,
            })),
            Some(v) => Err(self.wrong_type("an object", v)),
        }
    }

    /// A required object.
    pub(crate) fn req_obj(&self) -> Result<Obj<'a>, InputError> {
        self.opt_obj()?.ok_or_else(|| self.missing())
    }

    /// The array's elements as fields named `path[i]`; an absent field is an empty array.
    pub(crate) fn opt_array(&self) -> Result<Vec<Field<'a>>, InputError> {
        match self.value {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => Ok(items
                .iter()
                .enumerate()
                .map(|(i, v)| Field {
                    payload: self.payload,
                    path: format!("{}[{i}]", self.path),
                    value: Some(v).filter(|v| !v.is_null()),
                })
                .collect()),
            Some(v) => Err(self.wrong_type("an array", v)),
        }
    }

    /// A required array (it may be empty).
    pub(crate) fn req_array(&self) -> Result<Vec<Field<'a>>, InputError> {
        if self.value.is_none() {
            return Err(self.missing());
        }
        self.opt_array()
    }

    /// A string-to-string object (labels, annotations); absent means empty, `null` values are
    /// skipped, any other non-string value is an error naming its key.
    pub(crate) fn label_set(&self) -> Result<LabelSet, InputError> {
        let mut out = LabelSet::new();
        if let Some(obj) = self.opt_obj()? {
            for (k, _) in obj.entries() {
                if let Some(v) = obj.field(k).opt_str()? {
                    out.insert(k.clone(), v.to_owned());
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(body: &[u8]) -> String {
        match parse_object("test", body) {
            Ok(_) => String::from("parsed"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn rejects_empty_and_whitespace_bodies() {
        assert_eq!(err(b""), "test payload: body is empty");
        assert_eq!(err(b" \n\t"), "test payload: body is empty");
    }

    #[test]
    fn rejects_invalid_utf8_with_offset() {
        assert_eq!(
            err(b"{\"a\": \"\xff\"}"),
            "test payload: body is not valid utf-8 (invalid byte at offset 7)"
        );
    }

    #[test]
    fn reports_json_position_in_lowercase() {
        assert_eq!(
            err(b"{\"a\": 1,\n \"b\": }"),
            "test payload: invalid json at line 2 column 7: expected value"
        );
        assert_eq!(
            err(b"{\"a\": [1, 2"),
            "test payload: invalid json at line 1 column 11: unexpected end of input while \
             parsing a list"
        );
        assert_eq!(
            err(b"{} x"),
            "test payload: invalid json at line 1 column 4: trailing characters"
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let body = vec![b'['; 1 << 20];
        assert_eq!(
            err(&body),
            "test payload: json nested too deeply (more than 127 levels) at line 1 column 128"
        );
        // Exactly at the limit parses: an object holding 126 nested arrays; one more fails.
        let nested =
            |arrays: usize| format!("{{\"a\":{}{}}}", "[".repeat(arrays), "]".repeat(arrays));
        assert_eq!(err(nested(MAX_JSON_DEPTH - 1).as_bytes()), "parsed");
        assert_eq!(
            err(nested(MAX_JSON_DEPTH).as_bytes()),
            "test payload: json nested too deeply (more than 127 levels) at line 1 column 132"
        );
    }

    #[test]
    fn rejects_non_objects() {
        assert_eq!(
            err(b"[]"),
            "test payload: expected a json object, got an array"
        );
        assert_eq!(
            err(b"\"x\""),
            "test payload: expected a json object, got a string"
        );
        assert_eq!(
            err(b"null"),
            "test payload: expected a json object, got null"
        );
    }

    #[test]
    fn field_errors_name_the_path() -> Result<(), InputError> {
        let map = parse_object("test", br#"{"a": {"b": [{"c": 1}], "n": -1, "e": ""}}"#)?;
        let root = Obj::root("test", &map);
        let a = root.req_obj("a")?;
        let items = a.field("b").req_array()?;
        let c = items[0].req_obj()?;
        let msg = |e: Option<InputError>| e.map(|e| e.to_string());
        assert_eq!(
            msg(c.opt_str("c").err()).as_deref(),
            Some("test payload: field \"a.b[0].c\" must be a string, got a number")
        );
        assert_eq!(
            msg(a.field("n").opt_u64().err()).as_deref(),
            Some("test payload: field \"a.n\" must be a non-negative integer, got -1")
        );
        assert_eq!(
            msg(a.field("e").opt_id().err()).as_deref(),
            Some("test payload: field \"a.e\" must not be empty")
        );
        assert_eq!(
            msg(a.req_str("zz").err()).as_deref(),
            Some("test payload: missing field \"a.zz\"")
        );
        assert_eq!(
            msg(root.req_obj("a").and_then(|a| a.req_obj("b")).err()).as_deref(),
            Some("test payload: field \"a.b\" must be an object, got an array")
        );
        Ok(())
    }

    #[test]
    fn label_sets_need_string_values_and_skip_nulls() -> Result<(), InputError> {
        let map = parse_object("test", br#"{"l": {"a": "1", "b": null}, "m": {"x": 2}}"#)?;
        let root = Obj::root("test", &map);
        let l = root.field("l").label_set()?;
        assert_eq!(l.len(), 1);
        assert_eq!(l.get("a").map(String::as_str), Some("1"));
        assert_eq!(
            root.field("m")
                .label_set()
                .err()
                .map(|e| e.to_string())
                .as_deref(),
            Some("test payload: field \"m.x\" must be a string, got a number")
        );
        assert!(root.field("absent").label_set()?.is_empty());
        Ok(())
    }

    #[test]
    fn quotes_are_bounded() {
        assert_eq!(quote("abc"), "\"abc\"");
        let long = "é".repeat(1000);
        let q = quote(&long);
        assert!(q.ends_with("\"..."));
        assert_eq!(q.chars().count(), QUOTE_LIMIT + 5);
    }
}
