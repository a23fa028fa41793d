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
//!
//! A pod's name and namespace are not in the cgroup path; [`kubelet_pod`]
//! reads them from the kubelet's directory for the pod UID
//! (`/var/lib/kubelet/pods/UID`), where readable:
//!
//! - name: `etc-hosts`, the hosts file the kubelet writes for a pod that
//!   is not on the host network (it starts `# Kubernetes-managed hosts
//!   file`): its line for the pod's own address names the pod's hostname,
//!   which is the pod's name unless the pod sets `spec.hostname`;
//! - namespace: the `namespace` file of the service account volume the
//!   kubelet projects into the pod (`volumes/kubernetes.io~projected/
//!   kube-api-access-*/namespace`, or a legacy token secret's
//!   `volumes/kubernetes.io~secret/*/namespace`), else the hosts file's
//!   `HOST.SUBDOMAIN.NAMESPACE.svc...` name when the pod has a subdomain.
//!
//! A pod with neither (host network, no service account token mounted)
//! keeps only its UID.

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
    /// Kubernetes pod name, from the kubelet's pod directory
    /// ([`kubelet_pod`]); never from the cgroup path.
    pub pod_name: Option<String>,
    /// Kubernetes namespace of the pod, likewise.
    pub pod_namespace: Option<String>,
    /// The container's name in its pod, from the kubelet's log links
    /// ([`container_logs`]); never from the cgroup path.
    pub container_name: Option<String>,
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

/// A container's pod, namespace and name, as the kubelet's log link for
/// it gives them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerNames {
    pub pod: String,
    pub namespace: String,
    pub container: String,
}

/// The container id and names in the name of a kubelet log link,
/// `POD_NAMESPACE_CONTAINER-ID.log` (none of the three names can hold an
/// underscore; the id is 64 hex digits).
pub fn parse_container_log_name(file: &str) -> Option<(String, ContainerNames)> {
    let stem = file.strip_suffix(".log")?;
    let (names, id) = stem.rsplit_once('-')?;
    if !is_id(id) {
        return None;
    }
    let mut parts = names.splitn(3, '_');
    let (pod, namespace, container) = (parts.next()?, parts.next()?, parts.next()?);
    (dns_subdomain(pod) && dns_label(namespace) && dns_label(container)).then(|| {
        (
            id.to_string(),
            ContainerNames {
                pod: pod.into(),
                namespace: namespace.into(),
                container: container.into(),
            },
        )
    })
}

/// The kubelet links the log of every container it runs as
/// `DIR/POD_NAMESPACE_CONTAINER-ID.log` (DIR is /var/log/containers):
/// container id -> names, for every link in `dir` (at most 65 536 entries
/// are looked at). Unreadable or absent: empty.
pub fn container_logs(dir: &Path) -> std::collections::HashMap<String, ContainerNames> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Default::default();
    };
    rd.take(65_536)
        .filter_map(|e| e.ok())
        .filter_map(|e| parse_container_log_name(e.file_name().to_str()?))
        .collect()
}

/// A pod's name and namespace as the kubelet's files give them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodNames {
    pub name: Option<String>,
    pub namespace: Option<String>,
}

/// A DNS-1123 label (what namespaces are): 1 to 63 of `a-z0-9-`, not
/// starting or ending with `-`.
fn dns_label(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A DNS-1123 subdomain (what pod names are): labels joined by dots, at
/// most 253 bytes.
fn dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(dns_label)
}

