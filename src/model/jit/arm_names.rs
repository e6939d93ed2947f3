//! A virtual machine's ARM id inside one tenant ([`VmId`], parsed once) and the ARM name
//! rules behind it and behind a policy's placement (resource group, location).

use crate::model::validate::{Collector, ValidationErrors};
use crate::names::{ResourceName, TenantId};

/// A virtual machine's ARM id inside one tenant (whose id is the subscription):
/// `/subscriptions/{tenant}/resourceGroups/{group}/providers/Microsoft.Compute/virtualMachines/{name}`.
///
/// Built only by [`VmId::parse`], so a policy or an initiate holding one can only name
/// machines of its own tenant. The grammar is ARM's, narrowed to ASCII:
/// - the fixed segments (`subscriptions`, `resourceGroups`, `providers`,
///   `Microsoft.Compute`, `virtualMachines`) and the subscription compare
///   case-insensitively, as ARM does;
/// - a resource group is 1–90 letters, digits, `_`, `-`, `.`, `(` or `)`, not ending in `.`
///   (ARM also allows non-ASCII letters; steward does not);
/// - a VM name is 1–64 letters, digits, `_`, `-` or `.`, starting with a letter or digit
///   and not ending in `.` or `-`.
///
/// Anything else (a trailing `/`, an empty segment, `..`, `,`, a newline, a space) is
/// refused. The id keeps the casing it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmId(String);

/// Why a string is not a VM id of the tenant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VmIdError {
    /// Not of the shape `/subscriptions/…/resourceGroups/…/providers/Microsoft.Compute/virtualMachines/…`.
    #[error(
        "must be a virtual machine id: /subscriptions/{tenant}/resourceGroups/GROUP/providers/Microsoft.Compute/virtualMachines/NAME"
    )]
    Shape {
        /// The tenant the id must be in.
        tenant: String,
    },
    /// The subscription is not the policy's tenant.
    #[error("must name a virtual machine of this tenant: the subscription must be `{tenant}`")]
    OtherTenant {
        /// The tenant the id must be in.
        tenant: String,
    },
    /// The resource group breaks ARM's grammar.
    #[error(
        "the resource group must be 1-90 letters, digits, '_', '-', '.', '(' or ')', not ending in '.'"
    )]
    ResourceGroup,
    /// The VM name breaks ARM's grammar.
    #[error(
        "the virtual machine name must be 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit and not ending in '.' or '-'"
    )]
    Name,
}

/// Checks a resource group and a location named by an ARM path (each when given): 400
/// naming `resourceGroupName` or `location` when either is not a valid name.
pub fn check_placement(
    resource_group: Option<&str>,
    location: Option<&str>,
) -> Result<(), ValidationErrors> {
    let mut c = Collector::new();
    if resource_group.is_some_and(|g| !is_resource_group(g)) {
        c.push(
            "resourceGroupName",
            "must be 1-90 letters, digits, '_', '-', '.', '(' or ')', not ending in '.'",
        );
    }
    if location.is_some_and(|l| ResourceName::parse(l).is_err()) {
        c.push(
            "location",
            "must be letters, digits, '.', '_' or '-' (e.g. westeurope)",
        );
    }
    c.finish(())
}

/// Whether `s` is an ARM resource group name (ASCII subset).
pub(crate) fn is_resource_group(s: &str) -> bool {
    (1..=90).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.()".contains(&b))
        && !s.ends_with('.')
}

/// Whether `s` is an ARM virtual machine name.
fn is_vm_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && !s.ends_with(['.', '-'])
}

impl VmId {
    /// Parses `id` as the ARM id of a virtual machine in `tenant`.
    pub fn parse(id: &str, tenant: &TenantId) -> Result<VmId, VmIdError> {
        let shape = || VmIdError::Shape {
            tenant: tenant.to_string(),
        };
        let segs: Vec<&str> = id.split('/').collect();
        let ["", subs, sub, rgs, rg, providers, compute, vms, name] = segs.as_slice() else {
            return Err(shape());
        };
        let fixed = [
            (subs, "subscriptions"),
            (rgs, "resourceGroups"),
            (providers, "providers"),
            (compute, "Microsoft.Compute"),
            (vms, "virtualMachines"),
        ];
        if !fixed
            .iter()
            .all(|(got, want)| got.eq_ignore_ascii_case(want))
        {
            return Err(shape());
        }
        if !sub.eq_ignore_ascii_case(tenant.as_str()) {
            return Err(VmIdError::OtherTenant {
                tenant: tenant.to_string(),
            });
        }
        if !is_resource_group(rg) {
            return Err(VmIdError::ResourceGroup);
        }
        if !is_vm_name(name) {
            return Err(VmIdError::Name);
        }
        Ok(VmId(id.to_owned()))
    }

    /// The id as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as given, owned.
    pub fn into_string(self) -> String {
        self.0
    }

    /// The resource group segment.
    pub fn resource_group(&self) -> &str {
        self.0.split('/').nth(4).unwrap_or_default()
    }

    /// The VM name segment.
    pub fn name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or_default()
    }
}

impl std::fmt::Display for VmId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The resource group named in an ARM id (`…/resourceGroups/RG/…`), if any: read by
/// position, as [`crate::model::alert::placement_of`] reads it.
pub fn resource_group_of(id: &str) -> Option<&str> {
    crate::model::alert::placement_of(id).0
}
