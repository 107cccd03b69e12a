//! Drawing the live screen: a pure function of the [`View`].
//!
//! ```text
//! Household at hub.local:7443 · live, seq 42
//! ┌Children────────────────────────────────────────────────────────────────────────┐
//! │Child  State   Time left              Devices            Requests  Last change  │
//! │Mia    active  1 h 45 min of 2 h 15…  ● Tablet ○ Laptop  1         18:02 Anna:… │
//! └────────────────────────────────────────────────────────────────────────────────┘
//! ┌Waiting for an answer───────────────────────────────────────────────────────────┐
//! │Mia asks for 20 min: homework  (household approve r-5b2c9e01aa17)               │
//! └────────────────────────────────────────────────────────────────────────────────┘
//! ┌What happened───────────────────────────────────────────────────────────────────┐
//! │18:02 Anna: added 15 min for Mia                                                │
//! └────────────────────────────────────────────────────────────────────────────────┘
//! q or Ctrl-C: leave   ● online ○ offline
//! ```

use household_proto::v1::ScreenState;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table};

use super::view::{ChildRow, Happening, Link, View};
use crate::status::{duration, state_words};

/// Draws `view` over the whole frame.
pub fn render(view: &View, frame: &mut Frame) {
    let pending_height = if view.pending.is_empty() {
        0
    } else {
        view.pending.len() as u16 + 2
    };
    let children_height = view.children.len().max(1) as u16 + 3;
    let [header, children, pending, happened, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(children_height),
        Constraint::Length(pending_height),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(frame.area());

    frame.render_widget(Paragraph::new(header_line(view)), header);
    render_children(view, frame, children);
    if !view.pending.is_empty() {
        let lines: Vec<Line> = view
            .pending
            .iter()
            .map(|p| {
                let note = if p.note.is_empty() {
                    String::new()
                } else {
                    format!(": {}", p.note)
                };
                Line::from(vec![
                    Span::styled(
                        format!(
                            "{} asks for {} min{note}",
                            view.child_name(&p.child_id),
                            p.minutes
                        ),
                        Style::new().fg(Color::Yellow),
                    ),
                    Span::styled(
                        format!("  (household approve {})", p.request_id),
                        Style::new().add_modifier(Modifier::DIM),
                    ),
                ])
            })
            .collect();
        frame.render_widget(
            Paragraph::new(lines).block(Block::bordered().title("Waiting for an answer")),
            pending,
        );
    }
    let lines: Vec<Line> = if view.happened.is_empty() {
        vec![Line::styled(
            "nothing yet since the watch began",
            Style::new().add_modifier(Modifier::DIM),
        )]
    } else {
        view.happened
            .iter()
            .map(|h| Line::from(happening_text(view, h)))
            .collect()
    };
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title("What happened")),
        happened,
    );
    frame.render_widget(
        Paragraph::new(Line::styled(
            "q or Ctrl-C: leave   ● online ○ offline",
            Style::new().add_modifier(Modifier::DIM),
        )),
        footer,
    );
}

fn header_line(view: &View) -> Line<'static> {
    let (words, style) = match &view.link {
        Link::Connecting => ("connecting…".to_owned(), Style::new().fg(Color::Yellow)),
        Link::CatchingUp { seq } => (
            format!("catching up, seq {seq}"),
            Style::new().fg(Color::Yellow),
        ),
        Link::Live { seq } => (format!("live, seq {seq}"), Style::new().fg(Color::Green)),
        Link::Lost { retry_in } => (
            format!(
                "the hub is unreachable; trying again in {} s (showing what it said last)",
                retry_in.as_secs()
            ),
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        ),
    };
    Line::from(vec![
        Span::styled(
            format!("Household at {} · ", view.hub),
            Style::new().add_modifier(Modifier::BOLD),
        ),
        Span::styled(words, style),
    ])
}

fn render_children(view: &View, frame: &mut Frame, area: ratatui::layout::Rect) {
    let block = Block::bordered().title("Children");
    if view.children.is_empty() {
        frame.render_widget(
            Paragraph::new("no children yet: add one with `household children add NAME`")
                .block(block),
            area,
        );
        return;
    }
    let rows: Vec<[String; 5]> = view
        .children
        .iter()
        .map(|row| {
            [
                row.name.clone(),
                state_words(row.state).to_owned(),
                format!(
                    "{} of {}",
                    duration(row.remaining_seconds),
                    duration(row.allowance_seconds)
                ),
                devices_text(row),
                row.pending_requests.to_string(),
            ]
        })
        .collect();
    let headings = ["Child", "State", "Time left", "Devices", "Requests"];
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain([headings[i].len()])
            .max()
            .unwrap_or(0) as u16
    };
    let widths = [
        Constraint::Length(width(0)),
        Constraint::Length(width(1)),
        Constraint::Length(width(2)),
        Constraint::Length(width(3)),
        Constraint::Length(width(4)),
        Constraint::Fill(1),
    ];
    let table_rows =
        view.children
            .iter()
            .zip(rows)
            .map(|(row, [name, state, left, devices, requests])| {
                let last = row
                    .last
                    .as_ref()
                    .map_or_else(|| "—".to_owned(), |h| happening_text(view, h));
                let requests_style = if row.pending_requests > 0 {
                    Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD)
                } else {
                    Style::new()
                };
                Row::new([
                    Cell::from(name).style(Style::new().add_modifier(Modifier::BOLD)),
                    Cell::from(state).style(state_style(row.state)),
                    Cell::from(left),
                    Cell::from(devices),
                    Cell::from(requests).style(requests_style),
                    Cell::from(last),
                ])
            });
    let header = Row::new(headings.into_iter().chain(["Last change"]))
        .style(Style::new().add_modifier(Modifier::UNDERLINED));
    frame.render_widget(
        Table::new(table_rows, widths)
            .header(header)
            .column_spacing(2)
            .block(block),
        area,
    );
}

fn devices_text(row: &ChildRow) -> String {
    if row.devices.is_empty() {
        return "none".into();
    }
    row.devices
        .iter()
        .map(|d| format!("{} {}", if d.online { "●" } else { "○" }, d.name))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `18:02 Anna: added 15 min for Mia`, the time on this machine's clock.
fn happening_text(view: &View, happening: &Happening) -> String {
    let at = jiff::Timestamp::from_microsecond(happening.time_unix_micros)
        .map(|t| {
            t.to_zoned(view.time_zone.clone())
                .strftime("%H:%M")
                .to_string()
        })
        .unwrap_or_default();
    format!("{at} {}: {}", happening.actor, happening.summary)
}

fn state_style(state: i32) -> Style {
    let colour = match ScreenState::try_from(state) {
        Ok(ScreenState::Active) => Color::Green,
        Ok(ScreenState::Warning) => Color::Yellow,
        Ok(ScreenState::Grace | ScreenState::Blocked) => Color::Red,
        Ok(ScreenState::Locked) => Color::Magenta,
        Ok(ScreenState::Downtime) => Color::Blue,
        _ => Color::Reset,
    };
    Style::new().fg(colour)
}

#[cfg(test)]
mod tests;
