//! `household demo`: the whole household in one process, started, watched and stopped,
//! with nothing left behind.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const CLI: &str = env!("CARGO_BIN_EXE_household");
const DIR_LINE: &str = "household demo in ";

fn demo(args: &[&str]) -> Command {
    let mut command = Command::new(CLI);
    command
        .arg("demo")
        .args(args)
        .stdin(Stdio::null())
        // The demo's logs go to its directory whatever RUST_LOG says; debug makes sure
        // nothing of them reaches the output.
        .env("RUST_LOG", "debug");
    command
}

/// The temporary directory the demo says it used.
fn demo_dir(stdout: &str) -> PathBuf {
    let line = stdout
        .lines()
        .find_map(|line| line.strip_prefix(DIR_LINE))
        .unwrap_or_else(|| panic!("no {DIR_LINE:?} line in:\n{stdout}"));
    PathBuf::from(line)
}

fn succeeded(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{:?}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn a_five_second_demo_shows_the_children_and_leaves_nothing_behind() {
    let started = Instant::now();
    let output = demo(&["--duration", "5s"])
        .output()
        .expect("run household demo");
    let stdout = succeeded(&output);
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "stopped after {:?}:\n{stdout}",
        started.elapsed()
    );
    let dir = demo_dir(&stdout);
    assert!(!dir.exists(), "{} is still there", dir.display());
    assert!(
        stdout.ends_with(&format!(
            "household demo stopped; removed {}\n",
            dir.display()
        )),
        "{stdout}"
    );
    // The watch's lines: each of the two children, with the demo's allowance.
    for child in ["Mia", "Leo"] {
        assert!(
            stdout
                .lines()
                .any(|line| line == format!("{child}: almost out of time, 3 min left")),
            "no status line for {child}:\n{stdout}"
        );
    }
    assert!(
        !stdout.contains("Ava"),
        "two children by default:\n{stdout}"
    );
    assert!(stdout.contains("enrolling Mia's tablet"), "{stdout}");
    // No log line of the hub's or the agents' on either stream.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.is_empty(), "{stderr}");
    assert!(
        !stdout.contains("INFO") && !stdout.contains("DEBUG"),
        "{stdout}"
    );
}

#[test]
fn ctrl_c_stops_the_demo_cleanly() {
    let mut running = demo(&["--children", "1", "--minutes", "30"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start household demo");
    let mut lines = BufReader::new(running.stdout.take().expect("stdout")).lines();
    let mut seen = Vec::new();
    // Interrupted once the watch has shown the child.
    loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("the demo ended early:\n{}", seen.join("\n")))
            .expect("demo stdout");
        let shown = line.starts_with("Mia: ");
        seen.push(line);
        if shown {
            break;
        }
    }
    assert_eq!(
        seen.last().map(String::as_str),
        Some("Mia: active, 30 min left")
    );
    let dir = demo_dir(&seen.join("\n"));
    assert!(dir.join("hub").is_dir(), "{}", dir.display());
    assert!(dir.join("guardian").join("profile.json").is_file());
    let mode = std::fs::metadata(&dir)
        .expect("the demo's directory")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700, "{}", dir.display());
    let killed = Command::new("kill")
        .args(["-INT", &running.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = running.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "still running 20 s after Ctrl-C");
        std::thread::sleep(Duration::from_millis(50));
    };
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(status.success(), "{status:?}: {rest:?}");
    assert!(!dir.exists(), "{} is still there", dir.display());
    assert_eq!(
        rest.last().map(String::as_str),
        Some(format!("household demo stopped; removed {}", dir.display()).as_str())
    );
}

#[test]
fn on_a_terminal_the_demo_is_the_live_screen_and_ctrl_c_gives_the_terminal_back() {
    use portable_pty::{CommandBuilder, PtySize, native_pty_system};

    const ROWS: u16 = 30;
    const COLUMNS: u16 = 110;
    let pty = native_pty_system()
        .openpty(PtySize {
            rows: ROWS,
            cols: COLUMNS,
            pixel_width: 0,
            pixel_height: 0,
        })
        .unwrap();
    let mut command = CommandBuilder::new(CLI);
    command.args(["demo", "--children", "3"]);
    command.env("RUST_LOG", "debug");
    command.env("TERM", "xterm-256color");
    let mut demo = pty.slave.spawn_command(command).unwrap();
    drop(pty.slave);
    let mut keys = pty.master.take_writer().unwrap();
    let mut output = pty.master.try_clone_reader().unwrap();
    let (bytes_tx, bytes) = mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        while let Ok(n) = output.read(&mut buffer) {
            if n == 0 || bytes_tx.send(buffer[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut terminal = vt100::Parser::new(
        std::num::NonZeroU16::new(ROWS).unwrap(),
        std::num::NonZeroU16::new(COLUMNS).unwrap(),
        0,
    );
    let mut written = Vec::new();
    let mut wait_for = |what: &str, check: &dyn Fn(&vt100::Screen) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !check(terminal.screen()) {
            let left = deadline.saturating_duration_since(Instant::now());
            match bytes.recv_timeout(left) {
                Ok(chunk) => {
                    terminal.process(&chunk);
                    written.extend_from_slice(&chunk);
                }
                Err(_) => panic!(
                    "{what} within 60 s; the screen:\n{}",
                    terminal.screen().contents()
                ),
            }
        }
        terminal.screen().contents()
    };

    // Every device online: Mia's two, Leo's and Ava's one.
    let screen = wait_for("the household on the live screen", &|screen| {
        let text = screen.contents();
        screen.alternate_screen()
            && text.contains("live, seq")
            && ["Mia", "Leo", "Ava"].iter().all(|c| text.contains(c))
            && text.matches('●').count() >= 5
    });
    assert!(screen.starts_with("Household at 127.0.0.1:"), "{screen}");
    assert!(
        !screen.contains("INFO") && !screen.contains("WARN"),
        "{screen}"
    );
    keys.write_all(b"\x03").unwrap();
    keys.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = demo.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "still running 20 s after Ctrl-C");
        std::thread::sleep(Duration::from_millis(50));
    };
    while let Ok(chunk) = bytes.recv_timeout(Duration::from_millis(500)) {
        terminal.process(&chunk);
        written.extend_from_slice(&chunk);
    }
    assert!(status.success(), "{status:?}");
    assert!(!terminal.screen().alternate_screen());
    assert!(!terminal.screen().hide_cursor());
    let text = String::from_utf8_lossy(&written);
    // The spinner turned while it started: a frame, a step, on one line redrawn.
    assert!(
        ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏']
            .iter()
            .any(|frame| text.contains(&format!("\r\x1b[2K{frame} "))),
        "{text}"
    );
    let dir = demo_dir(&text.replace('\r', ""));
    assert!(!dir.exists(), "{} is still there", dir.display());
    assert!(
        terminal.screen().contents().contains(&format!(
            "household demo stopped; removed {}",
            dir.display()
        )),
        "{}",
        terminal.screen().contents()
    );
}
