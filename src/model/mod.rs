//! The domain model: security contacts, JIT policies and requests, alerts, audit records
//! and data-subject requests, in the JSON shapes of the Microsoft.Security API (and our
//! own shapes where the API has none), with the validation that turns raw input into them.
//!
//! Inputs are parsed once, at the edge, by the `*Input::parse` functions (and
//! [`jit::InitiateRequest::parse`]), which return every problem with its field path
//! ([`ValidationErrors`]). The resulting types are trusted everywhere else. Storage,
//! HTTP and hashing are not here.

pub mod alert;
pub mod audit;
pub mod contact;
pub mod dsr;
pub mod jit;
pub mod subject;
pub mod validate;

pub use alert::{AlertInput, ValidAlert};
pub use audit::{AuditCaller, AuditDetails, AuditRecord, AuditStatus};
pub use contact::{
    AlertNotifications, ContactInput, ContactProperties, ContactShape, NotificationsByRole,
    NotificationsSource, SecurityContact,
};
pub use dsr::{
    DataSubjectRequest, DsrError, DsrInput, DsrStatus, DsrSubject, DsrType, ReportEntry,
    ReportOutcome, SubjectRemoved,
};
pub use jit::{
    InitiateRequest, JitPolicy, JitPolicyInput, JitPolicyProperties, JitPortRule, JitRequest,
    JitRequestPort, JitRequestVm, JitVirtualMachine, Protocol, RevokeReason, SourcePrefix, VmId,
    VmIdError,
};
pub use subject::{SubjectKey, SubjectKind};
pub use validate::{FieldError, ValidationErrors};
