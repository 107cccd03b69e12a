//! The real `household-hub` beside the agent's binary, and a guardian talking
//! to it over TLS, for the tests of an agent enrolled with a hub.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use household_proto::v1::{self, household_client::HouseholdClient};
use tonic::transport::Channel;

/// `household-hub`, built beside `child-agent` by `cargo test --workspace`
/// (or `cargo build -p household-hub`).
pub fn hub_binary() -> PathBuf {
    let hub = Path::new(super::BIN)
        .parent()
        .expect("the agent's directory")
        .join("household-hub");
    assert!(
        hub.exists(),
        "{} is missing: run `cargo build -p household-hub` (cargo test --workspace builds it)",
        hub.display()
    );
    hub
}

/// `household`, the guardian's command line, built beside `child-agent` by
/// `cargo test --workspace` (or `cargo build -p household-cli`).
pub fn cli_binary() -> PathBuf {
    let cli = Path::new(super::BIN)
        .parent()
        .expect("the agent's directory")
        .join("household");
    assert!(
        cli.exists(),
        "{} is missing: run `cargo build -p household-cli` (cargo test --workspace builds it)",
        cli.display()
    );
    cli
}

/// A hub process on a data directory and a fixed loopback port, so that it
/// can be killed and started again where its agents look for it.
pub struct Hub {
    pub process: Option<Child>,
    pub address: String,
    pub data: PathBuf,
    /// How it announces itself: `--no-mdns`, or `--mdns-interface NAME`.
    mdns: Vec<String>,
}

impl Hub {
    pub fn start(data: &Path) -> Hub {
        Hub::start_with_mdns(data, None)
    }

    /// [`Hub::start`], announcing the hub by mDNS on `interface` (only ever
    /// inside a network namespace the test made).
    pub fn start_with_mdns(data: &Path, interface: Option<&str>) -> Hub {
        Hub::start_with_mdns_args(data, interface, &[])
    }

    /// [`Hub::start_with_mdns`] with more `serve` flags.
    ///
    /// It listens on port 0, so the hub picks a free port and must announce the port
    /// it picked (restarts keep that port).
    pub fn start_with_mdns_args(data: &Path, interface: Option<&str>, extra: &[&str]) -> Hub {
        let mut hub = Hub {
            process: None,
            address: "127.0.0.1:0".into(),
            data: data.to_owned(),
            mdns: match interface {
                Some(name) => vec!["--mdns-interface".into(), name.into()],
                None => vec!["--no-mdns".into()],
            }
            .into_iter()
            .chain(extra.iter().map(|arg| (*arg).to_owned()))
            .collect(),
        };
        hub.restart();
        hub
    }

    /// Starts the hub (again) on its data directory and port.
    pub fn restart(&mut self) {
        let mut process = Command::new(hub_binary())
            .args(["serve", "--rate-limit", "0", "--legacy-poll", "0"])
            .args(&self.mdns)
            .args(["--listen", &self.address])
            .arg("--data-dir")
            .arg(&self.data)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start household-hub");
        let mut lines = BufReader::new(process.stdout.take().expect("stdout")).lines();
        loop {
            let line = lines.next().expect("the hub exited").expect("hub stdout");
            if let Some(address) = line.strip_prefix("household hub serving on ") {
                self.address = address.to_owned();
                break;
            }
        }
        std::thread::spawn(move || for _ in lines {});
        self.process = Some(process);
    }

    /// SIGKILL, as a power cut looks to the process.
    pub fn kill9(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }

    /// `household-hub invite --role guardian`: a pairing code.
    pub fn invite_guardian(&self, name: &str) -> String {
        let output = Command::new(hub_binary())
            .args(["invite", "--role", "guardian", "--name", name])
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
        self.kill9();
    }
}

/// A guardian enrolled with the hub.
pub struct Guardian {
    pub client: HouseholdClient<Channel>,
}

impl Guardian {
    pub async fn join(hub: &Hub) -> Guardian {
        let code = hub.invite_guardian("Mum");
        let about = household_client::About {
            hostname: "test".into(),
            platform: "linux".into(),
            software_version: "test".into(),
            role: household_proto::v1::Role::Guardian,
        };
        let enrolled = household_client::enroll(&hub.address, &code, &about)
            .await
            .expect("enroll a guardian");
        let c = enrolled.credential;
        let channel =
            household_client::connect(&hub.address, &c.ca_pem, Some((&c.chain_pem, &c.key_pem)))
                .await
                .expect("connect as the guardian");
        Guardian {
            client: HouseholdClient::new(channel),
        }
    }

    pub async fn add_child(&mut self, name: &str) -> String {
        self.client
            .add_child(v1::AddChildRequest {
                display_name: name.into(),
                ..Default::default()
            })
            .await
            .expect("add a child")
            .into_inner()
            .child
            .expect("the child")
            .child_id
    }

    /// A new agent device of `child`, and its pairing code.
    pub async fn add_device(&mut self, child: &str, name: &str) -> (String, String) {
        let added = self
            .client
            .add_device(v1::AddDeviceRequest {
                child_id: child.into(),
                display_name: name.into(),
                kind: Some(v1::add_device_request::Kind::Agent(
                    v1::AgentDeviceSpec::default(),
                )),
                ..Default::default()
            })
            .await
            .expect("add a device")
            .into_inner();
        let device = added.device.expect("the device").device_id;
        (device, added.invite.expect("an invite").pairing_code)
    }

    pub async fn status(&mut self, child: &str) -> v1::ChildStatus {
        self.client
            .get_status(v1::GetStatusRequest {
                child_ids: vec![child.into()],
            })
            .await
            .expect("status")
            .into_inner()
            .children
            .pop()
            .expect("the child's status")
    }

    pub async fn grant(&mut self, child: &str, minutes: u32, key: &str) -> v1::GrantTimeResponse {
        self.client
            .grant_time(v1::GrantTimeRequest {
                child_id: child.into(),
                minutes,
                idempotency_key: key.into(),
                note: String::new(),
            })
            .await
            .expect("grant")
            .into_inner()
    }

    pub async fn lock(&mut self, child: &str) {
        self.client
            .lock(v1::LockRequest {
                target: Some(v1::lock_request::Target::ChildId(child.into())),
                ..Default::default()
            })
            .await
            .expect("lock");
    }

    pub async fn unlock(&mut self, child: &str) {
        self.client
            .unlock(v1::UnlockRequest {
                target: Some(v1::unlock_request::Target::ChildId(child.into())),
                ..Default::default()
            })
            .await
            .expect("unlock");
    }

    /// Sets the child's daily minutes (every day) and grace, whatever the revision.
    pub async fn set_daily(&mut self, child: &str, minutes: u32, grace_minutes: u32) {
        let mut policy = self
            .client
            .get_policy(v1::GetPolicyRequest {
                child_id: child.into(),
            })
            .await
            .expect("policy")
            .into_inner()
            .policy
            .expect("a policy");
        for day in &mut policy.weekdays {
            day.daily_minutes = minutes;
        }
        policy.grace_minutes = grace_minutes;
        self.client
            .set_policy(v1::SetPolicyRequest {
                child_id: child.into(),
                policy: Some(policy),
                expected_revision: None,
                force: true,
            })
            .await
            .expect("set the policy");
    }
}
