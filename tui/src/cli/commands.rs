//! What each subcommand does: the request it sends and how its answer is printed.
//!
//! Every subcommand maps its arguments onto a few verbs over a [`Resource`] — list, get,
//! put, delete, an action on a record — that are written once here, with paths from
//! [`steward::client::paths`] (the TUI builds its requests from the same place). So
//! every list pages the same way, every delete asks the same way, and a new kind needs
//! no new code here beyond its line in [`run`].

use std::io::{BufRead, IsTerminal, Write};

use serde_json::{Value, json};
use steward::client::paths::{self, RecordAction, TenantPaths};
use steward::client::{Client, ClientError, Method, idempotency_header, if_match_header};
use steward::resource::Resource;

use super::args::{
    AlertListArgs, AlertsCommand, AuditCommand, AuditListArgs, CliCommand, ContactsCommand,
    DeleteArgs, DsrCommand, ExportArgs, ExportFormat, GlobalArgs, IngestArgs, JitCommand,
    JitRequestsCommand, ListArgs, PutArgs,
};
use super::error::CliError;
use super::export::{Written, stream_body};
use super::input;
use super::output::{self, Kind, OutputFormat};

/// Alerts per ingest request; with [`INGEST_BATCH_BYTES`] this keeps a batch well
/// below the daemon's default 16 MiB ingest body limit.
const INGEST_BATCH_ALERTS: usize = 1000;
/// Bytes of JSON per ingest request, about half the default ingest body limit.
const INGEST_BATCH_BYTES: usize = 8 << 20;

/// How long a command waits for the daemon's response head before giving up (exit 1);
/// streamed bodies (exports, bundles) are not limited by it.
const RESPONSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// What every command needs: the client, the tenant and the output format.
pub struct Context {
    /// The socket client (with `--as` applied).
    client: Client,
    /// The tenant from `--tenant`.
    tenant: String,
    /// The paths under that tenant.
    paths: TenantPaths,
    /// The output format from `-o` (table when not given).
    output: OutputFormat,
    /// `-o` as given, for `export`, which defaults differently.
    output_given: Option<OutputFormat>,
    /// The zone and width of tables.
    layout: output::TableLayout,
}

impl Context {
    /// A context from the global options; `STEWARD_TZ` naming no zone is a usage error.
    pub fn new(global: &GlobalArgs) -> Result<Self, CliError> {
        let socket = global
            .socket
            .clone()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(steward::client::default_socket_path);
        let role = global.role.clone().filter(|r| !r.is_empty());
        Ok(Self {
            client: Client::new(socket)
                .with_role(role)
                .with_timeout(Some(RESPONSE_TIMEOUT)),
            tenant: global.tenant.clone(),
            paths: paths::tenant(&global.tenant),
            output: global.output.unwrap_or(OutputFormat::Table),
            output_given: global.output,
            layout: output::TableLayout::from_env().map_err(|e| CliError::Usage(e.to_string()))?,
        })
    }

    /// Prints an answer to stdout in the chosen format.
    fn print(&self, kind: Kind, body: &Value) -> Result<(), CliError> {
        let mut out = std::io::stdout().lock();
        output::print(&mut out, self.output, kind, body, &self.layout)?;
        out.flush()?;
        Ok(())
    }

    /// A one-line status message for people: on stdout for tables, else nothing (a
    /// script asked for data, and an empty answer is its data).
    fn say(&self, message: &str) -> Result<(), CliError> {
        if self.output == OutputFormat::Table {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{message}")?;
        }
        Ok(())
    }

    /// `GET` a JSON answer and print it.
    async fn show(&self, path: &str, kind: Kind) -> Result<Value, CliError> {
        let body: Value = self.client.get_json(path).await?;
        self.print(kind, &body)?;
        Ok(body)
    }

