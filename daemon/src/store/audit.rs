//! The audit log: what a job records ([`AuditEntry`]), the per-tenant SHA-256 hash chain over
//! the stored records (the library's [`AuditRecord`]), its verification, and the
//! installation's HMAC key.
//!
//! Audit records name fields, never personal values: the people an action concerns are given
//! as [`SubjectKey`]s and stored only as HMAC-SHA256 under the installation key, so the log can
//! answer "what touched alice@contoso.com" without holding the address. The same holds for
//! the resource id, whatever a caller passes ([`AuditEntry::resource`] is the one way in):
//! each `/`-separated segment that passes the resource-name grammar is kept as it is, any
//! other segment (`alice.pii@contoso.example`, `+1-555-867-5309`, a spool file
//! `jane.doe@contoso.example.json`) is stored as `hmac:<hex>` under the installation key —
//! and, when it reads as an email address or phone number, as that person's subject HMAC,
//! also listed in the record's subjects, so a data-subject search finds the record. (The
//! free-text `reason` is the caller's responsibility.) [`Chain`] appends and purges inside
//! the writer's transaction.

use hmac::{KeyInit, Mac};
use redb::ReadableTable;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use steward::model::{
    AuditCaller, AuditDetails, AuditRecord, AuditStatus, SubjectKey, SubjectKind,
};
use steward::names::ResourceName;
use steward::resource::Operation;

use super::codec::{self, CodecError};
use super::error::StoreError;
use super::tables;

/// The `prev_hash` of a tenant's first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The daemon itself as an audit caller (timers, retention, config reloads): its own
/// effective uid, user `stewardd`, profile `system`.
pub fn system_caller() -> AuditCaller {
    AuditCaller {
        uid: nix::unistd::geteuid().as_raw(),
        user: "stewardd".to_string(),
        profile: "system".to_string(),
    }
}

/// What a write job records; the store adds time, sequence, HMACs and hashes.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// Who.
    pub caller: AuditCaller,
    /// Operation name, e.g. `contacts.write`, `retention.purge`.
    pub operation_name: String,
    /// Outcome.
    pub status: AuditStatus,
    /// The request id the API answered with.
    pub correlation_id: String,
    /// The resource acted on (`contacts/default`), or empty; segments that are not
    /// resource names are only hashed when the record is stored (see [`ResourceId`]).
    resource: ResourceId,
    /// Names of the fields changed or read, never their values.
    pub fields: Vec<String>,
    /// People concerned; stored only as HMACs.
    pub subjects: Vec<SubjectKey>,
    /// Counts (records exported, purged per kind, ...) and why (a rejection reason, a
    /// denial's missing permission). No personal values.
    pub details: AuditDetails,
}

impl AuditEntry {
    /// An entry for `operation` with no resource, fields, subjects or counts.
    pub fn new(caller: AuditCaller, operation: Operation, status: AuditStatus) -> AuditEntry {
        AuditEntry::named(caller, operation.as_str(), status)
    }

    /// An entry whose operation is not one of [`Operation`]: a denied attempt, named by
    /// the permission it needed (`contacts.write`), and the end record of an export
    /// (`contacts.export.end`).
    pub fn named(
        caller: AuditCaller,
        operation: impl Into<String>,
        status: AuditStatus,
    ) -> AuditEntry {
        AuditEntry {
            caller,
            operation_name: operation.into(),
            status,
            correlation_id: String::new(),
            resource: ResourceId::default(),
            fields: Vec::new(),
            subjects: Vec::new(),
            details: AuditDetails::default(),
        }
    }

    /// Sets the resource id, e.g. `contacts/default` or `dsr/{id}` with `{id}` straight from
    /// a request path. A segment that is not a valid resource name is never stored in clear:
    /// it becomes `hmac:<hex>` (see the module doc); one that reads as an email address or
    /// phone number also names that person among the entry's subjects.
    pub fn resource(mut self, id: impl AsRef<str>) -> AuditEntry {
        let (resource, people) = ResourceId::parse(id.as_ref());
        self.resource = resource;
        self.subjects.extend(people);
        self
    }

