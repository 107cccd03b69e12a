//! The responder and the client talking over loopback.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cst_legacy::client::{self, ClientError};
use cst_legacy::message::{COMMAND_PREFIX, DISCOVERY, DISCOVERY_REPLY};
use cst_legacy::{
    Command, Counters, DeviceId, ErrorReply, Handler, Key, LegacyState, Mode, Refusal, Reply,
    Responder, ResponderConfig,
};
use tokio::net::UdpSocket;
use tokio::sync::oneshot;

const ID: &str = "3F2A9C1B7D4E8A60";
const TIMEOUT: Duration = Duration::from_secs(5);

/// Answers like a child with 42 of 120 minutes left and records every call.
#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<(Command, SocketAddr)>>,
    refusals: Mutex<Vec<(String, SocketAddr)>>,
    /// Addresses whose commands are not admitted.
    barred: Mutex<Vec<std::net::IpAddr>>,
    remembered: Mutex<Vec<cst_legacy::Digest>>,
}

impl Handler for Recorder {
    async fn remember(&self, digest: cst_legacy::Digest) {
        self.remembered.lock().unwrap().push(digest);
    }

    fn admits(&self, source: SocketAddr) -> bool {
        !self.barred.lock().unwrap().contains(&source.ip())
    }

    async fn refused(&self, refusal: Refusal<'_>, source: SocketAddr) {
        let what = match refusal {
            Refusal::ReadOnly(command) => format!("read-only {command}"),
            Refusal::NotACommand { text, error } => format!("{text:?} {error}"),
            Refusal::NotAdmitted(command) => format!("not admitted {command}"),
        };
        self.refusals.lock().unwrap().push((what, source));
    }

    async fn handle(&self, command: Command, source: SocketAddr) -> Reply {
        self.calls.lock().unwrap().push((command, source));
        match command {
            Command::GetTimeLeft => Reply::TimeLeft {
                remaining_minutes: 42,
                state: LegacyState::Active,
                credit_minutes: 120,
            },
            Command::LockDevice => Reply::DeviceLocked,
            Command::ExtendTime { minutes } => Reply::TimeExtended { minutes },
        }
    }
}

impl Recorder {
    fn commands(&self) -> Vec<Command> {
        self.calls.lock().unwrap().iter().map(|(c, _)| *c).collect()
    }

    fn refusals(&self) -> Vec<String> {
        let refusals = self.refusals.lock().unwrap();
        refusals.iter().map(|(what, _)| what.clone()).collect()
    }
}

struct Child {
    address: SocketAddr,
    recorder: Arc<Recorder>,
    counters: Arc<Counters>,
    _stop: oneshot::Sender<()>,
}

fn key() -> Key {
    ID.parse::<DeviceId>().unwrap().key()
}

async fn child(bind: &str, config: impl FnOnce(&mut ResponderConfig)) -> Child {
    let mut settings = ResponderConfig::new(key(), Mode::Full);
    config(&mut settings);
    let recorder = Arc::new(Recorder::default());
    let responder = Responder::bind(bind.parse().unwrap(), settings, recorder.clone())
        .await
        .unwrap();
    let mut address = responder.local_addr().unwrap();
    address.set_ip([127, 0, 0, 1].into());
    let counters = responder.counters();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(responder.serve(async move {
        let _ = stopped.await;
    }));
    Child {
        address,
        recorder,
        counters,
        _stop: stop,
    }
}

async fn send(child: &Child, command: &str) -> Result<Reply, ClientError> {
    client::send_command(child.address, &key(), command, TIMEOUT).await
}

/// Sends `datagram`, then a discovery from the same socket, and returns
/// what came back before the discovery reply: the responder handles
/// datagrams in order, so anything the first one caused has arrived by then.
async fn replies_to(child: &Child, datagram: &[u8]) -> Vec<Vec<u8>> {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.send_to(datagram, child.address).await.unwrap();
    socket
        .send_to(DISCOVERY.as_bytes(), child.address)
        .await
        .unwrap();
    let mut replies = Vec::new();
    let mut buffer = [0u8; 2048];
    loop {
        let (len, _) = tokio::time::timeout(TIMEOUT, socket.recv_from(&mut buffer))
            .await
            .expect("the discovery behind it is answered")
            .unwrap();
        if &buffer[..len] == DISCOVERY_REPLY.as_bytes() {
            return replies;
        }
        replies.push(buffer[..len].to_vec());
    }
}

