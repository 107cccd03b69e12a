//! The live screen on a terminal: the alternate screen in raw mode, redrawn after every
//! update from the hub, until `q`, Esc, Ctrl-C or a SIGINT/SIGTERM.
//!
//! Whatever way it ends (a key, a signal, the hub refusing, a panic) the terminal is
//! given back as it was: [`Terminal`]'s drop leaves raw mode and the alternate screen,
//! and ratatui's panic hook does the same before a panic message is printed.

use crossterm::event::{Event, EventStream, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use tokio_stream::StreamExt as _;

use super::follow::Follower;
use super::render::render;
use super::view::View;
use crate::hub::{CliError, Hub};

/// The terminal while the screen is up.
struct Terminal(ratatui::DefaultTerminal);

impl Terminal {
    fn enter() -> Result<Terminal, CliError> {
        ratatui::try_init().map(Terminal).map_err(|err| {
            // Half set up is worse than not at all.
            let _ = ratatui::try_restore();
            CliError::Output(err)
        })
    }

    fn draw(&mut self, view: &View) -> Result<(), CliError> {
        self.0
            .draw(|frame| render(view, frame))
            .map(|_| ())
            .map_err(CliError::Output)
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.0.show_cursor();
        if let Err(err) = ratatui::try_restore() {
            tracing::warn!(%err, "could not restore the terminal");
        }
    }
}

pub async fn run(hub: &mut Hub) -> Result<(), CliError> {
    let mut view = View::new(hub.profile.hub.clone(), jiff::tz::TimeZone::system());
    let mut stop = Stop::new().map_err(CliError::Output)?;
    let mut terminal = Terminal::enter()?;
    let mut keys = EventStream::new();
    let mut follower = Follower::new(hub);
    loop {
        terminal.draw(&view)?;
        tokio::select! {
            update = follower.next() => view.apply(update?),
            event = keys.next() => match event {
                Some(Ok(Event::Key(key))) if quits(&key) => return Ok(()),
                // Anything else (a resize, another key) just redraws.
                Some(Ok(_)) => {}
                Some(Err(err)) => return Err(CliError::Output(err)),
                None => return Ok(()),
            },
            () = stop.signalled() => return Ok(()),
        }
    }
}

/// `q`, Esc, or Ctrl-C (which raw mode delivers as a key, not a signal).
fn quits(key: &KeyEvent) -> bool {
    key.kind == KeyEventKind::Press
        && match key.code {
            KeyCode::Char('q') | KeyCode::Esc => true,
            KeyCode::Char('c') => key.modifiers.contains(KeyModifiers::CONTROL),
            _ => false,
        }
}

/// SIGINT and SIGTERM from outside (`kill`, a closing terminal emulator).
struct Stop {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hangup: tokio::signal::unix::Signal,
}

impl Stop {
    #[cfg(unix)]
    fn new() -> std::io::Result<Stop> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Stop {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }

    #[cfg(not(unix))]
    fn new() -> std::io::Result<Stop> {
        Ok(Stop {})
    }

    #[cfg(unix)]
    async fn signalled(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
            _ = self.hangup.recv() => {}
        }
    }

    #[cfg(not(unix))]
    async fn signalled(&mut self) {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q_esc_and_ctrl_c_leave_other_keys_do_not() {
        let key = |code, modifiers| KeyEvent::new(code, modifiers);
        assert!(quits(&key(KeyCode::Char('q'), KeyModifiers::NONE)));
        assert!(quits(&key(KeyCode::Esc, KeyModifiers::NONE)));
        assert!(quits(&key(KeyCode::Char('c'), KeyModifiers::CONTROL)));
        assert!(!quits(&key(KeyCode::Char('c'), KeyModifiers::NONE)));
        assert!(!quits(&key(KeyCode::Char('x'), KeyModifiers::NONE)));
        let mut release = key(KeyCode::Char('q'), KeyModifiers::NONE);
        release.kind = KeyEventKind::Release;
        assert!(!quits(&release));
    }
}
