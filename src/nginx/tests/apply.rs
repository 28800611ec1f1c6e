//! Apply-loop tests with a scripted reloader (no nginx needed): snapshots,
//! pruning, rollback, diff, id validation and restore on failure.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::nginx::{Applier, ApplyError, Reloader, RenderedTree};

#[derive(Default)]
struct Script {
    fail_test: AtomicBool,
    fail_reload: AtomicBool,
    fail_probe: AtomicBool,
    reloads: AtomicUsize,
    /// The process "dies" (panics) in the next test or reload.
    die_in_test: AtomicBool,
    die_in_reload: AtomicBool,
}

struct Fake(Arc<Script>);

impl Reloader for Fake {
    fn test(&self, conf_dir: &Path) -> Result<(), String> {
        assert!(conf_dir.join("nginx.conf").is_file(), "tested a tree without nginx.conf");
        assert!(!self.0.die_in_test.swap(false, Ordering::SeqCst), "killed while nginx -t ran");
        if self.0.fail_test.load(Ordering::SeqCst) {
            return Err("nginx: [emerg] unknown directive \"x\" in nginx.conf:1\nnginx: test failed".into());
        }
        Ok(())
    }
    fn reload(&self) -> Result<(), String> {
        self.0.reloads.fetch_add(1, Ordering::SeqCst);
        assert!(!self.0.die_in_reload.swap(false, Ordering::SeqCst), "killed while nginx reloaded");
        if self.0.fail_reload.swap(false, Ordering::SeqCst) {
            return Err("nginx: [alert] kill(1234, 1) failed".into());
        }
        Ok(())
    }
}

fn tree(n: usize) -> RenderedTree {
    let mut t = RenderedTree::default();
    t.files.insert("nginx.conf".into(), format!("events {{}}\n# version {n}\nhttp {{}}\n"));
    t.files.insert(format!("servers/{n}.conf").into(), format!("# server {n}\n"));
    t
}

fn applier(root: &Path, keep: usize) -> (Applier, Arc<Script>) {
    let script = Arc::new(Script::default());
    let probe_script = script.clone();
    let probe = move || {
        if probe_script.fail_probe.load(Ordering::SeqCst) { Err("no answer on :443".to_string()) } else { Ok(()) }
    };
    let a =
        Applier::new(root.join("nginx/current"), root.join("nginx/snapshots"), keep, Box::new(Fake(script.clone())))
            .with_probe(Box::new(probe));
    (a, script)
}

fn tree_dirs(root: &Path) -> Vec<PathBuf> {
    fs::read_dir(root.join("nginx/trees")).unwrap().map(|e| e.unwrap().path()).collect()
}

#[test]
fn rollback_restores_byte_identical_files() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, _) = applier(tmp.path(), 5);
    let first = a.apply(&tree(1), "first").unwrap();
    assert_eq!(first.snapshot, None, "nothing to snapshot before the first tree");
    let second = a.apply(&tree(2), "second").unwrap();
    let snap_of_1 = second.snapshot.unwrap();
    assert_eq!(a.live_tree().unwrap(), tree(2));

    let diff = a.diff(&snap_of_1).unwrap();
    assert!(diff.contains("-# version 1\n+# version 2\n"), "{diff}");
    assert!(diff.contains("--- a/servers/1.conf\n+++ /dev/null\n"), "{diff}");

    let back = a.rollback(&snap_of_1).unwrap();
    assert!(back.changed);
    assert_eq!(a.live_tree().unwrap(), tree(1));
    let on_disk = fs::read(tmp.path().join("nginx/current/nginx.conf")).unwrap();
    assert_eq!(on_disk, tree(1).files[Path::new("nginx.conf")].as_bytes());
    // The rollback itself is undoable: tree 2 was snapshotted.
    let metas = a.snapshots().unwrap();
    assert_eq!(metas[0].reason, format!("rollback to {snap_of_1}"));
    assert!(a.diff(&metas[0].id).unwrap().contains("+# version 1"));
    assert_eq!(tree_dirs(tmp.path()).len(), 1, "superseded trees are removed");
}

