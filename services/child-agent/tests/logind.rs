//! Metering and locking through logind, against a stand-in logind on a
//! private bus (see `common::logind`): the agent is pointed at it with
//! `DBUS_SYSTEM_BUS_ADDRESS`, as it would find the real one on the system bus.

mod common;

use std::time::{Duration, Instant};

use common::Home;
use common::logind::{FakeSession, Logind};

/// `nobody`, the child in these tests.
const CHILD_UID: u32 = 65534;
const PARENT_UID: u32 = 1000;

fn standin(sessions: Vec<FakeSession>) -> Option<Logind> {
    match Logind::start(sessions) {
        Ok(logind) => Some(logind),
        Err(why) => {
            println!("skipped: {why}");
            None
        }
    }
}

fn start(home: &Home, logind: &Logind, extra: &[&str]) -> common::Agent {
    let mut args = vec!["--child-user", "nobody", "--legacy-mode", "off"];
    args.extend_from_slice(extra);
    home.start_plain(
        &args,
        &[("DBUS_SYSTEM_BUS_ADDRESS", logind.address.clone())],
    )
}

/// Waits until `done` holds for the stand-in's sessions; panics after 20 s.
fn wait_until(logind: &Logind, what: &str, done: impl Fn(&Logind) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done(logind) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_childs_sessions_are_locked_by_default_and_again_whenever_unlocked() {
    // (The child may also claim to be locked by setting LockedHint: every
    // session is asked to lock every round all the same, see below.)
    let Some(logind) = standin(vec![
        FakeSession::active("c1", CHILD_UID),
        FakeSession::active("p1", PARENT_UID),
    ]) else {
        return;
    };
    let home = Home::new("timezone = \"UTC\"\ndaily_minutes = 0\ngrace_minutes = 0\n");
    let _agent = start(&home, &logind, &[]);
    wait_until(&logind, "the child's session locked", |l| {
        l.get("c1").locked
    });
    // The child unlocks (say, knows the password): locked again, soon.
    for round in 1..=2 {
        logind.set("c1", |s| s.locked = false);
        let unlocked_at = Instant::now();
        wait_until(&logind, "locked again", |l| l.get("c1").locked);
        assert!(
            unlocked_at.elapsed() < Duration::from_secs(5),
            "round {round}: locked again only after {:?}",
            unlocked_at.elapsed()
        );
    }
    assert!(logind.get("c1").lock_calls >= 3);
    assert_eq!(
        logind.get("p1").lock_calls,
        0,
        "a parent's session is left alone"
    );

    // Time granted (a credit): unlocking is the child's right again.
    let out = home.command(&["request-time", "10"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(home.status().unwrap()["state"], "ACTIVE");
    logind.set("c1", |s| s.locked = false);
    let calls = logind.get("c1").lock_calls;
    // Longer than the relock period: a relock would have come by now.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        logind.get("c1").lock_calls,
        calls,
        "no lock while time is left"
    );
    assert!(!logind.get("c1").locked);
}

#[test]
fn only_the_childs_unlocked_active_sessions_are_metered() {
    let mut child = FakeSession::active("c1", CHILD_UID);
    child.active = false;
    let Some(logind) = standin(vec![child, FakeSession::active("p1", PARENT_UID)]) else {
        return;
    };
    let home = Home::new("timezone = \"UTC\"\ndaily_minutes = 60\ngrace_minutes = 0\n");
    let _agent = start(&home, &logind, &[]);
    let used = |s: &serde_json::Value| s["used_seconds"].as_i64().unwrap();
    // The parent's session in use does not count for the child.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        used(&home.status().unwrap()),
        0,
        "a parent's session was charged"
    );

    logind.set("c1", |s| s.active = true);
    let at = used(&home.wait_for("the child's use counted", |s| used(s) >= 2));

    // Locked (by the child's own screen saver): no longer use.
    logind.set("c1", |s| s.locked = true);
    let settled = settle(&home);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        used(&home.status().unwrap()),
        settled,
        "a locked session was charged"
    );
    assert!(settled >= at);

    // IdleHint, which the child may set on their own session, is not believed.
    logind.set("c1", |s| {
        s.locked = false;
        s.idle = true;
    });
    home.wait_for("an 'idle' session still counted", |s| {
        used(s) >= settled + 2
    });
}

/// Waits until the used seconds stop growing (two readings 1.5 s apart
/// agree) and returns them; panics after 30 s.
fn settle(home: &Home) -> i64 {
    let used = |s: serde_json::Value| s["used_seconds"].as_i64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = used(home.status().unwrap());
    loop {
        std::thread::sleep(Duration::from_millis(1500));
        let now = used(home.status().unwrap());
        if now == last {
            return now;
        }
        assert!(Instant::now() < deadline, "use kept growing");
        last = now;
    }
}

