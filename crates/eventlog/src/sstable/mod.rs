//! Sorted string tables: immutable files of sorted internal keys.
//!
//! A table is a run of data blocks, a Bloom filter block, an index block and a fixed
//! footer. `docs/eventlog-format.md` describes every byte.

pub mod block;
pub mod builder;
pub mod filter;
pub mod footer;
pub mod reader;

pub use builder::{FinishedTable, TableBuilder, TableInfo};
pub use reader::{Table, TableIter};