#[tokio::test]
async fn every_command_round_trips() {
    let child = child("127.0.0.1:0", |_| {}).await;
    assert_eq!(
        send(&child, "GET_TIME_LEFT").await.unwrap().describe(),
        "Time Left: 42 min (Total: 120 min) - Status: ACTIVE"
    );
    assert_eq!(
        send(&child, "LOCK_DEVICE").await.unwrap(),
        Reply::DeviceLocked
    );
    assert_eq!(
        send(&child, "EXTEND_TIME:30").await.unwrap(),
        Reply::TimeExtended { minutes: 30 }
    );
    assert_eq!(
        child.recorder.commands(),
        [
            Command::GetTimeLeft,
            Command::LockDevice,
            Command::ExtendTime { minutes: 30 }
        ]
    );
    let (_, source) = child.recorder.calls.lock().unwrap()[0];
    assert_eq!(
        source.ip(),
        child.address.ip(),
        "the handler learns the sender"
    );
}

#[tokio::test]
async fn error_replies_come_back_sealed_and_run_nothing() {
    let child = child("127.0.0.1:0", |_| {}).await;
    for (text, error) in [
        ("EXTEND_TIME", ErrorReply::ExtendFormat),
        ("EXTEND_TIME:0", ErrorReply::MinutesRange),
        ("EXTEND_TIME:lots", ErrorReply::MinutesValue),
        ("FORMAT_DISK", ErrorReply::UnknownCommand),
    ] {
        assert_eq!(
            send(&child, text).await.unwrap(),
            Reply::Error(error),
            "{text}"
        );
    }
    assert!(child.recorder.commands().is_empty());
    assert_eq!(
        child.recorder.refusals(),
        [
            "\"EXTEND_TIME\" Invalid EXTEND_TIME format. Use EXTEND_TIME:minutes",
            "\"EXTEND_TIME:0\" Invalid minutes. Must be 1-1440",
            "\"EXTEND_TIME:lots\" Invalid minutes value",
            "\"FORMAT_DISK\" Unknown command",
        ],
        "the handler learns of each, to record it"
    );
    let (_, source) = child.recorder.refusals.lock().unwrap()[0];
    assert_eq!(source.ip(), child.address.ip());
    assert_eq!(Counters::get(&child.counters.rejected), 4);
}

#[tokio::test]
async fn discovery_is_answered_by_unicast_and_by_loopback_broadcast() {
    let child = child("0.0.0.0:0", |_| {}).await;
    let found = client::discover(child.address, Duration::from_millis(300))
        .await
        .unwrap();
    assert_eq!(found, [child.address.ip()]);
    let broadcast: SocketAddr = format!("127.255.255.255:{}", child.address.port())
        .parse()
        .unwrap();
    let found = client::discover(broadcast, Duration::from_millis(600))
        .await
        .unwrap();
    assert_eq!(
        found,
        [child.address.ip()],
        "one entry however many retries"
    );
}

#[tokio::test]
async fn a_replayed_datagram_is_not_executed_twice() {
    let child = child("127.0.0.1:0", |_| {}).await;
    let datagram = format!("{COMMAND_PREFIX}{}", key().seal("EXTEND_TIME:15"));
    assert_eq!(replies_to(&child, datagram.as_bytes()).await.len(), 1);
    assert!(replies_to(&child, datagram.as_bytes()).await.is_empty());
    assert_eq!(
        child.recorder.commands(),
        [Command::ExtendTime { minutes: 15 }]
    );
    assert_eq!(Counters::get(&child.counters.dropped_replayed), 1);
    assert!(
        child.recorder.refusals().is_empty(),
        "a replay is not reported"
    );
    // The same command sealed afresh, as a parent app sends it, runs again.
    assert!(matches!(
        send(&child, "EXTEND_TIME:15").await,
        Ok(Reply::TimeExtended { minutes: 15 })
    ));
}