/// The hostname (and, from a `HOST.SUBDOMAIN.NAMESPACE.svc.DOMAIN` name,
/// the namespace) in a kubelet-managed hosts file; None for any other
/// hosts file (a host-network pod gets a copy of the node's).
pub fn parse_etc_hosts(text: &str) -> Option<(String, Option<String>)> {
    let mut lines = text.lines();
    if !lines.next()?.starts_with("# Kubernetes-managed hosts file") {
        return None;
    }
    for line in lines {
        let line = line.trim();
        // HostAliases entries come after the pod's own line.
        if line.starts_with("# Entries added by HostAliases") {
            return None;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let Some(Ok(addr)) = fields.next().map(str::parse::<std::net::IpAddr>) else {
            continue;
        };
        // The fixed entries: localhost, ip6-localnet (fe00::), the
        // multicast names (ff00::, ff02::).
        let fixed = match addr {
            std::net::IpAddr::V4(a) => a.is_loopback(),
            std::net::IpAddr::V6(a) => {
                a.is_loopback() || matches!(a.segments()[0], 0xfe00 | 0xff00 | 0xff02)
            }
        };
        if fixed {
            continue;
        }
        let names: Vec<&str> = fields.collect();
        // `IP HOST` or `IP HOST.SUB.NS.svc.DOMAIN HOST`
        let host = names
            .iter()
            .find(|n| !n.contains('.'))
            .or(names.first())?
            .to_string();
        let namespace = names.iter().find_map(|n| {
            let parts: Vec<&str> = n.split('.').collect();
            (parts.len() >= 4 && parts[3] == "svc" && dns_label(parts[2]))
                .then(|| parts[2].to_string())
        });
        return dns_subdomain(&host).then_some((host, namespace));
    }
    None
}

/// The `namespace` file of a service account volume of the pod directory
/// `dir` (projected `kube-api-access-*`, or a legacy token secret).
fn volume_namespace(dir: &Path) -> Option<String> {
    for (plugin, prefix) in [
        ("kubernetes.io~projected", "kube-api-access-"),
        ("kubernetes.io~secret", ""),
    ] {
        let Ok(rd) = std::fs::read_dir(dir.join("volumes").join(plugin)) else {
            continue;
        };
        let mut vols: Vec<_> = rd
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
            .map(|e| e.path())
            .collect();
        vols.sort();
        for v in vols {
            // A namespace is at most 63 bytes: read no more than a page.
            let Ok(f) = std::fs::File::open(v.join("namespace")) else {
                continue;
            };
            let mut buf = String::new();
            if std::io::Read::read_to_string(&mut std::io::Read::take(f, 4096), &mut buf).is_err() {
                continue;
            }
            let ns = buf.trim();
            if dns_label(ns) {
                return Some(ns.to_string());
            }
        }
    }
    None
}

/// Name and namespace of the pod `uid` from the kubelet's directory
/// `kubelet_root` (usually /var/lib/kubelet; see the module comment).
/// Whatever cannot be read is `None`.
pub fn kubelet_pod(kubelet_root: &Path, uid: &str) -> PodNames {
    // The UID comes from a cgroup path parsed into hex and dashes; refuse
    // anything else rather than join it to a path.
    if uid.is_empty() || !uid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        return PodNames::default();
    }
    let dir = kubelet_root.join("pods").join(uid);
    let hosts = std::fs::File::open(dir.join("etc-hosts"))
        .ok()
        .and_then(|f| {
            let mut buf = String::new();
            std::io::Read::read_to_string(&mut std::io::Read::take(f, 64 * 1024), &mut buf).ok()?;
            parse_etc_hosts(&buf)
        });
    let (name, from_hosts) = match hosts {
        Some((n, ns)) => (Some(n), ns),
        None => (None, None),
    };
    PodNames {
        name,
        namespace: volume_namespace(&dir).or(from_hosts),
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

    /// A fake kubelet root under the temp directory, removed on drop.
    struct Kubelet(std::path::PathBuf);
    impl Kubelet {
        fn new(tag: &str) -> Kubelet {
            let d = std::env::temp_dir()
                .join(format!("sockscope-kubelet-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(d.join("pods")).unwrap();
            Kubelet(d)
        }
        fn file(&self, rel: &str, text: &str) {
            let p = self.0.join("pods").join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
    }
    impl Drop for Kubelet {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    const HOSTS: &str = "# Kubernetes-managed hosts file.
127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
fe00::0\tip6-mcastprefix
fe00::1\tip6-allnodes
fe00::2\tip6-allrouters
10.244.1.7\tweb-7d9f8b6c5-x2x4q
";

    #[test]
    fn container_log_links_give_pod_namespace_and_container() {
        let id = "0123456789abcdef".repeat(4);
        let (got, n) = parse_container_log_name(&format!("web-7d4b9c-xk2lp_shop_nginx-{id}.log"))
            .expect("a kubelet log link");
        assert_eq!(got, id);
        assert_eq!(
            (n.pod.as_str(), n.namespace.as_str(), n.container.as_str()),
            ("web-7d4b9c-xk2lp", "shop", "nginx")
        );
        for bad in [
            format!("web_shop_nginx-{}.log", &id[1..]),
            format!("web_shop-{id}.log"),
            format!("web_Shop_nginx-{id}.log"),
            format!("web_shop_nginx-{id}.txt"),
            format!("web_shop_ng_inx-{id}.log"),
        ] {
            assert_eq!(parse_container_log_name(&bad), None, "{bad}");
        }
        let d = std::env::temp_dir().join(format!("sockscope-logs-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(format!("api-0_prod_app-{id}.log")), b"").unwrap();
        std::fs::write(d.join("unrelated.log"), b"").unwrap();
        let m = container_logs(&d);
        std::fs::remove_dir_all(&d).unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!(m[&id].container, "app");
        assert!(container_logs(Path::new("/nonexistent/sockscope")).is_empty());
    }

    #[test]
    fn kubelet_hosts_file_gives_the_pod_name() {
        assert_eq!(
            parse_etc_hosts(HOSTS),
            Some(("web-7d9f8b6c5-x2x4q".into(), None))
        );
        // a pod with a subdomain: its FQDN names the namespace
        let sub = HOSTS.replace(
            "10.244.1.7\tweb-7d9f8b6c5-x2x4q",
            "fd00::7\tdb-0.db.shop.svc.cluster.local\tdb-0",
        );
        assert_eq!(
            parse_etc_hosts(&sub),
            Some(("db-0".into(), Some("shop".into())))
        );
        // HostAliases only after the pod's line; a hosts file the kubelet
        // did not write (host network); junk
        let aliases = HOSTS.replace(
            "10.244.1.7\tweb-7d9f8b6c5-x2x4q\n",
            "\n# Entries added by HostAliases.\n1.2.3.4\tfoo\n",
        );
        assert_eq!(parse_etc_hosts(&aliases), None);
        assert_eq!(
            parse_etc_hosts("127.0.0.1 localhost\n10.0.0.1 node1\n"),
            None
        );
        assert_eq!(
            parse_etc_hosts("# Kubernetes-managed hosts file.\n10.0.0.1 Bad_Name\n"),
            None
        );
        assert_eq!(parse_etc_hosts(""), None);
    }

    #[test]
    fn kubelet_pod_directory_gives_name_and_namespace() {
        let k = Kubelet::new("full");
        k.file(&format!("{UID}/etc-hosts"), HOSTS);
        k.file(
            &format!("{UID}/volumes/kubernetes.io~projected/kube-api-access-5kq2x/namespace"),
            "shop\n",
        );
        assert_eq!(
            kubelet_pod(&k.0, UID),
            PodNames {
                name: Some("web-7d9f8b6c5-x2x4q".into()),
                namespace: Some("shop".into()),
            }
        );
        // only the hosts file; a legacy token secret; nothing; a bad UID
        let other = "11111111-2222-4333-8444-555555555555";
        k.file(&format!("{other}/etc-hosts"), HOSTS);
        assert_eq!(
            kubelet_pod(&k.0, other).namespace,
            None,
            "no service account volume"
        );
        k.file(
            &format!("{other}/volumes/kubernetes.io~secret/default-token-abcde/namespace"),
            "kube-system",
        );
        assert_eq!(
            kubelet_pod(&k.0, other).namespace.as_deref(),
            Some("kube-system")
        );
        assert_eq!(
            kubelet_pod(&k.0, "99999999-2222-4333-8444-555555555555"),
            PodNames::default()
        );
        assert_eq!(kubelet_pod(&k.0, "../x"), PodNames::default());
        // a namespace file that is no namespace is ignored
        let third = "33333333-2222-4333-8444-555555555555";
        k.file(
            &format!("{third}/volumes/kubernetes.io~projected/kube-api-access-q/namespace"),
            "Not A Namespace",
        );
        assert_eq!(kubelet_pod(&k.0, third), PodNames::default());
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
