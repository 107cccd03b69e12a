//! What the demo is doing while it starts: on a terminal a spinner beside the current
//! step, redrawn in place on one line; otherwise (a pipe, a file, CI) a plain line per
//! step.

use std::io::{IsTerminal as _, Write as _};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const FRAME_EVERY: Duration = Duration::from_millis(80);
/// Back to the line's start, and clear it.
const CLEAR_LINE: &str = "\r\x1b[2K";

/// The start-up's progress; the spinner stops (and its line is cleared) when this is
/// dropped, however the start-up ends.
pub struct Progress {
    step: watch::Sender<String>,
    spinner: Option<JoinHandle<()>>,
}

impl Progress {
    /// A spinner if stdout is a terminal, plain lines otherwise.
    pub fn new() -> Progress {
        let step = watch::Sender::new(String::new());
        let spinner = std::io::stdout()
            .is_terminal()
            .then(|| tokio::spawn(spin(step.subscribe())));
        Progress { step, spinner }
    }

    /// Says what is being done now.
    pub fn step(&self, text: impl Into<String>) {
        let text = text.into();
        if self.spinner.is_none() {
            // A closed stdout (`| head`) is no reason to stop, nor to panic.
            let _ = writeln!(std::io::stdout(), "{text}");
        }
        self.step.send_replace(text);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(spinner) = self.spinner.take() {
            spinner.abort();
            let mut stdout = std::io::stdout();
            let _ = write!(stdout, "{CLEAR_LINE}");
            let _ = stdout.flush();
        }
    }
}

async fn spin(mut step: watch::Receiver<String>) {
    let mut ticks = tokio::time::interval(FRAME_EVERY);
    for frame in FRAMES.iter().cycle() {
        tokio::select! {
            _ = ticks.tick() => {}
            changed = step.changed() => if changed.is_err() { return },
        }
        let line = format!("{CLEAR_LINE}{frame} {}…", *step.borrow_and_update());
        let mut stdout = std::io::stdout();
        if stdout
            .write_all(line.as_bytes())
            .and_then(|()| stdout.flush())
            .is_err()
        {
            return;
        }
    }
}
