//! Running the real `household-hub` binary in tests, on loopback with mDNS off, and
//! talking to it with the generated clients over real TLS.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::time::Duration;

use household_proto::pairing::PairingCode;
use household_proto::v1::{self, agent_client::AgentClient, household_client::HouseholdClient};
use tonic::transport::{Channel, Endpoint};

pub const BIN: &str = env!("CARGO_BIN_EXE_household-hub");

/// A hub process on a data directory.
pub struct Hub {
    pub child: Child,
    pub data_dir: PathBuf,
    pub addr: SocketAddr,
    pub admin_socket: PathBuf,
}

impl Hub {
    /// Starts `household-hub serve` on `data_dir`, listening on a free loopback port,
    /// and waits until it serves.
    /// The rate limit is off here; a test of it turns it on with [`Hub::start_with`].
    pub fn start(data_dir: &Path) -> Hub {
        Hub::start_with(data_dir, &["--rate-limit", "0"])
    }

    /// [`Hub::start`] with extra flags.
    pub fn start_with(data_dir: &Path, extra: &[&str]) -> Hub {
        Hub::spawn(data_dir, extra, "warn", None)
    }

    /// [`Hub::start`], logging at `rust_log` (a `RUST_LOG` filter) into the file `log`:
    /// stderr, and stdout too, for tests of what the hub writes there.
    pub fn start_logging(data_dir: &Path, rust_log: &str, log: &Path) -> Hub {
        Hub::spawn(data_dir, &["--rate-limit", "0"], rust_log, Some(log))
    }

