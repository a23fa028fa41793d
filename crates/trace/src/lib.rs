//! Live kernel timeline of connections (issue: sockscope trace).
