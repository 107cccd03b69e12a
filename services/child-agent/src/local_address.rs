//! Whether an address is one of this device's own: loopback, or an address
//! of any of its interfaces right now. A datagram from such an address was
//! sent by a program on the device — by one of its users, such as the child.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether `ip` belongs to this device. Interface addresses are read afresh
/// (`getifaddrs`) each time, so an address that DHCP just gave counts at once.
/// If they cannot be read, every address counts as the device's own:
/// failing closed, a parent's command is refused rather than a child's
/// carried out.
pub fn is_own(ip: IpAddr) -> bool {
    let ip = canonical(ip);
    if ip.is_loopback() || ip.is_unspecified() {
        return true;
    }
    match interface_addresses() {
        Ok(own) => own.contains(&ip),
        Err(e) => {
            tracing::error!(error = %e, "cannot read this device's addresses; treating {ip} as local");
            true
        }
    }
}

/// IPv4 addresses arrive as IPv4-mapped IPv6 on a dual-stack socket.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// The addresses of every interface of the device, up or not.
fn interface_addresses() -> std::io::Result<Vec<IpAddr>> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a linked list we free below.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut addresses = Vec::new();
    let mut entry = list;
    // SAFETY: each entry and its ifa_addr are valid until freeifaddrs; the
    // address family says which sockaddr type the pointer holds.
    unsafe {
        while !entry.is_null() {
            let address = (*entry).ifa_addr;
            if !address.is_null() {
                match i32::from((*address).sa_family) {
                    libc::AF_INET => {
                        let v4 = &*(address as *const libc::sockaddr_in);
                        addresses
                            .push(IpAddr::V4(Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr))));
                    }
                    libc::AF_INET6 => {
                        let v6 = &*(address as *const libc::sockaddr_in6);
                        addresses.push(IpAddr::V6(Ipv6Addr::from(v6.sin6_addr.s6_addr)));
                    }
                    _ => {}
                }
            }
            entry = (*entry).ifa_next;
        }
        libc::freeifaddrs(list);
    }
    Ok(addresses)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_the_interfaces_are_own_and_others_not() {
        assert!(is_own("127.0.0.1".parse().unwrap()));
        assert!(is_own("127.45.6.7".parse().unwrap()));
        assert!(is_own("::1".parse().unwrap()));
        assert!(is_own("::ffff:127.0.0.1".parse().unwrap()));
        for own in interface_addresses().unwrap() {
            assert!(is_own(own), "{own}");
        }
        // TEST-NET-3, reserved for documentation: never an interface here.
        assert!(!is_own("203.0.113.77".parse().unwrap()));
    }
}
