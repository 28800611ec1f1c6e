//! System statistics from `/proc`, the cgroup files and `statvfs`: CPU,
//! memory (and the container's limit), the data volume, uptime, load and the
//! memory of each Portico process. [`StatsCache`] keeps one reading for
//! [`CACHE_FOR`] so many viewers cost one read.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

/// How long a reading is served again.
pub const CACHE_FOR: Duration = Duration::from_secs(2);
/// Samples kept for the dashboard's sparklines.
pub const HISTORY_LEN: usize = 60;
/// At most one sample per this interval.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(60);

/// One point of the dashboard's sparklines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Memory in use (the container's when it has a limit), bytes.
    pub memory_bytes: u64,
    /// Relay traffic counters summed over connected agents, bytes.
    pub relay_bytes: u64,
}

/// Gap between the two CPU samples of a first reading.
const FIRST_SAMPLE_GAP: Duration = Duration::from_millis(200);

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SystemStats {
    pub cpu: CpuStats,
    pub memory: MemoryStats,
    pub disk: Option<DiskStats>,
    /// Seconds since the machine booted.
    pub uptime_seconds: u64,
    /// 1, 5 and 15 minute load averages.
    pub load: [f64; 3],
    pub processes: Vec<ProcessStats>,
}

impl SystemStats {
    /// (used, limit, what the limit is) of memory: the cgroup's when one sets a limit.
    pub fn memory_in_use(&self) -> (u64, u64, &'static str) {
        let m = &self.memory;
        match (m.cgroup_usage_bytes, m.cgroup_limit_bytes) {
            (Some(used), Some(limit)) => (used, limit, "container limit"),
            _ => (m.used_bytes, m.total_bytes, "machine total"),
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CpuStats {
    /// Busy share of all cores since the previous reading, percent (0–100).
    pub percent: f64,
    pub cores: usize,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemoryStats {
    pub total_bytes: u64,
    pub used_bytes: u64,
    pub available_bytes: u64,
    /// The container's memory limit, when a cgroup sets one.
    pub cgroup_limit_bytes: Option<u64>,
    /// The container's memory use, when in a cgroup.
    pub cgroup_usage_bytes: Option<u64>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DiskStats {
    /// The data directory whose file system this is.
    pub path: String,
    pub total_bytes: u64,
    pub used_bytes: u64,
    pub available_bytes: u64,
}

impl DiskStats {
    /// Percent used as `df` counts it: used of what the user can have (used +
    /// available, without the blocks reserved for root), rounded up.
    pub fn percent_used(&self) -> u64 {
        let usable = self.used_bytes + self.available_bytes;
        (self.used_bytes.saturating_mul(100)).div_ceil(usable.max(1))
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProcessStats {
    pub pid: u32,
    /// The subcommand: serve, relay, authd…
    pub role: String,
    pub rss_bytes: u64,
}

/// Jiffies from the `cpu` line of `/proc/stat`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct CpuSample {
    busy: u64,
    total: u64,
}

fn cpu_sample(stat: &str) -> Option<CpuSample> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal …
    let idle = v.get(3)? + v.get(4).unwrap_or(&0);
    let total: u64 = v.iter().take(8).sum();
    Some(CpuSample { busy: total.saturating_sub(idle), total })
}

fn cores(stat: &str) -> usize {
    stat.lines().filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit)).count()
}

fn percent(a: CpuSample, b: CpuSample) -> f64 {
    let total = b.total.saturating_sub(a.total);
    if total == 0 {
        return 0.0;
    }
    let p = b.busy.saturating_sub(a.busy) as f64 * 100.0 / total as f64;
    (p * 10.0).round() / 10.0
}

/// `MemTotal` and `MemAvailable` from `/proc/meminfo`, bytes.
fn meminfo(text: &str) -> (u64, u64) {
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .unwrap_or(0)
    };
    (field("MemTotal:"), field("MemAvailable:"))
}

/// Memory this process could still take, bytes: `MemAvailable`, or less
/// when its cgroup's limit leaves less room. `None` when neither is known.
pub fn memory_available() -> Option<u64> {
    let (_, available) = meminfo(&read("/proc/meminfo").unwrap_or_default());
    let (limit, usage) = cgroup_memory(Path::new("/sys/fs/cgroup"), &read("/proc/self/cgroup").unwrap_or_default());
    let cgroup = limit.map(|l| l.saturating_sub(usage.unwrap_or(0)));
    let system = (available > 0).then_some(available);
    match (system, cgroup) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn read(path: impl AsRef<Path>) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn number(text: Option<String>) -> Option<u64> {
    text?.trim().parse().ok()
}

/// Limit and usage of this process's memory cgroup: v2 (`memory.max`,
/// `memory.current`), else v1 (`memory.limit_in_bytes`, `memory.usage_in_bytes`).
fn cgroup_memory(root: &Path, proc_cgroup: &str) -> (Option<u64>, Option<u64>) {
    let v2 = proc_cgroup.lines().find_map(|l| l.strip_prefix("0::")).unwrap_or("/");
    for dir in [root.join(v2.trim_start_matches('/')), root.to_path_buf()] {
        if let Some(max) = read(dir.join("memory.max")) {
            let limit = max.trim().parse().ok();
            return (limit, number(read(dir.join("memory.current"))));
        }
    }
    let v1 = root.join("memory");
    if let Some(limit) = number(read(v1.join("memory.limit_in_bytes"))) {
        // v1 reports "no limit" as a huge number.
        let limit = (limit < 1 << 60).then_some(limit);
        return (limit, number(read(v1.join("memory.usage_in_bytes"))));
    }
    (None, None)
}

/// Seconds since PID 1 started: the container's uptime in a container (the
/// host's `/proc/uptime` would say how long the VPS has run), the host's
/// outside one, where PID 1 is init.
fn uptime() -> u64 {
    let host = read("/proc/uptime").and_then(|t| t.split_whitespace().next()?.parse::<f64>().ok()).unwrap_or(0.0);
    // Field 22 of /proc/1/stat (the 20th after the command's closing parenthesis), in clock ticks since boot.
    let started =
        read("/proc/1/stat").and_then(|s| s.rsplit_once(')')?.1.split_whitespace().nth(19)?.parse::<u64>().ok());
    let ticks = rustix::param::clock_ticks_per_second() as f64;
    match started {
        Some(t) if ticks > 0.0 => (host - t as f64 / ticks).max(0.0) as u64,
        _ => host as u64,
    }
}

fn disk(path: &Path) -> Option<DiskStats> {
    let s = rustix::fs::statvfs(path).ok()?;
    let total = s.f_blocks * s.f_frsize;
    let free = s.f_bfree * s.f_frsize;
    let available = s.f_bavail * s.f_frsize;
    Some(DiskStats {
        path: path.display().to_string(),
        total_bytes: total,
        used_bytes: total.saturating_sub(free),
        available_bytes: available,
    })
}

/// `VmRSS` of a process, bytes.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = read(format!("/proc/{pid}/status"))?;
    let kb: u64 = status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Every running `portico` process (by its program name) and this one.
pub fn portico_processes() -> Vec<ProcessStats> {
    let me = std::process::id();
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else { return out };
    for pid in entries.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok()) {
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { continue };
        let mut args = cmdline.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned());
        let program = args.next().unwrap_or_default();
        let is_portico = Path::new(&program).file_name().is_some_and(|n| n == "portico");
        if !is_portico && pid != me {
            continue;
        }
        let role = if is_portico { args.next().unwrap_or_default() } else { "serve".to_string() };
        if let Some(rss) = rss_bytes(pid) {
            out.push(ProcessStats { pid, role, rss_bytes: rss });
        }
    }
    out.sort_by_key(|p| p.pid);
    out
}

/// One reading, kept for [`CACHE_FOR`]; CPU percent is measured between readings.
pub struct StatsCache {
    data_dir: PathBuf,
    inner: Mutex<Option<(Instant, CpuSample, SystemStats)>>,
    /// Bounded ring of samples, oldest first, with when the last was taken.
    history: Mutex<(Option<Instant>, VecDeque<Sample>)>,
}

impl StatsCache {
    pub fn new(data_dir: PathBuf) -> StatsCache {
        StatsCache { data_dir, inner: Mutex::new(None), history: Mutex::new((None, VecDeque::new())) }
    }

