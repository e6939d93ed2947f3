//! The backend task: owns the socket client, turns each [`Cmd`] into requests on its own
//! task, and answers with [`Msg`]s over a channel, so the UI never waits on the network.
//!
//! It also follows `/v1/events` for the current tenant and reports the connection state,
//! reconnecting with backoff (1 s doubling to 10 s) when the daemon goes away — a
//! restart shows in the header as "reconnecting in Ns" and ends with a refresh.
//! What it is not: a cache. The UI keeps its own window of records.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use steward::client::{
    Body, Client, ClientError, Method, StatusCode, header, idempotency_header, if_match_header,
};
use steward::wire::{ErrorBody, ErrorDetail, Event, List, TenantInfo, WhoAmI};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::task::JoinHandle;

use super::export::count_records;
use super::msg::{Cmd, Failure, Msg, RecordPurpose};
use super::state::Conn;

/// Starts the backend on the current tokio runtime; returns where to send commands.
pub fn spawn(
    socket: PathBuf,
    role: Option<String>,
    out: UnboundedSender<Msg>,
) -> UnboundedSender<Cmd> {
    let (tx, rx) = unbounded_channel();
    tokio::spawn(run(
        Client::new(socket.clone()).with_role(role),
        socket,
        rx,
        out,
    ));
    tx
}

async fn run(
    mut client: Client,
    socket: PathBuf,
    mut rx: UnboundedReceiver<Cmd>,
    out: UnboundedSender<Msg>,
) {
    let mut events: JoinHandle<()> = tokio::spawn(follow_events(client.clone(), None, out.clone()));
    while let Some(cmd) = rx.recv().await {
        match cmd {
            Cmd::SetSession { tenant, role } => {
                client = Client::new(socket.clone()).with_role(role);
                events.abort();
                events = tokio::spawn(follow_events(client.clone(), tenant, out.clone()));
            }
            other => {
                let c = client.clone();
                let o = out.clone();
                tokio::spawn(async move {
                    if let Some(m) = handle(&c, other, &o).await {
                        let _ = o.send(m);
                    }
                });
            }
        }
    }
    events.abort();
}

fn failure(status: StatusCode, body: &[u8]) -> Failure {
    let error = serde_json::from_slice::<ErrorBody>(body)
        .map(|b| b.error)
        .unwrap_or_else(|_| ErrorDetail {
            code: status.canonical_reason().unwrap_or("error").to_owned(),
            message: {
                let t = String::from_utf8_lossy(body).trim().to_owned();
                if t.is_empty() || t.len() > 300 {
                    status.canonical_reason().unwrap_or("error").to_lowercase()
                } else {
                    t
                }
            },
            target: None,
            details: Vec::new(),
        });
    Failure {
        status: Some(status.as_u16()),
        error,
    }
}

fn net_failure(e: ClientError) -> Failure {
    Failure::transport(e.to_string())
}

/// A `nextLink` as a path (an absolute URL keeps only its path and query).
fn as_path(link: &str) -> String {
    match link.find("://") {
        Some(i) => {
            let rest = &link[i + 3..];
            rest.find('/')
                .map_or("/".to_owned(), |j| rest[j..].to_owned())
        }
        None => link.to_owned(),
    }
}

async fn get_json<T: serde::de::DeserializeOwned>(c: &Client, path: &str) -> Result<T, Failure> {
    let r = c
        .request(Method::GET, path, None, &[])
        .await
        .map_err(net_failure)?;
    if !r.status.is_success() {
        return Err(failure(r.status, &r.body));
    }
    serde_json::from_slice(&r.body).map_err(|e| Failure {
        status: Some(r.status.as_u16()),
        error: ErrorDetail {
            code: "Decode".into(),
            message: format!("unexpected answer from the daemon: {e}"),
            target: None,
            details: Vec::new(),
        },
    })
}

