//! Identifiers of people ("data subjects") and how they are normalised.
//!
//! Every record kind can list the people it names as [`SubjectKey`]s; the daemon keeps them
//! in its subject index (`email:…`, `phone:…`, …) and a data-subject search normalises its
//! query with the same [`SubjectKey::normalise`], so both sides meet. The syntax checks of
//! email addresses and phone numbers used by validation live here too, so that what
//! validation accepts is exactly what the index can key.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// The kind of an identifier of a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubjectKind {
    /// An email address (also UPNs of accounts).
    Email,
    /// A phone number, keyed by its digits.
    Phone,
    /// An IP address (or a CIDR prefix when that is what a record holds).
    Ip,
    /// An account name.
    User,
    /// A host name.
    Host,
}

impl SubjectKind {
    /// Every kind, in index order.
    pub const ALL: [SubjectKind; 5] = [Self::Email, Self::Phone, Self::Ip, Self::User, Self::Host];

    /// The index prefix: `email`, `phone`, `ip`, `user`, `host`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Phone => "phone",
            Self::Ip => "ip",
            Self::User => "user",
            Self::Host => "host",
        }
    }

    /// The kind named by `s` (as [`SubjectKind::as_str`] writes it).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for SubjectKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One person named by one record: what kind of identifier, its normalised value, and the
/// field that held it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SubjectKey {
    /// What kind of identifier this is.
    pub kind: SubjectKind,
    /// The value normalised by [`SubjectKey::normalise`] (lower-cased; phones as digits).
    pub value: String,
    /// The field path that held it (`properties.emails`, `properties.entities[0].address`),
    /// so an audit record or a report can name the field without the value.
    pub field: String,
}

/// Longest identifier value we index, in bytes.
const MAX_SUBJECT: usize = 320;

impl SubjectKey {
    /// Normalises a raw identifier of `kind` the way the subject index keys it, or `None`
    /// when `raw` is not a valid identifier of that kind:
    /// email — trimmed, syntax-checked, lower-cased; phone — its digits (syntax as
    /// [`phone_digits`]); ip — an address or CIDR prefix in canonical text form; user and
    /// host — trimmed, lower-cased, non-empty, no control characters.
    pub fn normalise(kind: SubjectKind, raw: &str) -> Option<String> {
        let s = raw.trim();
        if s.is_empty() || s.len() > MAX_SUBJECT {
            return None;
        }
        match kind {
            SubjectKind::Email => check_email(s).ok().map(|()| s.to_lowercase()),
            SubjectKind::Phone => phone_digits(s).ok(),
            SubjectKind::Ip => {
                if let Ok(a) = s.parse::<IpAddr>() {
                    Some(a.to_string())
                } else {
                    s.parse::<IpNet>().ok().map(|n| n.to_string())
                }
            }
            SubjectKind::User | SubjectKind::Host => {
                if s.chars().any(char::is_control) {
                    None
                } else {
                    Some(s.to_lowercase())
                }
            }
        }
    }

    /// A key from a raw value, or `None` when the value does not normalise.
    pub fn new(kind: SubjectKind, raw: &str, field: impl Into<String>) -> Option<Self> {
        Self::normalise(kind, raw).map(|value| Self {
            kind,
            value,
            field: field.into(),
        })
    }

    /// The subject-index key text, `kind:value` (e.g. `email:jane@contoso.com`).
    pub fn index_key(&self) -> String {
        format!("{}:{}", self.kind.as_str(), self.value)
    }
}

/// Sorts and removes keys naming the same `(kind, value)`, keeping the first field.
pub(crate) fn dedup(mut keys: Vec<SubjectKey>) -> Vec<SubjectKey> {
    let mut seen = std::collections::HashSet::new();
    keys.retain(|k| seen.insert((k.kind, k.value.clone())));
    keys
}

/// Checks the syntax of one email address: `local@domain`, no whitespace, the domain made of
/// at least two dot-separated labels of letters, digits and inner `-`. Deliberately not full
/// RFC 5322 (no quoted local parts, no IP-literal domains): these are contact addresses that
/// people type. Errors say what is wrong without repeating the address.
pub fn check_email(s: &str) -> Result<(), &'static str> {
    if s.len() > 254 {
        return Err("is longer than 254 characters");
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("contains a space or control character");
    }
    let Some((local, domain)) = s.rsplit_once('@') else {
        return Err("has no '@'");
    };
    if local.is_empty() {
        return Err("has nothing before the '@'");
    }
    if local.len() > 64 {
        return Err("has more than 64 characters before the '@'");
    }
    if local.contains('@') {
        return Err("has more than one '@'");
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err("has a misplaced '.' before the '@'");
    }
    if local.chars().any(|c| {
        matches!(
            c,
            '"' | '(' | ')' | ',' | ':' | ';' | '<' | '>' | '[' | '\\' | ']'
        )
    }) {
        return Err("has a character not allowed before the '@'");
    }
    if domain.is_empty() {
        return Err("has no domain after the '@'");
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return Err("has a domain without a '.'");
    }
    for label in labels {
        if label.is_empty() || label.len() > 63 {
            return Err("has an empty or too long domain label");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("has a domain label starting or ending with '-'");
        }
        if !label.chars().all(|c| c.is_alphanumeric() || c == '-') {
            return Err("has a character not allowed in the domain");
        }
    }
    Ok(())
}