    /// Records `sample` unless one was taken less than [`SAMPLE_EVERY`]
    /// before `now`; keeps the last [`HISTORY_LEN`]. Returns the history,
    /// oldest first.
    pub fn sample(&self, now: Instant, sample: Sample) -> Vec<Sample> {
        let mut guard = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let (last, ring) = &mut *guard;
        if last.is_none_or(|at| now.saturating_duration_since(at) >= SAMPLE_EVERY) {
            if ring.len() == HISTORY_LEN {
                ring.pop_front();
            }
            ring.push_back(sample);
            *last = Some(now);
        }
        ring.iter().copied().collect()
    }

    /// The cached reading, or a new one. Blocking (reads files, may sleep
    /// [`FIRST_SAMPLE_GAP`] on the first call): call from the blocking pool.
    pub fn get(&self) -> SystemStats {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, _, stats)) = inner.as_ref()
            && at.elapsed() < CACHE_FOR
        {
            return stats.clone();
        }
        let previous = match inner.as_ref() {
            Some((_, sample, _)) => *sample,
            None => {
                let first = cpu_sample(&read("/proc/stat").unwrap_or_default()).unwrap_or_default();
                std::thread::sleep(FIRST_SAMPLE_GAP);
                first
            }
        };
        let stat = read("/proc/stat").unwrap_or_default();
        let sample = cpu_sample(&stat).unwrap_or_default();
        let (total, available) = meminfo(&read("/proc/meminfo").unwrap_or_default());
        let (limit, usage) = cgroup_memory(Path::new("/sys/fs/cgroup"), &read("/proc/self/cgroup").unwrap_or_default());
        let uptime = uptime();
        let loadavg = read("/proc/loadavg").unwrap_or_default();
        let mut load = [0.0; 3];
        for (slot, v) in load.iter_mut().zip(loadavg.split_whitespace()) {
            *slot = v.parse().unwrap_or(0.0);
        }
        let stats = SystemStats {
            cpu: CpuStats { percent: percent(previous, sample), cores: cores(&stat).max(1) },
            memory: MemoryStats {
                total_bytes: total,
                used_bytes: total.saturating_sub(available),
                available_bytes: available,
                cgroup_limit_bytes: limit,
                cgroup_usage_bytes: usage,
            },
            disk: disk(&self.data_dir),
            uptime_seconds: uptime,
            load,
            processes: portico_processes(),
        };
        *inner = Some((Instant::now(), sample, stats.clone()));
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_takes_one_sample_a_minute_and_keeps_the_last_ones() {
        let cache = StatsCache::new(PathBuf::from("/nonexistent"));
        let t0 = Instant::now();
        let s = |n: u64| Sample { memory_bytes: n, relay_bytes: n * 10 };
        assert_eq!(cache.sample(t0, s(1)), [s(1)]);
        assert_eq!(cache.sample(t0 + Duration::from_secs(59), s(2)), [s(1)], "too soon");
        for i in 1..=(HISTORY_LEN as u64 + 5) {
            cache.sample(t0 + SAMPLE_EVERY * i as u32, s(i + 1));
        }
        let all = cache.sample(t0, s(0));
        assert_eq!(all.len(), HISTORY_LEN);
        assert_eq!(all.first(), Some(&s(7)));
        assert_eq!(all.last(), Some(&s(HISTORY_LEN as u64 + 6)));
    }

