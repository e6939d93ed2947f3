//! CSV cells that a spreadsheet will not run as formulas ("CSV injection").
//!
//! A spreadsheet that opens a CSV file treats a cell starting with `=`, `+`, `-` or `@` as a
//! formula (`=HYPERLINK(…)`, `@SUM(…)`, `+cmd|…`), and some also after a leading tab or
//! carriage return. Records hold text that callers chose (an alert's description, a
//! justification, a contact's phone), so every CSV writer of steward — the daemon's export,
//! the CLI's `-o csv` and, through the daemon, the CLI's and the TUI's export files — passes
//! each cell through [`neutralise`], which does what OWASP recommends: such a cell gets a
//! leading `'`, which spreadsheets show as text and do not evaluate.
//!
//! The trade-off: the file's text changes. A phone `+1 555 0100` is written `'+1 555 0100`,
//! a negative number `-3` is `'-3`; whoever reads the CSV back with a program sees the `'`.
//! Only CSV is touched: JSON and NDJSON exports carry the values exactly as stored.

use std::borrow::Cow;

/// Whether a spreadsheet may read a cell starting with `c` as a formula.
fn is_trigger(c: char) -> bool {
    matches!(c, '=' | '+' | '-' | '@' | '\t' | '\r')
}

/// The cell as it should be written to CSV: `'` + the cell when it starts with `=`, `+`,
/// `-`, `@`, a tab or a carriage return; otherwise unchanged (and not copied).
pub fn neutralise(cell: &str) -> Cow<'_, str> {
    match cell.chars().next() {
        Some(c) if is_trigger(c) => Cow::Owned(format!("'{cell}")),
        _ => Cow::Borrowed(cell),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_starts_get_a_quote_and_the_rest_is_untouched() {
        for (cell, want) in [
            ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
            ("+1 555 0100", "'+1 555 0100"),
            ("-3", "'-3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\t=1", "'\t=1"),
            ("\r=1", "'\r=1"),
            ("alice@contoso.com", "alice@contoso.com"),
            ("a=b", "a=b"),
            (" =1", " =1"),
            ("", ""),
            ("'already", "'already"),
        ] {
            assert_eq!(neutralise(cell), want, "{cell:?}");
        }
        assert!(matches!(neutralise("plain"), Cow::Borrowed(_)));
    }
}
