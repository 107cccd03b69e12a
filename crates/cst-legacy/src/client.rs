//! The parent's side: discovering children by broadcast and sending them
//! sealed commands.

use std::collections::BTreeSet;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::Instant;

use crate::message::{
    COMMAND_PREFIX, DISCOVERY, DISCOVERY_REPLY, MAX_DATAGRAM, REPLY_PREFIX, Reply, UnknownReply,
};
use crate::seal::Key;

/// The port children listen on.
pub const CHILD_PORT: u16 = 8888;
/// How long the parent app waits, for discovery and for a reply.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// First pause between discovery broadcasts; it doubles after each.
const FIRST_RETRY: Duration = Duration::from_millis(250);

/// Why a command got no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("network error: {0}")]
    Io(#[from] io::Error),
    #[error("no reply from {to} within {timeout:?}")]
    Timeout { to: SocketAddr, timeout: Duration },
    #[error("the command text is {len} bytes sealed; the protocol allows at most {MAX_DATAGRAM}")]
    TooLong { len: usize },
    #[error(transparent)]
    UnknownReply(#[from] UnknownReply),
}

/// Broadcasts discovery to `broadcast` and collects the children that answer
/// within `timeout`. Discovery is sent again after 250 ms, 500 ms, 1 s, …
/// while time remains (a broadcast is easily lost); each child is listed
/// once, by address, in address order.
pub async fn discover(broadcast: SocketAddr, timeout: Duration) -> io::Result<Vec<IpAddr>> {
    let socket = UdpSocket::bind((unspecified_like(broadcast.ip()), 0)).await?;
    socket.set_broadcast(true)?;
    let deadline = Instant::now() + timeout;
    let mut next_send = Instant::now();
    let mut pause = FIRST_RETRY;
    let mut found = BTreeSet::new();
    let mut buffer = [0u8; MAX_DATAGRAM];
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Ok(found.into_iter().collect());
        }
        if now >= next_send {
            socket.send_to(DISCOVERY.as_bytes(), broadcast).await?;
            next_send = now + pause;
            pause *= 2;
        }
        let wake = next_send.min(deadline);
        match tokio::time::timeout_at(wake, socket.recv_from(&mut buffer)).await {
            Err(_) => continue,
            Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
            Ok(Err(e)) => return Err(e),
            Ok(Ok((len, from))) => {
                if &buffer[..len] == DISCOVERY_REPLY.as_bytes() {
                    found.insert(from.ip());
                }
            }
        }
    }
}

/// Seals `command` (any text: the child's parser decides) for the child at
/// `to`, sends it, and waits up to `timeout` for the reply. The reply may
/// come from any port (the Android child answers from a fresh socket) and
/// from any address: `to` may be a broadcast address, and a child answers
/// from its own. What makes a reply the child's is that it opens with the
/// key; datagrams that do not are ignored.
pub async fn send_command(
    to: SocketAddr,
    key: &Key,
    command: &str,
    timeout: Duration,
) -> Result<Reply, ClientError> {
    send_command_from(unspecified_like(to.ip()), to, key, command, timeout).await
}

/// [`send_command`] from the local address `from` (on a device with several
/// addresses, the one the child should see).
pub async fn send_command_from(
    from: IpAddr,
    to: SocketAddr,
    key: &Key,
    command: &str,
    timeout: Duration,
) -> Result<Reply, ClientError> {
    let socket = UdpSocket::bind((from, 0)).await?;
    socket.set_broadcast(true)?;
    let datagram = format!("{COMMAND_PREFIX}{}", key.seal(command));
    if datagram.len() > MAX_DATAGRAM {
        return Err(ClientError::TooLong {
            len: datagram.len(),
        });
    }
    socket.send_to(datagram.as_bytes(), to).await?;
    let deadline = Instant::now() + timeout;
    let mut buffer = [0u8; MAX_DATAGRAM + 1];
    loop {
        let (len, _from) =
            match tokio::time::timeout_at(deadline, socket.recv_from(&mut buffer)).await {
                Err(_) => return Err(ClientError::Timeout { to, timeout }),
                Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
                Ok(received) => received?,
            };
        if len > MAX_DATAGRAM {
            continue;
        }
        let Some(text) = std::str::from_utf8(&buffer[..len])
            .ok()
            .and_then(|d| d.strip_prefix(REPLY_PREFIX))
            .and_then(|sealed| key.open(sealed).ok())
        else {
            continue;
        };
        return Ok(Reply::parse(&text)?);
    }
}

fn unspecified_like(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
    }
}