#[tokio::test]
async fn a_replay_with_its_whitespace_or_padding_changed_is_not_executed_again() {
    let child = child("127.0.0.1:0", |_| {}).await;
    let sealed = key().seal("EXTEND_TIME:15");
    // One base64 line: 32 bytes, so 44 characters ending in one `=`, and `\n`.
    assert!(sealed.ends_with("=\n"), "{sealed:?}");
    let datagram = format!("{COMMAND_PREFIX}{sealed}");
    assert_eq!(replies_to(&child, datagram.as_bytes()).await.len(), 1);
    let middle = COMMAND_PREFIX.len() + 20;
    let variants = [
        datagram.trim_end().to_owned(),
        format!("{datagram} "),
        datagram.replace('\n', "\r\n"),
        format!("{} {}", &datagram[..middle], &datagram[middle..]),
        format!("{}\n{}", &datagram[..middle], &datagram[middle..]),
        datagram.trim_end().trim_end_matches('=').to_owned(),
    ];
    for variant in &variants {
        assert_ne!(variant, &datagram);
        assert_eq!(
            key().open(&variant[COMMAND_PREFIX.len()..]).unwrap(),
            "EXTEND_TIME:15"
        );
        assert!(
            replies_to(&child, variant.as_bytes()).await.is_empty(),
            "{variant:?} was answered"
        );
    }
    assert_eq!(
        child.recorder.commands(),
        [Command::ExtendTime { minutes: 15 }],
        "executed once"
    );
    assert_eq!(
        Counters::get(&child.counters.dropped_replayed),
        variants.len() as u64
    );
}

#[tokio::test]
async fn junk_changes_nothing_and_gets_no_reply() {
    let child = child("127.0.0.1:0", |_| {}).await;
    let wrong_key = "0000000000000000".parse::<DeviceId>().unwrap().key();
    // A valid block whose padding does not check out under our key: the
    // ciphertext of 16 zero bytes with no padding block.
    let bad_padding = {
        let sealed = key().seal_with_iv("GET_TIME_LEFT", [7; 16]);
        let raw: String = sealed.split_whitespace().collect();
        // Flip the last ciphertext byte: the padding no longer decodes.
        let mut bytes = base64_decode(&raw);
        let last = bytes.len() - 1;
        bytes[last] ^= 0x55;
        base64_encode(&bytes)
    };
    let junk: Vec<Vec<u8>> = vec![
        b"hello".to_vec(),
        vec![0xff; 40],
        vec![b'A'; 1025],
        format!("{COMMAND_PREFIX}{}", "%%%not base64%%%").into_bytes(),
        format!("{COMMAND_PREFIX}{}", "QUJD").into_bytes(),
        format!("{COMMAND_PREFIX}{bad_padding}").into_bytes(),
        format!("{COMMAND_PREFIX}{}", wrong_key.seal("LOCK_DEVICE")).into_bytes(),
        format!("CST_RESP:{}", key().seal("LOCK_DEVICE")).into_bytes(),
    ];
    for datagram in &junk {
        assert!(replies_to(&child, datagram).await.is_empty());
    }
    assert!(
        child.recorder.commands().is_empty() && child.recorder.refusals().is_empty(),
        "the handler never learnt of any"
    );
    let c = &child.counters;
    assert_eq!(Counters::get(&c.dropped_oversized), 1);
    assert_eq!(Counters::get(&c.dropped_unknown), 3);
    assert_eq!(Counters::get(&c.dropped_undecryptable), 4);
}

/// Sends a discovery from another loopback address and waits for its answer:
/// the responder handles datagrams in order, so everything sent before is done.
async fn probe_answered(address: std::net::SocketAddr) {
    let probe = UdpSocket::bind("127.0.0.2:0").await.unwrap();
    probe.send_to(DISCOVERY.as_bytes(), address).await.unwrap();
    let mut buffer = [0u8; 64];
    tokio::time::timeout(TIMEOUT, probe.recv_from(&mut buffer))
        .await
        .expect("probe answered")
        .unwrap();
}

