//! TEMPORARY: replaced by the model work's names module at merge.
use serde::{Deserialize, Deserializer};
use std::fmt;
/// A validated tenant id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(String);
impl TenantId {
    /// Parses a tenant id.
    pub fn parse(s: &str) -> Result<Self, String> {
        let b = s.as_bytes();
        let ok = !b.is_empty()
            && b.len() <= 63
            && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-');
        if ok {
            Ok(TenantId(s.to_owned()))
        } else {
            Err(format!("bad tenant id `{s}`"))
        }
    }
    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The embedded default's tenant, `default`.
    pub fn default_tenant() -> Self {
        TenantId("default".into())
    }
}
impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl<'de> Deserialize<'de> for TenantId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        TenantId::parse(&s).map_err(serde::de::Error::custom)
    }
}
