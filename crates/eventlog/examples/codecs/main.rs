//! Which block compression suits the event log: LZ4 (`lz4_flex`) or zstd, measured on
//! the bench workload's own events.
//!
//! `cargo run --release -p eventlog --example codecs`
//!
//! Blocks are built the way a table holds them after a flush: one child's events in
//! key order, key ‖ value back to back, cut at 4 KiB. The engine also prefix-compresses
//! keys inside a block, which this leaves out for every codec alike, so ratios here are a
//! little worse than on disk. Each codec compresses and decompresses every block; the
//! figures are the median of `--runs` rounds. Decompression speed is what matters most:
//! every point read that misses the block cache decompresses one block.

#[path = "../bench/workload.rs"]
#[allow(dead_code)]
mod workload;

use std::time::Instant;

use clap::Parser;
use serde::Serialize;

use crate::workload::{CHILDREN, Workload};

#[derive(Parser)]
#[command(about = "Block compression on the event-log workload: LZ4 vs zstd")]
struct Args {
    /// Events to draw blocks from.
    #[arg(long, default_value_t = 400_000)]
    events: u64,
    /// Uncompressed block size, in bytes (the engine's default is 4096).
    #[arg(long, default_value_t = 4096)]
    block_bytes: usize,
    /// Rounds per codec; the median is printed.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Seed of the workload generator (the bench's default).
    #[arg(long, default_value_t = 0x5eed)]
    seed: u64,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Codec {
    Lz4,
    Zstd(i32),
}

impl Codec {
    fn name(self) -> String {
        match self {
            Codec::Lz4 => "lz4_flex".to_string(),
            Codec::Zstd(level) => format!("zstd level {level}"),
        }
    }
}

/// A codec with its reusable state: zstd keeps one compression and one decompression
/// context for all blocks, as an engine would, so context set-up is not what is timed.
enum Coder {
    Lz4,
    Zstd(
        zstd::bulk::Compressor<'static>,
        zstd::bulk::Decompressor<'static>,
    ),
}

impl Coder {
    fn new(codec: Codec) -> anyhow::Result<Coder> {
        Ok(match codec {
            Codec::Lz4 => Coder::Lz4,
            Codec::Zstd(level) => Coder::Zstd(
                zstd::bulk::Compressor::new(level)?,
                zstd::bulk::Decompressor::new()?,
            ),
        })
    }

    fn compress(&mut self, block: &[u8]) -> anyhow::Result<Vec<u8>> {
        Ok(match self {
            Coder::Lz4 => lz4_flex::block::compress(block),
            Coder::Zstd(c, _) => c.compress(block)?,
        })
    }

    fn decompress(&mut self, stored: &[u8], out: &mut [u8]) -> anyhow::Result<usize> {
        Ok(match self {
            Coder::Lz4 => lz4_flex::block::decompress_into(stored, out)?,
            Coder::Zstd(_, d) => d.decompress_to_buffer(stored, out)?,
        })
    }
}

#[derive(Serialize)]
struct Figures {
    codec: String,
    blocks: usize,
    ratio: f64,
    compress_mib_per_s: f64,
    decompress_mib_per_s: f64,
    decompress_micros_per_block: f64,
}

/// One child's events in key order, cut into blocks of about `block_bytes`.
fn blocks(workload: &Workload, events: u64, block_bytes: usize) -> Vec<Vec<u8>> {
    let mut per_child: Vec<Vec<u8>> = vec![Vec::new(); CHILDREN as usize];
    let mut out = Vec::new();
    for index in 0..events {
        let event = workload.event(index);
        let block = &mut per_child[workload.child_id(index) as usize];
        block.extend_from_slice(&event.key);
        block.extend_from_slice(&event.value);
        if block.len() >= block_bytes {
            out.push(std::mem::take(block));
        }
    }
    out
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn measure(codec: Codec, blocks: &[Vec<u8>], runs: usize) -> anyhow::Result<Figures> {
    let raw: usize = blocks.iter().map(Vec::len).sum();
    let mib = raw as f64 / (1 << 20) as f64;
    let (mut compress_s, mut decompress_s) = (Vec::new(), Vec::new());
    let mut stored_bytes = 0;
    let mut out = vec![0u8; blocks.iter().map(Vec::len).max().unwrap_or(0)];
    let mut coder = Coder::new(codec)?;
    for _ in 0..runs {
        let start = Instant::now();
        let stored = blocks
            .iter()
            .map(|b| coder.compress(b))
            .collect::<anyhow::Result<Vec<_>>>()?;
        compress_s.push(start.elapsed().as_secs_f64());
        stored_bytes = stored.iter().map(Vec::len).sum();

        let start = Instant::now();
        for (s, b) in stored.iter().zip(blocks) {
            let n = coder.decompress(s, &mut out)?;
            anyhow::ensure!(out[..n] == b[..], "{} did not round-trip", codec.name());
        }
        decompress_s.push(start.elapsed().as_secs_f64());
    }
    let decompress = median(decompress_s);
    Ok(Figures {
        codec: codec.name(),
        blocks: blocks.len(),
        ratio: stored_bytes as f64 / raw as f64,
        compress_mib_per_s: mib / median(compress_s),
        decompress_mib_per_s: mib / decompress,
        decompress_micros_per_block: decompress * 1e6 / blocks.len() as f64,
    })
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.runs > 0, "--runs must be at least 1");
    let blocks = blocks(&Workload::new(args.seed), args.events, args.block_bytes);
    anyhow::ensure!(!blocks.is_empty(), "--events {} fill no block", args.events);
    for codec in [Codec::Lz4, Codec::Zstd(1), Codec::Zstd(3)] {
        println!(
            "{}",
            serde_json::to_string(&measure(codec, &blocks, args.runs)?)?
        );
    }
    Ok(())
}
