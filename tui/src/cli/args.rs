//! The command line, as clap derive definitions: global options and the subcommand tree.
//!
//! This is the single source of `--help`, the man page (`steward man`) and shell
//! completions (`steward completions SHELL`). Values are parsed and validated here
//! (tenant ids, times, limits) so that a bad argument is a usage error (exit 2) before
//! anything is sent. What each command does lives in [`super::commands`].

use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};

pub use steward_tui::export_file::ExportFormat;

use steward::resource::Resource;

use super::output::OutputFormat;

/// Text after `--help` (and in the man page): how the socket is found, output, exit codes.
const AFTER_HELP: &str = "\
The daemon's socket is --socket, else $STEWARD_SOCKET, else the daemon's default
($XDG_RUNTIME_DIR/steward/steward.sock, or /tmp/steward-$UID/steward.sock).

Output is a table by default (also when piped, like kubectl); use -o json for the API's
own JSON, -o ndjson for one record per line, -o csv for a spreadsheet.

Exit codes: 0 ok, 1 error, 2 usage, 3 forbidden, 4 not found, 5 conflict (409/412),
6 daemon unreachable.";

/// Security contacts, JIT access, alerts and their audit log, from the steward
/// daemon.
///
/// Run without a subcommand to open the terminal UI.
#[derive(Debug, Parser)]
#[command(name = "steward", version, after_help = AFTER_HELP, propagate_version = true)]
pub struct Cli {
    /// Options every subcommand takes.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do; none opens the terminal UI.
    #[command(subcommand)]
    pub command: Option<CliCommand>,
}

/// Options every subcommand takes (each also from the environment).
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// The daemon's socket [default: $XDG_RUNTIME_DIR/steward/steward.sock or
    /// /tmp/steward-$UID/steward.sock].
    ///
    /// An empty value (`STEWARD_SOCKET=`) means the default.
    #[arg(long, env = "STEWARD_SOCKET", global = true, value_name = "PATH",
          value_parser = parse_path)]
    pub socket: Option<PathBuf>,
    /// The tenant to work in.
    #[arg(long, env = "STEWARD_TENANT", global = true, default_value = "default",
          value_name = "TENANT", value_parser = parse_tenant)]
    pub tenant: String,
    /// Act under this lower role profile (reader, contributor, …) for least privilege.
    ///
    /// An empty value acts with everything you hold.
    #[arg(long = "as", env = "STEWARD_ROLE", global = true, value_name = "ROLE")]
    pub role: Option<String>,
    /// Output format [default: table].
    #[arg(short = 'o', long, global = true, value_enum, value_name = "FORMAT")]
    pub output: Option<OutputFormat>,
}

/// The subcommands, mirroring the socket API.
#[derive(Debug, Subcommand)]
pub enum CliCommand {
    /// Who the daemon sees you as (OS user) and your grants.
    Whoami,
    /// The tenants you hold a grant in, with your profiles and permissions there.
    Tenants,
    /// Whether the daemon is up.
    Health,
    /// Security contacts (who is told about alerts).
    #[command(subcommand)]
    Contacts(ContactsCommand),
    /// Just-in-time network access policies.
    #[command(subcommand)]
    Jit(JitCommand),
    /// Just-in-time access requests.
    #[command(subcommand, name = "jit-requests")]
    JitRequests(JitRequestsCommand),
    /// Security alerts (read-only; appended by sources).
    #[command(subcommand)]
    Alerts(AlertsCommand),
    /// The audit log of every change.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Export a whole kind as JSON, NDJSON or CSV, streamed to a file or stdout.
    Export(ExportArgs),
    /// Data-subject requests (GDPR export and erasure).
    #[command(subcommand)]
    Dsr(DsrCommand),
    /// Find every record that names a data subject.
    Subjects(SubjectArgs),
    /// Print shell completions to stdout.
    Completions(CompletionsArgs),
    /// Print the man page (roff) to stdout.
    Man,
    /// Print the terminal UI's keys (the defaults of its keymap, or `--markdown` for the
    /// README's table).
    Keys(KeysArgs),
    /// Start a private daemon with demo data and open the terminal UI on it.
    Demo(DemoArgs),
}

