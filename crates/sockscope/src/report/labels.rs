//! Where a process runs, from its cgroup v2 path (/proc/PID/cgroup):
//! container runtime and id, Kubernetes pod UID and QoS class, systemd
//! unit. Parsing is pure ([`Platform::from_cgroup`]); [`read`] does the I/O.
//!
//! Paths recognised (systemd and cgroupfs drivers):
//!
//! - docker: `/system.slice/docker-<id>.scope`, `/docker/<id>`
//! - containerd: `.../cri-containerd-<id>.scope`, `/kubepods/.../pod<uid>/<id>`
//! - cri-o: `.../crio-<id>.scope` (`crio-conmon-<id>.scope` is the monitor)
//! - podman: `.../libpod-<id>.scope`, `/machine.slice/libpod-<id>.scope`
//! - Kubernetes: `kubepods.slice/kubepods-<qos>.slice/kubepods-<qos>-pod<uid>.slice`
//!   (UID with `_` for `-`) or `/kubepods/<qos>/pod<uid>`; guaranteed pods
//!   have no QoS level in the path.
//! - systemd: `/system.slice/<unit>.service` (also user units under
//!   `user@UID.service/`).

use serde::Serialize;
use std::path::Path;

/// What a cgroup path says. Every field is `None` when the path does not
/// say it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Platform {
    /// docker, containerd, cri-o, podman
    pub runtime: Option<String>,
    /// The container id: 64 lowercase hex digits.
    pub container_id: Option<String>,
    /// Kubernetes pod UID (with dashes).
    pub pod_uid: Option<String>,
    /// Kubernetes QoS class: guaranteed, burstable, besteffort.
    pub qos: Option<String>,
    /// systemd unit of a host service (`nginx.service`).
    pub unit: Option<String>,
}

fn is_id(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `<prefix><id>.scope` -> id.
fn scoped<'a>(comp: &'a str, prefix: &str) -> Option<&'a str> {
    comp.strip_prefix(prefix)?
        .strip_suffix(".scope")
        .filter(|id| is_id(id))
}

/// A pod UID as written in the path (`pod1234_abcd...` or `pod1234-abcd...`)
/// -> canonical UID with dashes.
fn pod_uid(comp: &str) -> Option<String> {
    let rest = comp.strip_prefix("pod").or_else(|| {
        // kubepods-burstable-pod<uid>.slice, kubepods-pod<uid>.slice
        let i = comp.find("-pod")?;
        comp.starts_with("kubepods").then(|| &comp[i + 4..])
    })?;
    let rest = rest.strip_suffix(".slice").unwrap_or(rest);
    let uid = rest.replace('_', "-");
    let ok = uid.len() == 36
        && uid.bytes().enumerate().all(|(i, b)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                b == b'-'
            } else {
                b.is_ascii_hexdigit()
            }
        });
    ok.then(|| uid.to_ascii_lowercase())
}

impl Platform {
    /// Parse a cgroup v2 path.
    pub fn from_cgroup(path: &str) -> Platform {
        let mut p = Platform::default();
        let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
        let kube = comps.first().is_some_and(|c| c.starts_with("kubepods"));
        for (i, c) in comps.iter().enumerate() {
            for (prefix, runtime) in [
                ("docker-", "docker"),
                ("cri-containerd-", "containerd"),
                ("crio-", "cri-o"),
                ("libpod-", "podman"),
            ] {
                if let Some(id) = scoped(c, prefix) {
                    p.runtime = Some(runtime.into());
                    p.container_id = Some(id.into());
                }
            }
            // cgroupfs driver: /docker/<id>, /kubepods/.../pod<uid>/<id>
            if p.container_id.is_none() && is_id(c) && i > 0 {
                let parent = comps[i - 1];
                if parent == "docker" {
                    p.runtime = Some("docker".into());
                    p.container_id = Some(c.to_string());
                } else if kube && parent.starts_with("pod") {
                    p.container_id = Some(c.to_string());
                }
            }
            if kube
                && p.pod_uid.is_none()
                && let Some(uid) = pod_uid(c)
            {
                p.pod_uid = Some(uid);
            }
            if p.unit.is_none()
                && !kube
                && c.ends_with(".service")
                && !c.starts_with("user@")
                && i > 0
                && (comps[i - 1] == "system.slice"
                    || comps[i - 1].starts_with("user@")
                    || comps[i - 1].ends_with(".slice"))
            {
                p.unit = Some(c.to_string());
            }
        }
        if kube && p.pod_uid.is_some() {
            let level = comps.iter().find_map(|c| {
                let c = c.strip_suffix(".slice").unwrap_or(c);
                let c = c.strip_prefix("kubepods-").unwrap_or(c);
                ["burstable", "besteffort"].into_iter().find(|q| c == *q)
            });
            p.qos = Some(level.unwrap_or("guaranteed").into());
        }
        p
    }

