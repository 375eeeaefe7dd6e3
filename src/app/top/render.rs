//! Drawing `tend top`'s view into a [`Buffer`]: the title line, the
//! table, the log pane, the message or prompt line and the footer. Layout
//! and styles only; what each cell says comes from `model.rs`.
//!
//! Colour is only ever added on top of a layout that reads without it
//! (states are words, the selection is reverse video), so `NO_COLOR`
//! removes every colour and loses nothing.

use super::model::{self, Link, Model, StateLook, Tone, HEADERS};
use super::screen::{Buffer, Colour, Span, Style, BOLD, DIM, REVERSED};
use crate::ctl::proto::Stream;
use std::time::Instant;

/// Colours, or none at all (`NO_COLOR`).
#[derive(Debug, Clone, Copy)]
pub struct Palette {
    pub colour: bool,
}

impl Palette {
    fn fg(self, colour: Colour) -> Style {
        if self.colour {
            Style::fg(colour)
        } else {
            Style::default()
        }
    }

    fn state(self, look: StateLook) -> Style {
        match look {
            StateLook::Good => self.fg(Colour::Green),
            StateLook::Changing => self.fg(Colour::Yellow),
            StateLook::Bad => self.fg(Colour::Red).with(BOLD),
            StateLook::Idle => self.fg(Colour::DarkGray),
        }
    }

    fn bar(self) -> Style {
        if self.colour {
            Style::fg(Colour::Black).on(Colour::Cyan)
        } else {
            Style::default().with(REVERSED)
        }
    }

    fn alarm(self) -> Style {
        if self.colour {
            Style::fg(Colour::White).on(Colour::Red).with(BOLD)
        } else {
            Style::default().with(REVERSED | BOLD)
        }
    }

    fn tone(self, tone: Tone) -> Style {
        match tone {
            Tone::Info => Style::default(),
            Tone::Error => self.fg(Colour::Red).with(BOLD),
        }
    }
}

/// Columns right-aligned (numbers).
const RIGHT: [bool; 8] = [false, false, true, true, true, true, true, false];

/// The fixed widths of the table's columns after the name; the last
/// column takes what is left.
const WIDTHS: [u16; 6] = [9, 7, 7, 8, 5, 6];

/// One line of the screen, `width` wide.
fn line(y: u16, width: u16) -> Span {
    Span { x: 0, y, width }
}

/// The whole view, at the buffer's size: the title on the first line, the
/// message and the footer on the last two, the table (and the log pane,
/// when open) between.
pub fn draw(buffer: &mut Buffer, model: &Model, now: Instant, palette: Palette) {
    let (width, height) = (buffer.width, buffer.height);
    let rows = model.visible();
    let body = height.saturating_sub(3);
    let (table_height, logs_height) = match model.logs {
        Some(_) => {
            let table = (rows.len() as u16 + 1).clamp(3, (body / 2).max(3)).min(body);
            (table, body - table)
        }
        None => (body, 0),
    };
    draw_title(buffer, model, width, palette);
    draw_table(buffer, model, &rows, now, (1, table_height), palette);
    if logs_height > 0 {
        draw_logs(buffer, model, (1 + table_height, logs_height), palette);
    }
    let detail = line(1 + body, width);
    match model.prompt() {
        Some(prompt) => {
            buffer.style(detail, Style::default().with(BOLD));
            buffer.text(detail, &prompt, Style::default());
        }
        None => {
            if let Some(message) = model.detail() {
                buffer.style(detail, palette.tone(message.tone));
                buffer.text(detail, &message.text, Style::default());
            }
        }
    }
    draw_footer(buffer, &model.footer(), line(2 + body, width), palette);
}

/// `key what` pairs, the keys bold, two spaces apart or one when the
/// width is short (80 columns take every key of the normal mode).
fn draw_footer(buffer: &mut Buffer, keys: &[(&str, &str)], span: Span, palette: Palette) {
    let length: usize = keys.iter().map(|(key, what)| key.chars().count() + 1 + what.chars().count()).sum();
    let gap = if length + 2 * keys.len().saturating_sub(1) <= span.width as usize { "  " } else { " " };
    buffer.style(span, palette.bar());
    let mut at = span;
    let mut put = |text: &str, style: Style| {
        let written = buffer.text(at, text, style);
        at = Span { x: at.x + written, width: at.width - written, ..at };
    };
    for (i, (key, what)) in keys.iter().enumerate() {
        if i > 0 {
            put(gap, Style::default());
        }
        put(key, Style::default().with(BOLD));
        put(&format!(" {what}"), Style::default());
    }
}