/// `steward contacts …`
#[derive(Debug, Subcommand)]
pub enum ContactsCommand {
    /// List security contacts.
    List(ListArgs),
    /// Show one security contact.
    Get(NameArgs),
    /// Create or replace a security contact from JSON (a file, or stdin).
    Put(PutArgs),
    /// Delete a security contact.
    Delete(DeleteArgs),
}

/// `steward jit …`
#[derive(Debug, Subcommand)]
pub enum JitCommand {
    /// List JIT network access policies.
    List(ListArgs),
    /// Show one JIT policy.
    Get(NameArgs),
    /// Create or replace a JIT policy from JSON (a file, or stdin).
    Put(PutArgs),
    /// Delete a JIT policy.
    Delete(DeleteArgs),
    /// Request access under a policy, from JSON (virtualMachines, ports, justification).
    Initiate(PutArgs),
}

/// `steward jit-requests …`
#[derive(Debug, Subcommand)]
pub enum JitRequestsCommand {
    /// List JIT access requests.
    List(ListArgs),
    /// Show one JIT access request.
    Get(IdArgs),
    /// End a JIT access request now.
    Revoke(IdArgs),
}

/// `steward alerts …`
#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// List alerts, newest first.
    List(AlertListArgs),
    /// Show one alert.
    Get(NameArgs),
    /// Append alerts from a file: one JSON alert, a JSON array, or NDJSON (needs alerts.ingest).
    Ingest(IngestArgs),
}

/// `steward audit …`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List audit records.
    List(AuditListArgs),
    /// Verify the audit hash chain (exit 1 when it is broken).
    Verify,
}

/// `steward dsr …`
#[derive(Debug, Subcommand)]
pub enum DsrCommand {
    /// Open a data-subject request (it waits for a confirmation).
    Open(DsrOpenArgs),
    /// List data-subject requests.
    List(ListArgs),
    /// Show one data-subject request, with its report.
    Get(IdArgs),
    /// Confirm a pending data-subject request, which starts it.
    Confirm(IdArgs),
    /// Reject a pending data-subject request.
    Reject(DsrRejectArgs),
    /// Download the bundle of a completed export request.
    Bundle(DsrBundleArgs),
}

/// Paging of a list.
#[derive(Debug, Clone, Copy, Args)]
pub struct ListArgs {
    /// Records per page (1–1000; the daemon's default is 100).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: Option<u32>,
    /// Follow nextLink until the last page (else only the first page is shown).
    #[arg(long)]
    pub all: bool,
}

/// A record named by its name.
#[derive(Debug, Clone, Args)]
pub struct NameArgs {
    /// The record's name.
    pub name: String,
}

/// A record named by its id.
#[derive(Debug, Clone, Args)]
pub struct IdArgs {
    /// The record's id.
    pub id: String,
}

/// A record to create or replace, and where its JSON comes from.
#[derive(Debug, Clone, Args)]
pub struct PutArgs {
    /// The record's name.
    pub name: String,
    /// A JSON file, or `-` (or nothing) for stdin.
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Only replace the record if its etag is still this (else exit 5).
    #[arg(long, value_name = "ETAG")]
    pub if_match: Option<String>,
}

/// A record to delete.
#[derive(Debug, Clone, Args)]
pub struct DeleteArgs {
    /// The record's name.
    pub name: String,
    /// Do not ask (required when stdin is not a terminal).
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// Only delete the record if its etag is still this (else exit 5).
    #[arg(long, value_name = "ETAG")]
    pub if_match: Option<String>,
}

/// `steward keys`.
#[derive(Debug, Clone, Args)]
pub struct KeysArgs {
    /// A Markdown table (what README's TUI section holds) instead of aligned text.
    #[arg(long)]
    pub markdown: bool,
}

