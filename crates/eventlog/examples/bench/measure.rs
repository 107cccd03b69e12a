//! Small measuring tools: latency percentiles, disk usage, peak memory, machine load.

use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

/// Nearest-rank percentile of `samples` in milliseconds; sorts in place. 0 when empty.
pub fn percentile_ms(samples: &mut [Duration], percent: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    samples.sort_unstable();
    let rank = ((percent / 100.0) * samples.len() as f64).ceil() as usize;
    let index = rank.clamp(1, samples.len()) - 1;
    samples[index].as_secs_f64() * 1000.0
}

/// Disk space allocated to all files under `dir` (as `du`, so preallocated journal space
/// counts and holes do not). Files that disappear during the walk (an engine deleting
/// obsolete tables in the background) count as zero.
pub fn dir_bytes(dir: &Path) -> std::io::Result<u64> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(0),
        Err(error) => return Err(error),
    };
    let mut total = 0;
    for entry in entries {
        let entry = entry?;
        let metadata = match entry.metadata() {
            Ok(metadata) => metadata,
            Err(error) if error.kind() == ErrorKind::NotFound => continue,
            Err(error) => return Err(error),
        };
        if metadata.is_dir() {
            total += dir_bytes(&entry.path())?;
        } else if metadata.is_file() {
            total += metadata.blocks() * 512;
        }
    }
    Ok(total)
}

/// Peak resident set of this process (VmHWM) in MiB; `None` off Linux.
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib = status_field_kib(&status, "VmHWM:")?;
    Some(kib as f64 / 1024.0)
}

/// Peak resident set of this process in KiB, as the recovery writer reports it.
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| status_field_kib(&status, "VmHWM:"))
        .unwrap_or(0)
}

fn status_field_kib(status: &str, field: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with(field))?;
    line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// One-minute load average, so a noisy run can be recognised afterwards.
pub fn load_avg_1m() -> Option<f64> {
    let loadavg = std::fs::read_to_string("/proc/loadavg").ok()?;
    loadavg.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_uses_nearest_rank() {
        let mut samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        samples.reverse();
        assert_eq!(percentile_ms(&mut samples, 50.0), 50.0);
        assert_eq!(percentile_ms(&mut samples, 99.0), 99.0);
        assert_eq!(percentile_ms(&mut samples, 100.0), 100.0);
        assert_eq!(percentile_ms(&mut [], 99.0), 0.0);
    }

    #[test]
    fn dir_bytes_counts_nested_files_and_tolerates_a_missing_dir() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("tables")).unwrap();
        std::fs::write(dir.path().join("tables/1.sst"), vec![7u8; 10_000]).unwrap();
        std::fs::write(dir.path().join("wal"), vec![7u8; 5_000]).unwrap();
        let bytes = dir_bytes(dir.path()).unwrap();
        assert!((15_000..=15_000 + 2 * 4096).contains(&bytes), "{bytes}");
        assert_eq!(dir_bytes(&dir.path().join("gone")).unwrap(), 0);
    }

    #[test]
    fn status_field_parses_kib() {
        let status = "Name:\tbench\nVmHWM:\t  123456 kB\nVmRSS:\t 1 kB\n";
        assert_eq!(status_field_kib(status, "VmHWM:"), Some(123_456));
        assert_eq!(status_field_kib(status, "VmSwap:"), None);
    }
}
