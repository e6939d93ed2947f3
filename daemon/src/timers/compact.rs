//! Compaction by itself (`[store] compact_when_free_over`): at every retention sweep
//! interval, when the key is set, measures the share of the store file that is free
//! pages and compacts the store ([`crate::routes::upkeep::compact_now`], the same
//! rewrite as `stewardd compact`) once it is over the threshold. Unset, it only sleeps.
//!
//! Not here: the rewrite (`store/copy.rs`), the manual command (`routes/upkeep.rs`).

use std::sync::Arc;
use std::time::Duration;

use crate::state::Shared;

/// Files smaller than this are never compacted by the timer: a young file is mostly free
/// pages redb allocated ahead, and rewriting it gives nothing back worth the pause.
const MIN_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// The compaction task, until `shared.shutdown`.
pub async fn run(shared: Arc<Shared>) {
    loop {
        let every = shared
            .config()
            .retention
            .sweep_interval
            .0
            .max(Duration::from_secs(1));
        tokio::select! {
            () = shared.shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        let Some(threshold) = shared.config().store.compact_when_free_over else {
            continue;
        };
        let space = match shared.store.writer().space().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot measure the store's free space");
                continue;
            }
        };
        if space.file_bytes < MIN_FILE_BYTES || space.free_fraction() <= threshold {
            continue;
        }
        tracing::info!(
            file_bytes = space.file_bytes,
            used_bytes = space.used_bytes,
            threshold,
            "the store is mostly free pages: compacting ([store] compact_when_free_over)"
        );
        if let Err(e) = crate::routes::upkeep::compact_now(&shared).await {
            tracing::error!(error = %e, "compaction failed; the store is unchanged");
        }
    }
}
