//! The lab: raw-syscall web server and kernel experiments (issue: sockscope lab).