#[test]
fn a_failing_usage_source_counts_as_use_and_is_reported() {
    let Some(logind) = standin(vec![FakeSession::active("c1", CHILD_UID)]) else {
        return;
    };
    let home = Home::new("timezone = \"UTC\"\ndaily_minutes = 60\ngrace_minutes = 0\n");
    let _agent = start(&home, &logind, &[]);
    let used = |s: &serde_json::Value| s["used_seconds"].as_i64().unwrap();
    home.wait_for("use", |s| used(s) >= 1);
    // logind goes away.
    drop(logind);
    let status = home.wait_for("the failure reported", |s| {
        s["problems"].as_array().is_some_and(|p| !p.is_empty())
    });
    assert!(
        status["problems"][0]
            .as_str()
            .unwrap()
            .contains("usage source failing"),
        "{status}"
    );
    let before = used(&status);
    home.wait_for("use still counted", |s| used(s) >= before + 2);
}

/// The unix path of a bus address `unix:path=P,guid=…`.
fn bus_path(address: &str) -> Option<String> {
    let rest = address.strip_prefix("unix:path=")?;
    Some(rest.split(',').next()?.to_owned())
}

#[test]
fn the_agent_carries_on_when_the_bus_comes_late_and_when_it_comes_back() {
    let Some(first) = standin(vec![FakeSession::active("c1", CHILD_UID)]) else {
        return;
    };
    let Some(first_path) = bus_path(&first.address) else {
        println!(
            "skipped: the private bus is not at a unix path ({})",
            first.address
        );
        return;
    };
    let home = Home::new("timezone = \"UTC\"\ndaily_minutes = 0\ngrace_minutes = 0\n");
    // The bus the agent is told about is not there yet; a hook locks meanwhile.
    let bus = home.file("bus");
    let address = format!("unix:path={}", bus.display());
    let _agent = home.start_plain(
        &[
            "--child-user",
            "nobody",
            "--legacy-mode",
            "off",
            "--on-lock",
            "true",
        ],
        &[("DBUS_SYSTEM_BUS_ADDRESS", address)],
    );
    std::os::unix::fs::symlink(&first_path, &bus).unwrap();
    wait_until(&first, "the child's session locked", |l| l.get("c1").locked);

    // The bus goes away and another comes up at the same address.
    drop(first);
    let second = standin(vec![FakeSession::active("c1", CHILD_UID)]).unwrap();
    let second_path = bus_path(&second.address).unwrap();
    let link = home.file("bus.new");
    std::os::unix::fs::symlink(&second_path, &link).unwrap();
    std::fs::rename(&link, &bus).unwrap();
    wait_until(&second, "the child's session locked on the new bus", |l| {
        l.get("c1").locked
    });
}

/// A CST parent's LOCK_DEVICE is answered as the Android child answers it:
/// success once the device is locked, `DEVICE_LOCKED|ERROR|…` when the lock
/// could not be enforced (it stays recorded, and the locker keeps trying).
#[tokio::test(flavor = "multi_thread")]
async fn lock_device_says_whether_the_lock_was_enforced() {
    let Some(logind) = standin(vec![FakeSession::active("c1", CHILD_UID)]) else {
        return;
    };
    let home = Home::new("timezone = \"UTC\"\ndaily_minutes = 60\ngrace_minutes = 0\n");
    let agent = home.start_plain(
        &["--child-user", "nobody", "--legacy-allow-local"],
        &[("DBUS_SYSTEM_BUS_ADDRESS", logind.address.clone())],
    );
    let id = String::from_utf8(home.command(&["show-id"]).stdout).unwrap();
    let key = id.trim().parse::<cst_legacy::DeviceId>().unwrap().key();
    let to = std::net::SocketAddr::from(([127, 0, 0, 1], agent.port));
    let send = |command: &'static str| {
        let key = key.clone();
        async move {
            cst_legacy::client::send_command(to, &key, command, Duration::from_secs(5))
                .await
                .unwrap()
                .to_string()
        }
    };
    assert_eq!(
        send("LOCK_DEVICE").await,
        "DEVICE_LOCKED|Device is now blocked"
    );
    assert!(logind.get("c1").locked);
    assert_eq!(send("GET_TIME_LEFT").await, "TIME_LEFT|0|BLOCKED|60");
    assert_eq!(send("EXTEND_TIME:5").await, "TIME_EXTENDED|5 minutes added");

    // logind refuses to lock: the parent app hears so.
    logind.set("c1", |s| {
        s.locked = false;
        s.lock_fails = true;
    });
    assert_eq!(
        send("LOCK_DEVICE").await,
        "DEVICE_LOCKED|ERROR|Failed to lock device"
    );
    assert_eq!(
        home.status().unwrap()["state"],
        "LOCKED",
        "the lock stays recorded"
    );
}