/// The digits of a phone number as people write it, or why it is not one: digits with an
/// optional leading `+`, spaces, dashes, dots and parentheses; 7 to 15 digits (E.164's
/// maximum); at most 32 characters. `(214)275-4038` → `2142754038`.
pub fn phone_digits(s: &str) -> Result<String, &'static str> {
    let s = s.trim();
    if s.len() > 32 {
        return Err("is longer than 32 characters");
    }
    let mut digits = String::new();
    for (i, c) in s.char_indices() {
        match c {
            '0'..='9' => digits.push(c),
            '+' if i == 0 => {}
            '+' => return Err("may have '+' only at the start"),
            ' ' | '-' | '.' | '(' | ')' => {}
            _ => return Err("may hold only digits, a leading '+', spaces, '-', '.', '(' and ')'"),
        }
    }
    if digits.len() < 7 {
        return Err("has fewer than 7 digits");
    }
    if digits.len() > 15 {
        return Err("has more than 15 digits");
    }
    Ok(digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones() {
        assert_eq!(phone_digits("(214)275-4038").unwrap(), "2142754038");
        assert_eq!(phone_digits("+44 20 7946 0958").unwrap(), "442079460958");
        assert_eq!(phone_digits("030.1234.5678").unwrap(), "03012345678");
        assert!(phone_digits("12ab").is_err());
        assert!(phone_digits("123").is_err());
        assert!(phone_digits("1234567890123456").is_err());
        assert!(phone_digits("12+34567").is_err());
    }

    #[test]
    fn emails() {
        for ok in [
            "john@contoso.com",
            "Jane@Contoso.com",
            "a.b+c@x-y.example.org",
            "ü@bücher.de",
        ] {
            assert_eq!(check_email(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "john",
            "@contoso.com",
            "john@",
            "john@contoso",
            "jo hn@contoso.com",
            "a@b@c.com",
            "john@contoso..com",
            "john@-contoso.com",
            ".john@contoso.com",
            "john@con_toso.com",
        ] {
            assert!(check_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn normalise_per_kind() {
        use SubjectKind::*;
        for (kind, raw, want) in [
            (Email, " Jane@Contoso.com ", Some("jane@contoso.com")),
            (Email, "nope", None),
            (Phone, "+1 (214) 275-4038", Some("12142754038")),
            (Ip, "2001:DB8::1", Some("2001:db8::1")),
            (Ip, "10.0.0.0/8", Some("10.0.0.0/8")),
            (Ip, "*", None),
            (User, "ContosoUser", Some("contosouser")),
            (Host, "  ", None),
        ] {
            assert_eq!(
                SubjectKey::normalise(kind, raw).as_deref(),
                want,
                "{kind:?} {raw:?}"
            );
        }
        assert_eq!(
            SubjectKey::new(Host, "VM1", "f").unwrap().index_key(),
            "host:vm1"
        );
        for k in SubjectKind::ALL {
            assert_eq!(SubjectKind::parse(k.as_str()), Some(k));
        }
    }

    proptest::proptest! {
        /// However a valid number is punctuated, it keys by the same digits.
        #[test]
        fn phone_punctuation_does_not_change_the_key(
            digits in "[0-9]{7,15}",
            seps in proptest::collection::vec(proptest::sample::select(vec!["", " ", "-", ".", "(", ")"]), 15),
            plus in proptest::bool::ANY,
        ) {
            let mut written = String::from(if plus { "+" } else { "" });
            for (d, sep) in digits.chars().zip(seps.iter()) {
                written.push(d);
                written.push_str(sep);
            }
            proptest::prop_assume!(written.len() <= 32);
            proptest::prop_assert_eq!(SubjectKey::normalise(SubjectKind::Phone, &written), Some(digits));
        }

        /// Normalising is idempotent, so an index key searched again finds itself.
        #[test]
        fn normalise_is_idempotent(raw in "\\PC{0,40}", kind in proptest::sample::select(SubjectKind::ALL.to_vec())) {
            if let Some(once) = SubjectKey::normalise(kind, &raw) {
                proptest::prop_assert_eq!(SubjectKey::normalise(kind, &once), Some(once));
            }
        }
    }
}
