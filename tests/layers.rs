//! The layers stay apart: HTTP surfaces call use cases, use cases call the
//! domain, and nothing below the panel reaches back up into it. Reads the
//! source tree (test code excluded) and names every line that crosses.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// Modules that speak HTTP: they may use actix. Everything else under
/// `src/` is the use-case layer, the domain or infrastructure.
const HTTP_SURFACES: &[&str] = &["panel", "authd", "relay", "agent", "http.rs", "main.rs", "bin"];

struct Source {
    /// Relative to `src/`, with `/` separators.
    path: String,
    /// The file without its inline `#[cfg(test)]` module.
    code: String,
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Files that hold test modules: declared `#[cfg(test)] mod name;`, and
/// everything below them.
fn test_files(root: &Path, files: &[PathBuf]) -> BTreeSet<PathBuf> {
    let mut tests = BTreeSet::new();
    for file in files {
        let text = fs::read_to_string(file).unwrap();
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        for pair in lines.windows(2) {
            if pair[0] != "#[cfg(test)]" {
                continue;
            }
            let decl = pair[1].trim_start_matches("pub(crate) ").trim_start_matches("pub ");
            let Some(name) = decl.strip_prefix("mod ").and_then(|d| d.strip_suffix(';')) else { continue };
            let stem = file.file_stem().unwrap().to_string_lossy();
            let dir = match stem.as_ref() {
                "mod" | "lib" | "main" => file.parent().unwrap().to_path_buf(),
                _ => file.parent().unwrap().join(stem.as_ref()),
            };
            tests.insert(dir.join(format!("{name}.rs")));
            tests.insert(dir.join(name).join("mod.rs"));
            tests.insert(dir.join(name));
        }
    }
    files.iter().filter(|f| f.starts_with(root) && f.ancestors().any(|a| tests.contains(a))).cloned().collect()
}

fn sources() -> Vec<Source> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let tests = test_files(&root, &files);
    files
        .into_iter()
        .filter(|f| !tests.contains(f))
        .map(|f| {
            let text = fs::read_to_string(&f).unwrap();
            let code = match text.find("#[cfg(test)]\nmod tests {") {
                Some(at) => text[..at].to_string(),
                None => text,
            };
            let path = f.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/");
            Source { path, code }
        })
        .collect()
}

/// `path:line: text` of every line of `files` that contains `needle`.
fn lines_with<'a>(files: impl Iterator<Item = &'a Source>, needle: &str) -> Vec<String> {
    files
        .flat_map(|s| {
            s.code
                .lines()
                .enumerate()
                .filter(|(_, l)| l.contains(needle) && !l.trim_start().starts_with("//"))
                .map(|(i, l)| format!("src/{}:{}: {}", s.path, i + 1, l.trim()))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn is_http_surface(path: &str) -> bool {
    HTTP_SURFACES.iter().any(|m| path == *m || path.starts_with(&format!("{m}/")) || path == format!("{m}.rs"))
}

#[test]
fn the_test_tree_is_recognised() {
    let all = sources();
    let paths: BTreeSet<&str> = all.iter().map(|s| s.path.as_str()).collect();
    assert!(paths.contains("panel/routes/tunnels.rs") && paths.contains("app/mod.rs"), "{paths:?}");
    for test_file in ["panel/tests.rs", "panel/tests/tunnels.rs", "relay/tests/health.rs"] {
        assert!(!paths.contains(test_file), "{test_file} is test code");
    }
}

#[test]
fn the_panel_audits_nothing_itself() {
    let all = sources();
    let panel = || all.iter().filter(|s| s.path.starts_with("panel/"));
    let mut found = lines_with(panel(), "audit::record");
    found.extend(lines_with(panel(), ".audit("));
    assert!(
        found.is_empty(),
        "audit entries are written by use cases in src/app, not by the panel:\n{}",
        found.join("\n")
    );
}

#[test]
fn ui_pages_do_not_call_the_rest_routes() {
    let all = sources();
    let found = lines_with(all.iter().filter(|s| s.path.starts_with("panel/ui/")), "panel::routes");
    assert!(found.is_empty(), "the UI calls use cases in src/app, not REST handlers:\n{}", found.join("\n"));
}

#[test]
fn nothing_below_the_http_surfaces_imports_them_or_actix() {
    let all = sources();
    let below = || all.iter().filter(|s| !is_http_surface(&s.path));
    let mut found = lines_with(below(), "crate::panel");
    found.extend(lines_with(below(), "actix"));
    assert!(found.is_empty(), "use cases and the domain stay free of HTTP:\n{}", found.join("\n"));
}

/// The top-level module a source file belongs to (`nginx/render.rs` → `nginx`).
fn top_module(path: &str) -> &str {
    path.split('/').next().unwrap_or(path).trim_end_matches(".rs")
}

/// Top-level modules that import each other, directly or around a loop
/// (strongly connected components of the `crate::<module>` graph, test code
/// and comments left out).
fn import_circles() -> Vec<BTreeSet<String>> {
    let all = sources();
    let mut edges: std::collections::BTreeMap<String, BTreeSet<String>> = Default::default();
    for s in &all {
        let from = top_module(&s.path);
        if matches!(from, "main" | "lib" | "bin" | "testing") {
            continue;
        }
        for line in s.code.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for (at, _) in line.match_indices("crate::") {
                let to: String = line[at + 7..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !to.is_empty() && to != from {
                    edges.entry(from.to_string()).or_default().insert(to);
                }
            }
        }
    }
    let reaches = |from: &str| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_string()];
        while let Some(m) = todo.pop() {
            for next in edges.get(&m).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        seen
    };
    let mut circles: Vec<BTreeSet<String>> = Vec::new();
    for m in edges.keys() {
        let from_m = reaches(m);
        if !from_m.contains(m) || circles.iter().any(|c| c.contains(m)) {
            continue;
        }
        circles.push(from_m.into_iter().filter(|n| reaches(n).contains(m)).collect());
    }
    circles
}

#[test]
fn no_new_import_circle() {
    // The one that remains: nginx applies certificates and counts its applies,
    // acme applies nginx and proves names, the probe reads certificates and
    // sites, metrics report the probe, sites apply nginx.
    let known: BTreeSet<String> = ["acme", "metrics", "nginx", "probe", "sites"].map(String::from).into();
    let circles = import_circles();
    assert_eq!(circles, vec![known], "top-level modules that import each other");
}
