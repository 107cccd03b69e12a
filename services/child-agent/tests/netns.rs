//! Broadcast discovery and a command crossing a real bridge: the agent in
//! one network namespace, a parent in another, a bridge in a third, all
//! made by this test and removed when it ends. Needs root; without it the
//! test says why and skips. As root, a namespace that cannot be set up fails
//! the test: CI runs as root, and a skip there would hide a broken test.

mod common;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Home;
use common::netns::{ip, not_root};

/// Set in the re-executed copy of this test that plays the parent app.
const PARENT_ROLE: &str = "CHILD_AGENT_TEST_PARENT_DEVICE_ID";
const TEST_NAME: &str = "broadcast_discovery_and_a_command_cross_a_bridge";

#[test]
fn broadcast_discovery_and_a_command_cross_a_bridge() {
    if let Ok(device_id) = std::env::var(PARENT_ROLE) {
        return parent(&device_id);
    }
    if let Some(why) = not_root() {
        println!("skipped: network namespaces need root ({why})");
        return;
    }
    let net = Net::create().unwrap_or_else(|e| panic!("cannot set up the namespaces: {e}"));
    let home = Home::new("timezone = \"UTC\"\ndaily_minutes = 45\n");
    let mut agent = Command::new("ip")
        .args(["netns", "exec", &net.child])
        .arg(common::BIN)
        .args(["run", "--no-mdns"])
        .arg("--data-dir")
        .arg(home.path())
        .arg("--policy")
        .arg(home.file("policy.toml"))
        .args(["--usage-source", "simulated"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let socket = home.file("control.sock");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        assert!(Instant::now() < deadline, "the agent did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let device_id = String::from_utf8(home.command(&["show-id"]).stdout).unwrap();

    let parent = Command::new("ip")
        .args(["netns", "exec", &net.parent])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", TEST_NAME, "--nocapture", "--test-threads", "1"])
        .env(PARENT_ROLE, device_id.trim())
        .output()
        .unwrap();
    let _ = agent.kill();
    let _ = agent.wait();
    let stdout = String::from_utf8_lossy(&parent.stdout);
    assert!(
        parent.status.success(),
        "parent failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&parent.stderr)
    );
    assert!(stdout.contains("FOUND [10.77.0.1]"), "{stdout}");
    assert!(stdout.contains("REPLY TIME_LEFT|45|ACTIVE|45"), "{stdout}");
}

/// The parent's side, run inside the parent's namespace.
fn parent(device_id: &str) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let broadcast = SocketAddr::from(([255, 255, 255, 255], 8888));
        let found = cst_legacy::client::discover(broadcast, Duration::from_secs(3))
            .await
            .unwrap();
        println!("FOUND {found:?}");
        let key = device_id.parse::<cst_legacy::DeviceId>().unwrap().key();
        let to = SocketAddr::new(found[0], 8888);
        let reply =
            cst_legacy::client::send_command(to, &key, "GET_TIME_LEFT", Duration::from_secs(5))
                .await
                .unwrap();
        println!("REPLY {reply}");
    });
}

/// Three namespaces: the child and the parent, each with one veth end, and
/// a bridge joining the other ends. Removed on drop.
struct Net {
    child: String,
    parent: String,
    bridge: String,
}

impl Net {
    /// Creates the namespaces; whatever was made is removed again (by
    /// `Drop`) when a later step fails.
    fn create() -> Result<Self, String> {
        let pid = std::process::id();
        let net = Net {
            child: format!("hh-child-{pid}"),
            parent: format!("hh-parent-{pid}"),
            bridge: format!("hh-bridge-{pid}"),
        };
        for ns in [&net.child, &net.parent, &net.bridge] {
            ip(&["netns", "add", ns]).map_err(|e| format!("cannot create namespaces: {e}"))?;
        }
        let b = net.bridge.as_str();
        ip(&["-n", b, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", b, "link", "set", "br0", "up"])?;
        for (i, ns) in [(1, &net.child), (2, &net.parent)] {
            let port = format!("port{i}");
            ip(&[
                "-n", b, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", ns,
            ])?;
            ip(&["-n", b, "link", "set", &port, "master", "br0", "up"])?;
            let address = format!("10.77.0.{i}/24");
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &address,
                "broadcast",
                "10.77.0.255",
                "dev",
                "eth0",
            ])?;
            ip(&["-n", ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
            // 255.255.255.255 leaves by the default route, as on a home network.
            ip(&["-n", ns, "route", "add", "default", "dev", "eth0"])?;
        }
        Ok(net)
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in [&self.child, &self.parent, &self.bridge] {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}
