//! `e`: the selected record to the operator's editor ([`crate::tui::editor`]), and what
//! comes back. An unchanged text saves nothing; a changed one is sent as a PUT with the
//! loaded etag (`If-Match`), shown meanwhile in the record editor, which keeps the text:
//! text that is not JSON, or that the daemon refuses (errors at their field), stays there
//! to fix in place or to re-open in the editor (ctrl-e); a 412 shows the newer version.

use serde_json::Value;
use steward::resource::Resource;
use tui_input::Input;

use super::Effect;
use super::modals::save;
use crate::tui::editor::EditJob;
use crate::tui::form::TextArea;
use crate::tui::state::{Modal, PolicyEditor, State};

/// The editable JSON of a record: without what the daemon owns (`id`, `type`, `etag`,
/// `name`; a policy's `requests` and `provisioningState`).
pub fn editable(record: &Value) -> String {
    let mut body = record.clone();
    if let Some(o) = body.as_object_mut() {
        for k in ["id", "type", "etag", "name"] {
            o.remove(k);
        }
    }
    if let Some(p) = body.get_mut("properties").and_then(Value::as_object_mut) {
        p.remove("requests");
        p.remove("provisioningState");
    }
    serde_json::to_string_pretty(&body).unwrap_or_default()
}

/// `e` on a record of `kind`: the editor effect (the gate allowed only writable kinds).
pub fn open(kind: Resource, record: &Value) -> Vec<Effect> {
    vec![Effect::Editor(Box::new(EditJob {
        kind,
        name: kind.record_id(record),
        etag: record
            .get("etag")
            .and_then(Value::as_str)
            .map(str::to_owned),
        create: false,
        text: editable(record),
    }))]
}

/// The record editor's text as an editor job (ctrl-e in it).
pub fn job_of(ed: &PolicyEditor) -> EditJob {
    EditJob {
        kind: ed.kind,
        name: ed.name.value().trim().to_owned(),
        etag: ed.etag.clone(),
        create: ed.new,
        text: ed.text.text(),
    }
}

/// The editor exited: save what changed, keep what cannot be saved.
pub fn edited(s: &mut State, job: EditJob, result: Result<String, String>) -> Vec<Effect> {
    s.dirty = true;
    let text = match result {
        Ok(text) => text,
        Err(why) => {
            s.toast(why, true);
            return Vec::new();
        }
    };
    let what = format!("{} {}", job.kind.singular(), job.name);
    if text == job.text && !matches!(s.modal, Some(Modal::PolicyEditor(_))) {
        s.toast(format!("{what}: no change, nothing saved"), false);
        return Vec::new();
    }
    let mut ed = PolicyEditor {
        kind: job.kind,
        name: Input::new(job.name.clone()),
        new: job.create,
        etag: job.etag.clone(),
        text: TextArea::new(&text),
        on_name: false,
        errors: Default::default(),
        saving: false,
    };
    if job.name.is_empty() {
        ed.errors.insert("name".into(), "a name is needed".into());
        ed.on_name = true;
        s.modal = Some(Modal::PolicyEditor(Box::new(ed)));
        return Vec::new();
    }
    match serde_json::from_str::<Value>(&text) {
        Err(e) => {
            ed.errors
                .insert(String::new(), format!("not JSON: {e}; ctrl-e re-opens it"));
            s.toast(format!("{what} not saved: your edit is kept"), true);
            s.modal = Some(Modal::PolicyEditor(Box::new(ed)));
            Vec::new()
        }
        Ok(body) => {
            ed.saving = true;
            s.modal = Some(Modal::PolicyEditor(Box::new(ed)));
            save(job.kind, job.name, body, job.etag, job.create)
        }
    }
}