    #[test]
    fn parses_proc_files() {
        let stat = "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 50 0 25 400 25 0 0 0\ncpu1 50 0 25 400 25 0 0 0\nintr 1\n";
        let a = cpu_sample(stat).unwrap();
        assert_eq!(a, CpuSample { busy: 150, total: 1000 });
        assert_eq!(cores(stat), 2);
        let b = CpuSample { busy: 200, total: 1100 };
        assert_eq!(percent(a, b), 50.0);
        assert_eq!(percent(a, a), 0.0);
        let (total, avail) = meminfo("MemTotal:       2048 kB\nMemFree: 1 kB\nMemAvailable:   1024 kB\n");
        assert_eq!((total, avail), (2048 * 1024, 1024 * 1024));
    }

    #[test]
    fn cgroup_v2_and_v1_files() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        assert_eq!(cgroup_memory(r, "0::/\n"), (None, None));
        std::fs::create_dir_all(r.join("memory")).unwrap();
        std::fs::write(r.join("memory/memory.limit_in_bytes"), "9223372036854771712\n").unwrap();
        std::fs::write(r.join("memory/memory.usage_in_bytes"), "1000\n").unwrap();
        assert_eq!(cgroup_memory(r, "4:memory:/x\n0::/\n"), (None, Some(1000)));
        std::fs::create_dir_all(r.join("app")).unwrap();
        std::fs::write(r.join("app/memory.max"), "536870912\n").unwrap();
        std::fs::write(r.join("app/memory.current"), "4096\n").unwrap();
        assert_eq!(cgroup_memory(r, "0::/app\n"), (Some(536870912), Some(4096)));
        std::fs::write(r.join("app/memory.max"), "max\n").unwrap();
        assert_eq!(cgroup_memory(r, "0::/app\n"), (None, Some(4096)));
    }

    #[test]
    fn a_reading_of_this_machine() {
        let dir = tempfile::tempdir().unwrap();
        let cache = StatsCache::new(dir.path().to_path_buf());
        let s = cache.get();
        assert!(s.memory.total_bytes > 0 && s.memory.available_bytes <= s.memory.total_bytes);
        assert!(s.cpu.cores >= 1 && (0.0..=100.0).contains(&s.cpu.percent));
        assert!(s.disk.as_ref().is_some_and(|d| d.total_bytes > 0));
        assert!(s.uptime_seconds > 0);
        assert!(s.processes.iter().any(|p| p.pid == std::process::id() && p.rss_bytes > 0));
    }

    /// The figures an operator compares with `df` and `ps`: the data volume's
    /// percent used and the time since PID 1 (the container) started.
    #[test]
    fn disk_use_and_uptime_agree_with_df_and_ps() {
        let dir = tempfile::tempdir().unwrap();
        let run = |cmd: &mut std::process::Command| cmd.output().ok().filter(|o| o.status.success());
        if let Some(df) = run(std::process::Command::new("df").arg("--output=pcent").arg(dir.path())) {
            let text = String::from_utf8_lossy(&df.stdout);
            let df_percent: u64 = text.lines().nth(1).unwrap().trim().trim_end_matches('%').parse().unwrap();
            let ours = disk(dir.path()).unwrap().percent_used();
            assert!(ours.abs_diff(df_percent) <= 1, "df says {df_percent} %, we say {ours} %");
        }
        if let Some(ps) = run(std::process::Command::new("ps").args(["-o", "etimes=", "-p", "1"])) {
            let etimes: u64 = String::from_utf8_lossy(&ps.stdout).trim().parse().unwrap();
            let ours = uptime();
            assert!(ours.abs_diff(etimes) <= 2, "ps says PID 1 runs for {etimes} s, we say {ours} s");
        }
    }
}
