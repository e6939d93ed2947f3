//! Validation errors, and the small helpers that read a `serde_json::Value` field by field
//! while collecting every problem with its path.
//!
//! Inputs are parsed from `Value` by hand rather than through `#[derive(Deserialize)]` because
//! serde stops at the first error and cannot name paths like
//! `properties.virtualMachines[0].ports[2].number`; DESIGN.md wants every problem, by path.
//! Stored and wire shapes still use serde derives: those come from us and are trusted.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One problem with one field of an input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// Where the problem is, as a JSON path without a leading `$`:
    /// `properties.emails`, `properties.virtualMachines[0].ports[2].number`; empty for the
    /// body itself.
    pub path: String,
    /// Why the field is refused, in words for the operator. Never echoes personal values.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every problem found in one input; never empty when returned as an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid input: ")?;
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl ValidationErrors {
    /// A single error.
    pub fn one(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self(vec![FieldError {
            path: path.into(),
            message: message.into(),
        }])
    }

    /// The errors, in the order they were found.
    pub fn errors(&self) -> &[FieldError] {
        &self.0
    }

    /// The paths of the errors, in order (handy for the error body's `target`).
    pub fn paths(&self) -> Vec<&str> {
        self.0.iter().map(|e| e.path.as_str()).collect()
    }

    /// The path of the first error: the `target` of a 400 error body.
    pub fn target(&self) -> Option<&str> {
        self.0.first().map(|e| e.path.as_str())
    }
}

/// Longest free-text field we accept (justification, names, roles, ...), in bytes.
pub(crate) const MAX_TEXT: usize = 1024;
/// Longest ARM-style id we accept (a VM id), in bytes.
pub(crate) const MAX_ID: usize = 1024;
/// Most entries in any array of an input (VMs, ports, roles, sources).
pub(crate) const MAX_ITEMS: usize = 1000;

/// `base.key`, or `key` when base is empty.
pub(crate) fn join(base: &str, key: &str) -> String {
    if base.is_empty() {
        key.to_owned()
    } else {
        format!("{base}.{key}")
    }
}

/// `base[i]`.
pub(crate) fn index(base: &str, i: usize) -> String {
    format!("{base}[{i}]")
}

/// Collects errors while a parse walks an input.
#[derive(Debug, Default)]
pub(crate) struct Collector {
    errors: Vec<FieldError>,
}

