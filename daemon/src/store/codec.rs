//! At-rest encoding of every stored value: one format-version byte, then postcard.
//!
//! postcard records no schema, so the byte in front is what lets a future build tell an old
//! value from a new one; a value of a version this build does not know is a clear error
//! naming that version, never a panic or a silent misread. Not here: what the values are.

use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// The only format version written by this build.
pub const FORMAT_V1: u8 = 1;

/// Why a stored value could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The value has no bytes at all, so not even a version byte.
    #[error("empty stored value: no format version byte")]
    Empty,
    /// The version byte is not one this build reads.
    #[error(
        "unknown stored format version {found} (this build reads version {FORMAT_V1}); \
         the file was written by another steward version or is damaged"
    )]
    UnknownVersion {
        /// The version byte found in front of the value.
        found: u8,
    },
    /// The version is known but the payload is truncated or garbled.
    #[error("damaged stored value (format version {FORMAT_V1}): {0}")]
    Malformed(String),
    /// The value could not be serialised (a type postcard cannot encode).
    #[error("could not encode value: {0}")]
    Encode(String),
}

/// Encodes `value` as `FORMAT_V1` followed by its postcard bytes.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    postcard::to_extend(value, vec![FORMAT_V1]).map_err(|e| CodecError::Encode(e.to_string()))
}

/// Decodes a value written by [`encode`]; rejects unknown versions, truncation and
/// trailing bytes.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (value, rest) = take(bytes)?;
    if !rest.is_empty() {
        return Err(CodecError::Malformed(format!(
            "{} trailing bytes after the value",
            rest.len()
        )));
    }
    Ok(value)
}

/// Decodes the leading fields of a value written by [`encode`] as `T`, borrowing from
/// `bytes` and ignoring what follows them (postcard writes fields in order, so a struct
/// of the first fields reads the start of a longer one); rejects unknown versions and
/// truncation like [`decode`].
pub fn decode_prefix<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, CodecError> {
    take(bytes).map(|(value, _rest)| value)
}

/// The version check and the postcard decode both decoders share: the value and the bytes
/// after it.
fn take<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<(T, &'a [u8]), CodecError> {
    let (&version, payload) = bytes.split_first().ok_or(CodecError::Empty)?;
    if version != FORMAT_V1 {
        return Err(CodecError::UnknownVersion { found: version });
    }
    postcard::take_from_bytes(payload).map_err(|e| CodecError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Sample {
        a: u64,
        b: String,
        c: Option<i64>,
    }

    fn sample() -> Sample {
        Sample {
            a: 7,
            b: "hello".into(),
            c: Some(-3),
        }
    }

    #[test]
    fn round_trips_with_version_byte_in_front() {
        let bytes = encode(&sample()).unwrap();
        assert_eq!(bytes[0], FORMAT_V1);
        assert_eq!(decode::<Sample>(&bytes).unwrap(), sample());
    }

    #[test]
    fn unknown_version_is_a_clear_error() {
        let mut bytes = encode(&sample()).unwrap();
        bytes[0] = 9;
        let err = decode::<Sample>(&bytes).unwrap_err();
        assert!(
            matches!(err, CodecError::UnknownVersion { found: 9 }),
            "{err:?}"
        );
        assert!(err.to_string().contains("version 9"), "{err}");
    }

    #[test]
    fn empty_truncated_and_trailing_are_errors_not_panics() {
        assert!(matches!(decode::<Sample>(&[]), Err(CodecError::Empty)));
        let bytes = encode(&sample()).unwrap();
        for cut in 1..bytes.len() {
            assert!(decode::<Sample>(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(
            decode::<Sample>(&longer),
            Err(CodecError::Malformed(_))
        ));
        // Every single-byte garbling decodes to an error or a value, never a panic.
        for i in 1..bytes.len() {
            let mut g = bytes.clone();
            g[i] ^= 0xff;
            let _ = decode::<Sample>(&g);
        }
    }
}
