//! The results: one row per measurement, printed as a markdown table.

/// One measured figure beside what it is judged against.
pub struct Row {
    /// What was measured.
    pub what: String,
    /// steward's figure.
    pub steward: String,
    /// The floor or baseline measured in the same run ("" when there is none).
    pub baseline: String,
    /// steward against the baseline ("" when there is none).
    pub ratio: String,
    /// The target.
    pub target: String,
    /// Whether the target is met (`None`: no target, or not measured).
    pub met: Option<bool>,
}

/// The rows, plus notes on what was skipped and why.
#[derive(Default)]
pub struct Table {
    rows: Vec<Row>,
    /// Printed under the table.
    pub notes: Vec<String>,
}

impl Table {
    /// Adds a row and prints it at once, so a long run shows progress.
    pub fn push(&mut self, row: Row) {
        eprintln!(
            "  {}: {} | {} | {} | {}",
            row.what, row.steward, row.baseline, row.ratio, row.target
        );
        self.rows.push(row);
    }

    /// Adds a note and prints it.
    pub fn note(&mut self, note: impl Into<String>) {
        let note = note.into();
        eprintln!("  note: {note}");
        self.notes.push(note);
    }

    /// The markdown table and its notes.
    pub fn markdown(&self) -> String {
        let mut s = String::from(
            "| measurement | steward | floor / SQLite, same run | ratio | target | met |\n|---|---|---|---|---|---|\n",
        );
        for r in &self.rows {
            let met = match r.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "",
            };
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                r.what, r.steward, r.baseline, r.ratio, r.target, met
            ));
        }
        if !self.notes.is_empty() {
            s.push('\n');
            for n in &self.notes {
                s.push_str(&format!("- {n}\n"));
            }
        }
        s
    }
}

/// A duration in nanoseconds, shown in µs or ms.
pub fn time(ns: u64) -> String {
    if ns >= 1_000_000 {
        format!("{:.2} ms", ns as f64 / 1e6)
    } else {
        format!("{:.1} µs", ns as f64 / 1e3)
    }
}

/// A rate, shown with thousands separated.
pub fn rate(per_sec: f64, unit: &str) -> String {
    let n = per_sec.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    format!("{out} {unit}/s")
}

/// Bytes in MiB.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}
