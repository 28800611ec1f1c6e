//! A real s6-svscan over a temporary scan directory, for the tests of the
//! supervisor and of the routes and pages that drive it.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The image's `finish` script, which the appliance services run on exit.
const FINISH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/rootfs/usr/local/lib/portico/service-finish");

/// A running s6-svscan over [`Scan::dir`]; stopped on drop.
pub(crate) struct Scan {
    pub(crate) dir: tempfile::TempDir,
    child: Child,
}

impl Drop for Scan {
    fn drop(&mut self) {
        let _ = Command::new("s6-svscanctl").arg("-t").arg(self.dir.path()).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20)); // poll interval
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether s6 is installed here (tests that need it skip otherwise).
pub(crate) fn available() -> bool {
    Command::new("s6-svscan").arg("-h").stderr(Stdio::null()).stdout(Stdio::null()).status().is_ok()
}

/// s6-svscan over `services` (name, down): each runs `sleep`, and one
/// marked down waits to be started.
pub(crate) fn start(services: &[(&str, bool)]) -> Scan {
    let dir = tempfile::tempdir().unwrap();
    for (name, down) in services {
        let svc = service(dir.path(), name);
        if *down {
            std::fs::write(svc.join("down"), "").unwrap();
        }
    }
    spawn(dir)
}

/// s6-svscan over the appliance's managed services (each `sleep`, up) with
/// the image's own `finish` script.
pub(crate) fn appliance() -> Scan {
    let dir = tempfile::tempdir().unwrap();
    for name in crate::services::MANAGED {
        let finish = service(dir.path(), name).join("finish");
        std::fs::write(&finish, format!("#!/bin/sh\nexec {FINISH} {name} \"$@\" 2>/dev/null\n")).unwrap();
        std::fs::set_permissions(&finish, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    spawn(dir)
}

/// A service directory `name` under `scan` whose `run` sleeps; returns it.
fn service(scan: &Path, name: &str) -> std::path::PathBuf {
    let svc = scan.join(name);
    std::fs::create_dir(&svc).unwrap();
    let run = svc.join("run");
    std::fs::write(&run, "#!/bin/sh\nexec sleep 300\n").unwrap();
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o755)).unwrap();
    svc
}

fn spawn(dir: tempfile::TempDir) -> Scan {
    let child = Command::new("s6-svscan").arg(dir.path()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    Scan { dir, child }
}
