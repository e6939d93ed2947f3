//! The demo daemon's configuration, generated as TOML text and parsed by
//! `steward::config::Config::parse` like any file: three tenants where the current user
//! holds different profiles, everything inside the demo's temp dir.
//!
//! Grants name the user by uid (the owner of the freshly made temp dir), so no user
//! database lookup is needed.

use std::path::{Path, PathBuf};

/// The demo's paths, all under its temp dir.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The temp dir.
    pub root: PathBuf,
    /// The socket's directory.
    pub run: PathBuf,
    /// The socket.
    pub socket: PathBuf,
}

impl Paths {
    /// The paths under `root`.
    pub fn new(root: &Path) -> Paths {
        let run = root.join("run");
        Paths {
            root: root.to_owned(),
            socket: run.join("steward.sock"),
            run,
        }
    }
}

/// Which daemon the config is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Seeding: the user may also ingest alerts in every tenant.
    Seeding,
    /// The demo proper: the profiles an operator would really hold.
    Demo,
}

/// The tenants: id, display name, and the profiles the user holds in the demo.
pub const TENANTS: [(&str, &str, &[&str]); 3] = [
    ("contoso", "Contoso Ltd", &["tenant-admin"]),
    ("fabrikam", "Fabrikam Inc", &["reader"]),
    ("northwind", "Northwind Traders", &["owner", "ingest"]),
];

/// The config text for `phase`, granting to `uid`.
pub fn text(paths: &Paths, uid: u32, phase: Phase) -> String {
    let q = |p: &Path| toml_str(&p.display().to_string());
    let socket = q(&paths.socket);
    let mut out = format!(
        "[daemon]\nsocket = {socket}\ndata_dir = {data}\nlog_dir = {logs}\nlog_level = \"warn\"\n\n\
         [retention]\nsweep_interval = \"10s\"\n\n\
         [ingest]\nspool_dir = {spool}\n",
        data = q(&paths.root.join("data")),
        logs = q(&paths.root.join("logs")),
        spool = q(&paths.root.join("spool")),
    );
    for (id, name, profiles) in TENANTS {
        out.push_str(&format!(
            "\n[[tenant]]\nid = \"{id}\"\nname = {}\n",
            toml_str(name)
        ));
        let mut roles: Vec<&str> = profiles.to_vec();
        if phase == Phase::Seeding {
            roles.retain(|r| *r != "ingest");
            roles.push("tenant-admin");
            roles.push("ingest");
        }
        roles.dedup();
        for role in roles {
            out.push_str(&format!(
                "\n[[grant]]\nuid = {uid}\ntenant = \"{id}\"\nrole = \"{role}\"\n"
            ));
        }
    }
    out
}

/// A TOML basic string (paths may hold anything).
fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_phases_parse_and_differ_only_in_grants() {
        let paths = Paths::new(Path::new("/tmp/steward-demo-x \"q\""));
        for phase in [Phase::Seeding, Phase::Demo] {
            let text = text(&paths, 1000, phase);
            let c = steward::config::Config::parse(&text).unwrap();
            assert_eq!(c.tenants.len(), 3);
            assert_eq!(c.daemon.socket, paths.socket);
            assert!(c.daemon.data_dir.starts_with(&paths.root));
            assert!(c.daemon.log_dir.starts_with(&paths.root));
        }
        let demo = steward::config::Config::parse(&text(&paths, 1000, Phase::Demo)).unwrap();
        let fabrikam: Vec<_> = demo
            .grants
            .iter()
            .filter(|g| g.tenant == "fabrikam")
            .map(|g| g.role.as_str())
            .collect();
        assert_eq!(fabrikam, ["reader"]);
        let seeding = steward::config::Config::parse(&text(&paths, 1000, Phase::Seeding)).unwrap();
        assert!(
            seeding
                .grants
                .iter()
                .any(|g| g.tenant == "fabrikam" && g.role == "ingest")
        );
    }
}