    /// Sends a request with an optional JSON body and prints the JSON answer, or
    /// `done` (for tables) when the answer has no body.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        if_match: Option<&str>,
        kind: Kind,
        done: &str,
    ) -> Result<(), CliError> {
        let body = body.map(steward::client::Body::json).transpose()?;
        let mut headers = if_match_header(if_match);
        // One key per action: a creating POST is then never acted on twice.
        if method == Method::POST {
            headers.push(idempotency_header());
        }
        let response = self
            .client
            .request(method, path, body, &headers)
            .await?
            .error_for_status()
            .map_err(ClientError::from)?;
        if response.body.iter().all(u8::is_ascii_whitespace) {
            return self.say(done);
        }
        let answer: Value = response.json()?;
        self.print(kind, &answer)
    }

    /// Lists a kind: one page, or with `--all` every page by following `nextLink`.
    /// `-o json` prints the API's page as is (with its `nextLink`), or with `--all`
    /// one `{"value": […]}` of every record; `ndjson` prints records as pages arrive.
    async fn list(
        &self,
        resource: Resource,
        mut query: Vec<(&str, String)>,
        page: ListArgs,
    ) -> Result<(), CliError> {
        let kind = Kind::Records(resource);
        if let Some(limit) = page.limit {
            query.push(("limit", limit.to_string()));
        }
        let path = self.paths.list(resource, &query);
        let mut next = Some(path.clone());
        let mut all: Vec<Value> = Vec::new();
        let mut first: Option<Value> = None;
        while let Some(link) = next.take() {
            let mut body: Value = self.client.get_json(&link).await?;
            let more = body
                .get("nextLink")
                .and_then(Value::as_str)
                .map(str::to_owned);
            if !page.all {
                self.print(kind, &body)?;
                if more.is_some() && self.output == OutputFormat::Table {
                    eprintln!("(more records: use --all, or --limit N)");
                }
                return Ok(());
            }
            if self.output == OutputFormat::Ndjson {
                self.print(kind, &body)?;
            } else if let Some(items) = body.get_mut("value").and_then(Value::as_array_mut) {
                all.append(items);
            }
            if first.is_none() {
                first = Some(body);
            }
            if let Some(more) = more {
                let resolved = paths::resolve_next_link(&path, &more).ok_or_else(|| {
                    CliError::Failed(format!("cannot follow the daemon's nextLink: {more}"))
                })?;
                if resolved == link {
                    return Err(CliError::Failed(format!(
                        "the daemon's nextLink does not advance: {more}"
                    )));
                }
                next = Some(resolved);
            }
        }
        if self.output != OutputFormat::Ndjson {
            let mut body = first.unwrap_or_else(|| json!({}));
            if let Some(map) = body.as_object_mut() {
                map.remove("nextLink");
                map.insert("value".to_owned(), Value::Array(all));
            }
            self.print(kind, &body)?;
        }
        Ok(())
    }

    /// `GET` one record and print it.
    async fn get(&self, resource: Resource, id: &str) -> Result<(), CliError> {
        let kind = match resource {
            // A DSR's detail carries its report: shown as fields, not a one-line row.
            Resource::Dsr => Kind::Other,
            other => Kind::Records(other),
        };
        self.show(&self.paths.record(resource, id), kind)
            .await
            .map(drop)
    }

    /// `PUT` a record read from a file or stdin (create or replace).
    async fn put(&self, resource: Resource, args: &PutArgs) -> Result<(), CliError> {
        let (source, bytes) = input::read_source(args.file.as_deref())?;
        let record = input::parse_object(&source, &bytes)?;
        self.send(
            Method::PUT,
            &self.paths.record(resource, &args.name),
            Some(&record),
            args.if_match.as_deref(),
            Kind::Records(resource),
            &format!("saved {} {}", resource.singular(), args.name),
        )
        .await
    }

    /// Deletes after `--yes`, or after a "y" typed on the terminal.
    async fn delete(&self, resource: Resource, args: &DeleteArgs) -> Result<(), CliError> {
        let what = format!("{} {}", resource.singular(), args.name);
        if !args.yes && !confirm(&format!("delete {what} in tenant {}", self.tenant))? {
            return Err(CliError::Failed("not deleted".to_owned()));
        }
        self.send(
            Method::DELETE,
            &self.paths.record(resource, &args.name),
            None,
            args.if_match.as_deref(),
            Kind::Other,
            &format!("deleted {what}"),
        )
        .await
    }

    /// `POST` an action on one record, printing the answer as `answer` records.
    async fn act(
        &self,
        resource: Resource,
        id: &str,
        action: RecordAction,
        body: Option<&Value>,
        answer: Resource,
        done: &str,
    ) -> Result<(), CliError> {
        let path = self.paths.action(resource, id, action);
        self.send(Method::POST, &path, body, None, Kind::Records(answer), done)
            .await
    }
}

