//! The library's layers hold: no module refers to a module of a layer above
//! its own (docs/architecture.md). Checked on the source text: every
//! `crate::NAME` path in a file under src/ is looked up in the layer table.

use std::collections::BTreeMap;
use std::path::Path;

/// Top-level modules, lowest layer first. A module may use its own layer
/// and the ones below.
const LAYERS: &[&[&str]] = &[
    &["abi", "error", "escape"],
    &["model"],
    &["source"],
    &["join", "query"],
    &["snapshot"],
    &["explain", "report", "live"],
    &["view"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn no_module_uses_a_layer_above_its_own() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    assert!(all.len() > 10, "found the sources");
    let mut bad: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in &all {
        let rel = f.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_str()
            .unwrap()
            .trim_end_matches(".rs")
            .to_string();
        if top == "lib" {
            continue;
        }
        let Some(mine) = layer_of(&top) else {
            panic!("module {top} is in no layer: add it to LAYERS and docs/architecture.md");
        };
        let text = std::fs::read_to_string(f).unwrap();
        // Tests may build fixtures from anywhere: only non-test code counts.
        let code = text.split("#[cfg(test)]").next().unwrap();
        for (i, _) in code.match_indices("crate::") {
            let name: String = code[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let Some(theirs) = layer_of(&name) else {
                continue; // a re-exported item (crate::Socket), not a module
            };
            if theirs > mine {
                bad.entry(rel.display().to_string())
                    .or_default()
                    .push(format!(
                        "{top} (layer {mine}) uses crate::{name} (layer {theirs})"
                    ));
            }
        }
    }
    assert!(bad.is_empty(), "imports that run up a layer: {bad:#?}");
}
