//! Side-by-side comparison of two rendered trees for the panel's nginx page:
//! per changed file, rows with the old line on the left and the new one on
//! the right, changed lines paired on one row, unchanged stretches beyond
//! [`CONTEXT`] lines folded into a gap row. Lines come from `similar`'s
//! line diff (Myers).

use std::collections::BTreeSet;
use std::path::Path;

use similar::{DiffOp, TextDiff};

use super::model::RenderedTree;

/// Unchanged lines kept around each change.
const CONTEXT: usize = 3;

/// How a file differs between the two trees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileChange {
    Added,
    Removed,
    Modified,
}

/// What a row shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowKind {
    /// The same line on both sides.
    Same,
    /// A line replaced by another: old left, new right.
    Changed,
    /// Only on the left.
    Removed,
    /// Only on the right.
    Added,
}

/// One line of one side: its 1-based number and text (no line ending).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    pub number: usize,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Row {
    Line {
        kind: RowKind,
        old: Option<Cell>,
        new: Option<Cell>,
    },
    /// `lines` unchanged lines left out.
    Gap {
        lines: usize,
    },
}

/// The rows of one changed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDiff {
    /// Path relative to the tree root.
    pub path: String,
    pub change: FileChange,
    pub rows: Vec<Row>,
}

/// Every file that differs from `old` to `new`, in path order; empty when the
/// trees are identical.
pub fn side_by_side(old: &RenderedTree, new: &RenderedTree) -> Vec<FileDiff> {
    let paths: BTreeSet<&Path> = old.files.keys().chain(new.files.keys()).map(|p| p.as_path()).collect();
    let mut out = Vec::new();
    for path in paths {
        let (a, b) = (old.files.get(path), new.files.get(path));
        if a == b {
            continue;
        }
        let change = match (a, b) {
            (None, _) => FileChange::Added,
            (_, None) => FileChange::Removed,
            _ => FileChange::Modified,
        };
        let (a, b) = (a.map(String::as_str).unwrap_or(""), b.map(String::as_str).unwrap_or(""));
        out.push(FileDiff { path: path.display().to_string(), change, rows: rows(a, b) });
    }
    out
}

fn rows(a: &str, b: &str) -> Vec<Row> {
    let diff = TextDiff::from_lines(a, b);
    let (old, new) = (diff.old_slices(), diff.new_slices());
    let cell = |lines: &[&str], i: usize| Cell { number: i + 1, text: lines[i].trim_end_matches(['\n', '\r']).into() };
    let groups = diff.grouped_ops(CONTEXT);
    let total_old = old.len();
    let mut rows = Vec::new();
    let mut next_old = 0; // first old line not yet shown or folded
    for group in &groups {
        let Some(first) = group.first() else { continue };
        let start = first.old_range().start;
        if start > next_old {
            rows.push(Row::Gap { lines: start - next_old });
        }
        for op in group {
            match *op {
                DiffOp::Equal { old_index, new_index, len } => rows.extend((0..len).map(|k| Row::Line {
                    kind: RowKind::Same,
                    old: Some(cell(old, old_index + k)),
                    new: Some(cell(new, new_index + k)),
                })),
                DiffOp::Delete { old_index, old_len, .. } => rows.extend((0..old_len).map(|k| Row::Line {
                    kind: RowKind::Removed,
                    old: Some(cell(old, old_index + k)),
                    new: None,
                })),
                DiffOp::Insert { new_index, new_len, .. } => rows.extend((0..new_len).map(|k| Row::Line {
                    kind: RowKind::Added,
                    old: None,
                    new: Some(cell(new, new_index + k)),
                })),
                DiffOp::Replace { old_index, old_len, new_index, new_len } => {
                    rows.extend((0..old_len.max(new_len)).map(|k| {
                        let (o, n) = (
                            (k < old_len).then(|| cell(old, old_index + k)),
                            (k < new_len).then(|| cell(new, new_index + k)),
                        );
                        let kind = match (&o, &n) {
                            (Some(_), Some(_)) => RowKind::Changed,
                            (Some(_), None) => RowKind::Removed,
                            _ => RowKind::Added,
                        };
                        Row::Line { kind, old: o, new: n }
                    }))
                }
            }
        }
        next_old = group.last().map(|op| op.old_range().end).unwrap_or(next_old);
    }
    if !groups.is_empty() && next_old < total_old {
        rows.push(Row::Gap { lines: total_old - next_old });
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> RenderedTree {
        RenderedTree { files: files.iter().map(|(p, s)| (p.into(), (*s).into())).collect() }
    }

    /// Rows as `kind old|new` strings, gaps as `… n`.
    fn show(rows: &[Row]) -> Vec<String> {
        let side = |c: &Option<Cell>| c.as_ref().map(|c| format!("{}:{}", c.number, c.text)).unwrap_or_default();
        rows.iter()
            .map(|r| match r {
                Row::Line { kind, old, new } => format!("{kind:?} {}|{}", side(old), side(new)),
                Row::Gap { lines } => format!("… {lines}"),
            })
            .collect()
    }

    #[test]
    fn identical_trees_have_no_files() {
        let t = tree(&[("a.conf", "x\ny\n")]);
        assert!(side_by_side(&t, &t).is_empty());
    }

    #[test]
    fn changed_lines_pair_up_and_far_context_folds() {
        let a: String = (1..=20).map(|i| format!("{i}\n")).collect();
        let b = a.replace("10\n", "ten\n").replace("11\n", "eleven\nextra\n").replace("20\n", "");
        let files = side_by_side(&tree(&[("f.conf", &a)]), &tree(&[("f.conf", &b)]));
        assert_eq!(files.len(), 1);
        assert_eq!((files[0].path.as_str(), files[0].change), ("f.conf", FileChange::Modified));
        assert_eq!(
            show(&files[0].rows),
            [
                "… 6",
                "Same 7:7|7:7",
                "Same 8:8|8:8",
                "Same 9:9|9:9",
                "Changed 10:10|10:ten",
                "Changed 11:11|11:eleven",
                "Added |12:extra",
                "Same 12:12|13:12",
                "Same 13:13|14:13",
                "Same 14:14|15:14",
                "… 2",
                "Same 17:17|18:17",
                "Same 18:18|19:18",
                "Same 19:19|20:19",
                "Removed 20:20|",
            ]
        );
    }

    #[test]
    fn added_and_removed_files_fill_one_side() {
        let old = tree(&[("gone.conf", "g1\ng2\n")]);
        let new = tree(&[("new.conf", "n\n")]);
        let files = side_by_side(&old, &new);
        let summary: Vec<(&str, FileChange)> = files.iter().map(|f| (f.path.as_str(), f.change)).collect();
        assert_eq!(summary, [("gone.conf", FileChange::Removed), ("new.conf", FileChange::Added)]);
        assert_eq!(show(&files[0].rows), ["Removed 1:g1|", "Removed 2:g2|"]);
        assert_eq!(show(&files[1].rows), ["Added |1:n"]);
    }
}