/// Filters of `alerts list`.
#[derive(Debug, Clone, Args)]
pub struct AlertListArgs {
    /// Only this severity (High, Medium, Low, Informational; any case). Another word is a
    /// usage error naming these, never an empty table.
    #[arg(long, ignore_case = true,
          value_parser = clap::builder::PossibleValuesParser::new(steward::model::alert::SEVERITIES))]
    pub severity: Option<String>,
    /// Only this status (Active, InProgress, Resolved, Dismissed; any case).
    #[arg(long, ignore_case = true,
          value_parser = clap::builder::PossibleValuesParser::new(steward::model::alert::STATUSES))]
    pub status: Option<String>,
    /// Generated at or after: an RFC 3339 time, or a duration ago (`24h`, `90m`).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub since: Option<String>,
    /// Generated before: an RFC 3339 time, or a duration ago.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub until: Option<String>,
    /// Free-text search.
    #[arg(long, short = 'q', value_name = "TEXT")]
    pub query: Option<String>,
    /// Paging.
    #[command(flatten)]
    pub page: ListArgs,
}

/// Filters of `audit list`.
#[derive(Debug, Clone, Args)]
pub struct AuditListArgs {
    /// Records at or after: an RFC 3339 time, or a duration ago (`24h`).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub since: Option<String>,
    /// Only this operation.
    #[arg(long)]
    pub action: Option<String>,
    /// Only this OS user.
    #[arg(long)]
    pub actor: Option<String>,
    /// Paging.
    #[command(flatten)]
    pub page: ListArgs,
}

/// `alerts ingest FILE`
#[derive(Debug, Clone, Args)]
pub struct IngestArgs {
    /// One JSON alert, a JSON array of alerts, or NDJSON (one per line); `-` for stdin.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

/// `export KIND`
#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// What to export.
    #[arg(value_name = "KIND", value_parser = export_kind())]
    pub kind: Resource,
    /// The format [default: -o when it is json, ndjson or csv, else json].
    #[arg(long, value_enum)]
    pub format: Option<ExportFormat>,
    /// Write to this file (created 0600, replaced only when the export completes)
    /// instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// One or more identifiers of one person.
#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("subject").required(true).multiple(true)
    .args(["email", "phone", "ip", "user", "host"])))]
pub struct SubjectArgs {
    /// An email address.
    #[arg(long)]
    pub email: Option<String>,
    /// A phone number, as people write it.
    #[arg(long)]
    pub phone: Option<String>,
    /// An IP address.
    #[arg(long)]
    pub ip: Option<String>,
    /// An account name.
    #[arg(long)]
    pub user: Option<String>,
    /// A host name.
    #[arg(long)]
    pub host: Option<String>,
}

impl SubjectArgs {
    /// The identifiers given, as `(key, value)` pairs in a fixed order.
    pub fn pairs(&self) -> Vec<(&'static str, &str)> {
        [
            ("email", &self.email),
            ("phone", &self.phone),
            ("ip", &self.ip),
            ("user", &self.user),
            ("host", &self.host),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
        .collect()
    }
}

/// The two kinds of data-subject request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DsrType {
    /// Everything that names the subject, as a bundle.
    Export,
    /// Remove what may be erased; report what is retained and why.
    Erase,
}

impl DsrType {
    /// The value of `type` in the request body.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Export => "export",
            Self::Erase => "erase",
        }
    }
}

/// `dsr open`
#[derive(Debug, Clone, Args)]
pub struct DsrOpenArgs {
    /// Export or erase.
    #[arg(long = "type", value_enum)]
    pub kind: DsrType,
    /// Who the request is about.
    #[command(flatten)]
    pub subject: SubjectArgs,
}

/// `dsr reject ID --reason R`
#[derive(Debug, Clone, Args)]
pub struct DsrRejectArgs {
    /// The request's id.
    pub id: String,
    /// Why it is rejected (recorded).
    #[arg(long)]
    pub reason: String,
}

/// `dsr bundle ID [--out FILE]`
#[derive(Debug, Clone, Args)]
pub struct DsrBundleArgs {
    /// The request's id.
    pub id: String,
    /// Write to this file (created 0600) instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// `completions SHELL`
#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    pub shell: clap_complete::Shell,
}

/// `demo`: options of the demo (its daemon and data come with the demo itself).
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Keep the demo's temp dir (data and socket) after quitting, and print where it is.
    #[arg(long)]
    pub keep: bool,
}

