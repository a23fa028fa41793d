//! Kernel counters as plain data (/proc/net/netstat, snmp, sockstat), keyed
//! `Group.Name`. Filled by `source::counters`.

use std::collections::BTreeMap;

/// Named counters, keyed `Group.Name` (e.g. `TcpExt.ListenOverflows`,
/// `Tcp.RetransSegs`, `TCP.inuse` from sockstat).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters(pub BTreeMap<String, i64>);

impl Counters {
    pub fn get(&self, key: &str) -> Option<i64> {
        self.0.get(key).copied()
    }
    /// `self - earlier` for every key present in both.
    pub fn delta(&self, earlier: &Counters) -> Counters {
        Counters(
            self.0
                .iter()
                .filter_map(|(k, v)| earlier.0.get(k).map(|e| (k.clone(), v - e)))
                .collect(),
        )
    }
    pub fn extend(&mut self, o: Counters) {
        self.0.extend(o.0);
    }
}