/// Asks "`action`? [y/N]" on the terminal; refuses (a usage error, exit 2) when stdin
/// is not one, since a script cannot answer.
fn confirm(action: &str) -> Result<bool, CliError> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(CliError::Usage(format!(
            "refusing to {action} without --yes (stdin is not a terminal to ask on)"
        )));
    }
    eprint!("{action}? [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

/// Runs one daemon subcommand. `completions`, `man`, `demo` and the TUI are handled
/// before this is called. Each kind's subcommands are one line per verb.
pub async fn run(ctx: &Context, command: CliCommand) -> Result<(), CliError> {
    use Resource as R;
    match command {
        CliCommand::Whoami => ctx.show(&paths::whoami(), Kind::Other).await.map(drop),
        CliCommand::Tenants => ctx.show(&paths::tenants(), Kind::Tenants).await.map(drop),
        CliCommand::Health => ctx.show(&paths::health(), Kind::Other).await.map(drop),
        CliCommand::Contacts(cmd) => match cmd {
            ContactsCommand::List(page) => ctx.list(R::Contacts, Vec::new(), page).await,
            ContactsCommand::Get(a) => ctx.get(R::Contacts, &a.name).await,
            ContactsCommand::Put(a) => ctx.put(R::Contacts, &a).await,
            ContactsCommand::Delete(a) => ctx.delete(R::Contacts, &a).await,
        },
        CliCommand::Jit(cmd) => match cmd {
            JitCommand::List(page) => ctx.list(R::JitPolicies, Vec::new(), page).await,
            JitCommand::Get(a) => ctx.get(R::JitPolicies, &a.name).await,
            JitCommand::Put(a) => ctx.put(R::JitPolicies, &a).await,
            JitCommand::Delete(a) => ctx.delete(R::JitPolicies, &a).await,
            JitCommand::Initiate(a) => {
                let (source, bytes) = input::read_source(a.file.as_deref())?;
                let body = input::parse_object(&source, &bytes)?;
                let (initiate, requests) = (RecordAction::Initiate, R::JitRequests);
                ctx.act(
                    R::JitPolicies,
                    &a.name,
                    initiate,
                    Some(&body),
                    requests,
                    "access requested",
                )
                .await
            }
        },
        CliCommand::JitRequests(cmd) => match cmd {
            JitRequestsCommand::List(page) => ctx.list(R::JitRequests, Vec::new(), page).await,
            JitRequestsCommand::Get(a) => ctx.get(R::JitRequests, &a.id).await,
            JitRequestsCommand::Revoke(a) => {
                let done = format!("revoked JIT request {}", a.id);
                let revoke = RecordAction::Revoke;
                ctx.act(R::JitRequests, &a.id, revoke, None, R::JitRequests, &done)
                    .await
            }
        },
        CliCommand::Alerts(cmd) => match cmd {
            AlertsCommand::List(a) => {
                let AlertListArgs {
                    severity,
                    status,
                    since,
                    until,
                    query,
                    page,
                } = a;
                let pairs = present([
                    ("severity", severity),
                    ("status", status),
                    ("since", since),
                    ("until", until),
                    ("q", query),
                ]);
                ctx.list(R::Alerts, pairs, page).await
            }
            AlertsCommand::Get(a) => ctx.get(R::Alerts, &a.name).await,
            AlertsCommand::Ingest(a) => ingest(ctx, &a).await,
        },
        CliCommand::Audit(cmd) => match cmd {
            AuditCommand::List(a) => {
                let AuditListArgs {
                    since,
                    action,
                    actor,
                    page,
                } = a;
                let pairs = present([("since", since), ("action", action), ("actor", actor)]);
                ctx.list(R::Audit, pairs, page).await
            }
            AuditCommand::Verify => verify(ctx).await,
        },
        CliCommand::Export(args) => export(ctx, &args).await,
        CliCommand::Dsr(cmd) => dsr(ctx, cmd).await,
        CliCommand::Subjects(args) => {
            let query: Vec<(&str, String)> = args
                .pairs()
                .into_iter()
                .map(|(k, v)| (k, v.to_owned()))
                .collect();
            let path = ctx.paths.subjects(&query);
            ctx.show(&path, Kind::Subjects).await.map(drop)
        }
        CliCommand::Completions(_)
        | CliCommand::Man
        | CliCommand::Keys(_)
        | CliCommand::Demo(_) => Err(CliError::Usage(
            "this command does not talk to the daemon".to_owned(),
        )),
    }
}

/// The query pairs whose value was given.
fn present<const N: usize>(
    pairs: [(&'static str, Option<String>); N],
) -> Vec<(&'static str, String)> {
    pairs
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect()
}

/// `alerts ingest FILE`: parse locally, send in batches, report the count.
async fn ingest(ctx: &Context, args: &IngestArgs) -> Result<(), CliError> {
    let (source, bytes) = input::read_source(Some(&args.file))?;
    let alerts = input::parse_alerts(&source, &bytes)?;
    let path = ctx.paths.list(Resource::Alerts, &[]);
    let mut answers = Vec::new();
    for batch in input::batches(&alerts, INGEST_BATCH_ALERTS, INGEST_BATCH_BYTES) {
        let body = steward::client::Body::json(batch)?;
        let response = ctx
            .client
            .request(Method::POST, &path, Some(body), &[idempotency_header()])
            .await?
            .error_for_status()
            .map_err(ClientError::from)?;
        if !response.body.iter().all(u8::is_ascii_whitespace) {
            answers.push(response.json::<Value>()?);
        }
    }
    match ctx.output {
        OutputFormat::Table => ctx.say(&format!(
            "ingested {} alerts into tenant {}",
            alerts.len(),
            ctx.tenant
        )),
        _ if answers.len() == 1 => ctx.print(Kind::Other, &answers[0]),
        _ => ctx.print(Kind::Other, &Value::Array(answers)),
    }
}

/// `audit verify`: exit 1 when the chain is broken.
async fn verify(ctx: &Context) -> Result<(), CliError> {
    let report = ctx.show(&ctx.paths.audit_verify(), Kind::Other).await?;
    if report.get("ok").and_then(Value::as_bool) == Some(true) {
        return Ok(());
    }
    let at = report
        .get("firstBadSeq")
        .map(|s| format!(" at seq {s}"))
        .unwrap_or_default();
    Err(CliError::Failed(format!(
        "the audit chain of tenant {} is broken{at}",
        ctx.tenant
    )))
}

/// `export KIND`: stream to `--out` or stdout.
async fn export(ctx: &Context, args: &ExportArgs) -> Result<(), CliError> {
    let format = match (args.format, ctx.output_given) {
        (Some(format), _) => format,
        (None, None) => ExportFormat::Json,
        (None, Some(OutputFormat::Json)) => ExportFormat::Json,
        (None, Some(OutputFormat::Ndjson)) => ExportFormat::Ndjson,
        (None, Some(OutputFormat::Csv)) => ExportFormat::Csv,
        (None, Some(OutputFormat::Table)) => {
            return Err(CliError::Usage(
                "an export is json, ndjson or csv, not a table".to_owned(),
            ));
        }
    };
    let path = ctx.paths.export(args.kind, format.as_str());
    let response = ctx
        .client
        .request_streaming(Method::GET, &path, None, &[])
        .await?
        .error_for_status()
        .await?;
    let written = stream_body(response, args.out.as_deref(), Some(format)).await?;
    report_written(&written, args.out.as_deref());
    Ok(())
}

/// `exported N records to FILE` on stderr (stdout may be carrying the data itself).
fn report_written(written: &Written, out: Option<&std::path::Path>) {
    let to = out.map_or_else(|| "stdout".to_owned(), |p| p.display().to_string());
    match written.records {
        Some(n) => eprintln!("exported {n} records to {to}"),
        None => eprintln!("wrote {} bytes to {to}", written.bytes),
    }
}

/// `dsr …`
async fn dsr(ctx: &Context, cmd: DsrCommand) -> Result<(), CliError> {
    let dsr = Resource::Dsr;
    match cmd {
        DsrCommand::Open(a) => {
            let subject: serde_json::Map<String, Value> = a
                .subject
                .pairs()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
                .collect();
            let body = json!({"type": a.kind.as_str(), "subject": subject});
            let path = ctx.paths.list(dsr, &[]);
            ctx.send(
                Method::POST,
                &path,
                Some(&body),
                None,
                Kind::Records(dsr),
                "request opened",
            )
            .await
        }
        DsrCommand::List(page) => ctx.list(dsr, Vec::new(), page).await,
        DsrCommand::Get(a) => ctx.get(dsr, &a.id).await,
        DsrCommand::Confirm(a) => {
            let done = format!("confirmed {}", a.id);
            ctx.act(dsr, &a.id, RecordAction::Confirm, None, dsr, &done)
                .await
        }
        DsrCommand::Reject(a) => {
            let body = json!({"reason": a.reason});
            let done = format!("rejected {}", a.id);
            ctx.act(dsr, &a.id, RecordAction::Reject, Some(&body), dsr, &done)
                .await
        }
        DsrCommand::Bundle(a) => {
            let path = ctx.paths.action(dsr, &a.id, RecordAction::Bundle);
            let response = ctx
                .client
                .request_streaming(Method::GET, &path, None, &[])
                .await?
                .error_for_status()
                .await?;
            let written = stream_body(response, a.out.as_deref(), None).await?;
            report_written(&written, a.out.as_deref());
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_context_builds_paths_in_its_tenant() {
        let ctx = Context::new(&GlobalArgs {
            socket: Some("/x".into()),
            tenant: "contoso".into(),
            role: None,
            output: None,
        })
        .unwrap();
        assert_eq!(
            ctx.paths.record(Resource::Contacts, "a/b"),
            "/v1/tenants/contoso/contacts/a%2Fb"
        );
        assert_eq!(
            present([("since", None), ("q", Some("x".to_owned()))]),
            vec![("q", "x".to_owned())]
        );
    }
}