#[tokio::test]
async fn a_flood_from_one_source_is_cut_to_its_burst() {
    let child = child("127.0.0.1:0", |c| {
        c.rate_burst = 10;
        c.rate_per_second = 0.001;
    })
    .await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for _ in 0..100 {
        socket
            .send_to(DISCOVERY.as_bytes(), child.address)
            .await
            .unwrap();
    }
    // Once a probe from another address is answered, the flood was handled.
    probe_answered(child.address).await;
    let mut buffer = [0u8; 64];
    let mut answered = 0;
    while socket.try_recv_from(&mut buffer).is_ok() {
        answered += 1;
    }
    assert_eq!(answered, 10);
    assert_eq!(Counters::get(&child.counters.dropped_rate_limited), 90);
}

#[tokio::test]
async fn rate_limited_commands_are_not_reported() {
    let child = child("127.0.0.1:0", |c| {
        // The command and the discovery behind it.
        c.rate_burst = 2;
        c.rate_per_second = 0.001;
    })
    .await;
    let first = format!("{COMMAND_PREFIX}{}", key().seal("FORMAT_DISK"));
    assert_eq!(replies_to(&child, first.as_bytes()).await.len(), 1);
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let second = format!("{COMMAND_PREFIX}{}", key().seal("FORMAT_DISK"));
    // Same address, no tokens left: dropped. A discovery from another
    // address being answered shows the responder has handled it.
    socket
        .send_to(second.as_bytes(), child.address)
        .await
        .unwrap();
    probe_answered(child.address).await;
    assert_eq!(child.recorder.refusals().len(), 1);
    assert_eq!(Counters::get(&child.counters.dropped_rate_limited), 1);
}

#[tokio::test]
async fn read_only_answers_time_left_and_refuses_the_rest() {
    let child = child("127.0.0.1:0", |c| c.mode = Mode::ReadOnly).await;
    assert!(matches!(
        send(&child, "GET_TIME_LEFT").await,
        Ok(Reply::TimeLeft { .. })
    ));
    assert_eq!(
        send(&child, "LOCK_DEVICE").await.unwrap(),
        Reply::LockFailed
    );
    assert_eq!(
        send(&child, "EXTEND_TIME:30").await.unwrap(),
        Reply::Error(ErrorReply::ProcessingFailed)
    );
    assert_eq!(child.recorder.commands(), [Command::GetTimeLeft]);
    assert_eq!(
        child.recorder.refusals(),
        ["read-only LOCK_DEVICE", "read-only EXTEND_TIME:30"]
    );
    assert_eq!(
        client::discover(child.address, Duration::from_millis(200))
            .await
            .unwrap(),
        [child.address.ip()]
    );
}

#[tokio::test]
async fn off_answers_nothing() {
    let child = child("127.0.0.1:0", |c| c.mode = Mode::Off).await;
    let err = client::send_command(
        child.address,
        &key(),
        "GET_TIME_LEFT",
        Duration::from_millis(300),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ClientError::Timeout { .. }));
    assert!(child.recorder.commands().is_empty());
}

