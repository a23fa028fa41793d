//! Views: model values to text and JSON. Views write only to the writer they
//! are given.

/// Escaping of foreign strings (lives at the bottom of the library, so
/// that non-view code such as filter errors can use it too).
pub use crate::escape;
pub mod explain;
pub mod seqdiag;
pub mod sockets;
pub mod table;
pub mod units;
