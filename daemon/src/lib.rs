//! # steward-daemon — `stewardd`
//!
//! | module | what it holds |
//! | --- | --- |
//! | [`store`] | the redb store: tenant-scoped handles, postcard records behind a format byte, indexes, the audit hash chain, the group-commit writer |

pub mod store;