#[test]
fn snapshots_are_pruned_to_keep_newest_first() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, _) = applier(tmp.path(), 2);
    for n in 1..=5 {
        a.apply(&tree(n), &format!("change {n}")).unwrap();
    }
    let metas = a.snapshots().unwrap();
    let reasons: Vec<_> = metas.iter().map(|m| m.reason.as_str()).collect();
    assert_eq!(reasons, ["change 5", "change 4"]);
    assert!(metas[0].id > metas[1].id && metas[0].created_at >= metas[1].created_at);
    assert_eq!(metas[0].files, 2);
    assert_eq!(fs::read_dir(tmp.path().join("nginx/snapshots")).unwrap().count(), 2);
}

#[test]
fn unknown_and_traversal_snapshot_ids_are_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, _) = applier(tmp.path(), 3);
    a.apply(&tree(1), "first").unwrap();
    a.apply(&tree(2), "second").unwrap();
    for bad in ["", "nope", "..", "../trees", "a/b", "/etc", "x\0y", "20990101T000000000000Z"] {
        assert!(matches!(a.diff(bad), Err(ApplyError::UnknownSnapshot(_))), "diff {bad:?}");
        assert!(matches!(a.rollback(bad), Err(ApplyError::UnknownSnapshot(_))), "rollback {bad:?}");
    }
    assert_eq!(a.live_tree().unwrap(), tree(2));
}

#[test]
fn invalid_tree_leaves_live_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, script) = applier(tmp.path(), 3);
    a.apply(&tree(1), "first").unwrap();
    script.fail_test.store(true, Ordering::SeqCst);
    let reloads = script.reloads.load(Ordering::SeqCst);
    match a.apply(&tree(2), "broken") {
        Err(ApplyError::Invalid { details }) => {
            assert!(details[0].contains("unknown directive"), "{details:?}")
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    assert_eq!(a.live_tree().unwrap(), tree(1));
    assert_eq!(script.reloads.load(Ordering::SeqCst), reloads, "no reload for an invalid tree");
    assert!(a.snapshots().unwrap().is_empty());
    assert_eq!(tree_dirs(tmp.path()).len(), 1, "rejected tree cleaned up");
}

#[test]
fn failed_reload_or_probe_restores_previous_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, script) = applier(tmp.path(), 3);
    a.apply(&tree(1), "first").unwrap();

    script.fail_reload.store(true, Ordering::SeqCst);
    let before = script.reloads.load(Ordering::SeqCst);
    assert!(matches!(a.apply(&tree(2), "x"), Err(ApplyError::ReloadFailed { .. })));
    assert_eq!(a.live_tree().unwrap(), tree(1));
    assert_eq!(script.reloads.load(Ordering::SeqCst), before + 2, "restore reloads again");

    script.fail_probe.store(true, Ordering::SeqCst);
    match a.apply(&tree(3), "y") {
        Err(ApplyError::ProbeFailed { details }) => assert_eq!(details, ["no answer on :443"]),
        other => panic!("expected ProbeFailed, got {other:?}"),
    }
    assert_eq!(a.live_tree().unwrap(), tree(1));
    assert!(a.snapshots().unwrap().is_empty(), "no snapshot left behind by failed applies");
    assert_eq!(tree_dirs(tmp.path()).len(), 1);
}

#[test]
fn unchanged_tree_reloads_without_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, script) = applier(tmp.path(), 3);
    a.apply(&tree(1), "first").unwrap();
    let before = script.reloads.load(Ordering::SeqCst);
    let out = a.apply(&tree(1), "cert renewed").unwrap();
    assert!(!out.changed && out.snapshot.is_none());
    assert_eq!(script.reloads.load(Ordering::SeqCst), before + 1);
}

#[test]
fn unsafe_tree_paths_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, _) = applier(tmp.path(), 3);
    for bad in ["../escape.conf", "/etc/passwd", "a/../../b"] {
        let mut t = tree(1);
        t.files.insert(bad.into(), "x".into());
        assert!(matches!(a.apply(&t, "bad"), Err(ApplyError::Invalid { .. })), "{bad}");
    }
    assert!(!tmp.path().join("escape.conf").exists());
}

