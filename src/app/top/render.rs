//! Drawing `tend top`'s view into a ratatui frame: the title line, the
//! table, the log pane, the message or prompt line and the footer. Layout
//! and styles only; what each cell says comes from `model.rs`.
//!
//! Colour is only ever added on top of a layout that reads without it
//! (states are words, the selection is reverse video), so `NO_COLOR`
//! removes every colour and loses nothing.

use super::model::{self, Link, Model, StateLook, Tone, HEADERS};
use crate::ctl::proto::Stream;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, TableState};
use ratatui::Frame;
use std::time::Instant;

/// Colours, or none at all (`NO_COLOR`).
#[derive(Debug, Clone, Copy)]
pub struct Palette {
    pub colour: bool,
}

impl Palette {
    fn fg(self, colour: Color) -> Style {
        if self.colour {
            Style::default().fg(colour)
        } else {
            Style::default()
        }
    }

    fn state(self, look: StateLook) -> Style {
        match look {
            StateLook::Good => self.fg(Color::Green),
            StateLook::Changing => self.fg(Color::Yellow),
            StateLook::Bad => self.fg(Color::Red).add_modifier(Modifier::BOLD),
            StateLook::Idle => self.fg(Color::DarkGray),
        }
    }

    fn bar(self) -> Style {
        if self.colour {
            Style::default().fg(Color::Black).bg(Color::Cyan)
        } else {
            Style::default().add_modifier(Modifier::REVERSED)
        }
    }

    fn alarm(self) -> Style {
        if self.colour {
            Style::default().fg(Color::White).bg(Color::Red).add_modifier(Modifier::BOLD)
        } else {
            Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD)
        }
    }

    fn tone(self, tone: Tone) -> Style {
        match tone {
            Tone::Info => Style::default(),
            Tone::Error => self.fg(Color::Red).add_modifier(Modifier::BOLD),
        }
    }
}

/// Columns right-aligned (numbers).
const RIGHT: [bool; 8] = [false, false, true, true, true, true, true, false];

pub fn draw(frame: &mut Frame, model: &Model, now: Instant, palette: Palette) {
    let area = frame.area();
    let rows = model.visible();
    let body = area.height.saturating_sub(3);
    let (table_height, logs_height) = match model.logs {
        Some(_) => {
            let table = (rows.len() as u16 + 1).clamp(3, (body / 2).max(3)).min(body);
            (table, body - table)
        }
        None => (body, 0),
    };
    let [title_area, table_area, logs_area, detail_area, footer_area] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(table_height),
        Constraint::Length(logs_height),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);

    draw_title(frame, model, title_area, palette);
    draw_table(frame, model, &rows, now, table_area, palette);
    if logs_height > 0 {
        draw_logs(frame, model, logs_area, palette);
    }
    let detail = match model.prompt() {
        Some(prompt) => Line::styled(prompt, Style::default().add_modifier(Modifier::BOLD)),
        None => match model.detail() {
            Some(message) => Line::styled(message.text, palette.tone(message.tone)),
            None => Line::default(),
        },
    };
    frame.render_widget(Paragraph::new(detail), detail_area);
    frame.render_widget(footer(&model.footer(), footer_area.width, palette), footer_area);
}

/// `key what` pairs, the keys bold, two spaces apart or one when the
/// width is short (80 columns take every key of the normal mode).
fn footer(keys: &[(&str, &str)], width: u16, palette: Palette) -> Paragraph<'static> {
    let length: usize = keys.iter().map(|(key, what)| key.chars().count() + 1 + what.chars().count()).sum();
    let gap = if length + 2 * keys.len().saturating_sub(1) <= width as usize { "  " } else { " " };
    let mut spans = Vec::new();
    for (i, (key, what)) in keys.iter().enumerate() {
        if i > 0 {
            spans.push(Span::raw(gap));
        }
        spans.push(Span::styled(key.to_string(), Style::default().add_modifier(Modifier::BOLD)));
        spans.push(Span::raw(format!(" {what}")));
    }
    Paragraph::new(Line::from(spans)).style(palette.bar())
}

fn draw_title(frame: &mut Frame, model: &Model, area: Rect, palette: Palette) {
    let (left, right) = match &model.link {
        Link::Connected => model.title(),
        Link::Lost(_) => {
            ("the supervisor does not answer: trying again every second".to_string(), "q quits".to_string())
        }
    };
    let style = if let Link::Lost(_) = model.link { palette.alarm() } else { palette.bar() };
    let right_width = (right.chars().count() as u16 + 1).min(area.width);
    let [left_area, right_area] =
        Layout::horizontal([Constraint::Fill(1), Constraint::Length(right_width)]).areas(area);
    frame.render_widget(Paragraph::new(left).style(style), left_area);
    frame.render_widget(
        Paragraph::new(format!("{right} ")).style(style).alignment(Alignment::Right),
        right_area,
    );
}