    fn spawn(data_dir: &Path, extra: &[&str], rust_log: &str, log: Option<&Path>) -> Hub {
        let admin_socket = data_dir.join("admin.sock");
        let append = |path: &Path| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .expect("open the hub's log file")
        };
        let mut child = Command::new(BIN)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--no-mdns",
                "--advertise",
                "localhost:7443",
            ])
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra)
            .env("RUST_LOG", rust_log)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log.map_or_else(Stdio::inherit, |log| Stdio::from(append(log))))
            .spawn()
            .expect("start household-hub");
        let stdout = child.stdout.take().expect("hub stdout");
        let mut copy = log.map(append);
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            let line = lines
                .next()
                .expect("the hub exited before serving")
                .expect("read hub stdout");
            if let Some(copy) = &mut copy {
                writeln!(copy, "{line}").expect("copy the hub's stdout");
            }
            if let Some(addr) = line.strip_prefix("household hub serving on ") {
                break addr.parse().expect("hub address");
            }
        };
        // Keep draining stdout so the hub never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if let Some(copy) = &mut copy {
                    let _ = writeln!(copy, "{line}");
                }
            }
        });
        Hub {
            child,
            data_dir: data_dir.to_owned(),
            addr,
            admin_socket,
        }
    }

    /// `household-hub invite …`: the pairing code (the last line printed).
    pub fn invite(&self, role: &str, name: &str, child: Option<&str>) -> String {
        let mut command = Command::new(BIN);
        command
            .args(["invite", "--role", role, "--name", name])
            .arg("--admin-socket")
            .arg(&self.admin_socket);
        if let Some(child) = child {
            command.args(["--child", child]);
        }
        let output = command.output().expect("run household-hub invite");
        assert!(
            output.status.success(),
            "invite failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout)
            .expect("utf-8")
            .lines()
            .last()
            .expect("a pairing code")
            .to_owned()
    }

    /// SIGKILL, as a power cut looks to the process.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait; returns the exit status and how long the hub took.
    pub fn terminate(&mut self) -> (std::process::ExitStatus, Duration) {
        let started = std::time::Instant::now();
        // SAFETY: kill(2) with a pid we spawned and have not reaped.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().expect("wait for the hub");
        (status, started.elapsed())
    }

    /// The CA certificate, fetched over the wire and checked against the code's
    /// fingerprint, as a new client does.
    pub async fn ca_for(&self, code: &str) -> Result<String, String> {
        let code = PairingCode::from_str(code).map_err(|e| e.to_string())?;
        household_client::pin::household_ca(&self.addr.to_string(), &code)
            .await
            .map_err(|e| e.to_string())
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What an enrolled client holds.
#[derive(Clone, Debug)]
pub struct Credential {
    pub ca_pem: String,
    pub chain_pem: String,
    pub key_pem: String,
    pub response: v1::EnrollResponse,
}

impl Credential {
    /// The certificate's SHA-256, as the hub names the credential.
    pub fn credential_id(&self) -> String {
        match &self.response.credential {
            Some(v1::enroll_response::Credential::Certificate(c)) => {
                c.certificate_sha256_hex.clone()
            }
            _ => String::new(),
        }
    }
}

/// A channel to the hub, with a client certificate or without.
pub async fn channel(addr: SocketAddr, ca_pem: &str, identity: Option<(&str, &str)>) -> Channel {
    let tls = household_client::tls_config(ca_pem, identity);
    Endpoint::from_shared(format!("https://{addr}"))
        .expect("endpoint")
        .tls_config(tls)
        .expect("tls")
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .expect("connect to the hub")
}

/// A guardian channel whose HTTP/2 windows are `window` bytes (the client library's
/// defaults are megabytes).
pub async fn channel_with_window(
    addr: SocketAddr,
    credential: &Credential,
    window: u32,
) -> Channel {
    let tls = household_client::tls_config(
        &credential.ca_pem,
        Some((&credential.chain_pem, &credential.key_pem)),
    );
    Endpoint::from_shared(format!("https://{addr}"))
        .expect("endpoint")
        .tls_config(tls)
        .expect("tls")
        .initial_stream_window_size(window)
        .initial_connection_window_size(window)
        .connect()
        .await
        .expect("connect to the hub")
}

/// Redeems `code` as a new client: checks the hub's CA against the code, makes a key
/// and a CSR, and calls Enroll.
pub async fn enroll(addr: SocketAddr, code: &str) -> Result<Credential, tonic::Status> {
    enroll_as(addr, code, household_proto::v1::Role::Unspecified).await
}

/// [`enroll`], saying which role the client means to enroll as.
pub async fn enroll_as(
    addr: SocketAddr,
    code: &str,
    role: household_proto::v1::Role,
) -> Result<Credential, tonic::Status> {
    let about = household_client::About {
        hostname: "test".into(),
        platform: "linux".into(),
        software_version: "test".into(),
        role,
    };
    match household_client::enroll(&addr.to_string(), code, &about).await {
        Ok(enrolled) => Ok(Credential {
            ca_pem: enrolled.credential.ca_pem,
            chain_pem: enrolled.credential.chain_pem,
            key_pem: enrolled.credential.key_pem,
            response: enrolled.response,
        }),
        Err(household_client::EnrollError::Refused(status)) => Err(status),
        Err(other) => Err(tonic::Status::failed_precondition(other.to_string())),
    }
}

/// A guardian client with `credential`.
pub async fn guardian(addr: SocketAddr, credential: &Credential) -> HouseholdClient<Channel> {
    HouseholdClient::new(
        channel(
            addr,
            &credential.ca_pem,
            Some((&credential.chain_pem, &credential.key_pem)),
        )
        .await,
    )
}

/// An agent client with `credential`.
pub async fn agent(addr: SocketAddr, credential: &Credential) -> AgentClient<Channel> {
    AgentClient::new(
        channel(
            addr,
            &credential.ca_pem,
            Some((&credential.chain_pem, &credential.key_pem)),
        )
        .await,
    )
}

/// A hub with one enrolled guardian ("Anna").
pub async fn hub_with_guardian(dir: &Path) -> (Hub, Credential) {
    let hub = Hub::start(dir);
    let code = hub.invite("guardian", "Anna", None);
    let anna = enroll(hub.addr, &code).await.expect("enroll Anna");
    (hub, anna)
}

/// Adds a child with the default policy; returns its id.
pub async fn add_child(client: &mut HouseholdClient<Channel>, name: &str) -> String {
    client
        .add_child(v1::AddChildRequest {
            display_name: name.into(),
            ..Default::default()
        })
        .await
        .expect("add a child")
        .into_inner()
        .child
        .expect("the new child")
        .child_id
}

/// A guardian invite for a new guardian called `name`, made by `client`'s guardian.
pub async fn invite_guardian(
    client: &mut HouseholdClient<Channel>,
    name: &str,
) -> v1::PairingInvite {
    client
        .invite_guardian(v1::InviteGuardianRequest {
            display_name: name.into(),
            ..Default::default()
        })
        .await
        .expect("invite a guardian")
        .into_inner()
        .invite
        .expect("the invite")
}

/// The status's `ErrorInfo.reason`.
pub fn reason(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .error_info()
        .map(|info| info.reason.clone())
        .unwrap_or_default()
}
