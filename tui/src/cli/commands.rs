//! What each subcommand does: the request it sends and how its answer is printed.
//!
//! One function per resource group, each a thin mapping from arguments to an API path
//! (DESIGN.md "The socket API"); paging, confirmation and printing are shared helpers
//! here so every list pages the same way and every delete asks the same way.

use std::io::{BufRead, IsTerminal, Write};

use serde_json::{Value, json};
use steward::client::{Client, ClientError, Method, Uri, idempotency_header, if_match_header};

use super::args::{
    AlertListArgs, AlertsCommand, AuditCommand, AuditListArgs, Command, ContactsCommand,
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

/// Characters escaped in a path segment: everything but RFC 3986 unreserved ones.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// What every command needs: the client, the tenant and the output format.
pub struct Context {
    /// The socket client (with `--as` applied).
    client: Client,
    /// The tenant from `--tenant`.
    tenant: String,
    /// The output format from `-o` (table when not given).
    output: OutputFormat,
    /// `-o` as given, for `export`, which defaults differently.
    output_given: Option<OutputFormat>,
}

impl Context {
    /// A context from the global options.
    pub fn new(global: &GlobalArgs) -> Self {
        let socket = global
            .socket
            .clone()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(steward::client::default_socket_path);
        let role = global.role.clone().filter(|r| !r.is_empty());
        Self {
            client: Client::new(socket)
                .with_role(role)
                .with_timeout(Some(RESPONSE_TIMEOUT)),
            tenant: global.tenant.clone(),
            output: global.output.unwrap_or(OutputFormat::Table),
            output_given: global.output,
        }
    }

    /// `/v1/tenants/{tenant}/{segments…}`, each segment percent-encoded.
    fn tenant_path(&self, segments: &[&str]) -> String {
        let mut path = format!("/v1/tenants/{}", encode(&self.tenant));
        for segment in segments {
            path.push('/');
            path.push_str(&encode(segment));
        }
        path
    }

    /// Prints an answer to stdout in the chosen format.
    fn print(&self, kind: Kind, body: &Value) -> Result<(), CliError> {
        let mut out = std::io::stdout().lock();
        output::print(&mut out, self.output, kind, body)?;
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
        path: &str,
        mut query: Vec<(&str, String)>,
        page: ListArgs,
        kind: Kind,
    ) -> Result<(), CliError> {
        if let Some(limit) = page.limit {
            query.push(("limit", limit.to_string()));
        }
        let mut next = Some(with_query(path, &query));
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
                let resolved = resolve_next_link(path, &more)?;
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

    /// `PUT` (or `POST` for initiate) a JSON record read from a file or stdin.
    async fn put(
        &self,
        method: Method,
        path: &str,
        args: &PutArgs,
        kind: Kind,
        done: &str,
    ) -> Result<(), CliError> {
        let (source, bytes) = input::read_source(args.file.as_deref())?;
        let record = input::parse_object(&source, &bytes)?;
        self.send(
            method,
            path,
            Some(&record),
            args.if_match.as_deref(),
            kind,
            done,
        )
        .await
    }

    /// Deletes after `--yes`, or after a "y" typed on the terminal.
    async fn delete(&self, path: &str, what: &str, args: &DeleteArgs) -> Result<(), CliError> {
        if !args.yes && !confirm(&format!("delete {what} in tenant {}", self.tenant))? {
            return Err(CliError::Failed("not deleted".to_owned()));
        }
        self.send(
            Method::DELETE,
            path,
            None,
            args.if_match.as_deref(),
            Kind::Other,
            &format!("deleted {what}"),
        )
        .await
    }
}

/// Percent-encodes one path segment.
fn encode(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, SEGMENT).to_string()
}

/// `path?k=v&…` with the pairs form-encoded (nothing appended when there are none).
fn with_query(path: &str, pairs: &[(&str, String)]) -> String {
    if pairs.is_empty() {
        return path.to_owned();
    }
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        query.append_pair(k, v);
    }
    format!("{path}?{}", query.finish())
}