impl Collector {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Records one problem.
    pub(crate) fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError {
            path: path.into(),
            message: message.into(),
        });
    }

    /// True when nothing has been recorded.
    pub(crate) fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }

    /// `Ok(value)` when nothing was recorded, else every recorded error.
    pub(crate) fn finish<T>(self, value: T) -> Result<T, ValidationErrors> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(ValidationErrors(self.errors))
        }
    }

    /// Like [`Collector::finish`] for a value that may be missing only when errors were
    /// recorded.
    pub(crate) fn finish_opt<T>(mut self, value: Option<T>) -> Result<T, ValidationErrors> {
        match value {
            Some(v) if self.errors.is_empty() => Ok(v),
            Some(_) => Err(ValidationErrors(self.errors)),
            None => {
                if self.errors.is_empty() {
                    self.push("", "invalid input");
                }
                Err(ValidationErrors(self.errors))
            }
        }
    }

    /// The value as an object, or an error at `path`.
    pub(crate) fn object<'a>(
        &mut self,
        v: &'a Value,
        path: &str,
    ) -> Option<&'a Map<String, Value>> {
        match v {
            Value::Object(m) => Some(m),
            _ => {
                self.push(path, "must be an object");
                None
            }
        }
    }

    /// `map[key]` with its path, when it is there and not null. When `required`, its
    /// absence is recorded as "is required"; otherwise absent or null is `None` without error.
    fn present<'a>(
        &mut self,
        map: &'a Map<String, Value>,
        key: &str,
        base: &str,
        required: bool,
    ) -> Option<(&'a Value, String)> {
        let path = join(base, key);
        match map.get(key) {
            None | Some(Value::Null) => {
                if required {
                    self.push(path, "is required");
                }
                None
            }
            Some(v) => Some((v, path)),
        }
    }

    /// `map[key]` as an object; absent or null is `None` without error.
    pub(crate) fn opt_object<'a>(
        &mut self,
        map: &'a Map<String, Value>,
        key: &str,
        base: &str,
    ) -> Option<&'a Map<String, Value>> {
        let (v, path) = self.present(map, key, base, false)?;
        self.object(v, &path)
    }

    /// `map[key]` as a string of at most `max` bytes; absent or null is `None` without error.
    pub(crate) fn opt_str(
        &mut self,
        map: &Map<String, Value>,
        key: &str,
        base: &str,
        max: usize,
    ) -> Option<String> {
        let (v, path) = self.present(map, key, base, false)?;
        self.string(v, &path, max)
    }

    /// `map[key]` as a required string of at most `max` bytes.
    pub(crate) fn req_str(
        &mut self,
        map: &Map<String, Value>,
        key: &str,
        base: &str,
        max: usize,
    ) -> Option<String> {
        let (v, path) = self.present(map, key, base, true)?;
        self.string(v, &path, max)
    }

    /// `found` (a value of the right type and its length) when its length is at most
    /// `max`; else records at `path` that it must be `kind` (`"a string"`) or that it is
    /// too long (`too_long`, e.g. "be at most 64 characters").
    fn bounded<T>(
        &mut self,
        path: &str,
        found: Option<(T, usize)>,
        max: usize,
        kind: &str,
        too_long: &str,
    ) -> Option<T> {
        match found {
            Some((v, len)) if len <= max => Some(v),
            Some(_) => {
                self.push(path, format!("must {too_long}"));
                None
            }
            None => {
                self.push(path, format!("must be {kind}"));
                None
            }
        }
    }

    /// The value as a string of at most `max` bytes.
    pub(crate) fn string(&mut self, v: &Value, path: &str, max: usize) -> Option<String> {
        let found = v.as_str().map(|s| (s, s.len()));
        let too_long = format!("be at most {max} characters");
        self.bounded(path, found, max, "a string", &too_long)
            .map(str::to_owned)
    }

    /// `map[key]` as a boolean; absent or null is `None` without error.
    pub(crate) fn opt_bool(
        &mut self,
        map: &Map<String, Value>,
        key: &str,
        base: &str,
    ) -> Option<bool> {
        let (v, path) = self.present(map, key, base, false)?;
        let b = v.as_bool();
        if b.is_none() {
            self.push(path, "must be true or false");
        }
        b
    }

    /// `map[key]` as an array of at most [`MAX_ITEMS`] entries; absent or null is `None`.
    pub(crate) fn opt_array<'a>(
        &mut self,
        map: &'a Map<String, Value>,
        key: &str,
        base: &str,
    ) -> Option<&'a [Value]> {
        let (v, path) = self.present(map, key, base, false)?;
        self.array(v, &path)
    }

    /// `map[key]` as a required array of at most [`MAX_ITEMS`] entries.
    pub(crate) fn req_array<'a>(
        &mut self,
        map: &'a Map<String, Value>,
        key: &str,
        base: &str,
    ) -> Option<&'a [Value]> {
        let (v, path) = self.present(map, key, base, true)?;
        self.array(v, &path)
    }

    /// The value as an array of at most [`MAX_ITEMS`] entries.
    fn array<'a>(&mut self, v: &'a Value, path: &str) -> Option<&'a [Value]> {
        let found = v.as_array().map(|a| (a.as_slice(), a.len()));
        let too_long = format!("have at most {MAX_ITEMS} entries");
        self.bounded(path, found, MAX_ITEMS, "an array", &too_long)
    }

    /// `map[key]` as a required port number 0–65535.
    pub(crate) fn req_port(
        &mut self,
        map: &Map<String, Value>,
        key: &str,
        base: &str,
    ) -> Option<u16> {
        let (v, path) = self.present(map, key, base, true)?;
        let port = v.as_u64().and_then(|n| u16::try_from(n).ok());
        if port.is_none() {
            self.push(path, "must be a port number from 0 to 65535");
        }
        port
    }

    /// `map[key]` as an RFC 3339 timestamp; absent or null is `None` without error.
    pub(crate) fn opt_timestamp(
        &mut self,
        map: &Map<String, Value>,
        key: &str,
        base: &str,
    ) -> Option<jiff::Timestamp> {
        let s = self.opt_str(map, key, base, 64)?;
        match s.parse::<jiff::Timestamp>() {
            Ok(t) => Some(t),
            Err(_) => {
                self.push(
                    join(base, key),
                    "must be an RFC 3339 date-time with an offset, e.g. 2024-05-17T09:06:45Z",
                );
                None
            }
        }
    }

    /// `map[key]` as a required RFC 3339 timestamp.
    pub(crate) fn req_timestamp(
        &mut self,
        map: &Map<String, Value>,
        key: &str,
        base: &str,
    ) -> Option<jiff::Timestamp> {
        self.present(map, key, base, true)?;
        self.opt_timestamp(map, key, base)
    }
}

/// A JSON object.
pub(crate) type JsonObject = Map<String, Value>;

/// Parses the body of a PUT in the Azure resource shape: it must be an object whose
/// `properties` is an object. Returns the body and its properties, or the 400 error DESIGN.md
/// asks for (target `properties`, or empty for a body that is not an object).
pub(crate) fn resource_body(body: &Value) -> Result<(&JsonObject, &JsonObject), ValidationErrors> {
    let Value::Object(map) = body else {
        return Err(ValidationErrors::one("", "the body must be a JSON object"));
    };
    match map.get("properties") {
        Some(Value::Object(p)) => Ok((map, p)),
        None | Some(Value::Null) => Err(ValidationErrors::one("properties", "is required")),
        Some(_) => Err(ValidationErrors::one("properties", "must be an object")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn display_lists_every_error() {
        let e = ValidationErrors(vec![
            FieldError {
                path: "a".into(),
                message: "x".into(),
            },
            FieldError {
                path: "b[0]".into(),
                message: "y".into(),
            },
        ]);
        assert_eq!(e.to_string(), "invalid input: a: x; b[0]: y");
        assert_eq!(e.target(), Some("a"));
    }

    #[test]
    fn resource_body_rules() {
        assert_eq!(resource_body(&json!([])).unwrap_err().target(), Some(""));
        assert_eq!(
            resource_body(&json!({})).unwrap_err().target(),
            Some("properties")
        );
        assert_eq!(
            resource_body(&json!({"properties": 3}))
                .unwrap_err()
                .target(),
            Some("properties")
        );
        assert!(resource_body(&json!({"properties": {}})).is_ok());
    }

    #[test]
    fn ports_out_of_range_are_refused() {
        let mut c = Collector::new();
        let m = json!({"a": 70000, "b": -1, "c": 1.5, "d": 443});
        let m = m.as_object().unwrap();
        assert_eq!(c.req_port(m, "a", "p"), None);
        assert_eq!(c.req_port(m, "b", "p"), None);
        assert_eq!(c.req_port(m, "c", "p"), None);
        assert_eq!(c.req_port(m, "d", "p"), Some(443));
        assert_eq!(c.finish(()).unwrap_err().paths(), vec!["p.a", "p.b", "p.c"]);
    }
}
