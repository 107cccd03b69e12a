//! Who is on the other end of the control socket, and what they may do.
//!
//! The child is a local user like any other, so the socket itself is open to
//! everyone; what a request may do depends on the peer's credentials, which
//! the kernel vouches for (`SO_PEERCRED`). Root, the agent's own user and the
//! members of the [`ADMIN_GROUP`] group are *administrators*: they may read
//! the device ID (the CST key) and the event log. Everyone else — the child
//! — may read the status and spend the child's own credits, nothing more.

use std::ffi::{CStr, CString};

/// Members of this group (from `/etc/group`, or as primary group) may do
/// what root may over the control socket.
pub const ADMIN_GROUP: &str = "household-admin";

/// What a peer may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Root, the agent's user, or a member of [`ADMIN_GROUP`].
    Admin,
    /// Anyone else: status and the child's own credits.
    Child,
}

/// The standing of a peer with effective `uid` and `gid`.
pub fn standing(uid: u32, gid: u32) -> Standing {
    // SAFETY: geteuid takes nothing and cannot fail.
    let own = unsafe { libc::geteuid() };
    if uid == 0 || uid == own {
        return Standing::Admin;
    }
    match admin_group() {
        Some((admin_gid, members)) => {
            let named = user_name(uid).is_some_and(|name| members.contains(&name));
            if gid == admin_gid || named {
                Standing::Admin
            } else {
                Standing::Child
            }
        }
        None => Standing::Child,
    }
}

/// The admin group's id and member names, if the group exists.
fn admin_group() -> Option<(u32, Vec<String>)> {
    let name = CString::new(ADMIN_GROUP).ok()?;
    let mut buffer = vec![0u8; 16 * 1024];
    // SAFETY: all-zero is a valid `struct group` to be filled in.
    let mut group: libc::group = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::group = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call; the buffer outlives the
    // strings getgrnam_r points into, which are read before it is dropped.
    let rc = unsafe {
        libc::getgrnam_r(
            name.as_ptr(),
            &mut group,
            buffer.as_mut_ptr().cast(),
            buffer.len(),
            &mut found,
        )
    };
    if rc != 0 || found.is_null() {
        return None;
    }
    let mut members = Vec::new();
    let mut member = group.gr_mem;
    // SAFETY: gr_mem is a NULL-terminated array of C strings inside `buffer`.
    unsafe {
        while !member.is_null() && !(*member).is_null() {
            members.push(CStr::from_ptr(*member).to_string_lossy().into_owned());
            member = member.add(1);
        }
    }
    Some((group.gr_gid, members))
}

/// The login name of `uid`, if it has one.
pub fn user_name(uid: u32) -> Option<String> {
    let mut buffer = vec![0u8; 16 * 1024];
    // SAFETY: all-zero is a valid `struct passwd` to be filled in.
    let mut passwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: as in `admin_group`.
    let rc = unsafe {
        libc::getpwuid_r(
            uid,
            &mut passwd,
            buffer.as_mut_ptr().cast(),
            buffer.len(),
            &mut found,
        )
    };
    if rc != 0 || found.is_null() {
        return None;
    }
    // SAFETY: pw_name points into `buffer`, NUL-terminated.
    Some(
        unsafe { CStr::from_ptr(passwd.pw_name) }
            .to_string_lossy()
            .into_owned(),
    )
}

/// The uid of the login `name`, if such a user exists.
pub fn user_id(name: &str) -> Option<u32> {
    let name = CString::new(name).ok()?;
    let mut buffer = vec![0u8; 16 * 1024];
    // SAFETY: all-zero is a valid `struct passwd` to be filled in.
    let mut passwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: as in `admin_group`.
    let rc = unsafe {
        libc::getpwnam_r(
            name.as_ptr(),
            &mut passwd,
            buffer.as_mut_ptr().cast(),
            buffer.len(),
            &mut found,
        )
    };
    (rc == 0 && !found.is_null()).then_some(passwd.pw_uid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_and_the_agents_own_user_are_admins() {
        assert_eq!(standing(0, 0), Standing::Admin);
        // SAFETY: as above.
        let own = unsafe { libc::geteuid() };
        assert_eq!(standing(own, 12345), Standing::Admin);
    }

    #[test]
    fn nobody_is_the_child() {
        let Some(nobody) = user_id("nobody") else {
            println!("skipped: this system has no user `nobody`");
            return;
        };
        // SAFETY: as above.
        if unsafe { libc::geteuid() } == nobody {
            println!("skipped: the tests run as `nobody`");
            return;
        }
        assert_eq!(standing(nobody, 65534), Standing::Child);
        assert_eq!(user_name(0).as_deref(), Some("root"));
    }
}
