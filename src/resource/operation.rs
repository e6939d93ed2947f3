//! The audit log's operation names: every record names its [`Operation`] from this one
//! list (`contacts.write`, `retention.purge`, …), never from a bare string.

/// Declares [`Operation`] with its audit names, so a name is written exactly once.
macro_rules! operations {
    ($($(#[$doc:meta])* $variant:ident = $name:literal,)*) => {
        /// The operation an audit record names (`operationName`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Operation {
            $($(#[$doc])* $variant,)*
        }

        impl Operation {
            /// Every operation.
            pub const ALL: &'static [Operation] = &[$(Operation::$variant,)*];

            /// The name stored in the audit record.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Operation::$variant => $name,)*
                }
            }
        }
    };
}

operations! {
    /// A contact created or replaced.
    ContactsWrite = "contacts.write",
    /// A contact deleted.
    ContactsDelete = "contacts.delete",
    /// Contacts exported.
    ContactsExport = "contacts.export",
    /// A JIT policy created or replaced.
    JitWrite = "jit.write",
    /// A JIT policy deleted.
    JitDelete = "jit.delete",
    /// JIT access requested.
    JitInitiate = "jit.initiate",
    /// A JIT request ended early: revoked by a caller, or superseded by a newer one.
    JitRevoke = "jit.revoke",
    /// A JIT request's ports reached their end time.
    JitExpire = "jit.expire",
    /// The `[jit] on_change` command failed.
    JitHook = "jit.hook",
    /// The built-in JIT firewall (`[jit] firewall`) rebuilt its table, or could not, or
    /// could not open a request port.
    JitFirewall = "jit.firewall",
    /// JIT policies exported.
    JitPoliciesExport = "jit-policies.export",
    /// JIT requests exported.
    JitRequestsExport = "jit-requests.export",
    /// Alerts appended (by the API or the spool).
    AlertsIngest = "alerts.ingest",
    /// An attempt to change an alert (always denied: alerts are read-only).
    AlertsUpdate = "alerts.update",
    /// An attempt at an alert state action (always denied).
    AlertsAction = "alerts.action",
    /// Alerts exported.
    AlertsExport = "alerts.export",
    /// The audit log exported.
    AuditExport = "audit.export",
    /// Audit records past retention removed (the chain keeps its anchor).
    AuditPurge = "audit.purge",
    /// Records past retention removed.
    RetentionPurge = "retention.purge",
    /// A data subject looked up.
    SubjectsSearch = "subjects.search",
    /// A data-subject request opened.
    DsrOpen = "dsr.open",
    /// A data-subject request confirmed.
    DsrConfirm = "dsr.confirm",
    /// A data-subject request rejected.
    DsrReject = "dsr.reject",
    /// A data-subject request's deadline extended.
    DsrExtend = "dsr.extend",
    /// A step of a data-subject request carried out.
    DsrExecute = "dsr.execute",
    /// A subject's data erased.
    DsrErase = "dsr.erase",
    /// A data-subject request completed.
    DsrComplete = "dsr.complete",
    /// A data-subject request became overdue.
    DsrOverdue = "dsr.overdue",
    /// A data-subject request's deadline is near.
    DsrDeadline = "dsr.deadline",
    /// A data-subject bundle fetched.
    DsrBundle = "dsr.bundle",
    /// An erased subject's bytes scrubbed from the store's file.
    DsrScrub = "dsr.scrub",
    /// A consistent copy of the whole store taken (`stewardd backup`).
    StoreBackup = "store.backup",
    /// The store rewritten into a fresh file to give back free space.
    StoreCompact = "store.compact",
    /// The configuration reloaded (or a reload refused).
    ConfigReload = "config.reload",
    /// Denied attempts coalesced into one record.
    DeniedCoalesced = "denied.coalesced",
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