fn draw_title(buffer: &mut Buffer, model: &Model, width: u16, palette: Palette) {
    let (left, right) = match &model.link {
        Link::Connected => model.title(),
        Link::Lost(_) => {
            ("the supervisor does not answer: trying again every second".to_string(), "q quits".to_string())
        }
    };
    let style = if let Link::Lost(_) = model.link { palette.alarm() } else { palette.bar() };
    let right_width = (right.chars().count() as u16 + 1).min(width);
    let title = line(0, width);
    buffer.style(title, style);
    buffer.text(Span { width: width - right_width, ..title }, &left, Style::default());
    buffer.text_right(
        Span { x: width - right_width, width: right_width, ..title },
        &format!("{right} "),
        Style::default(),
    );
}

/// The table in the rows `top..top + height`: a header, then as many rows
/// as fit, scrolled so that the selected one shows.
fn draw_table(
    buffer: &mut Buffer,
    model: &Model,
    rows: &[&model::Row],
    now: Instant,
    (top, height): (u16, u16),
    palette: Palette,
) {
    if height == 0 {
        return;
    }
    let width = buffer.width;
    let stale = matches!(model.link, Link::Lost(_));
    let name_width =
        rows.iter().map(|row| row.status.name.chars().count()).max().unwrap_or(0).clamp(4, 24) as u16;
    // Each column's left edge and width, one space apart, cut at the edge.
    let mut columns = [Span { x: 0, y: 0, width: 0 }; 8];
    let mut x = 0u16;
    for (i, column) in columns.iter_mut().enumerate() {
        let wanted = match i {
            0 => name_width,
            7 => width.saturating_sub(x),
            _ => WIDTHS[i - 1],
        };
        *column = Span { x, y: 0, width: wanted.min(width.saturating_sub(x)) };
        x = x.saturating_add(wanted + 1).min(width);
    }
    let cell = |buffer: &mut Buffer, y: u16, i: usize, text: &str, style: Style| {
        let span = Span { y, ..columns[i] };
        if span.width == 0 {
            return;
        }
        buffer.style(span, style);
        if RIGHT[i] {
            buffer.text_right(span, text, Style::default());
        } else {
            buffer.text(span, text, Style::default());
        }
    };
    buffer.style(line(top, width), Style::default().with(BOLD));
    for (i, header) in HEADERS.iter().enumerate() {
        cell(buffer, top, i, header, Style::default());
    }
    let shown = usize::from(height - 1);
    let selected = (!rows.is_empty()).then(|| model.selected_index());
    let first = selected.map_or(0, |s| (s + 1).saturating_sub(shown));
    for (n, row) in rows.iter().enumerate().skip(first).take(shown) {
        let y = top + 1 + (n - first) as u16;
        if stale {
            buffer.style(line(y, width), Style::default().with(DIM));
        }
        let look = model::state_look(&row.status);
        for (i, text) in model::cells(model, row, now).iter().enumerate() {
            let style = match i {
                1 => palette.state(look),
                7 if look == StateLook::Bad => palette.fg(Colour::Red),
                _ => Style::default(),
            };
            cell(buffer, y, i, text, style);
        }
        if selected == Some(n) {
            buffer.style(line(y, width), Style::default().with(REVERSED));
        }
    }
    if rows.is_empty() && height > 1 {
        let text = if model.total() == 0 { "no services" } else { "no service matches the filter" };
        buffer.text(line(top + 1, width), text, Style::default());
    }
}

