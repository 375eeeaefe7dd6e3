//! `tend top`'s own terminal drawing: a grid of styled cells ([`Buffer`])
//! that `render.rs` fills, and [`Terminal`], which writes to the real
//! terminal only the cells that changed since the last frame.
//!
//! Why not ratatui and crossterm: they were 0.13 MB of the static binary
//! (README, Install: the size target), for a view that needs lines of
//! text, a few styles, cursor moves and the terminal's size. The escapes used are the ECMA-48 / xterm ones every
//! terminal emulator and tmux understand (CUP, SGR, DECTCEM, the
//! alternate screen 1049).
//!
//! Owns no terminal state: raw mode and the alternate screen are
//! `mod.rs`'s. Must not read the keyboard (`input.rs`).

use std::io::{self, Write};
use unicode_width::UnicodeWidthChar;

/// The colours the view uses (SGR 30–37, 90 and their backgrounds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Colour {
    Black,
    Red,
    Green,
    Yellow,
    Cyan,
    White,
    DarkGray,
}

impl Colour {
    fn foreground(self) -> u8 {
        match self {
            Colour::Black => 30,
            Colour::Red => 31,
            Colour::Green => 32,
            Colour::Yellow => 33,
            Colour::Cyan => 36,
            Colour::White => 37,
            Colour::DarkGray => 90,
        }
    }
}

/// Bold, dim and reverse video, as bits.
pub const BOLD: u8 = 1;
pub const DIM: u8 = 2;
pub const REVERSED: u8 = 4;

/// How a cell looks. `None` colours are the terminal's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Style {
    pub fg: Option<Colour>,
    pub bg: Option<Colour>,
    pub modifiers: u8,
}

impl Style {
    pub fn fg(colour: Colour) -> Style {
        Style { fg: Some(colour), ..Style::default() }
    }

    pub fn with(self, modifiers: u8) -> Style {
        Style { modifiers: self.modifiers | modifiers, ..self }
    }

    pub fn on(self, colour: Colour) -> Style {
        Style { bg: Some(colour), ..self }
    }

    /// `other` laid over this style: its colours where it has them, and
    /// both styles' modifiers.
    pub fn patch(self, other: Style) -> Style {
        Style {
            fg: other.fg.or(self.fg),
            bg: other.bg.or(self.bg),
            modifiers: self.modifiers | other.modifiers,
        }
    }

    /// The SGR sequence that sets exactly this style (from a reset).
    fn sgr(self, out: &mut String) {
        out.push_str("\x1b[0");
        for (bit, code) in [(BOLD, 1), (DIM, 2), (REVERSED, 7)] {
            if self.modifiers & bit != 0 {
                out.push_str(&format!(";{code}"));
            }
        }
        if let Some(fg) = self.fg {
            out.push_str(&format!(";{}", fg.foreground()));
        }
        if let Some(bg) = self.bg {
            out.push_str(&format!(";{}", bg.foreground() + 10));
        }
        out.push('m');
    }
}

/// One cell: a character and its style. The cell right of a wide
/// character holds `None`: the terminal draws the character over both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cell {
    pub symbol: Option<char>,
    pub style: Style,
}

const BLANK: Cell = Cell { symbol: Some(' '), style: Style { fg: None, bg: None, modifiers: 0 } };

/// A place on the screen: a column, a row and a width (one line high).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub x: u16,
    pub y: u16,
    pub width: u16,
}

/// A frame: `width` × `height` cells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Buffer {
    pub width: u16,
    pub height: u16,
    cells: Vec<Cell>,
}

impl Buffer {
    pub fn new(width: u16, height: u16) -> Buffer {
        Buffer { width, height, cells: vec![BLANK; usize::from(width) * usize::from(height)] }
    }

    /// The cell at (x, y).
    pub fn cell(&self, x: u16, y: u16) -> Cell {
        self.cells[usize::from(y) * usize::from(self.width) + usize::from(x)]
    }

    fn cell_mut(&mut self, x: u16, y: u16) -> &mut Cell {
        &mut self.cells[usize::from(y) * usize::from(self.width) + usize::from(x)]
    }

    /// `span` cut to the buffer, or `None` when it lies outside.
    fn clip(&self, span: Span) -> Option<Span> {
        if span.y >= self.height || span.x >= self.width {
            return None;
        }
        Some(Span { width: span.width.min(self.width - span.x), ..span })
    }

    /// Lay `style` over every cell of `span`.
    pub fn style(&mut self, span: Span, style: Style) {
        let Some(span) = self.clip(span) else { return };
        for x in span.x..span.x + span.width {
            let cell = self.cell_mut(x, span.y);
            cell.style = cell.style.patch(style);
        }
    }

    /// Write `text` into `span` from its left edge, cut at its right edge
    /// (a wide character that does not fit is left out), each character
    /// with the cell's style patched by `style`. Control characters (a
    /// service's escape sequences) and zero-width ones are left out.
    /// Returns the columns written.
    pub fn text(&mut self, span: Span, text: &str, style: Style) -> u16 {
        let Some(span) = self.clip(span) else { return 0 };
        let end = span.x + span.width;
        let mut x = span.x;
        for c in text.chars().filter(|c| !c.is_control()) {
            let width = c.width().unwrap_or(0) as u16;
            if width == 0 {
                continue;
            }
            if x + width > end {
                break;
            }
            let cell = self.cell_mut(x, span.y);
            *cell = Cell { symbol: Some(c), style: cell.style.patch(style) };
            for rest in x + 1..x + width {
                let cell = self.cell_mut(rest, span.y);
                *cell = Cell { symbol: None, style: cell.style.patch(style) };
            }
            x += width;
        }
        x - span.x
    }

