//! Unified diff between two rendered trees (small files, so a plain LCS
//! table is enough; no external crate).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

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
        let _ = writeln!(out, "--- {from}\n+++ {to}");
        let a: Vec<&str> = a.map(|s| s.lines().collect()).unwrap_or_default();
        let b: Vec<&str> = b.map(|s| s.lines().collect()).unwrap_or_default();
        hunks(&mut out, &a, &b);
    }
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Same,
    Del,
    Ins,
}

/// Edit script by longest common subsequence.
fn edits<'a>(a: &[&'a str], b: &[&'a str]) -> Vec<(Op, &'a str)> {
    let (n, m) = (a.len(), b.len());
    // lcs[i][j]: length of the LCS of a[i..] and b[j..]
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let (mut i, mut j, mut ops) = (0, 0, Vec::with_capacity(n + m));
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            ops.push((Op::Same, a[i]));
            i += 1;
            j += 1;
        } else if j == m || (i < n && lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push((Op::Del, a[i]));
            i += 1;
        } else {
            ops.push((Op::Ins, b[j]));
            j += 1;
        }
    }
    ops
}

fn hunks(out: &mut String, a: &[&str], b: &[&str]) {
    let ops = edits(a, b);
    // old_before[k] / new_before[k]: lines of each side before op k
    let (mut old_before, mut new_before) = (vec![0; ops.len() + 1], vec![0; ops.len() + 1]);
    for (k, (op, _)) in ops.iter().enumerate() {
        old_before[k + 1] = old_before[k] + usize::from(*op != Op::Ins);
        new_before[k + 1] = new_before[k] + usize::from(*op != Op::Del);
    }
    let changes: Vec<usize> = (0..ops.len()).filter(|&k| ops[k].0 != Op::Same).collect();
    let mut c = 0;
    while c < changes.len() {
        let start = changes[c].saturating_sub(CONTEXT);
        let mut last = changes[c];
        while c + 1 < changes.len() && changes[c + 1] - last - 1 <= 2 * CONTEXT {
            c += 1;
            last = changes[c];
        }
        let end = (last + 1 + CONTEXT).min(ops.len());
        let old_len = old_before[end] - old_before[start];
        let new_len = new_before[end] - new_before[start];
        let old_start = old_before[start] + usize::from(old_len > 0);
        let new_start = new_before[start] + usize::from(new_len > 0);
        let _ = writeln!(out, "@@ -{old_start},{old_len} +{new_start},{new_len} @@");
        for (op, line) in &ops[start..end] {
            let sign = match op {
                Op::Same => ' ',
                Op::Del => '-',
                Op::Ins => '+',
            };
            let _ = writeln!(out, "{sign}{line}");
        }
        c += 1;
    }
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
@@ -1,1 +0,0 @@
-g
--- /dev/null
+++ b/new.conf
@@ -0,0 +1,1 @@
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
