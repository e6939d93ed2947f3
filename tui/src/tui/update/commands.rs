//! What each key command does on the list (after [`super::gate`] allowed it): moving,
//! opening a record, starting a form or a confirmation, copying. Changes themselves are
//! sent from the modals once confirmed or submitted.

use serde_json::Value;
use steward::resource::Resource;
use tui_input::Input;

use super::list::{apply_filter, cycle_facet, go_bottom, go_top, move_by, next_order, refresh};
use super::session::{cancel_export, export_scope, load_overview, switch_tab};
use super::{Effect, disabled};
use crate::export_file::ExportFormat;
use crate::tui::detail::DetailView;
use crate::tui::dsr::ReasonFor;
use crate::tui::export::{copy_note, default_export_path, osc52};
use crate::tui::form::{ContactForm, InitiateForm, TextArea};
use crate::tui::keymap::Command;
use crate::tui::state::{ExportForm, Intent, Modal, PickerKind, PolicyEditor, State};
use steward::model::alert::{SEVERITIES, STATUSES};

/// Runs one keymap command (after the permission check).
pub fn command(s: &mut State, cmd: Command) -> Vec<Effect> {
    if let Some(reason) = disabled(s, cmd) {
        let text = reason.toast(s, cmd);
        s.toast(text, true);
        return Vec::new();
    }
    let page = s.view_rows.max(1) as i64;
    match cmd {
        Command::Quit => vec![Effect::Quit],
        Command::Up => move_by(s, -1),
        Command::Down => move_by(s, 1),
        Command::HalfPageUp => move_by(s, -(page / 2).max(1)),
        Command::HalfPageDown => move_by(s, (page / 2).max(1)),
        Command::PageUp => move_by(s, -page),
        Command::PageDown => move_by(s, page),
        Command::Top => go_top(s),
        Command::Bottom => go_bottom(s),
        Command::NextTab | Command::PrevTab => {
            let tabs = s.tabs();
            if tabs.is_empty() {
                return Vec::new();
            }
            let i = tabs.iter().position(|t| *t == s.tab).unwrap_or(0);
            let n = tabs.len();
            let j = if cmd == Command::NextTab {
                (i + 1) % n
            } else {
                (i + n - 1) % n
            };
            switch_tab(s, tabs[j])
        }
        Command::Open => {
            if let Some(v) = s.selected() {
                let title = format!("{}/{}", s.tab.segment(), s.tab.record_id(v));
                let text = serde_json::to_string_pretty(v).unwrap_or_default();
                s.modal = Some(Modal::Detail(Box::new(DetailView::new(title, text))));
            }
            Vec::new()
        }
        Command::Back => {
            if s.export.is_some() {
                return cancel_export(s);
            }
            if s.on_overview {
                s.on_overview = false;
                return Vec::new();
            }
            if !s.list.filter.is_empty() {
                return apply_filter(s, String::new());
            }
            Vec::new()
        }
        Command::Filter => {
            s.filter_before = Some(s.list.filter.clone());
            s.modal = Some(Modal::Filter(Input::new(s.list.filter.clone())));
            Vec::new()
        }
        Command::Severity => cycle_facet(s, &SEVERITIES, |l| &mut l.severity, "severity"),
        Command::Status => cycle_facet(s, &STATUSES, |l| &mut l.status, "status"),
        Command::CommandLine => {
            s.modal = Some(Modal::CommandLine(Input::default()));
            Vec::new()
        }
        Command::Help => {
            s.modal = Some(Modal::Help { scroll: 0 });
            Vec::new()
        }
        Command::Sort => next_order(s),
        Command::Refresh if s.on_overview => {
            let days = s.overview.as_ref().map_or(30, |o| o.days);
            load_overview(s, days)
        }
        Command::Refresh => refresh(s),
        Command::Freeze => {
            s.frozen = !s.frozen;
            let t = if s.frozen {
                "live updates frozen (f resumes)"
            } else {
                "live updates resumed"
            };
            s.toast(t, false);
            if s.frozen { Vec::new() } else { refresh(s) }
        }
        Command::Tenant => {
            let items: Vec<String> = s.session.tenants.iter().map(|t| t.id.clone()).collect();
            if items.is_empty() {
                s.toast("no tenants: the daemon grants you none", true);
                return Vec::new();
            }
            let selected = items
                .iter()
                .position(|t| Some(t) == s.session.tenant.as_ref())
                .unwrap_or(0);
            s.modal = Some(Modal::Picker {
                kind: PickerKind::Tenant,
                items,
                selected,
            });
            Vec::new()
        }
        Command::Profile => {
            let Some(info) = s.session.tenant_info() else {
                return Vec::new();
            };
            let mut items = info.actable_profiles.clone();
            if items.is_empty() {
                items = info.profiles.clone();
            }
            let selected = items
                .iter()
                .position(|p| Some(p) == s.session.role.as_ref())
                .unwrap_or(items.len().saturating_sub(1));
            s.modal = Some(Modal::Picker {
                kind: PickerKind::Profile,
                items,
                selected,
            });
            Vec::new()
        }
        Command::New => {
            match s.tab {
                Resource::Dsr => s.modal = Some(Modal::DsrForm(Box::default())),
                Resource::Contacts => {
                    s.modal = Some(Modal::ContactForm(Box::new(ContactForm::blank())))
                }
                _ => {
                    s.modal = Some(Modal::PolicyEditor(Box::new(PolicyEditor {
                        kind: Resource::JitPolicies,
                        name: Input::default(),
                        new: true,
                        etag: None,
                        text: TextArea::new(&policy_template(s)),
                        on_name: true,
                        errors: Default::default(),
                        saving: false,
                    })))
                }
            }
            Vec::new()
        }
        Command::Edit => {
            let Some(v) = s.selected().cloned() else {
                s.toast("nothing selected", true);
                return Vec::new();
            };
            super::edit::open(s.tab, &v)
        }
        Command::Delete | Command::Revoke => {
            let Some(v) = s.selected() else {
                s.toast("nothing selected", true);
                return Vec::new();
            };
            let id = s.tab.record_id(v);
            let intent = if cmd == Command::Delete {
                Intent::Delete {
                    kind: s.tab,
                    name: id,
                    etag: v.get("etag").and_then(Value::as_str).map(str::to_owned),
                }
            } else {
                Intent::Revoke { id }
            };
            s.modal = Some(Modal::Confirm {
                intent,
                on_confirm: false,
            });
            Vec::new()
        }
        Command::DsrConfirm | Command::DsrReject | Command::DsrExtend | Command::DsrBundle => {
            dsr_action(s, cmd)
        }
        Command::Initiate => {
            let Some(v) = s.selected() else {
                s.toast("nothing selected", true);
                return Vec::new();
            };
            s.modal = Some(Modal::Initiate(Box::new(InitiateForm::for_policy(v))));
            Vec::new()
        }
        Command::Export => {
            if let Some(p) = &s.export {
                let text = format!("an export to {} is running (esc cancels it)", p.path);
                s.toast(text, true);
                return Vec::new();
            }
            let tenant = s.session.tenant.clone().unwrap_or_default();
            let format = ExportFormat::Json;
            let (filters, scope) = export_scope(s);
            s.modal = Some(Modal::Export(Box::new(ExportForm {
                kind: s.tab,
                format,
                path: Input::new(default_export_path(&tenant, s.tab, format)),
                filters,
                scope,
            })));
            Vec::new()
        }
        Command::CopyField => {
            let Some(v) = s.selected() else {
                s.toast("nothing selected", true);
                return Vec::new();
            };
            let items: Vec<String> = fields(v)
                .into_iter()
                .map(|(path, value)| format!("{path} = {value}"))
                .collect();
            if items.is_empty() {
                s.toast("this record has no field to copy", true);
                return Vec::new();
            }
            s.modal = Some(Modal::Picker {
                kind: PickerKind::Field,
                items,
                selected: 0,
            });
            Vec::new()
        }
        Command::Copy => {
            let Some(v) = s.selected() else {
                s.toast("nothing selected", true);
                return Vec::new();
            };
            let title = format!("{}/{}", s.tab.segment(), s.tab.record_id(v));
            let json = serde_json::to_string_pretty(v).unwrap_or_default();
            let (seq, truncated) = osc52(&json, s.clipboard.passthrough);
            let text = copy_note(
                &format!("{title} as JSON"),
                json.len(),
                truncated,
                s.clipboard,
            );
            s.toast(text, truncated);
            vec![Effect::Terminal(seq)]
        }
    }
}

