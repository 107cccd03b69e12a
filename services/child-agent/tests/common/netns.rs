//! What the tests that make network namespaces share.

use std::process::Command;

/// Why this process is not root, or `None` if it is: network namespaces need root.
pub fn not_root() -> Option<String> {
    // SAFETY: geteuid(2) takes nothing and cannot fail.
    let euid = unsafe { libc::geteuid() };
    (euid != 0).then(|| format!("running as uid {euid}"))
}

/// Runs `ip ARGS`; `Err` says what failed.
pub fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
