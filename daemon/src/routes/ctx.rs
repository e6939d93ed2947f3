//! What every tenant route starts from: the tenant named in the path, the caller and
//! what it may do there, and the helpers that read from and write to the store under
//! that tenant only, with the audit record of each change.

use std::collections::HashMap;
use std::sync::Arc;
use steward::resource::Operation;

use axum::extract::FromRequestParts;
use http::HeaderMap;
use http::request::Parts;
use steward::model::{AuditCaller, AuditStatus};
use steward::names::TenantId;
use steward::permissions::Permission;

use super::extract::RequestId;
use super::extract::{P, Rid};
use super::{CallerExt, acting_role, parse_tenant, tenant_access};
use crate::access::Access;
use crate::error::ApiError;
use crate::identity::Caller;
use crate::state::Shared;
use crate::store::{self, AuditEntry, TenantReader, TenantWrite};

/// A request's standing in one tenant.
pub struct TenantCtx {
    /// The daemon's state.
    pub shared: Arc<Shared>,
    /// Who is calling.
    pub caller: Arc<Caller>,
    /// The tenant from the path, validated and granted.
    pub tenant: TenantId,
    /// What the caller may do here for this request.
    pub access: Access,
    /// The request id, recorded as the audit record's correlation id.
    pub request_id: RequestId,
    /// Marked when this request's first write is queued (see [`store::Handoff`]).
    pub handoff: Option<Arc<store::Handoff>>,
}

impl FromRequestParts<Arc<Shared>> for TenantCtx {
    type Rejection = ApiError;

    /// The tenant named by the path's `{t}`, for the connection's caller, acting under
    /// the `X-Steward-Role` profile if one is asked for.
    async fn from_request_parts(
        parts: &mut Parts,
        shared: &Arc<Shared>,
    ) -> Result<Self, Self::Rejection> {
        let caller = CallerExt::from_request_parts(parts, shared).await?;
        let Rid(rid) = Rid::from_request_parts(parts, shared).await?;
        let P(params) = P::<HashMap<String, String>>::from_request_parts(parts, shared).await?;
        let tenant = params
            .get("t")
            .ok_or_else(|| ApiError::internal(&"a tenant route without {t}"))?;
        let mut ctx = TenantCtx::new(shared, caller, &parts.headers, rid, tenant)?;
        ctx.handoff = parts.extensions.get::<Arc<store::Handoff>>().cloned();
        Ok(ctx)
    }
}

impl TenantCtx {
    /// Resolves the caller's access to `tenant` (400 for a malformed id, 404 when it is
    /// missing or not granted, 403 for an acting profile above what is held).
    fn new(
        shared: &Arc<Shared>,
        CallerExt(caller): CallerExt,
        headers: &HeaderMap,
        request_id: RequestId,
        tenant: &str,
    ) -> Result<TenantCtx, ApiError> {
        let tenant = parse_tenant(tenant)?;
        let acting = acting_role(headers)?;
        let access = tenant_access(shared, &caller, &tenant, acting.as_deref())?;
        Ok(TenantCtx {
            shared: Arc::clone(shared),
            caller,
            tenant,
            access,
            request_id,
            handoff: None,
        })
    }

    /// The caller as audit records name it.
    pub fn audit_caller(&self) -> AuditCaller {
        AuditCaller {
            uid: self.caller.uid,
            user: self.caller.user.clone(),
            profile: self.access.profile.clone(),
        }
    }

    /// An audit entry for `operation` by this caller, correlated with this request.
    pub fn entry(&self, operation: Operation, status: AuditStatus) -> AuditEntry {
        AuditEntry::new(self.audit_caller(), operation, status)
            .correlation(self.request_id.0.to_string())
    }

    /// Passes when the acting profile holds `needed`; otherwise audits the denied
    /// attempt at `resource` and answers 403 naming the permission — or 507 (500) when
    /// the attempt could not be audited.
    pub async fn require(&self, needed: Permission, resource: &str) -> Result<(), ApiError> {
        if self.access.allows(needed) {
            return Ok(());
        }
        self.audit_denied(needed.as_str(), resource, needed).await?;
        Err(ApiError::forbidden(needed))
    }

    /// Audits an attempt that no profile may make or that this one lacks, coalesced with
    /// identical ones ([`crate::denials`]). `Err` (507 on a full disk, after the store's
    /// space reserve) when it could not be audited: answer that, not the refusal.
    pub async fn audit_denied(
        &self,
        operation: &str,
        resource: &str,
        needed: impl std::fmt::Display,
    ) -> Result<(), ApiError> {
        let entry = AuditEntry::named(self.audit_caller(), operation, AuditStatus::Denied)
            .correlation(self.request_id.0.to_string())
            .resource(resource)
            .reason(format!("needs {needed}"));
        let recorded = self
            .shared
            .denials
            .record(
                &self.shared,
                self.caller.uid,
                &self.tenant,
                entry,
                operation,
                resource,
            )
            .await;
        if let Err(e) = &recorded {
            tracing::error!(error = %e.detail.message, operation, "could not audit a denied attempt: answering with the error instead");
        }
        recorded
    }

    /// Reads under this tenant only.
    pub fn reader(&self) -> TenantReader {
        self.shared.store.tenant(&self.tenant)
    }

    /// Runs a read off the async threads (redb is synchronous). On the daemon's
    /// multi-threaded runtime the read runs right here under `block_in_place`: the worker
    /// first hands its other tasks to another thread, so no async thread is blocked, and
    /// the request skips the two thread hand-offs of `spawn_blocking` (most of a small
    /// read's round trip; docs/PERFORMANCE.md). A read that panics (redb on a damaged page)
    /// answers 500 either way.
    pub async fn read<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&TenantReader) -> Result<T, ApiError> + Send + 'static,
    {
        let reader = self.reader();
        let run = move || {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&reader)))
                .map_err(|_| ApiError::internal(&"a read panicked"))?
        };
        match tokio::runtime::Handle::current().runtime_flavor() {
            tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(run),
            _ => tokio::task::spawn_blocking(run)
                .await
                .map_err(|e| ApiError::internal(&e))?,
        }
    }

    /// Runs a write job under this tenant through the group-commit writer. Once queued,
    /// the request waits for the commit whatever its timeout ([`store::Handoff`]).
    pub async fn write<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn TenantWrite) -> Result<T, ApiError> + Send + 'static,
    {
        self.shared
            .store
            .writer()
            .write_handing(&self.tenant, f, self.handoff.as_deref())
            .await
    }

    /// The path prefix of this tenant's routes.
    pub fn base(&self) -> String {
        format!("/v1/tenants/{}", self.tenant)
    }
}
