//! Value grammars of unit files.

pub mod address;
