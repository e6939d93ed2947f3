//! [`TxnView`]: what a write job's [`super::TenantTxn`] reads of the writer's transaction,
//! so the staging rules of `txn.rs` (a failed job changed nothing, no change without its
//! audit record) are written once for every backend. redb's `WriteTransaction` implements
//! it here; the PostgreSQL backend's transaction in `pg/`.

use redb::{ReadableTable, WriteTransaction};
use steward::model::SubjectKey;

use super::audit::ChainPoint;
use super::doc::{Doc, Kind};
use super::error::StoreError;
use super::read::{self, Page, SubjectHit, TimeCursor};
use super::tables;
use super::time_scan::TimeQuery;

/// What a [`TenantTxn`] reads of the group's transaction, for the tenant it is given:
/// each backend's transaction implements it (redb's [`WriteTransaction`] here). Reads do
/// not see the calling job's staged changes ([`TenantTxn`] overlays them).
pub(crate) trait TxnView {
    /// One record.
    fn get(&self, tenant: &str, kind: Kind, name: &str) -> Result<Option<Doc>, StoreError>;

    /// Whether a record exists, without decoding it.
    fn exists(&self, tenant: &str, kind: Kind, name: &str) -> Result<bool, StoreError>;

    /// Records of `kind` in name order after `after`.
    fn list(
        &self,
        tenant: &str,
        kind: Kind,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<Doc, String>, StoreError>;

    /// Records by sort time, as [`super::TenantRead::list_by_time`].
    fn list_by_time(
        &self,
        tenant: &str,
        kind: Kind,
        q: &mut TimeQuery<'_>,
    ) -> Result<Page<Doc, TimeCursor>, StoreError>;

    /// Records holding `key`.
    fn subjects(&self, tenant: &str, key: &SubjectKey) -> Result<Vec<SubjectHit>, StoreError>;

    /// The chain points of the tenant's oldest audit records from `start_seq` on that were
    /// committed before `before_micros`, in order, at most `limit`.
    fn audit_before(
        &self,
        tenant: &str,
        start_seq: u64,
        before_micros: i64,
        limit: usize,
    ) -> Result<Vec<ChainPoint>, StoreError>;
}

impl TxnView for WriteTransaction {
    fn get(&self, tenant: &str, kind: Kind, name: &str) -> Result<Option<Doc>, StoreError> {
        let t = self.open_table(tables::RECORDS)?;
        read::get_doc(&t, tenant, kind, name)
    }

    fn exists(&self, tenant: &str, kind: Kind, name: &str) -> Result<bool, StoreError> {
        let t = self.open_table(tables::RECORDS)?;
        Ok(t.get((tenant, kind.as_u8(), name))?.is_some())
    }

    fn list(
        &self,
        tenant: &str,
        kind: Kind,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<Doc, String>, StoreError> {
        let t = self.open_table(tables::RECORDS)?;
        read::list_docs(&t, tenant, kind, after, limit)
    }

    fn list_by_time(
        &self,
        tenant: &str,
        kind: Kind,
        q: &mut TimeQuery<'_>,
    ) -> Result<Page<Doc, TimeCursor>, StoreError> {
        let index = self.open_table(tables::TIME_INDEX)?;
        let records = self.open_table(tables::RECORDS)?;
        super::time_scan::list_by_time(&index, &records, tenant, kind, q)
    }

    fn subjects(&self, tenant: &str, key: &SubjectKey) -> Result<Vec<SubjectHit>, StoreError> {
        let t = self.open_table(tables::SUBJECTS)?;
        read::subjects_of(&t, tenant, key)
    }

    fn audit_before(
        &self,
        tenant: &str,
        start_seq: u64,
        before_micros: i64,
        limit: usize,
    ) -> Result<Vec<ChainPoint>, StoreError> {
        let t = self.open_table(tables::AUDIT)?;
        let mut out = Vec::new();
        for item in t.range((tenant, start_seq)..=(tenant, u64::MAX))? {
            if out.len() >= limit {
                break;
            }
            let (k, v) = item?;
            let seq = k.value().1;
            let rec = read::decode_audit(tenant, seq, v.value())?;
            if rec.at.as_microsecond() >= before_micros {
                break;
            }
            out.push(ChainPoint {
                seq,
                hash: rec.hash,
            });
        }
        Ok(out)
    }
}