    /// The resource id as it will be stored, with segments that are not resource names
    /// replaced by their HMAC under `key`.
    pub(crate) fn resource_id(&self, key: &HmacKey) -> String {
        self.resource.render(key)
    }

    /// Sets the correlation id.
    pub fn correlation(mut self, id: impl Into<String>) -> AuditEntry {
        self.correlation_id = id.into();
        self
    }

    /// Adds a field name.
    pub fn field(mut self, f: impl Into<String>) -> AuditEntry {
        self.fields.push(f.into());
        self
    }

    /// Adds a person concerned.
    pub fn subject(mut self, k: &SubjectKey) -> AuditEntry {
        self.subjects.push(k.clone());
        self
    }

    /// Adds `n` to a count.
    pub fn count(mut self, name: impl Into<String>, n: u64) -> AuditEntry {
        *self.details.counts.entry(name.into()).or_default() += n;
        self
    }

    /// Sets the reason.
    pub fn reason(mut self, r: impl Into<String>) -> AuditEntry {
        self.details.reason = Some(r.into());
        self
    }
}

/// A resource id split into segments, each either a valid resource name (kept in clear)
/// or something else, which is only ever stored as an HMAC. The raw text of the latter
/// lives in memory until the record is stored and is never shown by `Debug`.
#[derive(Clone, Default, PartialEq)]
pub(crate) struct ResourceId(Vec<Segment>);

/// One `/`-separated segment of a resource id.
#[derive(Clone, PartialEq)]
enum Segment {
    /// Passed the resource-name grammar `[A-Za-z0-9][A-Za-z0-9._-]{0,127}` (or is empty).
    Name(String),
    /// An email address or phone number: stored as that subject's HMAC.
    Person(SubjectKey),
    /// Anything else: stored as the HMAC of its text.
    Other(String),
}

/// The prefix of a hashed segment; `:` is outside the name grammar, so a hashed segment
/// can never be mistaken for a name.
pub const HASHED_SEGMENT_PREFIX: &str = "hmac:";

impl ResourceId {
    /// Splits `raw` and classifies each segment; returns the people named by segments.
    fn parse(raw: &str) -> (ResourceId, Vec<SubjectKey>) {
        let mut people = Vec::new();
        let segments = raw
            .split('/')
            .map(|seg| {
                if seg.is_empty() || ResourceName::parse(seg).is_ok() {
                    return Segment::Name(seg.to_owned());
                }
                let person = [SubjectKind::Email, SubjectKind::Phone]
                    .into_iter()
                    .find_map(|kind| SubjectKey::new(kind, seg, "resourceId"));
                match person {
                    Some(k) => {
                        people.push(k.clone());
                        Segment::Person(k)
                    }
                    None => Segment::Other(seg.to_owned()),
                }
            })
            .collect();
        (ResourceId(segments), people)
    }

    /// The stored text: names as they are, the rest as `hmac:<hex>`.
    fn render(&self, key: &HmacKey) -> String {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|seg| match seg {
                Segment::Name(n) => n.clone(),
                Segment::Person(k) => format!("{HASHED_SEGMENT_PREFIX}{}", key.subject(k)),
                Segment::Other(raw) => {
                    format!("{HASHED_SEGMENT_PREFIX}{}", key.segment(raw))
                }
            })
            .collect();
        parts.join("/")
    }
}

impl std::fmt::Debug for ResourceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<&str> = self
            .0
            .iter()
            .map(|seg| match seg {
                Segment::Name(n) => n.as_str(),
                Segment::Person(_) | Segment::Other(_) => "<hashed>",
            })
            .collect();
        write!(f, "{:?}", parts.join("/"))
    }
}

