//! The scrub task: sleeps until the earliest `Scrub` schedule entry (an erasure's
//! `scrubDueAt`), wakes early when a data-subject request completes, and runs
//! [`crate::dsr::scrub::pass`]. Not here: what a scrub does (`crate::dsr::scrub`).

use std::sync::Arc;

use crate::state::Shared;
use crate::store::{self, Kind, ScheduleAction};

/// The scrub task, until `shared.shutdown`.
pub async fn run(shared: Arc<Shared>) {
    let wakes = |ev: &store::ChangeEvent| ev.kind == Kind::Dsr && ev.action == "completed";
    super::run_due(shared, ScheduleAction::Scrub, wakes, |shared| async move {
        match crate::dsr::scrub::pass(&shared).await {
            Ok(Some(r)) => {
                tracing::info!(
                    requests = r.requests,
                    pause_ms = r.rewrite.pause.as_millis() as u64,
                    old_bytes = r.rewrite.old_bytes,
                    new_bytes = r.rewrite.new_bytes,
                    zeroed_bytes = r.zeroed_bytes,
                    "store rewritten after data-subject erasures"
                );
                false
            }
            Ok(None) => false,
            Err(e) => {
                tracing::error!(error = %e, "the scrub after a data-subject erasure failed; retrying");
                true
            }
        }
    })
    .await;
}
