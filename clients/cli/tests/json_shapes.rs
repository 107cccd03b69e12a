//! The `--json` output is a contract for scripts: its shape (every key, and the type
//! of every value) must match the examples committed in `tests/json/`. Values differ
//! from run to run (ids, times); shapes may not change without the examples changing
//! with them, in the same commit.
//!
//! `HOUSEHOLD_UPDATE_JSON_EXAMPLES=1 cargo test -p household-cli --test json_shapes`
//! writes the examples afresh from a real run, for a deliberate change.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{CLI, Hub};
use serde_json::{Map, Value};

fn household(profile: &Path, args: &[&str]) -> String {
    let output: Output = Command::new(CLI)
        .arg("--config")
        .arg(profile)
        .args(args)
        .env("RUST_LOG", "off")
        .output()
        .expect("run household");
    assert!(
        output.status.success(),
        "household {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

/// The shape of a JSON value: objects keep their keys, arrays the shape of their
/// first element, and every scalar becomes the name of its type.
fn shape(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), shape(v)))
                .collect::<Map<_, _>>(),
        ),
        Value::Array(items) => Value::Array(items.first().map(shape).into_iter().collect()),
        Value::String(_) => "string".into(),
        Value::Number(_) => "number".into(),
        Value::Bool(_) => "bool".into(),
        Value::Null => "null".into(),
    }
}

/// Output of one JSON object per line (`history --json`): every line has the shape of
/// the example's first.
fn check_lines(name: &str, output: &str) {
    let lines: Vec<Value> = output
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{name}: a line is not JSON ({e}): {line}"))
        })
        .collect();
    assert!(!lines.is_empty(), "{name}: no lines");
    let first = lines[0].clone();
    for line in &lines {
        assert_eq!(shape(line), shape(&first), "{name}: lines differ in shape");
    }
    check(name, &Value::Array(vec![first]).to_string());
}

fn check(name: &str, output: &str) {
    let actual: Value = serde_json::from_str(output)
        .unwrap_or_else(|e| panic!("{name}: not one JSON value ({e}): {output}"));
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/json")
        .join(format!("{name}.json"));
    if std::env::var_os("HOUSEHOLD_UPDATE_JSON_EXAMPLES").is_some() {
        let pretty = serde_json::to_string_pretty(&actual).unwrap() + "\n";
        std::fs::write(&path, pretty).unwrap();
        return;
    }
    let example: Value = serde_json::from_str(
        &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap();
    assert_eq!(
        shape(&actual),
        shape(&example),
        "the shape of `{name}` changed; if that is meant, update tests/json/{name}.json"
    );
}

#[test]
fn json_output_keeps_the_shape_of_the_committed_examples() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(&dir.path().join("hub"));
    let code = hub.invite_guardian("Anna");
    let anna = dir.path().join("anna/profile.json");
    household(&anna, &["pair", &code, "--hub", &hub.address]);

    // Something of everything, so that no list is empty.
    household(&anna, &["children", "add", "Mia"]);
    household(
        &anna,
        &["invite", "device", "--child", "Mia", "--name", "tablet"],
    );
    household(&anna, &["extend", "Mia", "30", "--note", "homework done"]);
    household(&anna, &["lock", "Mia", "--until", "23:59"]);
    household(
        &anna,
        &[
            "policy",
            "set",
            "Mia",
            "--daily",
            "all=90",
            "--bedtime",
            "21:00-07:00",
        ],
    );

    check("status", &household(&anna, &["status", "--json"]));
    check(
        "children-list",
        &household(&anna, &["children", "list", "--json"]),
    );
    check(
        "devices-list",
        &household(&anna, &["devices", "list", "--json"]),
    );
    check(
        "policy-show",
        &household(&anna, &["policy", "show", "Mia", "--json"]),
    );
    check_lines("history", &household(&anna, &["history", "Mia", "--json"]));
    check("report", &household(&anna, &["report", "Mia", "--json"]));
    check(
        "credentials-list",
        &household(&anna, &["credentials", "list", "--json"]),
    );
}
