//! Validated identifiers: tenant ids and resource names.
//!
//! Both are checked once, when they come in (a path segment, a config file, a body), and are
//! plain strings afterwards. Checking is a character-by-character test of the pattern DESIGN.md
//! gives; there is no regex engine here. These types say nothing about whether the tenant or
//! resource exists: that is the daemon's business.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a string is not a valid [`TenantId`] or [`ResourceName`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The string is empty.
    #[error("{what} is empty")]
    Empty {
        /// Which kind of name was being checked ("tenant id" or "resource name").
        what: &'static str,
    },
    /// The string is longer than the pattern allows.
    #[error("{what} is longer than {max} characters")]
    TooLong {
        /// Which kind of name was being checked.
        what: &'static str,
        /// The longest length allowed.
        max: usize,
    },
    /// The first character is not one the pattern allows first.
    #[error("{what} must start with {allowed}")]
    BadStart {
        /// Which kind of name was being checked.
        what: &'static str,
        /// The characters allowed in first position, in words.
        allowed: &'static str,
    },
    /// A character (at a 0-based char position) is outside the allowed set.
    #[error("{what} has a character not allowed at position {position}: only {allowed}")]
    BadChar {
        /// Which kind of name was being checked.
        what: &'static str,
        /// 0-based position of the first offending character.
        position: usize,
        /// The characters allowed, in words.
        allowed: &'static str,
    },
}

/// The rules of one name pattern `[first][rest]{0,max-1}`.
struct Pattern {
    what: &'static str,
    max: usize,
    first: fn(char) -> bool,
    first_words: &'static str,
    rest: fn(char) -> bool,
    rest_words: &'static str,
}

impl Pattern {
    fn check(&self, s: &str) -> Result<(), NameError> {
        let what = self.what;
        let mut chars = s.chars();
        let Some(first) = chars.next() else {
            return Err(NameError::Empty { what });
        };
        // All allowed characters are ASCII, so counting bytes is counting characters once
        // every character has passed; check characters first so a long non-ASCII string
        // reports the bad character.
        if !(self.first)(first) {
            return Err(NameError::BadStart {
                what,
                allowed: self.first_words,
            });
        }
        for (i, c) in chars.enumerate() {
            if !(self.rest)(c) {
                return Err(NameError::BadChar {
                    what,
                    position: i + 1,
                    allowed: self.rest_words,
                });
            }
        }
        if s.len() > self.max {
            return Err(NameError::TooLong {
                what,
                max: self.max,
            });
        }
        Ok(())
    }
}

const TENANT: Pattern = Pattern {
    what: "tenant id",
    max: 63,
    first: |c| c.is_ascii_lowercase() || c.is_ascii_digit(),
    first_words: "a lower-case letter or a digit",
    rest: |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-',
    rest_words: "lower-case letters, digits and '-'",
};

const RESOURCE: Pattern = Pattern {
    what: "resource name",
    max: 128,
    first: |c| c.is_ascii_alphanumeric(),
    first_words: "a letter or a digit",
    rest: |c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'),
    rest_words: "letters, digits, '.', '_' and '-'",
};

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $pattern:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Checks `s` against the pattern and wraps it.
            pub fn parse(s: &str) -> Result<Self, NameError> {
                $pattern.check(s)?;
                Ok(Self(s.to_owned()))
            }

            /// The name as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The name as an owned string.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl FromStr for $name {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        /// A checked name reads as the string it is (`&name` where a `&str` is wanted).
        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = String::deserialize(deserializer)?;
                $pattern.check(&s).map_err(serde::de::Error::custom)?;
                Ok(Self(s))
            }
        }
    };
}

name_type!(
    /// A tenant id: `[a-z0-9][a-z0-9-]{0,62}` (a tenant is a subscription in the Azure shapes).
    TenantId,
    TENANT
);

