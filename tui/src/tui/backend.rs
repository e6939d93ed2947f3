//! The backend task: owns the socket client, turns each [`Request`] (an intent) into
//! HTTP on its own task — method, path from `steward::client::paths`, `If-Match` and
//! `Idempotency-Key` headers ([`call`]) — and answers with [`Msg`]s over a channel, so
//! the UI never waits on the network. Exports stream into [`ExportFile`], the writer the
//! CLI uses.
//!
//! It also follows `/v1/events` for the current tenant and reports the connection state,
//! reconnecting with backoff (1 s doubling to 10 s) when the daemon goes away — a
//! restart shows in the header as "reconnecting in Ns" and ends with a refresh.
//! What it is not: a cache. The UI keeps its own window of records.

mod call;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use steward::client::paths::{self, RecordAction, TenantPaths};
use steward::client::{Client, ClientError};
use steward::resource::Resource;
use steward::wire::{Event, List, TenantInfo, VerifyReport, WhoAmI};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::task::JoinHandle;

pub use call::{Call, call};
use call::{download, export, get_json, no_tenant, send_change};

use super::msg::{Failure, Msg, Request};
use super::overview::{AlertOverview, Overview};
use super::state::Conn;

/// Starts the backend on the current tokio runtime; returns where to send requests.
pub fn spawn(
    socket: PathBuf,
    role: Option<String>,
    out: UnboundedSender<Msg>,
) -> UnboundedSender<Request> {
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
    mut rx: UnboundedReceiver<Request>,
    out: UnboundedSender<Msg>,
) {
    let mut events: JoinHandle<()> = tokio::spawn(follow_events(client.clone(), None, out.clone()));
    let mut tenant: Option<TenantPaths> = None;
    let mut export: Option<JoinHandle<()>> = None;
    // The list fetch in flight: a newer one (or a cancel) makes it pointless.
    let mut list: Option<JoinHandle<()>> = None;
    while let Some(request) = rx.recv().await {
        match request {
            Request::CancelPages => {
                if let Some(task) = list.take() {
                    task.abort();
                }
            }
            Request::CancelExport => {
                // Dropping the task drops its ExportFile: the temp file is removed.
                if let Some(task) = export.take() {
                    task.abort();
                }
            }
            Request::SetSession {
                tenant: chosen,
                role,
            } => {
                client = Client::new(socket.clone()).with_role(role);
                tenant = chosen.as_deref().map(paths::tenant);
                events.abort();
                events = tokio::spawn(follow_events(client.clone(), chosen, out.clone()));
            }
            other => {
                let is_export = matches!(other, Request::Export { .. } | Request::Bundle { .. });
                let is_list = matches!(other, Request::Pages { .. });
                if is_list && let Some(task) = list.take() {
                    task.abort();
                }
                let c = client.clone();
                let t = tenant.clone();
                let o = out.clone();
                let task = tokio::spawn(async move {
                    if let Some(m) = handle(&c, t.as_ref(), other, &o).await {
                        let _ = o.send(m);
                    }
                });
                if is_export {
                    export = Some(task);
                } else if is_list {
                    list = Some(task);
                }
            }
        }
    }
    events.abort();
}