/// The request target of a `nextLink`: a path (`/v1/…?cursor=…`) as is, an absolute
/// URL by its path and query, a bare query (`?cursor=…`) on the list's own path.
fn resolve_next_link(path: &str, link: &str) -> Result<String, CliError> {
    if link.starts_with('/') {
        return Ok(link.to_owned());
    }
    if link.starts_with('?') {
        return Ok(format!("{path}{link}"));
    }
    link.parse::<Uri>()
        .ok()
        .and_then(|uri| uri.path_and_query().map(|pq| pq.as_str().to_owned()))
        .filter(|pq| pq.starts_with('/'))
        .ok_or_else(|| CliError::Failed(format!("cannot follow the daemon's nextLink: {link}")))
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
/// before this is called.
pub async fn run(ctx: &Context, command: Command) -> Result<(), CliError> {
    match command {
        Command::Whoami => ctx.show("/v1/whoami", Kind::Other).await.map(drop),
        Command::Tenants => ctx.show("/v1/tenants", Kind::Tenants).await.map(drop),
        Command::Health => ctx.show("/v1/health", Kind::Other).await.map(drop),
        Command::Contacts(cmd) => contacts(ctx, cmd).await,
        Command::Jit(cmd) => jit(ctx, cmd).await,
        Command::JitRequests(cmd) => jit_requests(ctx, cmd).await,
        Command::Alerts(cmd) => alerts(ctx, cmd).await,
        Command::Audit(cmd) => audit(ctx, cmd).await,
        Command::Export(args) => export(ctx, &args).await,
        Command::Dsr(cmd) => dsr(ctx, cmd).await,
        Command::Subjects(args) => {
            let query: Vec<(&str, String)> = args
                .pairs()
                .into_iter()
                .map(|(k, v)| (k, v.to_owned()))
                .collect();
            let path = with_query(&ctx.tenant_path(&["subjects"]), &query);
            ctx.show(&path, Kind::Other).await.map(drop)
        }
        Command::Completions(_) | Command::Man | Command::Demo(_) => Err(CliError::Usage(
            "this command does not talk to the daemon".to_owned(),
        )),
    }
}

/// `contacts …`
async fn contacts(ctx: &Context, cmd: ContactsCommand) -> Result<(), CliError> {
    let kind = Kind::Contacts;
    match cmd {
        ContactsCommand::List(page) => {
            ctx.list(&ctx.tenant_path(&["contacts"]), Vec::new(), page, kind)
                .await
        }
        ContactsCommand::Get(a) => ctx
            .show(&ctx.tenant_path(&["contacts", &a.name]), kind)
            .await
            .map(drop),
        ContactsCommand::Put(a) => {
            let path = ctx.tenant_path(&["contacts", &a.name]);
            ctx.put(
                Method::PUT,
                &path,
                &a,
                kind,
                &format!("saved contact {}", a.name),
            )
            .await
        }
        ContactsCommand::Delete(a) => {
            let path = ctx.tenant_path(&["contacts", &a.name]);
            ctx.delete(&path, &format!("contact {}", a.name), &a).await
        }
    }
}

/// `jit …`
async fn jit(ctx: &Context, cmd: JitCommand) -> Result<(), CliError> {
    let kind = Kind::JitPolicies;
    match cmd {
        JitCommand::List(page) => {
            ctx.list(&ctx.tenant_path(&["jit-policies"]), Vec::new(), page, kind)
                .await
        }
        JitCommand::Get(a) => ctx
            .show(&ctx.tenant_path(&["jit-policies", &a.name]), kind)
            .await
            .map(drop),
        JitCommand::Put(a) => {
            let path = ctx.tenant_path(&["jit-policies", &a.name]);
            ctx.put(
                Method::PUT,
                &path,
                &a,
                kind,
                &format!("saved JIT policy {}", a.name),
            )
            .await
        }
        JitCommand::Delete(a) => {
            let path = ctx.tenant_path(&["jit-policies", &a.name]);
            ctx.delete(&path, &format!("JIT policy {}", a.name), &a)
                .await
        }
        JitCommand::Initiate(a) => {
            let path = ctx.tenant_path(&["jit-policies", &a.name, "initiate"]);
            ctx.put(
                Method::POST,
                &path,
                &a,
                Kind::JitRequests,
                "access requested",
            )
            .await
        }
    }
}

/// `jit-requests …`
async fn jit_requests(ctx: &Context, cmd: JitRequestsCommand) -> Result<(), CliError> {
    let kind = Kind::JitRequests;
    match cmd {
        JitRequestsCommand::List(page) => {
            ctx.list(&ctx.tenant_path(&["jit-requests"]), Vec::new(), page, kind)
                .await
        }
        JitRequestsCommand::Get(a) => ctx
            .show(&ctx.tenant_path(&["jit-requests", &a.id]), kind)
            .await
            .map(drop),
        JitRequestsCommand::Revoke(a) => {
            let path = ctx.tenant_path(&["jit-requests", &a.id, "revoke"]);
            ctx.send(
                Method::POST,
                &path,
                None,
                None,
                kind,
                &format!("revoked JIT request {}", a.id),
            )
            .await
        }
    }
}

/// `alerts …`
async fn alerts(ctx: &Context, cmd: AlertsCommand) -> Result<(), CliError> {
    let kind = Kind::Alerts;
    match cmd {
        AlertsCommand::List(a) => {
            let AlertListArgs {
                severity,
                status,
                since,
                until,
                query,
                page,
            } = a;
            let pairs: Vec<(&str, String)> = [
                ("severity", severity),
                ("status", status),
                ("since", since),
                ("until", until),
                ("q", query),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect();
            ctx.list(&ctx.tenant_path(&["alerts"]), pairs, page, kind)
                .await
        }
        AlertsCommand::Get(a) => ctx
            .show(&ctx.tenant_path(&["alerts", &a.name]), kind)
            .await
            .map(drop),
        AlertsCommand::Ingest(a) => ingest(ctx, &a).await,
    }
}

/// `alerts ingest FILE`: parse locally, send in batches, report the count.
async fn ingest(ctx: &Context, args: &IngestArgs) -> Result<(), CliError> {
    let (source, bytes) = input::read_source(Some(&args.file))?;
    let alerts = input::parse_alerts(&source, &bytes)?;
    let path = ctx.tenant_path(&["alerts"]);
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

/// `audit …`
async fn audit(ctx: &Context, cmd: AuditCommand) -> Result<(), CliError> {
    match cmd {
        AuditCommand::List(a) => {
            let AuditListArgs {
                since,
                action,
                actor,
                page,
            } = a;
            let pairs: Vec<(&str, String)> =
                [("since", since), ("action", action), ("actor", actor)]
                    .into_iter()
                    .filter_map(|(k, v)| v.map(|v| (k, v)))
                    .collect();
            ctx.list(&ctx.tenant_path(&["audit"]), pairs, page, Kind::Audit)
                .await
        }
        AuditCommand::Verify => {
            let report = ctx
                .show(&ctx.tenant_path(&["audit", "verify"]), Kind::Other)
                .await?;
            if report.get("ok").and_then(Value::as_bool) == Some(true) {
                Ok(())
            } else {
                let at = report
                    .get("firstBadSeq")
                    .map(|s| format!(" at seq {s}"))
                    .unwrap_or_default();
                Err(CliError::Failed(format!(
                    "the audit chain of tenant {} is broken{at}",
                    ctx.tenant
                )))
            }
        }
    }
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
    let path = with_query(
        &ctx.tenant_path(&["export", args.kind.path_segment()]),
        &[("format", format.as_str().to_owned())],
    );
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
    let kind = Kind::Dsr;
    match cmd {
        DsrCommand::Open(a) => {
            let subject: serde_json::Map<String, Value> = a
                .subject
                .pairs()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
                .collect();
            let body = json!({"type": a.kind.as_str(), "subject": subject});
            ctx.send(
                Method::POST,
                &ctx.tenant_path(&["dsr"]),
                Some(&body),
                None,
                kind,
                "request opened",
            )
            .await
        }
        DsrCommand::List(page) => {
            ctx.list(&ctx.tenant_path(&["dsr"]), Vec::new(), page, kind)
                .await
        }
        DsrCommand::Get(a) => ctx
            .show(&ctx.tenant_path(&["dsr", &a.id]), Kind::Other)
            .await
            .map(drop),
        DsrCommand::Confirm(a) => {
            let path = ctx.tenant_path(&["dsr", &a.id, "confirm"]);
            ctx.send(
                Method::POST,
                &path,
                None,
                None,
                kind,
                &format!("confirmed {}", a.id),
            )
            .await
        }
        DsrCommand::Reject(a) => {
            let path = ctx.tenant_path(&["dsr", &a.id, "reject"]);
            let body = json!({"reason": a.reason});
            ctx.send(
                Method::POST,
                &path,
                Some(&body),
                None,
                kind,
                &format!("rejected {}", a.id),
            )
            .await
        }
        DsrCommand::Bundle(a) => {
            let path = ctx.tenant_path(&["dsr", &a.id, "bundle"]);
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
    fn paths_encode_their_segments() {
        let ctx = Context::new(&GlobalArgs {
            socket: Some("/x".into()),
            tenant: "contoso".into(),
            role: None,
            output: None,
        });
        assert_eq!(
            ctx.tenant_path(&["contacts", "default"]),
            "/v1/tenants/contoso/contacts/default"
        );
        assert_eq!(
            ctx.tenant_path(&["alerts", "a/b?c d"]),
            "/v1/tenants/contoso/alerts/a%2Fb%3Fc%20d"
        );
        assert_eq!(
            ctx.tenant_path(&["alerts", "x_y-z.1~"]),
            "/v1/tenants/contoso/alerts/x_y-z.1~"
        );
    }

    #[test]
    fn queries_are_form_encoded() {
        assert_eq!(with_query("/p", &[]), "/p");
        assert_eq!(
            with_query(
                "/p",
                &[
                    ("since", "2024-05-01T00:00:00+02:00".into()),
                    ("q", "a b&c".into())
                ]
            ),
            "/p?since=2024-05-01T00%3A00%3A00%2B02%3A00&q=a+b%26c"
        );
    }

    #[test]
    fn next_links_resolve_to_request_targets() {
        let p = "/v1/tenants/t/alerts";
        assert_eq!(
            resolve_next_link(p, "/v1/tenants/t/alerts?cursor=x").unwrap(),
            "/v1/tenants/t/alerts?cursor=x"
        );
        assert_eq!(
            resolve_next_link(p, "?cursor=x").unwrap(),
            "/v1/tenants/t/alerts?cursor=x"
        );
        assert_eq!(
            resolve_next_link(p, "http://localhost/v1/tenants/t/alerts?cursor=x&limit=5").unwrap(),
            "/v1/tenants/t/alerts?cursor=x&limit=5"
        );
        assert!(resolve_next_link(p, "cursor").is_err());
    }
}
