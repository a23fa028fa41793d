//! Sources: one module per kernel interface. Sources read the kernel and
//! return model values; they never print.

pub mod procnet;