/// The hash a stored record should carry: SHA-256 over a domain tag, the tenant, and the
/// record's encoding with `hash` set empty (which includes `seq` and `prev_hash`).
pub(crate) fn compute_hash(rec: &AuditRecord, tenant: &str) -> Result<String, CodecError> {
    let mut unhashed = rec.clone();
    unhashed.hash = String::new();
    let bytes = codec::encode(&unhashed)?;
    let mut h = Sha256::new();
    h.update(b"steward.audit.v1\0");
    h.update(tenant.as_bytes());
    h.update(b"\0");
    h.update(&bytes);
    Ok(hex(&h.finalize()))
}

/// A point of the chain: a sequence number and the hash of the record there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainPoint {
    /// Sequence number.
    pub seq: u64,
    /// Hash (hex) of the record at `seq`.
    pub hash: String,
}

/// Stored per tenant in [`tables::AUDIT_HEAD`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct AuditHead {
    /// The last record appended.
    pub head: ChainPoint,
    /// The last record purged, if any: the remaining chain starts from its hash.
    pub anchor: Option<ChainPoint>,
}

/// The result of [`super::TenantReader::audit_verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Every remaining record links to the anchor and hashes correctly up to the head.
    pub ok: bool,
    /// Records checked.
    pub records: u64,
    /// The head `(seq, hash)`, if the tenant has any record; save it to prove later that
    /// nothing was cut off.
    pub head: Option<ChainPoint>,
    /// The last purged record, if records were purged.
    pub anchor: Option<ChainPoint>,
    /// The first record that does not verify (missing, undecodable, relinked or altered).
    pub first_bad_seq: Option<u64>,
}

/// Verifies one tenant's chain from its anchor to its head.
pub(crate) fn verify<A, H>(audit: &A, heads: &H, tenant: &str) -> Result<VerifyReport, StoreError>
where
    A: ReadableTable<(&'static str, u64), &'static [u8]>,
    H: ReadableTable<&'static str, &'static [u8]>,
{
    let head = read_head(heads, tenant)?;
    let (head_point, anchor) = match head {
        Some(h) => (Some(h.head), h.anchor),
        None => (None, None),
    };
    let mut walk = ChainWalk::new(tenant, anchor);
    for item in audit.range((tenant, 0u64)..=(tenant, u64::MAX))? {
        let (k, v) = item?;
        if !walk.step(k.value().1, v.value()) {
            break;
        }
    }
    Ok(walk.finish(head_point))
}

/// One tenant's chain checked record by record in sequence order, from its anchor: what
/// every backend's verification runs over the stored bytes, so a chain verifies the same
/// wherever it is kept.
pub(crate) struct ChainWalk<'t> {
    /// The tenant (part of every hash).
    tenant: &'t str,
    /// The last purged record, where the walk starts.
    anchor: Option<ChainPoint>,
    /// The sequence number the next record must have.
    expected_seq: u64,
    /// The hash the next record must link to.
    prev: String,
    /// Records that verified.
    records: u64,
    /// The first record that does not verify.
    bad: Option<u64>,
}

