//! The real `household-hub` the CLI's tests talk to.

#![allow(dead_code)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub const CLI: &str = env!("CARGO_BIN_EXE_household");

/// `household-hub`, built beside this binary by `cargo build` or `cargo test --workspace`.
pub fn hub_binary() -> PathBuf {
    let dir = Path::new(CLI).parent().expect("the CLI's directory");
    let hub = dir.join("household-hub");
    assert!(
        hub.exists(),
        "{} is missing: run `cargo build -p household-hub` (cargo test --workspace builds it)",
        hub.display()
    );
    hub
}

pub struct Hub {
    pub process: Child,
    pub address: String,
    pub data: PathBuf,
}

impl Hub {
    pub fn start(data: &Path) -> Hub {
        Hub::start_at(data, "127.0.0.1:0")
    }

    /// Kills the hub (SIGKILL) and starts it again on the same data and address.
    pub fn kill9_and_restart(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
        *self = Hub::start_at(&self.data.clone(), &self.address.clone());
    }

    fn start_at(data: &Path, listen: &str) -> Hub {
        let mut process = Command::new(hub_binary())
            .args([
                "serve",
                "--listen",
                listen,
                "--no-mdns",
                "--rate-limit",
                "0",
            ])
            .arg("--data-dir")
            .arg(data)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .expect("start household-hub");
        let mut lines = BufReader::new(process.stdout.take().expect("stdout")).lines();
        let address = loop {
            let line = lines.next().expect("the hub exited").expect("hub stdout");
            if let Some(address) = line.strip_prefix("household hub serving on ") {
                break address.to_owned();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Hub {
            process,
            address,
            data: data.to_owned(),
        }
    }

    pub fn invite_guardian(&self, name: &str) -> String {
        self.invite(&["--role", "guardian", "--name", name])
    }

    pub fn invite(&self, args: &[&str]) -> String {
        let output = Command::new(hub_binary())
            .arg("invite")
            .args(args)
            .arg("--admin-socket")
            .arg(self.data.join("admin.sock"))
            .output()
            .expect("household-hub invite");
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .last()
            .expect("a pairing code")
            .trim()
            .to_owned()
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}
