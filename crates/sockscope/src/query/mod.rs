//! The filter language (ss-compatible).