#[tokio::test]
async fn the_client_accepts_a_reply_from_another_port_of_the_host() {
    // A child like the Android app: it answers from a fresh socket.
    let listener = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buffer = [0u8; 2048];
        let (len, parent) = listener.recv_from(&mut buffer).await.unwrap();
        let text = std::str::from_utf8(&buffer[..len]).unwrap();
        let command = key()
            .open(text.strip_prefix(COMMAND_PREFIX).unwrap())
            .unwrap();
        assert_eq!(command, "GET_TIME_LEFT");
        let fresh = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let reply = format!("CST_RESP:{}", key().seal("TIME_LEFT|0|BLOCKED|90"));
        fresh.send_to(reply.as_bytes(), parent).await.unwrap();
    });
    let reply = client::send_command(address, &key(), "GET_TIME_LEFT", TIMEOUT)
        .await
        .unwrap();
    assert_eq!(reply.to_string(), "TIME_LEFT|0|BLOCKED|90");
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test]
async fn commands_from_a_source_not_admitted_get_their_failure_reply_and_run_nothing() {
    let child = child("127.0.0.1:0", |_| {}).await;
    child
        .recorder
        .barred
        .lock()
        .unwrap()
        .push([127, 0, 0, 1].into());
    for (command, reply) in [
        ("EXTEND_TIME:1440", "ERROR|Command processing failed"),
        ("LOCK_DEVICE", "DEVICE_LOCKED|ERROR|Failed to lock device"),
        ("GET_TIME_LEFT", "TIME_LEFT|ERROR|Failed to get time data"),
    ] {
        assert_eq!(send(&child, command).await.unwrap().to_string(), reply);
    }
    assert!(child.recorder.commands().is_empty());
    assert_eq!(
        child.recorder.refusals(),
        [
            "not admitted EXTEND_TIME:1440",
            "not admitted LOCK_DEVICE",
            "not admitted GET_TIME_LEFT"
        ]
    );
    assert_eq!(Counters::get(&child.counters.refused_source), 3);
    // Discovery is not a command: still answered.
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket
        .send_to(DISCOVERY.as_bytes(), child.address)
        .await
        .unwrap();
    let mut buffer = [0u8; 64];
    let (len, _) = tokio::time::timeout(TIMEOUT, socket.recv_from(&mut buffer))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buffer[..len], DISCOVERY_REPLY.as_bytes());
}

#[tokio::test]
async fn a_flood_from_many_sources_is_cut_to_the_global_burst() {
    let child = child("127.0.0.1:0", |c| {
        c.global_rate_burst = 10;
        c.global_rate_per_second = 0.001;
    })
    .await;
    // 50 loopback addresses, 4 datagrams each: within every per-address burst.
    let mut sockets = Vec::new();
    for n in 1..=50u8 {
        let socket = UdpSocket::bind((std::net::Ipv4Addr::new(127, 0, 1, n), 0))
            .await
            .unwrap();
        for _ in 0..4 {
            socket
                .send_to(DISCOVERY.as_bytes(), child.address)
                .await
                .unwrap();
        }
        sockets.push(socket);
    }
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while Counters::get(&child.counters.received) < 200 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not all datagrams arrived"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(Counters::get(&child.counters.discovery), 10);
    assert_eq!(Counters::get(&child.counters.dropped_global_rate), 190);
    assert_eq!(Counters::get(&child.counters.dropped_rate_limited), 0);
}

#[tokio::test]
async fn a_window_seeded_with_what_a_handler_remembered_catches_a_replay_after_a_restart() {
    let first = child("127.0.0.1:0", |_| {}).await;
    let datagram = format!("{COMMAND_PREFIX}{}", key().seal("EXTEND_TIME:30"));
    assert_eq!(replies_to(&first, datagram.as_bytes()).await.len(), 1);
    let remembered = first.recorder.remembered.lock().unwrap().clone();
    assert_eq!(remembered.len(), 1);
    drop(first);
    // The next run starts with what the first one remembered, a minute ago.
    let second = child("127.0.0.1:0", |c| {
        c.replay_seen = remembered
            .iter()
            .map(|d| (*d, Duration::from_secs(60)))
            .collect();
    })
    .await;
    assert!(replies_to(&second, datagram.as_bytes()).await.is_empty());
    assert!(second.recorder.commands().is_empty());
    assert_eq!(Counters::get(&second.counters.dropped_replayed), 1);
}

#[tokio::test]
async fn a_command_sent_to_a_broadcast_address_takes_the_reply_from_the_childs_own() {
    let child = child("0.0.0.0:0", |_| {}).await;
    let broadcast: SocketAddr = format!("127.255.255.255:{}", child.address.port())
        .parse()
        .unwrap();
    let reply = client::send_command(broadcast, &key(), "GET_TIME_LEFT", TIMEOUT)
        .await
        .unwrap();
    assert_eq!(reply.to_string(), "TIME_LEFT|42|ACTIVE|120");
    // A reply sealed with another key is not the child's: ignored.
    let other = "0123456789ABCDEF".parse::<DeviceId>().unwrap().key();
    let err = client::send_command(
        broadcast,
        &other,
        "GET_TIME_LEFT",
        Duration::from_millis(300),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ClientError::Timeout { .. }), "{err}");
}
