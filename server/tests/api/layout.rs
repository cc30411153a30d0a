//! The layout a reader relies on: the server's top-level modules depend on each other
//! without cycles (a module can be read knowing only those below it), and no source file
//! grows into a hub of more than 700 lines.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Longest source file the layout allows.
const MAX_LINES: usize = 700;

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable source directory") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn server_sources() -> (PathBuf, Vec<PathBuf>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    files.sort();
    (root, files)
}

/// The top-level modules each top-level module of the library names as `crate::…`
/// outside comments and tests.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let (root, files) = server_sources();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&root).expect("under src");
        let first = relative
            .components()
            .next()
            .expect("a component")
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        if ["bin", "main", "lib"].contains(&first.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("readable source");
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let deps = graph.entry(first.clone()).or_default();
        for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
            let mut rest = line;
            while let Some(at) = rest.find("crate::") {
                rest = &rest[at + "crate::".len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() && name != first {
                    deps.insert(name);
                }
                // `use crate::{a, b::c}` names several.
                if let Some(group) = rest.strip_prefix('{') {
                    let group = group.split('}').next().unwrap_or_default();
                    for part in group.split(',') {
                        let name = part.trim().split("::").next().unwrap_or_default();
                        if !name.is_empty() && name != first && name != "self" {
                            deps.insert(name.to_owned());
                        }
                    }
                }
            }
        }
    }
    graph
}

/// A cycle through `start`, if any, as the modules along it.
fn cycle_from(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    let mut stack = vec![(start.to_owned(), vec![start.to_owned()])];
    let mut seen = BTreeSet::new();
    while let Some((module, path)) = stack.pop() {
        for next in graph.get(&module).into_iter().flatten() {
            if next == start {
                let mut cycle = path.clone();
                cycle.push(next.clone());
                return Some(cycle);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push((next.clone(), longer));
            }
        }
    }
    None
}

#[test]
fn top_level_modules_have_no_import_cycles() {
    let graph = module_graph();
    assert!(graph.contains_key("posts") && graph.contains_key("graphql"));
    let cycles: Vec<String> = graph
        .keys()
        .filter_map(|module| cycle_from(&graph, module))
        .map(|cycle| cycle.join(" → "))
        .collect();
    assert!(cycles.is_empty(), "import cycles: {cycles:#?}");
}

#[test]
fn the_cycle_check_sees_a_cycle() {
    let mut graph = module_graph();
    graph
        .entry("domain".into())
        .or_default()
        .insert("graphql".into());
    assert!(cycle_from(&graph, "domain").is_some());
}

#[test]
fn no_source_file_is_a_hub() {
    let (_, files) = server_sources();
    let plugin_host = Path::new(env!("CARGO_MANIFEST_DIR")).join("plugin-host/src");
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugin-sdk/src");
    let mut all = files;
    sources(&plugin_host, &mut all);
    sources(&sdk, &mut all);
    let long: Vec<String> = all
        .iter()
        .filter_map(|file| {
            let lines = std::fs::read_to_string(file).ok()?.lines().count();
            (lines > MAX_LINES).then(|| format!("{} ({lines} lines)", file.display()))
        })
        .collect();
    assert!(long.is_empty(), "split these by concern: {long:#?}");
}
