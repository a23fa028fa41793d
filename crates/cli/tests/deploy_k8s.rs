//! The Kubernetes manifests under deploy/kubernetes validate against the
//! Kubernetes API schema, offline.
//!
//! The validator is `kubernetes-validate` from PyPI (it ships the schemas
//! of every Kubernetes release), installed by scripts/test into its own
//! virtual environment at /opt/sockscope-tools (override with
//! SOCKSCOPE_KUBERNETES_VALIDATE). It runs under `unshare -n`, in a
//! network namespace with no interfaces up, so the test proves the
//! schemas come from the package and not from the network. Strict mode:
//! a misspelled field fails as well as a wrong type. Two broken copies of
//! the DaemonSet must be rejected, so a validator that accepts anything
//! cannot pass the test.

#[path = "common/root.rs"]
mod root;

use std::path::{Path, PathBuf};
use std::process::Command;

fn validator() -> PathBuf {
    let p = std::env::var_os("SOCKSCOPE_KUBERNETES_VALIDATE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/sockscope-tools/bin/kubernetes-validate"));
    assert!(
        p.exists(),
        "{} not found: run scripts/test (it installs kubernetes-validate from PyPI into \
/opt/sockscope-tools), or set SOCKSCOPE_KUBERNETES_VALIDATE to the validator",
        p.display()
    );
    p
}

fn manifests() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/kubernetes");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no manifests in {}", dir.display());
    v
}

/// Run the validator offline on `files`: (success, output).
fn validate(files: &[PathBuf]) -> (bool, String) {
    let out = Command::new("unshare")
        .arg("-n")
        .arg(validator())
        .arg("--strict")
        .args(files)
        .output()
        .expect("run unshare -n kubernetes-validate (as root)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn manifests_validate_against_the_kubernetes_schema_offline() {
    if root::skip_without_root() {
        return;
    }
    let files = manifests();
    let (ok, text) = validate(&files);
    assert!(ok, "{text}");
    for f in &files {
        let name = f.display().to_string();
        assert!(
            text.lines()
                .any(|l| l.contains(&name) && l.contains("passed")),
            "no verdict for {name}: {text}"
        );
    }
}

#[test]
fn broken_copies_of_the_daemonset_are_rejected() {
    if root::skip_without_root() {
        return;
    }
    let ds = manifests()
        .into_iter()
        .find(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .contains("kind: DaemonSet")
        })
        .expect("a DaemonSet manifest");
    let text = std::fs::read_to_string(&ds).unwrap();
    // (Outside comments, which explain why it is not.)
    assert!(
        !text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .any(|l| l.contains("privileged: true")),
        "the DaemonSet must not be privileged"
    );
    let dir = std::env::temp_dir().join(format!("sockscope-k8s-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases = [
        // a wrong type
        ("hostPID: true", "hostPID: \"yes\"", "hostPID"),
        // a field the API does not have (strict mode)
        (
            "hostPID: true",
            "hostPID: true\n      hostPIDs: true",
            "hostPIDs",
        ),
    ];
    for (i, (from, to, field)) in cases.into_iter().enumerate() {
        assert!(text.contains(from), "{from:?} not in {}", ds.display());
        let bad = dir.join(format!("bad{i}.yaml"));
        std::fs::write(&bad, text.replacen(from, to, 1)).unwrap();
        let (ok, out) = validate(std::slice::from_ref(&bad));
        assert!(!ok, "{field}: accepted: {out}");
        assert!(out.contains(field), "{field} not named: {out}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
