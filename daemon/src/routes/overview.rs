//! `GET /v1/tenants/{t}/overview/alerts?days=30`: what the TUI's overview draws about
//! alerts — per day and severity over the last `days` (from the time index alone, no
//! alert read, so 1M alerts cost an index walk of the period), and the most frequent
//! alert types among the newest [`TYPES_FROM`] alerts (the type is not indexed; reading
//! every alert of 90 days would cost a full scan per look).
//!
//! What it is not: a report or a search; the list (`/alerts?severity=…`) is.

use std::collections::BTreeMap;

use axum::Json;
use serde::Deserialize;
use steward::permissions::Permission;
use steward::wire::{AlertOverview, Day, TypeCount};

use super::ctx::TenantCtx;
use super::extract::Q;
use crate::error::ApiError;
use crate::store::{Kind, TenantRead, TimeQuery};

/// The most days asked for.
const MAX_DAYS: u32 = 366;
/// The newest alerts whose types are counted.
pub const TYPES_FROM: usize = 1000;
/// The types listed.
const TOP_TYPES: usize = 5;

/// `?days=` (1–366, default 30).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverviewQuery {
    /// The period, in days up to today (UTC).
    pub days: Option<u32>,
}

/// `GET /v1/tenants/{t}/overview/alerts`.
pub async fn alerts(
    ctx: TenantCtx,
    Q(q): Q<OverviewQuery>,
) -> Result<Json<AlertOverview>, ApiError> {
    ctx.require(Permission::AlertsRead, "overview/alerts")
        .await?;
    let days = q.days.unwrap_or(30);
    if days == 0 || days > MAX_DAYS {
        return Err(ApiError::invalid(format!("days must be 1 to {MAX_DAYS}")).with_target("days"));
    }
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    let first = today
        .checked_sub(jiff::Span::new().days(i64::from(days) - 1))
        .map_err(|e| ApiError::internal(&e))?;
    let since = first
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map_err(|e| ApiError::internal(&e))?
        .timestamp()
        .as_microsecond();
    let overview = ctx
        .read(move |r| {
            let mut per_day: BTreeMap<i64, Day> = BTreeMap::new();
            let mut total = 0u64;
            r.scan_time_facets(Kind::Alert, since, &mut |t, f| {
                let day = (t - since).div_euclid(86_400_000_000);
                let d = per_day.entry(day).or_default();
                match f.severity {
                    "high" | "critical" => d.high += 1,
                    "medium" => d.medium += 1,
                    "low" => d.low += 1,
                    _ => d.other += 1,
                }
                total += 1;
            })?;
            let newest = r.list_by_time(Kind::Alert, TimeQuery::newest_first(TYPES_FROM))?;
            let mut types: BTreeMap<String, u64> = BTreeMap::new();
            for doc in &newest.items {
                let v: serde_json::Value = serde_json::from_str(&doc.body_json).unwrap_or_default();
                let p = &v["properties"];
                // A display name is not a type: alerts without one count together.
                let kind = p["alertType"].as_str().unwrap_or("(no alertType)");
                *types.entry(kind.to_owned()).or_default() += 1;
            }
            let mut top: Vec<TypeCount> = types
                .into_iter()
                .map(|(kind, count)| TypeCount { kind, count })
                .collect();
            top.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.kind.cmp(&b.kind)));
            top.truncate(TOP_TYPES);
            Ok((per_day, total, top, newest.items.len() as u64))
        })
        .await?;
    let (mut counted, total, top_types, types_from) = overview;
    let per_day = (0..i64::from(days))
        .map(|i| {
            let mut d = counted.remove(&i).unwrap_or_default();
            d.date = first
                .checked_add(jiff::Span::new().days(i))
                .map(|x| x.to_string())
                .unwrap_or_default();
            d
        })
        .collect();
    Ok(Json(AlertOverview {
        per_day,
        total,
        top_types,
        types_from,
    }))
}
