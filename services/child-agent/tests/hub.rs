//! The agent enrolled with a real hub: one budget across a child's devices,
//! guardians' grants and locks reaching every device, and nothing measured
//! lost to a hub killed again and again or to a partition.
//!
//! Everything runs on loopback with mDNS off (`--hub` names the hub); the
//! mDNS path is tested in a network namespace (tests/netns.rs).

mod common;

use std::time::{Duration, Instant};

use common::Home;
use common::hub::{Guardian, Hub};
use household_proto::v1;
use serde_json::Value;
use tokio::task::block_in_place;

/// A policy file the agent needs to start; an enrolled agent enforces the hub's.
const LOCAL_POLICY: &str = "[daily_minutes]\ndefault = 120\n";

fn enroll(home: &Home, code: &str, hub: &Hub) {
    let out = home.command(&["enroll", code, "--hub", &hub.address]);
    assert!(
        out.status.success(),
        "enroll failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn connected(status: &Value) -> bool {
    status["hub"]["connected"] == Value::Bool(true)
}

fn remaining(status: &Value) -> i64 {
    status["remaining_minutes"].as_i64().unwrap()
}

/// The device's own use, summed from the usage it recorded (its log).
fn measured_seconds(home: &Home) -> f64 {
    let out = home.command(&["log", "--limit", "1000000"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|event| {
            let usage = &event["kind"]["UsageReported"];
            let at = |k: &str| usage[k].as_str()?.parse::<jiff::Timestamp>().ok();
            Some((at("end")? - at("start")?).total(jiff::Unit::Second).ok()?)
        })
        .sum()
}

async fn device_used(mum: &mut Guardian, child: &str, device: &str) -> i64 {
    let status = mum.status(child).await;
    status
        .devices
        .iter()
        .find(|d| d.device_id == device)
        .map_or(0, |d| d.used_seconds_today)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_devices_share_one_budget_and_follow_every_guardian() {
    let hub_dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(hub_dir.path());
    let mut mum = Guardian::join(&hub).await;
    let mut dad = Guardian::join(&hub).await;
    let mia = mum.add_child("Mia").await;
    let (_, tablet_code) = mum.add_device(&mia, "tablet").await;
    let (_, laptop_code) = mum.add_device(&mia, "laptop").await;
    let (tablet, laptop) = (Home::new(LOCAL_POLICY), Home::new(LOCAL_POLICY));
    enroll(&tablet, &tablet_code, &hub);
    enroll(&laptop, &laptop_code, &hub);
    let started = Instant::now();
    let _tablet_agent = tablet.start(1.0, &[]);
    let _laptop_agent = laptop.start(1.0, &[]);
    let homes = [&tablet, &laptop];
    let before: Vec<i64> = homes
        .iter()
        .map(|h| remaining(&block_in_place(|| h.wait_for("the hub", connected))))
        .collect();

    // A grant reaches both devices, once, however often it is retried.
    for _ in 0..3 {
        mum.grant(&mia, 30, "homework-done").await;
    }
    for (home, before) in homes.iter().zip(&before) {
        block_in_place(|| {
            home.wait_for("the grant", |s| remaining(s) >= before + 29 && remaining(s) <= before + 30)
        });
    }
    // One guardian locks while the other unlocks: every screen ends the same.
    mum.lock(&mia).await;
    for home in homes {
        block_in_place(|| home.wait_for("the lock", |s| s["state"] == "LOCKED"));
    }
    dad.unlock(&mia).await;
    mum.lock(&mia).await;
    dad.unlock(&mia).await;
    for home in homes {
        block_in_place(|| home.wait_for("the unlock", |s| s["state"] == "ACTIVE"));
    }
    let hub_state = mum.status(&mia).await;
    assert_eq!(hub_state.state, v1::ScreenState::Active as i32);

    // Both devices in use at once all along: the child's use counts once.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let elapsed = started.elapsed().as_secs() as i64;
    let status = mum.status(&mia).await;
    let per_device: Vec<i64> = status.devices.iter().map(|d| d.used_seconds_today).collect();
    assert!(
        per_device.iter().all(|&s| s >= 5),
        "both devices report use: {per_device:?}"
    );
    assert!(
        status.used_seconds <= elapsed + 1,
        "overlapping use counted once: {} s used in {elapsed} s ({per_device:?})",
        status.used_seconds
    );
    assert_eq!(
        status.remaining_seconds,
        status.allowance_seconds - status.used_seconds
    );
}
