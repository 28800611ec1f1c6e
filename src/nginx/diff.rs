//! Unified diff between two rendered trees, through `similar` (the same
//! line diff the side-by-side page uses).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

use similar::TextDiff;

use super::model::RenderedTree;

/// Lines of context around each change.
const CONTEXT: usize = 3;

/// `diff -u` style text turning `old` into `new`, file by file in path
/// order; empty when the trees are identical.
pub fn unified(old: &RenderedTree, new: &RenderedTree) -> String {
    let paths: BTreeSet<&Path> = old.files.keys().chain(new.files.keys()).map(|p| p.as_path()).collect();
    let mut out = String::new();
    for path in paths {
        let (a, b) = (old.files.get(path), new.files.get(path));
        if a == b {
            continue;
        }
        let name = path.display();
        let from = if a.is_some() { format!("a/{name}") } else { "/dev/null".into() };
        let to = if b.is_some() { format!("b/{name}") } else { "/dev/null".into() };
        let (a, b) = (a.map_or("", String::as_str), b.map_or("", String::as_str));
        let diff = TextDiff::from_lines(a, b);
        let _ = write!(out, "{}", diff.unified_diff().context_radius(CONTEXT).header(&from, &to));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> RenderedTree {
        RenderedTree { files: files.iter().map(|(p, s)| (p.into(), (*s).into())).collect() }
    }

    #[test]
    fn identical_trees_have_empty_diff() {
        let t = tree(&[("a.conf", "x\ny\n")]);
        assert_eq!(unified(&t, &t), "");
    }

    #[test]
    fn changes_added_and_removed_files() {
        let old = tree(&[("a.conf", "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n"), ("gone.conf", "g\n")]);
        let new = tree(&[("a.conf", "1\n2\n3\n4\nfive\n6\n7\n8\n9\n10\n11\n"), ("new.conf", "n\n")]);
        let want = "\
--- a/a.conf
+++ b/a.conf
@@ -2,9 +2,10 @@
 2
 3
 4
-5
+five
 6
 7
 8
 9
 10
+11
--- a/gone.conf
+++ /dev/null
@@ -1 +0,0 @@
-g
--- /dev/null
+++ b/new.conf
@@ -0,0 +1 @@
+n
";
        assert_eq!(unified(&old, &new), want);
    }

    #[test]
    fn distant_changes_get_separate_hunks() {
        let a: String = (1..=20).map(|i| format!("{i}\n")).collect();
        let b: String = (1..=20)
            .map(|i| match i {
                2 => "two\n".to_string(),
                19 => "nineteen\n".to_string(),
                _ => format!("{i}\n"),
            })
            .collect();
        let d = unified(&tree(&[("f", &a)]), &tree(&[("f", &b)]));
        assert_eq!(d.matches("@@ -").count(), 2, "{d}");
        assert!(d.contains("@@ -1,5 +1,5 @@"), "{d}");
        assert!(d.contains("@@ -16,5 +16,5 @@"), "{d}");
    }
}
