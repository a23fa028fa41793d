//! Views: model values to text and JSON. Views write only to the writer they
//! are given.

pub mod escape;
pub mod explain;
pub mod sockets;
pub mod table;
