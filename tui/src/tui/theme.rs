//! Colours: a 16-colour theme drawn on the terminal's own background, and a mono theme
//! for `NO_COLOR` in which every meaning survives through modifiers (the selection is
//! reversed and carries a `>` marker in both).

use ratatui::style::{Color, Modifier, Style};

/// The styles the drawing uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    /// Colours allowed (`NO_COLOR` unset).
    pub color: bool,
}

impl Theme {
    /// The theme for this environment: mono when `NO_COLOR` is set to anything.
    pub fn from_env() -> Theme {
        Theme {
            color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }

    fn fg(self, c: Color) -> Style {
        if self.color {
            Style::new().fg(c)
        } else {
            Style::new()
        }
    }

    /// The selected row.
    pub fn selected(self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD)
    }

    /// Titles and the header's tenant.
    pub fn title(self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    /// The active tab.
    pub fn tab_active(self) -> Style {
        self.fg(Color::Yellow)
            .add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
    }

    /// Table column headers.
    pub fn column_header(self) -> Style {
        Style::new().add_modifier(Modifier::BOLD)
    }

    /// Keys in the footer and help.
    pub fn key(self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    /// Less important text.
    pub fn dim(self) -> Style {
        if self.color {
            Style::new().fg(Color::DarkGray)
        } else {
            Style::new().add_modifier(Modifier::DIM)
        }
    }

    /// Errors.
    pub fn error(self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }

    /// Good news.
    pub fn ok(self) -> Style {
        self.fg(Color::Green)
    }

    /// Read-write marker.
    pub fn rw(self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    }

    /// An alert severity's style.
    pub fn severity(self, sev: &str) -> Style {
        match sev.to_ascii_lowercase().as_str() {
            "high" | "critical" => self.fg(Color::Red).add_modifier(Modifier::BOLD),
            "medium" => self.fg(Color::Yellow),
            "low" => self.fg(Color::Cyan),
            _ => self.dim(),
        }
    }
}
