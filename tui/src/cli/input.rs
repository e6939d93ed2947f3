//! Reading the JSON a command sends: a record for `put`, alerts for `ingest`.
//!
//! Input is parsed here, once, so a typo in a file is reported with its line and
//! column before anything is sent. Validation of the record itself is the daemon's
//! (it names the field path); this module only checks that the input is JSON of the
//! right overall shape.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::error::CliError;

/// Reads all of `file`, or stdin when it is `None` or `-`. Refuses to wait on a
/// terminal: `put` with no file must be fed through a pipe.
pub fn read_source(file: Option<&Path>) -> Result<(PathBuf, Vec<u8>), CliError> {
    match file {
        Some(path) if path != Path::new("-") => {
            let bytes = std::fs::read(path).map_err(|e| CliError::Input {
                path: path.to_owned(),
                message: e.to_string(),
            })?;
            Ok((path.to_owned(), bytes))
        }
        _ => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                return Err(CliError::Usage(
                    "give a JSON FILE, or pipe the JSON on stdin".to_owned(),
                ));
            }
            let mut bytes = Vec::new();
            stdin
                .lock()
                .read_to_end(&mut bytes)
                .map_err(|e| CliError::Input {
                    path: PathBuf::from("-"),
                    message: e.to_string(),
                })?;
            Ok((PathBuf::from("-"), bytes))
        }
    }
}

/// One JSON object (the body of `put` or `initiate`).
pub fn parse_object(path: &Path, bytes: &[u8]) -> Result<Value, CliError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| CliError::Input {
        path: path.to_owned(),
        message: format!("not valid JSON: {e}"),
    })?;
    if !value.is_object() {
        return Err(CliError::Input {
            path: path.to_owned(),
            message: "expected a JSON object".to_owned(),
        });
    }
    Ok(value)
}

/// Alerts from one JSON alert, a JSON array of alerts, or NDJSON (one alert per line,
/// whatever the file's extension; concatenated JSON values work the same way). Every
/// alert must be an object; errors name the line.
pub fn parse_alerts(path: &Path, bytes: &[u8]) -> Result<Vec<Value>, CliError> {
    let input_error = |message: String| CliError::Input {
        path: path.to_owned(),
        message,
    };
    let mut alerts = Vec::new();
    for value in serde_json::Deserializer::from_slice(bytes).into_iter::<Value>() {
        let value = value.map_err(|e| input_error(format!("not valid JSON or NDJSON: {e}")))?;
        match value {
            Value::Array(items) => alerts.extend(items),
            other => alerts.push(other),
        }
    }
    if let Some(i) = alerts.iter().position(|a| !a.is_object()) {
        return Err(input_error(format!(
            "alert #{} is not a JSON object",
            i + 1
        )));
    }
    if alerts.is_empty() {
        return Err(input_error("no alerts in the input".to_owned()));
    }
    Ok(alerts)
}

/// Splits alerts into ingest batches below the daemon's ingest body limit (16 MiB by
/// default): at most `max_count` alerts and about `max_bytes` of JSON each. Ingest is
/// idempotent on the alert's name, so a batch sent twice changes nothing twice.
pub fn batches(alerts: &[Value], max_count: usize, max_bytes: usize) -> Vec<&[Value]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut size = 0;
    for (i, alert) in alerts.iter().enumerate() {
        let len = alert.to_string().len() + 1;
        if i > start && (i - start >= max_count || size + len > max_bytes) {
            out.push(&alerts[start..i]);
            start = i;
            size = 0;
        }
        size += len;
    }
    if start < alerts.len() {
        out.push(&alerts[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(text: &str) -> Result<Vec<Value>, CliError> {
        parse_alerts(Path::new("a.json"), text.as_bytes())
    }

    #[test]
    fn one_alert_an_array_or_ndjson() {
        assert_eq!(
            parse(r#"{"name":"a"}"#).unwrap(),
            vec![json!({"name": "a"})]
        );
        assert_eq!(
            parse(r#"[{"name":"a"}, {"name":"b"}]"#).unwrap(),
            vec![json!({"name": "a"}), json!({"name": "b"})]
        );
        assert_eq!(
            parse("{\"name\":\"a\"}\n\n{\"name\":\"b\"}\r\n{\"name\":\"c\"}")
                .unwrap()
                .len(),
            3
        );
    }

    #[test]
    fn bad_input_names_the_line() {
        let err = parse("{\"name\":\"a\"}\n{\"name\": oops}\n").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("a.json: "), "{text}");
        assert!(text.contains("line 2"), "{text}");
        assert!(
            parse("[1, {\"name\":\"a\"}]")
                .unwrap_err()
                .to_string()
                .contains("alert #1")
        );
        assert!(parse("  \n").is_err());
    }

    #[test]
    fn objects_only_for_put() {
        assert!(parse_object(Path::new("-"), br#"{"properties":{}}"#).is_ok());
        assert!(parse_object(Path::new("-"), b"[]").is_err());
        assert!(parse_object(Path::new("-"), b"{").is_err());
    }

    #[test]
    fn batches_respect_count_and_size() {
        let alerts: Vec<Value> = (0..5).map(|i| json!({"name": format!("a{i}")})).collect();
        let sizes: Vec<usize> = batches(&alerts, 2, 1 << 20)
            .iter()
            .map(|b| b.len())
            .collect();
        assert_eq!(sizes, [2, 2, 1]);
        // Each alert is 13 bytes, 14 with its separator: two fit in 28, not three.
        let sizes: Vec<usize> = batches(&alerts, 100, 28).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, [2, 2, 1]);
        // An alert larger than the limit still goes, alone.
        let sizes: Vec<usize> = batches(&alerts, 100, 1).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, [1, 1, 1, 1, 1]);
    }
}