fn draw_table(
    frame: &mut Frame,
    model: &Model,
    rows: &[&model::Row],
    now: Instant,
    area: Rect,
    palette: Palette,
) {
    let stale = matches!(model.link, Link::Lost(_));
    let name_width =
        rows.iter().map(|row| row.status.name.chars().count()).max().unwrap_or(0).clamp(4, 24) as u16;
    let widths = [
        Constraint::Length(name_width),
        Constraint::Length(9),
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Length(8),
        Constraint::Length(5),
        Constraint::Length(6),
        Constraint::Fill(1),
    ];
    let align = |text: String, column: usize| {
        let line = Line::from(text);
        Cell::from(if RIGHT[column] { line.alignment(Alignment::Right) } else { line })
    };
    let header = Row::new(HEADERS.iter().enumerate().map(|(i, h)| align(h.to_string(), i)))
        .style(Style::default().add_modifier(Modifier::BOLD));
    let body: Vec<Row> = rows
        .iter()
        .map(|row| {
            let cells = model::cells(model, row, now);
            let look = model::state_look(&row.status);
            let row_cells = cells.into_iter().enumerate().map(|(i, text)| {
                let cell = align(text, i);
                match i {
                    1 => cell.style(palette.state(look)),
                    7 if look == StateLook::Bad => cell.style(palette.fg(Color::Red)),
                    _ => cell,
                }
            });
            let row = Row::new(row_cells);
            if stale {
                row.style(Style::default().add_modifier(Modifier::DIM))
            } else {
                row
            }
        })
        .collect();
    let empty = body.is_empty();
    let table = Table::new(body, widths)
        .header(header)
        .column_spacing(1)
        .row_highlight_style(Style::default().add_modifier(Modifier::REVERSED));
    let mut state = TableState::default().with_selected((!empty).then_some(model.selected_index()));
    frame.render_stateful_widget(table, area, &mut state);
    if empty && area.height > 1 {
        let text = if model.total() == 0 { "no services" } else { "no service matches the filter" };
        let below_header = Rect { y: area.y + 1, height: 1, ..area };
        frame.render_widget(Paragraph::new(Line::from(text)), below_header);
    }
}

fn draw_logs(frame: &mut Frame, model: &Model, area: Rect, palette: Palette) {
    let Some(pane) = &model.logs else { return };
    let state = if pane.following { "following" } else { "not following: the supervisor does not answer" };
    let block = Block::default().borders(Borders::TOP).title(format!(" logs of {} ({state}) ", pane.service));
    let inner = block.inner(area);
    let shown = inner.height as usize;
    let lines: Vec<Line> = pane
        .lines
        .iter()
        .skip(pane.lines.len().saturating_sub(shown))
        .map(|entry| {
            let text = entry.text.replace('\t', "    ");
            match entry.stream {
                Stream::Stdout => Line::from(text),
                Stream::Stderr => Line::from(Span::styled(text, palette.fg(Color::Yellow))),
            }
        })
        .collect();
    let lines = if lines.is_empty() { vec![Line::from("(no output yet)")] } else { lines };
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::top::model::{Key, LogEntry};
    use crate::ctl::proto::{ServiceState, ServiceStatus, StatusReply, True};
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    fn status(name: &str, state: ServiceState, pid: Option<i32>) -> ServiceStatus {
        ServiceStatus {
            name: name.into(),
            unit: None,
            instance: None,
            enabled: true,
            state,
            pid,
            since: "2026-01-01T00:00:00Z".into(),
            since_secs: 5.0,
            uptime_secs: pid.map(|_| 75.0),
            restarts: 1,
            last_exit: None,
            reason: None,
            healthy: pid.is_some(),
            log_errors: vec![],
            status_text: None,
            last_check: None,
            memory_bytes: pid.map(|_| 3 << 20),
            cpu_usec: None,
        }
    }

    fn screen(model: &Model, palette: Palette, now: Instant) -> (Vec<String>, ratatui::buffer::Buffer) {
        let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
        terminal.draw(|frame| draw(frame, model, now, palette)).unwrap();
        let buffer = terminal.backend().buffer().clone();
        let lines = (0..24)
            .map(|y| {
                (0..80)
                    .map(|x| buffer[(x, y)].symbol().to_string())
                    .collect::<String>()
                    .trim_end()
                    .to_string()
            })
            .collect();
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
            let coloured =
                buffer.content.iter().any(|cell| cell.fg != Color::Reset || cell.bg != Color::Reset);
            assert_eq!(coloured, colour);
        }
        let (_, buffer) = screen(&model, Palette { colour: false }, now);
        assert!(buffer[(0, 2)].modifier.contains(Modifier::REVERSED), "the selection shows without colour");
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