    /// True when nothing is known.
    pub fn is_empty(&self) -> bool {
        *self == Platform::default()
    }
}

/// The platform of process `pid` (empty when its cgroup cannot be read:
/// the process is gone or cgroup v1 only).
pub fn read(proc_root: &Path, pid: u32) -> Platform {
    std::fs::read_to_string(proc_root.join(pid.to_string()).join("cgroup"))
        .ok()
        .and_then(|t| crate::source::process::parse_cgroup(&t))
        .map(|c| Platform::from_cgroup(&c))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const UID: &str = "7c3c2b1a-1111-4222-8333-944455556666";

    fn p(path: &str) -> Platform {
        Platform::from_cgroup(&path.replace("ID", ID))
    }

    #[test]
    fn docker_both_drivers() {
        for path in ["/system.slice/docker-ID.scope", "/docker/ID"] {
            let x = p(path);
            assert_eq!(x.runtime.as_deref(), Some("docker"), "{path}");
            assert_eq!(x.container_id.as_deref(), Some(ID), "{path}");
            assert_eq!((x.pod_uid, x.unit), (None, None), "{path}");
        }
    }

    #[test]
    fn kubernetes_containerd_systemd_driver() {
        let x = p(&format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-ID.scope",
            UID.replace('-', "_")
        ));
        assert_eq!(x.runtime.as_deref(), Some("containerd"));
        assert_eq!(x.container_id.as_deref(), Some(ID));
        assert_eq!(x.pod_uid.as_deref(), Some(UID));
        assert_eq!(x.qos.as_deref(), Some("burstable"));
        assert_eq!(x.unit, None, "a pod slice is no host service");
    }

    #[test]
    fn kubernetes_guaranteed_and_cgroupfs_and_crio() {
        let x = p(&format!(
            "/kubepods.slice/kubepods-pod{}.slice/crio-ID.scope",
            UID.replace('-', "_")
        ));
        assert_eq!(x.runtime.as_deref(), Some("cri-o"));
        assert_eq!(x.qos.as_deref(), Some("guaranteed"));
        assert_eq!(x.pod_uid.as_deref(), Some(UID));
        let x = p(&format!("/kubepods/besteffort/pod{UID}/ID"));
        assert_eq!(x.container_id.as_deref(), Some(ID));
        assert_eq!(x.runtime, None, "cgroupfs paths do not name the runtime");
        assert_eq!(x.qos.as_deref(), Some("besteffort"));
        assert_eq!(x.pod_uid.as_deref(), Some(UID));
        // the pod's own cgroup (pause, or the pod-level view)
        let x = p(&format!("/kubepods/pod{UID}"));
        assert_eq!(
            (x.pod_uid.as_deref(), x.qos.as_deref()),
            (Some(UID), Some("guaranteed"))
        );
        assert_eq!(x.container_id, None);
    }

    #[test]
    fn podman_rootful_and_rootless() {
        for path in [
            "/machine.slice/libpod-ID.scope",
            "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-ID.scope/container",
        ] {
            let x = p(path);
            assert_eq!(x.runtime.as_deref(), Some("podman"), "{path}");
            assert_eq!(x.container_id.as_deref(), Some(ID), "{path}");
        }
    }

    #[test]
    fn systemd_units_and_nothing() {
        assert_eq!(
            p("/system.slice/nginx.service").unit.as_deref(),
            Some("nginx.service")
        );
        assert_eq!(
            p("/system.slice/containerd.service/sub").unit.as_deref(),
            Some("containerd.service")
        );
        assert_eq!(
            p("/user.slice/user-1000.slice/user@1000.service/app.slice/foo.service")
                .unit
                .as_deref(),
            Some("foo.service")
        );
        assert!(p("/").is_empty());
        assert!(p("/user.slice/user-1000.slice/session-3.scope").is_empty());
        // not an id: wrong length or upper case
        assert!(p("/docker/0123").container_id.is_none());
        assert!(
            p(&format!("/docker/{}", ID.to_uppercase()))
                .container_id
                .is_none()
        );
        // a crio monitor is not the container
        assert!(
            p("/system.slice/crio-conmon-ID.scope")
                .container_id
                .is_none()
        );
    }
}
