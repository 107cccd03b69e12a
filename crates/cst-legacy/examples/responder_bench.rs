//! Benchmark of the CST responder on loopback (not a test):
//!
//! 1. throughput: senders blast a mix of 90% junk (text that is not the
//!    protocol, oversized datagrams, commands under the wrong key) and 10%
//!    valid sealed `GET_TIME_LEFT`; we count datagrams the responder handled
//!    per second;
//! 2. a flood from one address with the default rate limit on;
//! 3. latency: sequential `GET_TIME_LEFT` round trips through the real
//!    client (seal, send, reply, open), p50 and p99.
//!
//! Each runs 3 times; the median is printed.
//! `cargo run --release -p cst-legacy --example responder_bench`

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use cst_legacy::message::{COMMAND_PREFIX, DISCOVERY};
use cst_legacy::{
    Command, Counters, DeviceId, Handler, Key, LegacyState, Mode, Reply, Responder, ResponderConfig,
};

const DATAGRAMS: usize = 200_000;
const SENDERS: usize = 2;
const ROUND_TRIPS: usize = 5_000;
const RUNS: usize = 3;

struct Child;

impl Handler for Child {
    async fn handle(&self, _: Command, _: SocketAddr) -> Reply {
        Reply::TimeLeft {
            remaining_minutes: 42,
            state: LegacyState::Active,
            credit_minutes: 120,
        }
    }
}

fn key() -> Key {
    "3F2A9C1B7D4E8A60".parse::<DeviceId>().unwrap().key()
}

/// Starts a responder on its own single-threaded runtime; returns its
/// address and counters. It runs until the process ends.
fn start(limit: bool) -> (SocketAddr, Arc<Counters>) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let mut config = ResponderConfig::new(key(), Mode::Full);
            if !limit {
                config.rate_per_second = 1e12;
                config.rate_burst = u32::MAX;
            }
            let responder =
                Responder::bind("127.0.0.1:0".parse().unwrap(), config, Arc::new(Child))
                    .await
                    .unwrap();
            tx.send((responder.local_addr().unwrap(), responder.counters()))
                .unwrap();
            responder.serve(std::future::pending()).await.unwrap();
        });
    });
    rx.recv().unwrap()
}

/// The datagrams of the throughput mix: one in ten a fresh valid command.
fn mix(n: usize) -> Vec<Vec<u8>> {
    let wrong = "0000000000000000".parse::<DeviceId>().unwrap().key();
    let ours = key();
    (0..n)
        .map(|i| match i % 10 {
            0 => format!("{COMMAND_PREFIX}{}", ours.seal("GET_TIME_LEFT")).into_bytes(),
            1..=3 => b"HELLO, IS THIS THE PRINTER?".to_vec(),
            4 | 5 => vec![b'X'; 1400],
            _ => format!("{COMMAND_PREFIX}{}", wrong.seal("EXTEND_TIME:600")).into_bytes(),
        })
        .collect()
}

/// Sends `datagrams` from `SENDERS` sockets at full speed and returns
/// (handled per second, handled, sent).
fn blast(target: SocketAddr, counters: &Counters, datagrams: Vec<Vec<u8>>) -> (f64, u64, usize) {
    let before = Counters::get(&counters.received);
    let sent = datagrams.len();
    let chunk = sent.div_ceil(SENDERS);
    let start = Instant::now();
    let senders: Vec<_> = datagrams
        .chunks(chunk)
        .map(|part| {
            let part = part.to_vec();
            std::thread::spawn(move || {
                let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
                for d in &part {
                    let _ = socket.send_to(d, target);
                }
            })
        })
        .collect();
    for s in senders {
        s.join().unwrap();
    }
    // Wait until the responder has handled everything that arrived: the
    // counter stops moving (datagrams the kernel dropped never will).
    let mut last = Counters::get(&counters.received);
    let mut last_change = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(30);
    while last_change.elapsed() < Duration::from_millis(200) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
        let now = Counters::get(&counters.received);
        if now != last {
            last = now;
            last_change = Instant::now();
        }
    }
    let elapsed = last_change.duration_since(start).as_secs_f64();
    let handled = last - before;
    (handled as f64 / elapsed, handled, sent)
}

fn round_trips(target: SocketAddr) -> (f64, f64) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let key = key();
    let mut micros: Vec<f64> = runtime.block_on(async {
        let mut out = Vec::with_capacity(ROUND_TRIPS);
        for _ in 0..ROUND_TRIPS {
            let start = Instant::now();
            cst_legacy::client::send_command(target, &key, "GET_TIME_LEFT", Duration::from_secs(1))
                .await
                .unwrap();
            out.push(start.elapsed().as_secs_f64() * 1e6);
        }
        out
    });
    micros.sort_by(f64::total_cmp);
    let at = |q: f64| micros[((micros.len() - 1) as f64 * q) as usize];
    (at(0.5), at(0.99))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let (open, open_counters) = start(false);
    let (limited, limited_counters) = start(true);
    let mut mixed = Vec::new();
    let mut flood = Vec::new();
    let mut p50 = Vec::new();
    let mut p99 = Vec::new();
    for run in 1..=RUNS {
        let (rate, handled, sent) = blast(open, &open_counters, mix(DATAGRAMS));
        eprintln!(
            "run {run}: junk mix      {rate:>10.0} datagrams/s ({handled} of {sent} handled)"
        );
        mixed.push(rate);
        let dropped_before = limited_counters
            .dropped_rate_limited
            .load(Ordering::Relaxed);
        let (rate, handled, sent) = blast(
            limited,
            &limited_counters,
            vec![DISCOVERY.as_bytes().to_vec(); DATAGRAMS],
        );
        let dropped = limited_counters
            .dropped_rate_limited
            .load(Ordering::Relaxed)
            - dropped_before;
        eprintln!(
            "run {run}: flood, limit {rate:>10.0} datagrams/s ({handled} of {sent} handled, {dropped} rate-limited)"
        );
        flood.push(rate);
        let (a, b) = round_trips(open);
        eprintln!("run {run}: round trip    p50 {a:.0} µs, p99 {b:.0} µs");
        p50.push(a);
        p99.push(b);
    }
    println!(
        "{{\"junk_mix_datagrams_per_s\":{:.0},\"flood_limited_datagrams_per_s\":{:.0},\"reply_p50_us\":{:.0},\"reply_p99_us\":{:.0},\"runs\":{RUNS}}}",
        median(mixed),
        median(flood),
        median(p50),
        median(p99)
    );
}