/// The log pane in the rows `top..top + height`: a rule with its title,
/// then the newest lines that fit, oldest first.
fn draw_logs(buffer: &mut Buffer, model: &Model, (top, height): (u16, u16), palette: Palette) {
    let Some(pane) = &model.logs else { return };
    let width = buffer.width;
    let state = if pane.following { "following" } else { "not following: the supervisor does not answer" };
    buffer.text(line(top, width), &"─".repeat(usize::from(width)), Style::default());
    buffer.text(line(top, width), &format!(" logs of {} ({state}) ", pane.service), Style::default());
    let shown = usize::from(height - 1);
    let lines = pane.lines.iter().skip(pane.lines.len().saturating_sub(shown));
    if pane.lines.is_empty() && shown > 0 {
        buffer.text(line(top + 1, width), "(no output yet)", Style::default());
    }
    for (n, entry) in lines.enumerate() {
        let text = entry.text.replace('\t', "    ");
        let style = match entry.stream {
            Stream::Stdout => Style::default(),
            Stream::Stderr => palette.fg(Colour::Yellow),
        };
        buffer.text(line(top + 1 + n as u16, width), &text, style);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::top::model::{Key, LogEntry};
    use crate::ctl::proto::{ServiceState, ServiceStatus, StatusReply, True};

    fn status(name: &str, state: ServiceState, pid: Option<i32>) -> ServiceStatus {
        ServiceStatus {
            uptime_secs: pid.map(|_| 75.0),
            restarts: 1,
            healthy: pid.is_some(),
            memory_bytes: pid.map(|_| 3 << 20),
            ..crate::app::fixtures::service_status(name, state, pid)
        }
    }

    fn screen(model: &Model, palette: Palette, now: Instant) -> (Vec<String>, Buffer) {
        let mut buffer = Buffer::new(80, 24);
        draw(&mut buffer, model, now, palette);
        let lines = (0..24).map(|y| buffer.line(y)).collect();
        (lines, buffer)
    }

    fn model() -> (Model, Instant) {
        let mut model = Model::new();
        let now = Instant::now();
        let mut worker = status("worker", ServiceState::Backoff, None);
        worker.reason = Some("exited with status 1; restarting in 1.6s, and a long tail to cut".into());
        let services = vec![
            status("web", ServiceState::Running, Some(4242)),
            worker,
            status("db", ServiceState::Ready, Some(7)),
        ];
        model.apply_status(StatusReply { ok: True, pid: 1, services }, now, now);
        (model, now)
    }

    #[test]
    fn fits_80_by_24() {
        let (model, now) = model();
        let (lines, _) = screen(&model, Palette { colour: true }, now);
        assert_eq!(
            lines[0],
            format!("{:<69}sort: name", "tend top  3 services: 1 backoff, 1 running, 1 ready")
        );
        assert_eq!(lines[1], "NAME   STATE         PID  UPTIME RESTARTS  CPU%    MEM LAST EXIT / REASON");
        assert_eq!(lines[2], "db     ready           7   1m15s        1     -   3.0M");
        assert_eq!(lines[3], "web    running      4242   1m15s        1     -   3.0M");
        assert_eq!(
            lines[4],
            "worker backoff         -       -        1     -      - exited with status 1; res"
        );
        assert_eq!(lines[22], "", "no message, and the selected db has no reason");
        assert_eq!(lines[23], "↑↓/jk select s start r restart x stop K signal l logs / filter o sort q quit");
    }

    #[test]
    fn no_colour_means_no_colour() {
        let (mut model, now) = model();
        model.handle_key(Key::Char('l'));
        model.apply_log("db", LogEntry { stream: Stream::Stderr, text: "warning".into() });
        model.apply_lost("connection refused".into(), now);
        for colour in [true, false] {
            let (_, buffer) = screen(&model, Palette { colour }, now);
            let coloured = (0..24)
                .flat_map(|y| (0..80).map(move |x| (x, y)))
                .any(|(x, y)| buffer.cell(x, y).style.fg.is_some() || buffer.cell(x, y).style.bg.is_some());
            assert_eq!(coloured, colour);
        }
        let (_, buffer) = screen(&model, Palette { colour: false }, now);
        assert!(buffer.cell(0, 2).style.modifiers & REVERSED != 0, "the selection shows without colour");
    }

    #[test]
    fn log_pane_shares_the_screen() {
        let (mut model, now) = model();
        model.handle_key(Key::Char('l'));
        for n in 0..40 {
            model.apply_log("db", LogEntry { stream: Stream::Stdout, text: format!("line {n}") });
        }
        let (lines, _) = screen(&model, Palette { colour: true }, now);
        assert!(lines[2].starts_with("db "), "{lines:#?}");
        assert!(lines[5].contains("logs of db (following)"), "{lines:#?}");
        assert_eq!(lines[21], "line 39", "the newest line at the bottom");
        assert_eq!(lines[6], "line 24");
    }
}