impl<'t> ChainWalk<'t> {
    /// A walk of `tenant`'s chain starting after `anchor` (from seq 1 without one).
    pub(crate) fn new(tenant: &'t str, anchor: Option<ChainPoint>) -> ChainWalk<'t> {
        ChainWalk {
            tenant,
            expected_seq: anchor.as_ref().map_or(1, |a| a.seq + 1),
            prev: anchor
                .as_ref()
                .map_or_else(|| GENESIS_HASH.to_string(), |a| a.hash.clone()),
            anchor,
            records: 0,
            bad: None,
        }
    }

    /// Checks the stored record `bytes` at `seq`; `false` when it does not verify (the walk
    /// is over).
    pub(crate) fn step(&mut self, seq: u64, bytes: &[u8]) -> bool {
        if seq != self.expected_seq {
            self.bad = Some(self.expected_seq.min(seq));
            return false;
        }
        match codec::decode::<AuditRecord>(bytes) {
            Ok(rec)
                if rec.seq == seq
                    && rec.prev_hash == self.prev
                    && compute_hash(&rec, self.tenant).is_ok_and(|h| h == rec.hash) =>
            {
                self.prev = rec.hash;
                self.records += 1;
                self.expected_seq += 1;
                true
            }
            _ => {
                self.bad = Some(seq);
                false
            }
        }
    }

    /// The report, once every record was stepped through: the walk must end exactly at
    /// `head`, with the head's hash.
    pub(crate) fn finish(self, head: Option<ChainPoint>) -> VerifyReport {
        let mut bad = self.bad;
        if bad.is_none() {
            let end_seq = self.expected_seq - 1;
            match &head {
                Some(h) if h.seq != end_seq => bad = Some(end_seq.min(h.seq) + 1),
                Some(h) if h.hash != self.prev => bad = Some(h.seq),
                None if self.records > 0 => bad = Some(1),
                _ => {}
            }
        }
        VerifyReport {
            ok: bad.is_none(),
            records: self.records,
            head,
            anchor: self.anchor,
            first_bad_seq: bad,
        }
    }
}

pub(crate) fn read_head<H>(heads: &H, tenant: &str) -> Result<Option<AuditHead>, StoreError>
where
    H: ReadableTable<&'static str, &'static [u8]>,
{
    match heads.get(tenant)? {
        Some(g) => codec::decode(g.value())
            .map(Some)
            .map_err(|e| StoreError::codec(format!("audit head of tenant {tenant:?}"), e)),
        None => Ok(None),
    }
}

/// The installation's secret for subject HMACs, keyed once at open. Debug never shows it.
#[derive(Clone)]
pub(crate) struct HmacKey(hmac::Hmac<Sha256>);

impl HmacKey {
    pub(crate) fn from_bytes(b: &[u8]) -> Result<HmacKey, StoreError> {
        <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(b)
            .map(HmacKey)
            .map_err(|_| StoreError::Corrupted("the installation HMAC key is unusable".into()))
    }

    /// HMAC-SHA256 of `data` under this key, hex.
    pub(crate) fn mac_hex(&self, data: &[u8]) -> String {
        let mut m = self.0.clone();
        m.update(data);
        hex(&m.finalize().into_bytes())
    }

    /// The HMAC naming a subject in audit records.
    pub(crate) fn subject(&self, key: &SubjectKey) -> String {
        self.mac_hex(key.index_key().as_bytes())
    }

    /// The HMAC naming a resource-id segment that is not a name nor a person (domain
    /// separated from subjects, whose index keys are `kind:value`).
    pub(crate) fn segment(&self, raw: &str) -> String {
        self.mac_hex(format!("segment:{raw}").as_bytes())
    }
}

impl std::fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HmacKey(..)")
    }
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The stored record for `entry` at `seq` after `prev_hash` in `tenant`'s chain, and its
/// stored bytes: the people it concerns as HMACs under `key` (each once, in the order
/// given), the resource id rendered, the hash computed. Every backend appends these bytes.
pub(crate) fn seal(
    tenant: &str,
    key: &HmacKey,
    at: jiff::Timestamp,
    entry: &AuditEntry,
    seq: u64,
    prev_hash: String,
) -> Result<(AuditRecord, Vec<u8>), StoreError> {
    let mut seen = std::collections::HashSet::new();
    let hmacs: Vec<String> = entry
        .subjects
        .iter()
        .map(|s| key.subject(s))
        .filter(|h| seen.insert(h.clone()))
        .collect();
    let mut rec = AuditRecord {
        seq,
        at,
        caller: entry.caller.clone(),
        operation_name: entry.operation_name.clone(),
        status: entry.status,
        correlation_id: entry.correlation_id.clone(),
        resource_id: entry.resource_id(key),
        fields: entry.fields.clone(),
        subjects: hmacs,
        details: entry.details.clone(),
        prev_hash,
        hash: String::new(),
    };
    rec.hash = compute_hash(&rec, tenant).map_err(|e| StoreError::codec("audit record", e))?;
    let bytes = codec::encode(&rec).map_err(|e| StoreError::codec("audit record", e))?;
    Ok((rec, bytes))
}

