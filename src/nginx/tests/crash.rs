//! Kill trials: run one operation in a child process (this test binary,
//! re-run for one test with [`CHILD`] set), SIGKILL it after a seeded random
//! delay, and let the test check what a restart finds.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// Set in the child: what it should do (test-defined).
pub const CHILD: &str = "PORTICO_CRASH_CHILD";
/// The line a child prints just before its operation starts.
pub const READY: &str = "portico-crash-ready";
/// Seeds the trials; `PORTICO_FAULT_SEED` overrides the default.
pub fn seed(default: u64) -> u64 {
    std::env::var("PORTICO_FAULT_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// splitmix64: a small seeded generator, the same sequence everywhere.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A child running `test` alone with `envs`; its stdout is read for [`READY`].
pub struct Trial {
    child: Child,
    out: BufReader<ChildStdout>,
}

impl Trial {
    pub fn spawn(test: &str, envs: &[(&str, String)]) -> Trial {
        let exe = std::env::current_exe().expect("test binary path");
        let mut cmd = Command::new(exe);
        cmd.args([test, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn the trial child");
        let out = BufReader::new(child.stdout.take().expect("piped stdout"));
        Trial { child, out }
    }

    /// Blocks until the child says it starts its operation.
    pub fn wait_ready(&mut self) {
        let mut line = String::new();
        let mut said = String::new();
        loop {
            line.clear();
            let n = self.out.read_line(&mut line).expect("read the child's output");
            assert!(n > 0, "the trial child exited before its operation; it said:\n{said}");
            said.push_str(&line);
            if line.contains(READY) {
                return;
            }
        }
    }

    /// Blocks until `path` exists (the operation reached a known step) or
    /// the child ends; returns how long that took.
    pub fn wait_for(&mut self, path: &std::path::Path) -> Duration {
        let started = Instant::now();
        while !path.exists() && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_micros(200)); // watching for the step, not synchronization
        }
        started.elapsed()
    }

    /// Runs the child to its end; returns how long it took after [`READY`]
    /// and whether it succeeded.
    pub fn finish(mut self) -> (Duration, bool) {
        let started = Instant::now();
        let status = self.child.wait().expect("wait for the child");
        (started.elapsed(), status.success())
    }

    /// Sends SIGKILL after `delay` (unless the child ended first). Returns
    /// true when the kill landed before the child exited.
    pub fn kill_after(mut self, delay: Duration) -> bool {
        std::thread::sleep(delay); // the seeded moment of the crash, not synchronization
        let landed = matches!(self.child.try_wait(), Ok(None));
        let _ = self.child.kill(); // SIGKILL on Unix
        let _ = self.child.wait();
        landed
    }
}

/// In the child: announces the start of the operation.
pub fn ready() {
    use std::io::Write;
    println!("{READY}");
    let _ = std::io::stdout().flush();
}

/// How the trials ended, for the printed summary.
#[derive(Debug, Default)]
pub struct Tally {
    pub trials: usize,
    pub killed: usize,
    pub before: usize,
    pub after: usize,
}

impl Tally {
    pub fn print(&self, what: &str, seed: u64) {
        println!(
            "kill trials ({what}, seed {seed}): {} trials, {} killed mid-operation, {} left the state before, {} after, 0 in between",
            self.trials, self.killed, self.before, self.after
        );
    }
}
