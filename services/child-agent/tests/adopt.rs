//! Agents announce themselves over mDNS, the hub hears every one of them (enrolled or
//! not), and a guardian adopts an unenrolled one with the code it shows; a wrong code,
//! an enrolled agent and a second adoption are refused, and an agent that dies is
//! reported gone within the hub's expiry. A stock mDNS browser (python-zeroconf) reads
//! the same announcements.
//!
//! mDNS runs only on the loopback interface of a network namespace this test makes
//! (and removes): it re-runs itself inside it. Needs root; without it the test says why
//! and skips. As root, a namespace that cannot be set up fails the test, so CI (which
//! runs as root) cannot skip it.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::Home;
use common::hub::{Guardian, Hub, cli_binary};
use common::netns::{ip, not_root};
use household_proto::v1;
use serde_json::Value;

/// Set in the copy of this test that runs inside the namespace.
const IN_NAMESPACE: &str = "CHILD_AGENT_TEST_IN_ADOPT_NAMESPACE";
const TEST_NAME: &str = "agents_are_heard_adopted_with_their_code_and_reported_gone";
/// The hub's `--agent-expiry` here: an agent that stops answering is gone within it.
const EXPIRY: Duration = Duration::from_secs(4);

#[test]
fn agents_are_heard_adopted_with_their_code_and_reported_gone() {
    if std::env::var_os(IN_NAMESPACE).is_some() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        return runtime.block_on(in_namespace());
    }
    if let Some(why) = not_root() {
        println!("skipped: the test's network namespace needs root ({why})");
        return;
    }
    let namespace =
        Namespace::create().unwrap_or_else(|e| panic!("cannot set up the namespace: {e}"));
    let run = Command::new("ip")
        .args(["netns", "exec", &namespace.0])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", TEST_NAME, "--nocapture", "--test-threads", "1"])
        .env(IN_NAMESPACE, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    print!("{stdout}");
    assert!(
        run.status.success() && stdout.contains("1 passed"),
        "the namespaced run failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
}

async fn in_namespace() {
    let hub_dir = tempfile::tempdir().unwrap();
    let expiry = EXPIRY.as_secs().to_string();
    let hub = Hub::start_with_mdns_args(hub_dir.path(), Some("lo"), &["--agent-expiry", &expiry]);
    let mut mum = Guardian::join(&hub).await;
    let mia = mum.add_child("Mia").await;
    let mut watch = mum
        .client
        .watch(v1::WatchRequest::default())
        .await
        .expect("watch")
        .into_inner();

    // One agent enrolled with a pairing code, two that belong to no household.
    let (_, code) = mum.add_device(&mia, "laptop").await;
    let laptop = Home::new("[daily_minutes]\ndefault = 120\n");
    let out = laptop.command(&["enroll", &code, "--mdns-interface", "lo"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mdns = |name: &'static str| {
        [
            "--mdns-interface",
            "lo",
            "--host-name",
            name,
            "--adopt-poll",
            "0.3",
        ]
    };
    let _laptop_agent = laptop.start(1.0, &mdns("laptop"));
    let tablet = Home::new("[daily_minutes]\ndefault = 120\n");
    let _tablet_agent = tablet.start(1.0, &mdns("tablet"));
    let phone = Home::new("[daily_minutes]\ndefault = 120\n");
    let phone_agent = phone.start(1.0, &mdns("phone"));

    let heard = wait_network(&mut mum, "three agents heard", |devices| {
        devices.len() == 3
            && state(devices, "laptop") == Some(true)
            && state(devices, "tablet") == Some(false)
            && state(devices, "phone") == Some(false)
    })
    .await;
    for device in &heard {
        assert_eq!(device.platform, "linux");
        assert!(
            device.addresses.iter().any(|a| a == "127.0.0.1"),
            "{device:?}"
        );
        assert_eq!(device.key_sha256_hex.len(), 64);
    }
    let laptop_heard = heard.iter().find(|d| d.host_name == "laptop").unwrap();
    assert!(laptop_heard.in_this_household && !laptop_heard.household_id.is_empty());
    // Watchers learnt of them live.
    let mut seen = Vec::new();
    while seen.len() < 3 {
        match next_item(&mut watch).await {
            v1::watch_response::Item::DeviceSeen(s) => {
                let host = s.device.unwrap().host_name;
                if !seen.contains(&host) {
                    seen.push(host);
                }
            }
            _ => continue,
        }
    }

    // What a stock mDNS browser reads: the state, the platform, the key's hash, and
    // never the CST device ID.
    let browsed = zeroconf_browse(3);
    for (host, state) in [
        ("laptop", laptop_heard.household_id.as_str()),
        ("tablet", "unenrolled"),
        ("phone", "unenrolled"),
    ] {
        let line = browsed
            .lines()
            .find(|l| l.starts_with(&format!("AGENT {host}-")))
            .unwrap_or_else(|| panic!("python-zeroconf did not see {host}:\n{browsed}"));
        assert!(line.contains(&format!(" hh={state} ")), "{line}");
        assert!(
            line.ends_with(" os=linux") && line.contains(" api=household.v1 "),
            "{line}"
        );
    }
    for home in [&laptop, &tablet, &phone] {
        let id = String::from_utf8(home.command(&["show-id"]).stdout).unwrap();
        assert!(
            !browsed.contains(id.trim()),
            "the CST device ID is announced:\n{browsed}"
        );
    }

    // The codes the unenrolled agents show.
    let tablet_code = shown_code(&tablet);
    let phone_code = shown_code(&phone);
    let wrong = format!(
        "{:06}",
        (phone_code.parse::<u32>().unwrap() + 1) % 1_000_000
    );

    // A guardian's terminal lists the two in no household, and refuses a wrong code.
    let config = tempfile::tempdir().unwrap();
    let profile = config.path().join("profile.json");
    let household = |args: &[&str]| {
        Command::new(cli_binary())
            .arg("--config")
            .arg(&profile)
            .args(args)
            .env("RUST_LOG", "off")
            .output()
            .unwrap()
    };
    let paired = household(&["pair", &hub.invite_guardian("Dad"), "--hub", &hub.address]);
    assert!(
        paired.status.success(),
        "{}",
        String::from_utf8_lossy(&paired.stderr)
    );
    let listed = household(&["devices", "list"]);
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    let strangers = listed
        .split_once("on the network, in no household")
        .unwrap_or_else(|| panic!("no agents in no household listed:\n{listed}"))
        .1;
    assert!(strangers.contains("  phone  (linux, 127.0.0.1"), "{listed}");
    // Where a CST parent app reaches it, found without a broadcast.
    assert!(
        strangers.contains(&format!("CST on UDP {}, seen", phone_agent.port)),
        "{listed}"
    );
    assert!(
        strangers.contains("  tablet  (linux, 127.0.0.1"),
        "{listed}"
    );
    assert!(!strangers.contains("laptop"), "{listed}");
    let wrong_phone = ["devices", "adopt", "phone", "--child", "Mia", "--code"];
    let out = household(&[&wrong_phone[..], &[wrong.as_str()]].concat());
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not the one phone shows"),
        "{out:?}"
    );

    // The same over the API: a wrong code is refused, and nothing is enrolled.
    let refused = adopt(&mut mum, "phone", &mia, &wrong).await.unwrap_err();
    assert_eq!(
        refused.code(),
        tonic::Code::FailedPrecondition,
        "{refused:?}"
    );
    assert!(
        refused.message().contains("not the one phone shows"),
        "{refused:?}"
    );
    assert!(!phone.file("enrollment.json").exists());
    // An enrolled agent is never adopted.
    let enrolled = adopt(&mut mum, "laptop", &mia, "123456").await.unwrap_err();
    assert_eq!(
        enrolled.code(),
        tonic::Code::FailedPrecondition,
        "{enrolled:?}"
    );
    assert!(
        enrolled.message().contains("already a device"),
        "{enrolled:?}"
    );
    // Bad input names the field.
    let bad = adopt(&mut mum, "tablet", &mia, "12345").await.unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    assert!(bad.message().contains("verification_code"), "{bad:?}");

    // The right code enrolls the tablet with its own key, and it comes online.
    let device = adopt(&mut mum, "tablet", &mia, &tablet_code)
        .await
        .expect("adopt the tablet")
        .device
        .unwrap();
    assert!(device.enrolled && device.child_id == mia && device.display_name == "tablet");
    tokio::task::block_in_place(|| {
        tablet.wait_for("the tablet's session", |s| {
            s["hub"]["connected"] == Value::Bool(true) && s.get("pairing").is_none()
        })
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = mum.status(&mia).await;
        if status
            .devices
            .iter()
            .any(|d| d.device_id == device.device_id && d.online)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the tablet never showed online: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !tablet.file("adoption-key.json").exists(),
        "the key moved to the enrollment"
    );
    // A second adoption of the same agent is refused.
    let again = adopt(&mut mum, "tablet", &mia, &tablet_code)
        .await
        .unwrap_err();
    assert_eq!(again.code(), tonic::Code::FailedPrecondition, "{again:?}");
    wait_network(&mut mum, "the tablet announcing the household", |devices| {
        state(devices, "tablet") == Some(true)
    })
    .await;

    // An agent that dies without a goodbye is reported gone within the expiry.
    let killed = Instant::now();
    phone_agent.kill9();
    loop {
        let item = tokio::time::timeout(EXPIRY * 3, next_item(&mut watch))
            .await
            .expect("DeviceGone for the phone");
        if let v1::watch_response::Item::DeviceGone(gone) = item
            && gone.device.as_ref().is_some_and(|d| d.host_name == "phone")
        {
            break;
        }
    }
    let took = killed.elapsed();
    assert!(
        took <= EXPIRY + Duration::from_secs(1),
        "the phone was reported gone after {took:?}, expiry {EXPIRY:?}"
    );
    let left = network(&mut mum).await;
    assert!(left.iter().all(|d| d.host_name != "phone"), "{left:?}");
    println!("phone reported gone {took:?} after it was killed");
}

async fn adopt(
    mum: &mut Guardian,
    host: &str,
    child: &str,
    code: &str,
) -> Result<v1::AdoptDeviceResponse, tonic::Status> {
    mum.client
        .adopt_device(v1::AdoptDeviceRequest {
            host: host.into(),
            child_id: child.into(),
            verification_code: code.into(),
            display_name: String::new(),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn network(mum: &mut Guardian) -> Vec<v1::NetworkDevice> {
    mum.client
        .list_devices(v1::ListDevicesRequest::default())
        .await
        .expect("list devices")
        .into_inner()
        .network_devices
}

/// Polls ListDevices until `done` holds; fails after 20 s.
async fn wait_network(
    mum: &mut Guardian,
    what: &str,
    done: impl Fn(&[v1::NetworkDevice]) -> bool,
) -> Vec<v1::NetworkDevice> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let devices = network(mum).await;
        if done(&devices) {
            return devices;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {devices:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether the agent called `host` is this household's (`Some(true)`), in none
/// (`Some(false)`), or not heard.
fn state(devices: &[v1::NetworkDevice], host: &str) -> Option<bool> {
    let device = devices.iter().find(|d| d.host_name == host)?;
    match (device.household_id.is_empty(), device.in_this_household) {
        (true, false) => Some(false),
        (false, true) => Some(true),
        _ => None,
    }
}

async fn next_item(watch: &mut tonic::Streaming<v1::WatchResponse>) -> v1::watch_response::Item {
    watch
        .message()
        .await
        .expect("the watch")
        .expect("the watch ended")
        .item
        .expect("an item")
}

/// The code the agent in `home` shows, from `child-agent status --json`.
fn shown_code(home: &Home) -> String {
    let status = tokio::task::block_in_place(|| {
        home.wait_for("a verification code", |s| {
            s["pairing"][0]["code"].is_string()
        })
    });
    let code = status["pairing"][0]["code"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 6, "{status}");
    code
}

/// Browses `_household-agent._tcp` with python-zeroconf on 127.0.0.1 for up to
/// `expected` agents (10 s at most); one line per agent: `AGENT NAME key=value …`.
fn zeroconf_browse(expected: usize) -> String {
    const SCRIPT: &str = r#"
import sys, time
from zeroconf import ServiceBrowser, ServiceListener, Zeroconf
TYPE = "_household-agent._tcp.local."
class Names(ServiceListener):
    def __init__(self): self.names = set()
    def add_service(self, zc, type_, name): self.names.add(name)
    def update_service(self, zc, type_, name): self.names.add(name)
    def remove_service(self, zc, type_, name): self.names.discard(name)
zc = Zeroconf(interfaces=["127.0.0.1"])
names = Names()
browser = ServiceBrowser(zc, TYPE, names)
deadline = time.time() + 10
while len(names.names) < int(sys.argv[1]) and time.time() < deadline:
    time.sleep(0.1)
for name in sorted(names.names):
    info = zc.get_service_info(TYPE, name, timeout=3000)
    if info is None:
        continue
    props = {k.decode(): (v or b"").decode() for k, v in info.properties.items()}
    print("AGENT " + name + " " + " ".join(k + "=" + props[k] for k in sorted(props)))
zc.close()
"#;
    // Debian's own Python, where apt puts python3-zeroconf (a pyenv or venv `python3`
    // earlier on PATH would not have it).
    let python = ["/usr/bin/python3", "python3"]
        .into_iter()
        .find(|p| !p.starts_with('/') || std::path::Path::new(p).exists())
        .unwrap_or("python3");
    let out = Command::new(python)
        .args(["-c", SCRIPT, &expected.to_string()])
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "python-zeroconf failed (apt-get install python3-zeroconf):\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A network namespace with only `lo`, up and multicast-capable.
struct Namespace(String);

impl Namespace {
    fn create() -> Result<Self, String> {
        let namespace = Namespace(format!("hh-adopt-{}", std::process::id()));
        ip(&["netns", "add", &namespace.0])?;
        ip(&["-n", &namespace.0, "link", "set", "lo", "up"])?;
        ip(&["-n", &namespace.0, "link", "set", "lo", "multicast", "on"])?;
        Ok(namespace)
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.0]);
    }
}