    /// Write `text` right-aligned in `span`; when it is too wide, its end
    /// is kept.
    pub fn text_right(&mut self, span: Span, text: &str, style: Style) {
        let width = text_width(text);
        if width <= usize::from(span.width) {
            let x = span.x + span.width - width as u16;
            self.text(Span { x, width: width as u16, ..span }, text, style);
        } else {
            let mut skip = width - usize::from(span.width);
            let kept: String = text
                .chars()
                .skip_while(|c| {
                    let w = c.width().unwrap_or(0);
                    let dropped = skip > 0;
                    skip = skip.saturating_sub(w);
                    dropped
                })
                .collect();
            self.text(span, &kept, style);
        }
    }

    /// The row `y` as text, trailing blanks dropped (tests).
    #[cfg(test)]
    pub fn line(&self, y: u16) -> String {
        (0..self.width).filter_map(|x| self.cell(x, y).symbol).collect::<String>().trim_end().to_string()
    }
}

/// The columns `text` takes, as [`Buffer::text`] writes it.
pub fn text_width(text: &str) -> usize {
    text.chars().filter(|c| !c.is_control()).map(|c| c.width().unwrap_or(0)).sum()
}

/// The real terminal: each frame written as the cells that changed since
/// the last one, in one write.
pub struct Terminal {
    last: Option<Buffer>,
}

impl Terminal {
    /// A terminal whose screen is cleared and fully drawn at the next frame.
    pub fn blank() -> io::Result<Terminal> {
        write_all("\x1b[2J")?;
        Ok(Terminal { last: None })
    }

    /// Draw `frame` (the whole frame when the size changed since the last).
    pub fn draw(&mut self, frame: Buffer) -> io::Result<()> {
        let mut out = String::new();
        let last = self.last.take().filter(|last| last.width == frame.width && last.height == frame.height);
        if last.is_none() {
            out.push_str("\x1b[0m\x1b[2J");
        }
        let mut style = None;
        // Where the terminal's cursor is after the last character written.
        let mut cursor = None;
        for y in 0..frame.height {
            for x in 0..frame.width {
                let cell = frame.cell(x, y);
                let Some(symbol) = cell.symbol else { continue };
                let changed = last.as_ref().is_none_or(|last| {
                    // A wide character's partner changed, too.
                    last.cell(x, y) != cell
                        || (x + 1 < frame.width && last.cell(x + 1, y) != frame.cell(x + 1, y))
                });
                if !changed {
                    continue;
                }
                if cursor != Some((x, y)) {
                    out.push_str(&format!("\x1b[{};{}H", y + 1, x + 1));
                }
                if style != Some(cell.style) {
                    cell.style.sgr(&mut out);
                    style = Some(cell.style);
                }
                out.push(symbol);
                cursor = Some((x + symbol.width().unwrap_or(1) as u16, y));
            }
        }
        if style.is_some_and(|style| style != Style::default()) {
            out.push_str("\x1b[0m");
        }
        self.last = Some(frame);
        write_all(&out)
    }
}

/// Write and flush `text` to standard output.
pub fn write_all(text: &str) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_cut_at_the_span_and_control_characters_left_out() {
        let mut buffer = Buffer::new(10, 2);
        let written = buffer.text(Span { x: 2, y: 0, width: 5 }, "ab\x1b[31mcdefgh", Style::default());
        assert_eq!(written, 5);
        assert_eq!(buffer.line(0), "  ab[31");
        buffer.text(Span { x: 0, y: 1, width: 10 }, "日本語の", Style::fg(Colour::Red));
        assert_eq!(buffer.line(1), "日本語の");
        assert_eq!(buffer.cell(1, 1).symbol, None, "the right half of a wide character");
        let mut narrow = Buffer::new(3, 1);
        narrow.text(Span { x: 0, y: 0, width: 3 }, "日本", Style::default());
        assert_eq!(narrow.line(0), "日", "a wide character that does not fit is left out");
    }

    #[test]
    fn right_aligned_text_keeps_its_end() {
        let mut buffer = Buffer::new(8, 2);
        buffer.text_right(Span { x: 0, y: 0, width: 8 }, "4242", Style::default());
        assert_eq!(buffer.line(0), "    4242");
        buffer.text_right(Span { x: 0, y: 1, width: 3 }, "12345", Style::default());
        assert_eq!(buffer.line(1), "345");
    }

    #[test]
    fn styles_patch_and_encode() {
        let bar = Style::fg(Colour::Black).on(Colour::Cyan);
        let key = bar.patch(Style::default().with(BOLD));
        assert_eq!(key, Style { fg: Some(Colour::Black), bg: Some(Colour::Cyan), modifiers: BOLD });
        let mut out = String::new();
        key.sgr(&mut out);
        assert_eq!(out, "\x1b[0;1;30;46m");
        let mut out = String::new();
        Style::default().with(REVERSED | DIM).sgr(&mut out);
        assert_eq!(out, "\x1b[0;2;7m");
    }
}
