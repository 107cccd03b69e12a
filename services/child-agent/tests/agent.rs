//! The agent as a user runs it: restarts, kills, hooks, signals, bad input.

mod common;

use common::{Home, used_minutes};

const ONE_HOUR: &str = "timezone = \"UTC\"\ndaily_minutes = 60\ngrace_minutes = 0\n";

#[test]
fn used_time_survives_a_restart_and_a_kill_9() {
    let home = Home::new(ONE_HOUR);
    // 60x: one real second is a minute.
    let agent = home.start(60.0, &[]);
    let before_kill = used_minutes(&home.wait_for("5 minutes of use", |s| used_minutes(s) >= 5));
    agent.kill9();
    // Read offline: what the store holds after the kill.
    let after_kill = used_minutes(&home.status().unwrap());
    // The checkpoint comes every 2 real seconds: at 60x at most 2 minutes go.
    assert!(
        after_kill >= before_kill - 2,
        "used {before_kill} min before kill -9, {after_kill} min after"
    );

    let agent = home.start(60.0, &[]);
    let running = used_minutes(&home.status().unwrap());
    assert!(
        running >= after_kill,
        "{running} < {after_kill} after restart"
    );
    let before_stop = used_minutes(&home.wait_for("more use", |s| used_minutes(s) >= running + 2));
    assert!(agent.terminate(), "SIGTERM must stop the agent cleanly");
    let after_stop = used_minutes(&home.status().unwrap());
    assert!(
        after_stop >= before_stop,
        "clean stop lost time: {before_stop} -> {after_stop}"
    );
}

#[test]
fn the_lock_hook_runs_at_zero_and_the_unlock_hook_after_an_extension() {
    let home = Home::new("timezone = \"UTC\"\ndaily_minutes = 2\ngrace_minutes = 0\n");
    let log = home.file("hooks.log");
    let hook = |name: &str| {
        format!(
            "echo \"{name} $CHILD_AGENT_STATE $CHILD_AGENT_REMAINING_MINUTES\" >> {}",
            log.display()
        )
    };
    let (on_lock, on_unlock) = (hook("lock"), hook("unlock"));
    let _agent = home.start(60.0, &["--on-lock", &on_lock, "--on-unlock", &on_unlock]);
    // Two minutes is within the warning margin from the start.
    home.wait_for_line("hooks.log", "unlock WARNING 2");
    home.wait_for_line("hooks.log", "lock BLOCKED 0");
    let out = home.command(&["request-time", "10"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    home.wait_for_line("hooks.log", "unlock ACTIVE 10");
}

#[test]
fn a_device_that_starts_out_of_time_runs_the_lock_hook_at_start() {
    let home = Home::new("timezone = \"UTC\"\ndaily_minutes = 0\ngrace_minutes = 0\n");
    let log = home.file("hooks.log");
    let on_lock = format!("echo \"lock $CHILD_AGENT_STATE\" >> {}", log.display());
    let _agent = home.start(1.0, &["--on-lock", &on_lock]);
    home.wait_for_line("hooks.log", "lock BLOCKED");
}

#[test]
fn credits_are_counted_and_refused_when_spent() {
    let home = Home::new(
        "timezone = \"UTC\"\ndaily_minutes = 60\n[credits]\nfive_minute = 1\nten_minute = 0\n",
    );
    let _agent = home.start(1.0, &[]);
    let out = home.command(&["request-time", "5"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = home.status().unwrap();
    assert_eq!(status["credit_minutes"], 65);
    assert_eq!(status["five_minute_credits_left"], 0);

    let again = home.command(&["request-time", "5"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("no FiveMinute credits left"));
    let odd = home.command(&["request-time", "7"]);
    assert!(String::from_utf8_lossy(&odd.stderr).contains("minutes must be 5 or 10"));
    assert_eq!(
        home.status().unwrap()["credit_minutes"],
        65,
        "a refusal changes nothing"
    );
}

#[test]
fn show_id_is_the_same_while_running_and_stopped() {
    let home = Home::new(ONE_HOUR);
    let agent = home.start(1.0, &[]);
    let running = home.command(&["show-id"]);
    assert!(running.status.success());
    assert!(agent.terminate());
    let stopped = home.command(&["show-id"]);
    assert_eq!(running.stdout, stopped.stdout);
    let id = String::from_utf8(stopped.stdout).unwrap();
    assert_eq!(id.trim().len(), 16);
}

#[test]
fn bad_settings_are_refused_with_the_field_named() {
    let home = Home::new("timezone = \"Mars/Olympus\"\n");
    let run = |args: &[&str]| {
        std::process::Command::new(common::BIN)
            .args(["run", "--no-mdns"])
            .arg("--data-dir")
            .arg(home.path())
            .args(args)
            .output()
            .unwrap()
    };
    let policy = home.file("policy.toml");
    let out = run(&[
        "--usage-source",
        "simulated",
        "--policy",
        policy.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Mars/Olympus"));

    let out = run(&["--speed=-1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("speed must be"));

    let out = run(&["--legacy-mode", "loud"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("full") && stderr.contains("read-only"),
        "{stderr}"
    );
    // The same checks for settings from the environment and a config file.
    let out = std::process::Command::new(common::BIN)
        .args(["run", "--no-mdns", "--data-dir"])
        .arg(home.path())
        .env("CHILD_AGENT_SPEED", "0")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("speed must be"));
    let config = home.file("agent.toml");
    std::fs::write(&config, "usage_source = \"command\"\n").unwrap();
    let out = run(&["--config", config.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage_command is required"));
    assert!(
        !home.file("store").exists(),
        "a refused start creates no store"
    );
}

#[test]
fn a_bad_policy_file_is_reported_where_and_the_last_good_policy_stays_in_force() {
    let home = Home::new(ONE_HOUR);
    let agent = home.start(1.0, &[]);
    assert_eq!(home.status().unwrap()["allowance_minutes"], 60);
    assert!(agent.terminate());
    // The child (or a slip of the keyboard) breaks the file.
    std::fs::write(
        home.file("policy.toml"),
        "timezone = \"UTC\"\ndaily_minutes = 600\ngrace_minutes = \"lots\"\n",
    )
    .unwrap();
    let _agent = home.start(1.0, &[]);
    let status = home.status().unwrap();
    assert_eq!(
        status["allowance_minutes"], 60,
        "the last good policy holds"
    );
    let problems = status["problems"].to_string();
    assert!(problems.contains("line 3, column 17"), "{problems}");
    assert!(problems.contains("last good policy"), "{problems}");
}