async fn handle(
    c: &Client,
    tenant: Option<&TenantPaths>,
    request: Request,
    out: &UnboundedSender<Msg>,
) -> Option<Msg> {
    match request {
        Request::SetSession { .. } | Request::CancelExport | Request::CancelPages => None,
        Request::LoadSession => {
            let who: Result<WhoAmI, _> = get_json(c, &paths::whoami()).await;
            let tenants: Result<List<TenantInfo>, _> = get_json(c, &paths::tenants()).await;
            Some(Msg::Session(
                tenants.map(|t| (who.map(|w| w.user).unwrap_or_default(), t.value)),
            ))
        }
        Request::Pages {
            generation,
            start_index,
            link,
            count,
            to_end,
            keep,
        } => Some(match pages(c, link, count, to_end, keep).await {
            Ok((links, pages, next)) => Msg::Pages {
                generation,
                start_index,
                links,
                pages,
                next,
            },
            Err(failure) => Msg::PagesFailed {
                generation,
                failure,
            },
        }),
        Request::Newer { kind, name, mine } => {
            let result = match tenant {
                Some(t) => get_json::<Value>(c, &t.record(kind, &name)).await,
                None => Err(no_tenant()),
            };
            Some(Msg::Newer {
                kind,
                name,
                mine,
                result,
            })
        }
        Request::Change(change) => {
            let result = match tenant {
                Some(t) => send_change(c, &call(t, &change)).await,
                None => Err(no_tenant()),
            };
            Some(Msg::Written { change, result })
        }
        Request::Overview { days, alerts } => {
            let Some(t) = tenant else {
                let why = no_tenant().text();
                return Some(Msg::Overview(Box::new(Overview {
                    days,
                    alerts: Err(why.clone()),
                    jit: Err(why.clone()),
                    dsr: Err(why.clone()),
                    chain: Err(why),
                })));
            };
            let text = |f: Failure| f.text();
            let alert_counts = if alerts {
                get_json::<AlertOverview>(c, &t.overview_alerts(days))
                    .await
                    .map_err(text)
            } else {
                Err("the profile cannot read alerts".to_owned())
            };
            let page = |kind| t.list(kind, &[("limit", "100".to_owned())]);
            let jit = get_json::<List<Value>>(c, &page(Resource::JitRequests))
                .await
                .map(|l| l.value)
                .map_err(text);
            let dsr = get_json::<List<Value>>(c, &page(Resource::Dsr))
                .await
                .map(|l| l.value)
                .map_err(text);
            let chain = get_json::<VerifyReport>(c, &t.audit_verify())
                .await
                .map_err(text);
            Some(Msg::Overview(Box::new(Overview {
                days,
                alerts: alert_counts,
                jit,
                dsr,
                chain,
            })))
        }
        Request::Verify => Some(Msg::Verified(match tenant {
            Some(t) => get_json::<VerifyReport>(c, &t.audit_verify()).await,
            None => Err(no_tenant()),
        })),
        Request::Subject { key, value } => {
            let what = format!("{key} {value}");
            let result = match tenant {
                Some(t) => get_json::<List<Value>>(c, &t.subjects(&[(key, value)]))
                    .await
                    .map(|l| {
                        l.value
                            .iter()
                            .map(|h| {
                                let s = |k: &str| h[k].as_str().unwrap_or("").to_owned();
                                (s("kind"), s("id"), s("field"))
                            })
                            .collect()
                    }),
                None => Err(no_tenant()),
            };
            Some(Msg::Subjects { what, result })
        }
        Request::Bundle { id, file } => {
            let result = match tenant {
                Some(t) => {
                    let path = t.action(Resource::Dsr, &id, RecordAction::Bundle);
                    download(c, &path, &file, out).await
                }
                None => Err(no_tenant()),
            };
            Some(match result {
                Ok(bytes) => Msg::BundleDone { file, bytes },
                Err(f) => Msg::ExportFailed(f),
            })
        }
        Request::Export {
            kind,
            format,
            file,
            filters,
        } => {
            let result = match tenant {
                Some(t) => {
                    let path = t.export_where(kind, format.as_str(), &filters);
                    export(c, &path, &file, format, out).await
                }
                None => Err(no_tenant()),
            };
            Some(match result {
                Ok(records) => Msg::ExportDone { file, records },
                Err(f) => Msg::ExportFailed(f),
            })
        }
    }
}

/// Fetches `count` pages from `link` (or to the end), keeping the last `keep`: the
/// links fetched, the pages kept and the last `nextLink` as a path.
async fn pages(
    c: &Client,
    link: String,
    count: usize,
    to_end: bool,
    keep: usize,
) -> Result<(Vec<String>, Vec<Vec<Value>>, Option<String>), Failure> {
    let mut links = Vec::new();
    let mut pages: VecDeque<Vec<Value>> = VecDeque::new();
    let mut cur = Some(link);
    while let Some(l) = cur.take() {
        let page: List<Value> = get_json(c, &l).await?;
        cur = match page.next_link.as_deref() {
            None => None,
            Some(next) => Some(paths::resolve_next_link(&l, next).ok_or_else(|| {
                Failure::transport(format!("cannot follow the daemon's nextLink: {next}"))
            })?),
        };
        links.push(l);
        pages.push_back(page.value);
        while pages.len() > keep.max(1) {
            pages.pop_front();
        }
        if !to_end && links.len() >= count {
            break;
        }
    }
    Ok((links, pages.into(), cur))
}

/// Follows `/v1/events` (for `tenant`), reporting the connection and each event, and
/// reconnects with backoff when the stream ends or cannot be opened.
async fn follow_events(c: Client, tenant: Option<String>, out: UnboundedSender<Msg>) {
    let path = paths::events(tenant.as_deref());
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