/// A new policy's starting text, its VM in the session's tenant (the daemon refuses VM ids
/// of other subscriptions). The source is a documentation address (RFC 5737) to be
/// replaced, never `*`: a template accepted as is must not open a port to everyone.
fn policy_template(s: &State) -> String {
    POLICY_TEMPLATE.replace("TENANT", s.session.tenant.as_deref().unwrap_or("TENANT"))
}

/// [`policy_template`] before the tenant is filled in.
const POLICY_TEMPLATE: &str = r#"{
  "kind": "Basic",
  "properties": {
    "virtualMachines": [
      {
        "id": "/subscriptions/TENANT/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm1",
        "ports": [
          {"number": 22, "protocol": "TCP", "allowedSourceAddressPrefix": "203.0.113.10", "maxRequestAccessDuration": "PT3H"}
        ]
      }
    ]
  }
}"#;

/// `C`, `X`, `E`, `b` on the selected data-subject request: confirm (asked first), a
/// reason for reject or extend, or where to download the bundle. The daemon decides
/// whether the request's state allows it and says why not.
fn dsr_action(s: &mut State, cmd: Command) -> Vec<Effect> {
    let Some(v) = s.selected() else {
        s.toast("nothing selected", true);
        return Vec::new();
    };
    let id = s.tab.record_id(v);
    let kind = v
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    s.modal = Some(match cmd {
        Command::DsrConfirm => Modal::Confirm {
            intent: Intent::DsrConfirm { id, kind },
            on_confirm: false,
        },
        Command::DsrReject | Command::DsrExtend => Modal::Reason {
            action: if cmd == Command::DsrReject {
                ReasonFor::Reject
            } else {
                ReasonFor::Extend
            },
            id,
            input: Input::default(),
        },
        _ => {
            if kind != "export" {
                s.toast(
                    format!("`{id}` is an {kind} request: only an export has a bundle"),
                    true,
                );
                return Vec::new();
            }
            let tenant = s.session.tenant.clone().unwrap_or_default();
            Modal::Bundle {
                path: Input::new(format!("./steward-{tenant}-dsr-{id}-bundle.json")),
                id,
            }
        }
    });
    Vec::new()
}

/// The record's scalar fields as `(path, text)`, nested objects flattened with `.`
/// (`properties.severity`), arrays of scalars joined with `, `, in the record's order.
pub fn fields(v: &Value) -> Vec<(String, String)> {
    fn walk(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    let path = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&path, x, out);
                }
            }
            Value::Array(a) if a.iter().all(|x| !x.is_object() && !x.is_array()) => {
                out.push((prefix.to_owned(), steward::resource::display(v)));
            }
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    walk(&format!("{prefix}[{i}]"), x, out);
                }
            }
            Value::Null => {}
            other => out.push((prefix.to_owned(), steward::resource::display(other))),
        }
    }
    let mut out = Vec::new();
    walk("", v, &mut out);
    out
}