#[test]
fn install_writes_without_reload_and_adopts_a_plain_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let live = tmp.path().join("nginx/current");
    fs::create_dir_all(&live).unwrap();
    fs::write(live.join("nginx.conf"), "old\n").unwrap();
    let (a, script) = applier(tmp.path(), 3);
    let out = a.install(&tree(1), "init").unwrap();
    assert_eq!(script.reloads.load(Ordering::SeqCst), 0);
    assert!(fs::symlink_metadata(&live).unwrap().file_type().is_symlink());
    assert_eq!(a.live_tree().unwrap(), tree(1));
    let snap = out.snapshot.unwrap();
    assert!(a.diff(&snap).unwrap().contains("-old\n"));
}

/// A reload that fails for a tree equal to the live one must not take the
/// live tree away (it used to remove the live link, leaving nginx nothing
/// to start from).
#[test]
fn failed_reload_of_an_unchanged_tree_keeps_the_live_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, script) = applier(tmp.path(), 3);
    a.apply(&tree(1), "first").unwrap();
    script.fail_reload.store(true, Ordering::SeqCst);
    assert!(matches!(a.apply(&tree(1), "cert renewed"), Err(ApplyError::ReloadFailed { .. })));
    assert_eq!(a.live_tree().unwrap(), tree(1));
    assert!(tmp.path().join("nginx/current/nginx.conf").is_file());
}

fn dies(a: &Applier, t: &RenderedTree) {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| a.apply(t, "killed")));
    assert!(r.is_err(), "the apply was meant to die");
}

/// Killed before the swap: the live tree stays, and the next start-up
/// removes the new tree and its snapshot and owes nginx a reload.
#[test]
fn an_apply_killed_before_the_swap_is_undone_at_the_next_apply() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, script) = applier(tmp.path(), 3);
    a.apply(&tree(1), "first").unwrap();
    a.apply(&tree(2), "second").unwrap();
    let snapshots = a.snapshots().unwrap();
    script.die_in_test.store(true, Ordering::SeqCst);
    dies(&a, &tree(3));
    assert_eq!(tree_dirs(tmp.path()).len(), 2, "the half-done tree is on disk");

    let (restarted, script) = applier(tmp.path(), 3);
    assert!(restarted.interrupted().unwrap());
    let out = restarted.apply(&tree(2), "start-up").unwrap();
    assert!(!out.changed);
    assert_eq!(script.reloads.load(Ordering::SeqCst), 1, "the owed reload");
    assert!(!restarted.interrupted().unwrap());
    assert_eq!(restarted.snapshots().unwrap(), snapshots);
    assert_eq!(tree_dirs(tmp.path()).len(), 1);
}

/// Killed after the swap, before nginx reloaded: the new tree is live; the
/// next start-up removes the replaced tree, keeps its snapshot and reloads.
#[test]
fn an_apply_killed_after_the_swap_is_finished_at_the_next_apply() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, script) = applier(tmp.path(), 3);
    a.apply(&tree(1), "first").unwrap();
    script.die_in_reload.store(true, Ordering::SeqCst);
    dies(&a, &tree(2));
    assert_eq!(a.live_tree().unwrap(), tree(2));
    assert_eq!(tree_dirs(tmp.path()).len(), 2);

    let (restarted, script) = applier(tmp.path(), 3);
    assert!(restarted.interrupted().unwrap());
    restarted.apply(&tree(2), "start-up").unwrap();
    assert_eq!(script.reloads.load(Ordering::SeqCst), 1, "the owed reload");
    assert!(!restarted.interrupted().unwrap());
    assert_eq!(tree_dirs(tmp.path()).len(), 1);
    let snaps = restarted.snapshots().unwrap();
    assert_eq!(snaps.len(), 1);
    assert!(restarted.diff(&snaps[0].id).unwrap().contains("-# version 1"));
}
