//! Each kind's one mapping between its model type and its stored record: [`Stored::to_input`]
//! (the JSON body and the people it names, for the subject index) and [`Stored::from_doc`]
//! (a stored record that does not read back is corrupt: a 500, never the caller's 400).
//! Routes, timers, DSR and the firewall all go through it; a kind's schedule entries are
//! added by the rules that own them (a JIT request's ends: `jit.rs`). Data-subject requests
//! have their own envelope (`dsr::DsrDoc`).

use serde::Serialize;
use serde::de::DeserializeOwned;
use steward::model::{JitPolicy, JitRequest, SecurityContact, SubjectKey};

use crate::store::{Doc, DocInput, Kind, WriteError};

/// A model type kept as a stored record of one kind.
pub trait Stored: Serialize + DeserializeOwned {
    /// Its kind in the store.
    const KIND: Kind;

    /// Identifiers of people it holds (none by default).
    fn subjects(&self) -> Vec<SubjectKey> {
        Vec::new()
    }

    /// Its stored form: the JSON body and the subject keys of the people it names.
    fn to_input(&self) -> Result<DocInput, WriteError> {
        let body = serde_json::to_string(self)
            .map_err(|e| WriteError::Encode(format!("{}: {e}", Self::KIND)))?;
        Ok(self
            .subjects()
            .iter()
            .fold(DocInput::new(body), |input, k| input.subject(k)))
    }

    /// Reads a stored record back.
    fn from_doc(doc: &Doc) -> Result<Self, WriteError> {
        serde_json::from_str(&doc.body_json)
            .map_err(|e| WriteError::Corrupt(format!("stored {} {:?}: {e}", Self::KIND, doc.name)))
    }
}

impl Stored for SecurityContact {
    const KIND: Kind = Kind::Contact;

    fn subjects(&self) -> Vec<SubjectKey> {
        self.properties.subject_keys()
    }
}

impl Stored for JitPolicy {
    const KIND: Kind = Kind::JitPolicy;
}

impl Stored for JitRequest {
    const KIND: Kind = Kind::JitRequest;

    fn subjects(&self) -> Vec<SubjectKey> {
        self.subject_keys()
    }
}