/// A tenant's audit chain inside one write transaction: the only code that appends to a
/// chain or purges its oldest records (`txn::apply` calls it for each job's entries, after
/// the job's changes, so a change and its record commit together).
pub(crate) struct Chain<'t> {
    /// `(tenant, seq)` → record.
    records: redb::Table<'t, (&'static str, u64), &'static [u8]>,
    /// `tenant` → head and anchor.
    heads: redb::Table<'t, &'static str, &'static [u8]>,
    /// `(tenant, subject HMAC, seq)`: what touched a person.
    subjects: redb::Table<'t, (&'static str, &'static str, u64), ()>,
}

impl<'t> Chain<'t> {
    /// Opens the audit tables of `wtx`.
    pub(crate) fn open(wtx: &'t redb::WriteTransaction) -> Result<Chain<'t>, StoreError> {
        Ok(Chain {
            records: wtx.open_table(tables::AUDIT)?,
            heads: wtx.open_table(tables::AUDIT_HEAD)?,
            subjects: wtx.open_table(tables::AUDIT_SUBJECTS)?,
        })
    }

    /// Appends `entry` to `tenant`'s chain at `at`: the next sequence number, the previous
    /// record's hash, the people it concerns as HMACs under `key` (each once, in the order
    /// given), then the new head (the anchor is kept).
    pub(crate) fn append(
        &mut self,
        tenant: &str,
        key: &HmacKey,
        at: jiff::Timestamp,
        entry: &AuditEntry,
    ) -> Result<(), StoreError> {
        let (seq, prev_hash, anchor) = match read_head(&self.heads, tenant)? {
            Some(h) => (h.head.seq + 1, h.head.hash, h.anchor),
            None => (1, GENESIS_HASH.to_string(), None),
        };
        let (rec, bytes) = seal(tenant, key, at, entry, seq, prev_hash)?;
        self.records.insert((tenant, seq), bytes.as_slice())?;
        for h in &rec.subjects {
            self.subjects.insert((tenant, h.as_str(), seq), ())?;
        }
        let head = AuditHead {
            head: ChainPoint {
                seq,
                hash: rec.hash,
            },
            anchor,
        };
        let bytes = codec::encode(&head).map_err(|e| StoreError::codec("audit head", e))?;
        self.heads.insert(tenant, bytes.as_slice())?;
        Ok(())
    }

    /// Removes `tenant`'s records `first_seq..=through.seq` and their subject entries, and
    /// makes `through` the chain's anchor, so `verify` still proves what remains.
    pub(crate) fn purge(
        &mut self,
        tenant: &str,
        first_seq: u64,
        through: &ChainPoint,
    ) -> Result<(), StoreError> {
        for seq in first_seq..=through.seq {
            let removed = self
                .records
                .remove((tenant, seq))?
                .map(|g| g.value().to_vec());
            // An undecodable record's index entries stay; lookups skip missing seqs.
            if let Some(Ok(rec)) = removed.map(|b| codec::decode::<AuditRecord>(&b)) {
                for h in &rec.subjects {
                    self.subjects.remove((tenant, h.as_str(), seq))?;
                }
            }
        }
        if let Some(mut head) = read_head(&self.heads, tenant)? {
            head.anchor = Some(through.clone());
            let bytes = codec::encode(&head).map_err(|e| StoreError::codec("audit head", e))?;
            self.heads.insert(tenant, bytes.as_slice())?;
        }
        Ok(())
    }
}