/// A tenant id is one safe path component (no `/`, never `.` or `..`): the daemon names
/// per-tenant directories (spool, bundles) by it.
impl AsRef<std::path::Path> for TenantId {
    fn as_ref(&self) -> &std::path::Path {
        std::path::Path::new(&self.0)
    }
}

impl TenantId {
    /// `default`, the tenant of the embedded default configuration.
    pub fn default_tenant() -> Self {
        TenantId("default".to_owned())
    }
}

name_type!(
    /// A resource name (contact, JIT policy, alert): `[A-Za-z0-9][A-Za-z0-9._-]{0,127}`.
    ResourceName,
    RESOURCE
);

impl ResourceName {
    /// A new unique name, a time-ordered UUID (v7), for records the daemon names itself
    /// (JIT requests, data-subject requests).
    pub fn fresh() -> Self {
        ResourceName(uuid::Uuid::now_v7().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tenant_oracle(s: &str) -> bool {
        let b = s.as_bytes();
        !b.is_empty()
            && b.len() <= 63
            && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
    }

    fn resource_oracle(s: &str) -> bool {
        let b = s.as_bytes();
        !b.is_empty()
            && b.len() <= 128
            && b[0].is_ascii_alphanumeric()
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
    }

    #[test]
    fn tenant_examples() {
        assert!(TenantId::parse("contoso").is_ok());
        assert!(TenantId::parse("0-a").is_ok());
        assert!(TenantId::parse(&"a".repeat(63)).is_ok());
        assert_eq!(
            TenantId::parse(&"a".repeat(64)),
            Err(NameError::TooLong {
                what: "tenant id",
                max: 63
            })
        );
        assert!(matches!(TenantId::parse(""), Err(NameError::Empty { .. })));
        assert!(matches!(
            TenantId::parse("-a"),
            Err(NameError::BadStart { .. })
        ));
        assert!(matches!(
            TenantId::parse("Contoso"),
            Err(NameError::BadStart { .. })
        ));
        assert!(matches!(
            TenantId::parse("con/toso"),
            Err(NameError::BadChar { position: 3, .. })
        ));
        assert!(TenantId::parse("é").is_err());
    }

    #[test]
    fn resource_examples() {
        assert!(ResourceName::parse("default").is_ok());
        assert!(
            ResourceName::parse("2518770965529163669_F144EE95-A3E5-42DA-A279-967D115809AA").is_ok()
        );
        assert!(ResourceName::parse(&"A".repeat(128)).is_ok());
        assert!(ResourceName::parse(&"A".repeat(129)).is_err());
        assert!(ResourceName::parse(".hidden").is_err());
        assert!(ResourceName::parse("a b").is_err());
        assert!(ResourceName::parse("..").is_err());
    }

    #[test]
    fn serde_is_a_plain_string_and_deserialize_validates() {
        let t = TenantId::parse("contoso").unwrap();
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"contoso\"");
        let back: TenantId = serde_json::from_str("\"contoso\"").unwrap();
        assert_eq!(back, t);
        assert!(serde_json::from_str::<TenantId>("\"Bad\"").is_err());
        assert!(serde_json::from_str::<ResourceName>("\"a/b\"").is_err());
        assert_eq!("x1".parse::<ResourceName>().unwrap().to_string(), "x1");
    }

    proptest! {
        #[test]
        fn tenant_accepts_exactly_the_pattern(s in "[a-z0-9-]{0,70}|\\PC{0,10}") {
            prop_assert_eq!(TenantId::parse(&s).is_ok(), tenant_oracle(&s));
        }

        #[test]
        fn tenant_accepts_every_pattern_match(s in "[a-z0-9][a-z0-9-]{0,62}") {
            prop_assert!(TenantId::parse(&s).is_ok());
        }

        #[test]
        fn resource_accepts_exactly_the_pattern(s in "[A-Za-z0-9._/ -]{0,135}|\\PC{0,10}") {
            prop_assert_eq!(ResourceName::parse(&s).is_ok(), resource_oracle(&s));
        }
    }
}
