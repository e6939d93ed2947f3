//! Colours: 16-colour themes drawn on the terminal's own background — `dark` (the
//! default) and `light` (for light terminal backgrounds, chosen with
//! `STEWARD_THEME=light`) — and a `mono` theme (`NO_COLOR`, or `STEWARD_THEME=mono`) in
//! which every meaning survives through modifiers (the selection is reversed and carries
//! a `>` marker in all of them).

use ratatui::style::{Color, Modifier, Style};

/// The styles the drawing uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    /// Colours allowed (`NO_COLOR` unset and the theme is not `mono`).
    pub color: bool,
    /// Colours chosen for a light terminal background.
    pub light: bool,
}

impl Theme {
    /// The theme for this environment: mono when `NO_COLOR` is set to anything or
    /// `STEWARD_THEME=mono`; light with `STEWARD_THEME=light`; dark otherwise.
    pub fn from_env() -> Theme {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Theme::named(std::env::var("STEWARD_THEME").ok().as_deref(), no_color)
    }

    /// The theme called `name` (`dark`, `light`, `mono`; anything else is dark), mono
    /// regardless when `no_color`.
    pub fn named(name: Option<&str>, no_color: bool) -> Theme {
        let name = name.unwrap_or("dark");
        Theme {
            color: !no_color && name != "mono",
            light: name == "light",
        }
    }

    /// A foreground colour, swapped for one readable on a light background when the
    /// theme is light (yellow and cyan wash out on white). Dark grey stays dark grey:
    /// light grey (`Gray`) was the old swap, and it is invisible on white.
    fn fg(self, c: Color) -> Style {
        if !self.color {
            return Style::new();
        }
        let c = match (self.light, c) {
            (true, Color::Yellow) => Color::Magenta,
            (true, Color::Cyan) => Color::Blue,
            (_, c) => c,
        };
        Style::new().fg(c)
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
            self.fg(Color::DarkGray)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn themes_by_name() {
        assert_eq!(
            Theme::named(None, false),
            Theme {
                color: true,
                light: false
            }
        );
        assert_eq!(
            Theme::named(Some("light"), false),
            Theme {
                color: true,
                light: true
            }
        );
        assert!(!Theme::named(Some("mono"), false).color);
        assert!(!Theme::named(Some("light"), true).color, "NO_COLOR wins");
    }

    #[test]
    fn light_swaps_colours_that_wash_out_on_white() {
        let dark = Theme::named(None, false);
        let light = Theme::named(Some("light"), false);
        assert_eq!(dark.severity("medium").fg, Some(Color::Yellow));
        assert_eq!(light.severity("medium").fg, Some(Color::Magenta));
        assert_eq!(light.key().fg, Some(Color::Blue));
        assert_eq!(Theme::named(Some("mono"), false).severity("high").fg, None);
        // Issue 19, defect 9: dim text was light grey, invisible on white.
        assert_eq!(light.dim().fg, Some(Color::DarkGray));
        for style in [
            light.dim(),
            light.key(),
            light.title(),
            light.rw(),
            light.ok(),
        ] {
            assert!(
                !matches!(style.fg, Some(Color::Gray | Color::White | Color::Yellow)),
                "{style:?} washes out on white"
            );
        }
    }

    #[test]
    fn selection_is_visible_in_every_theme() {
        for t in [
            Theme::named(None, false),
            Theme::named(Some("light"), false),
            Theme::named(None, true),
        ] {
            assert!(t.selected().add_modifier.contains(Modifier::REVERSED));
        }
    }
}
