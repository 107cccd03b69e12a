//! Agents find their hub by mDNS and enroll with nothing but a pairing code;
//! a code naming another household's CA finds no hub and stores nothing.
//!
//! mDNS runs only on the loopback interface of a network namespace this test
//! makes (and removes): it re-runs itself inside it. Needs root; without it
//! the test says why and skips. As root, a namespace that cannot be set up
//! fails the test, so CI (which runs as root) cannot skip it.

mod common;

use std::process::Command;

use common::Home;
use common::hub::{Guardian, Hub, cli_binary};
use common::netns::{ip, not_root};
use serde_json::Value;

/// Set in the copy of this test that runs inside the namespace.
const IN_NAMESPACE: &str = "CHILD_AGENT_TEST_IN_MDNS_NAMESPACE";
const TEST_NAME: &str = "two_agents_find_the_hub_by_mdns_and_a_wrong_ca_finds_none";

#[test]
fn two_agents_find_the_hub_by_mdns_and_a_wrong_ca_finds_none() {
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
    assert!(
        run.status.success() && stdout.contains("1 passed"),
        "the namespaced run failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
}

async fn in_namespace() {
    let hub_dir = tempfile::tempdir().unwrap();
    let hub = Hub::start_with_mdns(hub_dir.path(), Some("lo"));
    let mut mum = Guardian::join(&hub).await;
    let mia = mum.add_child("Mia").await;
    let mut agents = Vec::new();
    for name in ["tablet", "laptop"] {
        let (_, code) = mum.add_device(&mia, name).await;
        let home = Home::new("[daily_minutes]\ndefault = 120\n");
        if name == "tablet" {
            // The code with another CA fingerprint: no hub of that household answers.
            let mut forged = code.clone();
            let last = forged.pop().unwrap();
            forged.push(if last == '0' { '1' } else { '0' });
            let out = home.command(&["enroll", &forged, "--mdns-interface", "lo"]);
            assert!(!out.status.success());
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.contains("no hub of this household"), "{stderr}");
            assert!(!home.file("enrollment.json").exists(), "nothing stored");
        }
        let out = home.command(&["enroll", &code, "--mdns-interface", "lo"]);
        assert!(
            out.status.success(),
            "enroll by mDNS: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let enrollment: Value =
            serde_json::from_str(&std::fs::read_to_string(home.file("enrollment.json")).unwrap())
                .unwrap();
        assert_eq!(enrollment["hub"], Value::String(hub.address.clone()));
        assert_eq!(enrollment["found_by_mdns"], Value::Bool(true));
        let agent = home.start(1.0, &[]);
        agents.push((home, agent));
    }
    for (home, _) in &agents {
        tokio::task::block_in_place(|| {
            home.wait_for("the hub", |s| s["hub"]["connected"] == Value::Bool(true))
        });
    }
    let status = mum.status(&mia).await;
    // A guardian's terminal pairs the same way, with only its code.
    let config = tempfile::tempdir().unwrap();
    let profile = config.path().join("profile.json");
    let out = Command::new(cli_binary())
        .arg("--config")
        .arg(&profile)
        .args([
            "pair",
            &hub.invite_guardian("Dad"),
            "--mdns-interface",
            "lo",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "household pair by mDNS: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let paired: Value = serde_json::from_str(&std::fs::read_to_string(&profile).unwrap()).unwrap();
    assert_eq!(paired["hub"], Value::String(hub.address.clone()));
    assert_eq!(
        status.devices.iter().filter(|d| d.online).count(),
        2,
        "{status:?}"
    );
}

/// A network namespace with only `lo`, up and multicast-capable.
struct Namespace(String);

impl Namespace {
    fn create() -> Result<Self, String> {
        let namespace = Namespace(format!("hh-agent-mdns-{}", std::process::id()));
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