async fn handle(c: &Client, cmd: Cmd, out: &UnboundedSender<Msg>) -> Option<Msg> {
    match cmd {
        Cmd::SetSession { .. } => None,
        Cmd::LoadSession => {
            let who: Result<WhoAmI, _> = get_json(c, "/v1/whoami").await;
            let tenants: Result<List<TenantInfo>, _> = get_json(c, "/v1/tenants").await;
            Some(Msg::Session(
                tenants.map(|t| (who.map(|w| w.user).unwrap_or_default(), t.value)),
            ))
        }
        Cmd::Pages {
            generation,
            start_index,
            link,
            count,
            to_end,
            keep,
        } => {
            let mut links = Vec::new();
            let mut pages: VecDeque<Vec<Value>> = VecDeque::new();
            let mut cur = Some(as_path(&link));
            while let Some(l) = cur.take() {
                let page: List<Value> = match get_json(c, &l).await {
                    Ok(p) => p,
                    Err(failure) => {
                        return Some(Msg::PagesFailed {
                            generation,
                            failure,
                        });
                    }
                };
                links.push(l);
                pages.push_back(page.value);
                while pages.len() > keep.max(1) {
                    pages.pop_front();
                }
                cur = page.next_link.as_deref().map(as_path);
                if !to_end && links.len() >= count {
                    break;
                }
            }
            Some(Msg::Pages {
                generation,
                start_index,
                links,
                pages: pages.into(),
                next: cur,
            })
        }
        Cmd::Record { purpose, path } => {
            let result = get_json::<Value>(c, &path).await;
            let RecordPurpose::Conflict { .. } = &purpose;
            Some(Msg::Record { purpose, result })
        }
        Cmd::Write {
            op,
            method,
            path,
            body,
            etag,
        } => {
            let body = body.map(|b| Body::json_bytes(serde_json::to_vec(&b).unwrap_or_default()));
            let mut headers = if_match_header(etag.as_deref());
            // One key per action: a creating POST is then never acted on twice.
            if method == http::Method::POST {
                headers.push(idempotency_header());
            }
            let result = match c.request(method, &path, body, &headers).await {
                Ok(r) if r.status.is_success() => Ok(()),
                Ok(r) => Err(failure(r.status, &r.body)),
                Err(e) => Err(net_failure(e)),
            };
            Some(Msg::Written { op, result })
        }
        Cmd::Export { path, file, format } => {
            Some(match export(c, &path, &file, &format, out).await {
                Ok(records) => Msg::ExportDone { file, records },
                Err(f) => {
                    let _ = tokio::fs::remove_file(&file).await;
                    Msg::ExportFailed(f)
                }
            })
        }
    }
}

async fn export(
    c: &Client,
    path: &str,
    file: &Path,
    format: &str,
    out: &UnboundedSender<Msg>,
) -> Result<u64, Failure> {
    let mut body = c
        .request_streaming(Method::GET, path, None, &[])
        .await
        .map_err(net_failure)?;
    if !body.status.is_success() {
        let r = body.collect().await.map_err(net_failure)?;
        return Err(failure(r.status, &r.body));
    }
    let total = body
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let io = |e: std::io::Error| Failure::transport(format!("{}: {e}", file.display()));
    let mut f = tokio::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(file)
        .await
        .map_err(io)?;
    let mut bytes = 0u64;
    let mut last = tokio::time::Instant::now();
    while let Some(chunk) = body.next_chunk().await.map_err(net_failure)? {
        f.write_all(&chunk).await.map_err(io)?;
        bytes += chunk.len() as u64;
        if last.elapsed() > Duration::from_millis(100) {
            last = tokio::time::Instant::now();
            let _ = out.send(Msg::ExportProgress { bytes, total });
        }
    }
    f.flush().await.map_err(io)?;
    f.sync_all().await.map_err(io)?;
    drop(f);
    let p = file.to_owned();
    let fmt = format.to_owned();
    tokio::task::spawn_blocking(move || count_records(&p, &fmt))
        .await
        .map_err(|e| Failure::transport(e.to_string()))?
        .map_err(io)
}

/// Follows `/v1/events` (for `tenant`), reporting the connection and each event, and
/// reconnects with backoff when the stream ends or cannot be opened.
async fn follow_events(c: Client, tenant: Option<String>, out: UnboundedSender<Msg>) {
    let path = match &tenant {
        Some(t) => format!("/v1/events?tenant={t}"),
        None => "/v1/events".to_owned(),
    };
    let mut backoff = 1u64;
    let mut ever = false;
    loop {
        match c.get_lines(&path).await {
            Ok(mut lines) => {
                ever = true;
                backoff = 1;
                if out.send(Msg::Conn(Conn::Connected)).is_err() {
                    return;
                }
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Ok(e) = serde_json::from_slice::<Event>(&line)
                        && out.send(Msg::Event(e)).is_err()
                    {
                        return;
                    }
                }
            }
            Err(ClientError::Api(_)) => {
                // The daemon answers but has no stream for us: connected, without live
                // updates; look again later.
                if out.send(Msg::Conn(Conn::Connected)).is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(30)).await;
                continue;
            }
            Err(e) => {
                if !ever {
                    let _ = out.send(Msg::Conn(Conn::Unreachable(e.to_string())));
                }
            }
        }
        for left in (1..=backoff).rev() {
            if out
                .send(Msg::Conn(Conn::Reconnecting { in_secs: left }))
                .is_err()
            {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        backoff = (backoff * 2).min(10);
    }
}