/// The kinds `export` can stream, from [`Resource::exportable`], each with the
/// permission it needs in its help.
fn export_kind() -> impl clap::builder::TypedValueParser<Value = Resource> {
    let values = Resource::exportable().map(|r| {
        let needs = r
            .export_permission()
            .map(|p| format!(" (needs {p})"))
            .unwrap_or_default();
        clap::builder::PossibleValue::new(r.segment()).help(format!("{}{needs}", r.title()))
    });
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(values).try_map(|segment: String| {
        Resource::from_segment(&segment).ok_or_else(|| format!("no kind `{segment}`"))
    })
}

/// A path, possibly empty (an exported but empty environment variable).
fn parse_path(raw: &str) -> Result<PathBuf, String> {
    Ok(PathBuf::from(raw))
}

/// Tenant ids are `[a-z0-9][a-z0-9-]{0,62}` (DESIGN.md); anything else is a usage error.
fn parse_tenant(raw: &str) -> Result<String, String> {
    let mut chars = raw.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if first_ok && rest_ok && raw.len() <= 63 {
        Ok(raw.to_owned())
    } else {
        Err("a tenant id is 1–63 of a-z, 0-9 and '-', not starting with '-'".to_owned())
    }
}

/// A time filter: an RFC 3339 timestamp, or a duration before now (`24h`, `90m`,
/// `PT2H`), sent to the daemon as an RFC 3339 timestamp.
fn parse_time(raw: &str) -> Result<String, String> {
    if let Ok(ts) = raw.parse::<jiff::Timestamp>() {
        return Ok(ts.to_string());
    }
    if let Ok(ago) = raw.parse::<jiff::SignedDuration>() {
        return jiff::Timestamp::now()
            .checked_sub(ago)
            .map(|ts| ts.to_string())
            .map_err(|e| e.to_string());
    }
    if let Ok(span) = raw.parse::<jiff::Span>() {
        let ago = span
            .to_duration(jiff::SpanRelativeTo::days_are_24_hours())
            .map_err(|e| e.to_string())?;
        return jiff::Timestamp::now()
            .checked_sub(ago)
            .map(|ts| ts.to_string())
            .map_err(|e| e.to_string());
    }
    Err("expected an RFC 3339 time (2024-05-01T00:00:00Z) or a duration ago (24h, 7d)".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn tenant_ids_are_validated() {
        assert!(parse_tenant("contoso").is_ok());
        assert!(parse_tenant("a-1").is_ok());
        assert!(parse_tenant("-a").is_err());
        assert!(parse_tenant("Contoso").is_err());
        assert!(parse_tenant("").is_err());
        assert!(parse_tenant(&"a".repeat(64)).is_err());
        assert!(parse_tenant("a/b").is_err());
    }

    #[test]
    fn times_accept_rfc3339_and_durations_ago() {
        assert_eq!(
            parse_time("2024-05-01T02:00:00+02:00").unwrap(),
            "2024-05-01T00:00:00Z"
        );
        let day_ago: jiff::Timestamp = parse_time("1d").unwrap().parse().unwrap();
        let hours_ago: jiff::Timestamp = parse_time("24h").unwrap().parse().unwrap();
        assert!((day_ago - hours_ago).get_seconds().abs() < 5);
        assert!(parse_time("yesterday-ish").is_err());
    }

    #[test]
    fn export_accepts_the_global_output_flag_after_the_kind() {
        let cli = Cli::try_parse_from(["steward", "export", "contacts", "-o", "csv", "--out", "x"])
            .unwrap();
        assert_eq!(cli.global.output, Some(OutputFormat::Csv));
        assert!(matches!(
            cli.command,
            Some(CliCommand::Export(ExportArgs { format: None, .. }))
        ));
    }

    #[test]
    fn subjects_need_at_least_one_identifier() {
        assert!(Cli::try_parse_from(["steward", "subjects"]).is_err());
        let cli =
            Cli::try_parse_from(["steward", "subjects", "--email", "a@b.c", "--ip", "1.2.3.4"])
                .unwrap();
        let Some(CliCommand::Subjects(s)) = cli.command else {
            panic!("not subjects")
        };
        assert_eq!(s.pairs(), vec![("email", "a@b.c"), ("ip", "1.2.3.4")]);
    }
}
