//! Tests of parsing and validation.

use super::sections::DAY;
use super::*;

const FULL: &str = include_str!("../../config/steward.toml");

#[test]
fn the_documented_example_config_is_valid_and_uses_every_section() {
    let c = Config::parse(FULL).unwrap();
    assert_eq!(c.limits.max_body.0, 1 << 20);
    assert_eq!(c.limits.max_ingest_body.0, 16 << 20);
    assert_eq!(c.retention.alerts.0, Duration::from_secs(730 * DAY));
    assert_eq!(c.retention.sweep_interval.0, Duration::from_secs(60));
    assert!(c.profiles().get("auditor").is_some());
    assert!(c.tenant("contoso").is_some());
}

/// `[jit] firewall` and `[jit.targets]`: a target is found by VM id (any case) or by
/// bare VM name; a key that can name no VM, an address that is not one, and an
/// unknown backend are refused.
#[test]
fn jit_firewall_and_targets() {
    const VM1: &str =
        "/subscriptions/contoso/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm1";
    let c = Config::parse(&format!(
        "[jit]\nfirewall = \"nftables\"\n[jit.targets]\n\"{VM1}\" = \"10.1.0.5\"\n\"vm2\" = \"fd00::7\"\n"
    ))
    .unwrap();
    assert_eq!(c.jit.firewall, Some(FirewallBackend::Nftables));
    let upper = VM1.to_ascii_uppercase();
    assert_eq!(
        c.jit.target_of(&upper).map(|a| a.to_string()).as_deref(),
        Some("10.1.0.5")
    );
    let vm2 = VM1.replace("vm1", "VM2");
    assert_eq!(
        c.jit.target_of(&vm2).map(|a| a.to_string()).as_deref(),
        Some("fd00::7")
    );
    assert_eq!(c.jit.target_of(&VM1.replace("vm1", "vm3")), None);
    assert_eq!(Config::parse("").unwrap().jit.firewall, None);
    for (bad, want) in [
        ("[jit]\nfirewall = \"iptables\"", "unknown variant"),
        ("[jit.targets]\nvm1 = \"10.1.0\"", "invalid IP address"),
        ("[jit.targets]\n\"rg1/vm1\" = \"10.1.0.5\"", "without `/`"),
        (
            "[jit.targets]\n\"/subscriptions/c/vm1\" = \"10.1.0.5\"",
            "must be a VM id",
        ),
        ("[jit.targets]\n\"vm 1\" = \"10.1.0.5\"", "space"),
        (
            "[[tenant]]\nid = \"a\"\nname = \"A\"\n[[tenant]]\nid = \"b\"\nname = \"B\"\n[jit.targets]\nvm1 = \"10.1.0.5\"",
            "several tenants",
        ),
    ] {
        let e = Config::parse(bad).unwrap_err().to_string();
        assert!(e.contains(want), "{bad}: {e}");
    }
}

#[test]
fn unknown_keys_are_errors_at_every_level() {
    for bad in [
        "bogus = 1",
        "[daemon]\nsockett = \"/x\"",
        "[limits]\nmax_bodyy = \"1MiB\"",
        "[[tenant]]\nid = \"a\"\nname = \"A\"\ncolour = \"red\"",
        "[[tenant]]\nid = \"a\"\nname = \"A\"\n[[grant]]\nuser = \"x\"\ntenant = \"a\"\nrole = \"reader\"\nbogus_key = 1",
    ] {
        assert_refused(bad, "unknown field");
    }
}

/// Asserts that `text` is refused with an error that says `want`.
fn assert_refused(text: &str, want: &str) {
    let e = Config::parse(text).unwrap_err().to_string();
    assert!(e.contains(want), "{text}: {e}");
}

#[test]
fn grants_must_be_coherent() {
    let base = "[[tenant]]\nid = \"a\"\nname = \"A\"\n";
    let cases = [
        (
            "[[grant]]\ntenant = \"a\"\nrole = \"reader\"",
            "exactly one",
        ),
        (
            "[[grant]]\nuser = \"x\"\nuid = 1\ntenant = \"a\"\nrole = \"reader\"",
            "exactly one",
        ),
        (
            "[[grant]]\nuser = \"x\"\ntenant = \"b\"\nrole = \"reader\"",
            "not declared",
        ),
        (
            "[[grant]]\nuser = \"x\"\ntenant = \"a\"\nrole = \"superuser\"",
            "superuser",
        ),
        (
            "[profile.owner]\npermissions = [\"audit.read\"]",
            "cannot be redefined",
        ),
    ];
    for (text, want) in cases {
        assert_refused(&format!("{base}{text}"), want);
    }
    assert!(Config::parse(&format!("{base}[[tenant]]\nid = \"a\"\nname = \"B\"")).is_err());
    assert!(Config::parse("[[tenant]]\nid = \"Bad_Id\"\nname = \"x\"").is_err());
}

#[test]
fn grants_that_can_match_nobody_are_errors_naming_the_grant_and_the_key() {
    let base = "[[tenant]]\nid = \"a\"\nname = \"A\"\n\
                [[grant]]\nuser = \"ok\"\ntenant = \"a\"\nrole = \"reader\"\n[[grant]]\n";
    let rest = "tenant = \"a\"\nrole = \"reader\"\n";
    let cases = [
        ("user = \"*\"", "grant #2: `user` matches nobody"),
        ("group = \"*\"", "grant #2: `group` matches nobody"),
        ("user = \"\"", "grant #2: `user` is empty"),
        ("group = \"\"", "grant #2: `group` is empty"),
        ("group = \"sec*\"", "grant #2: `group` holds a wildcard"),
        ("user = \"al ice\"", "grant #2: `user` holds a space"),
        ("user = \"a:b\"", "grant #2: `user` holds a space"),
        ("user = \"a\\nb\"", "grant #2: `user` holds a space"),
        ("user = \"-x\"", "grant #2: `user` starts with `-`"),
        (
            "uid = 4294967295",
            "grant #2: `uid = 4294967295` is (uid_t)-1",
        ),
        (
            "",
            "grant #2: give exactly one of `user`, `uid` or `group` (none is set)",
        ),
        (
            "user = \"x\"\ngroup = \"g\"",
            "grant #2: give exactly one of `user`, `uid` or `group` (`user` and `group` are set)",
        ),
    ];
    for (who, want) in cases {
        assert_refused(&format!("{base}{who}\n{rest}"), want);
    }
    for who in [
        "user = \"alice.b@corp\"",
        "group = \"sec-ops_1\"",
        "uid = 0",
        "uid = 65534",
    ] {
        assert!(
            Config::parse(&format!("{base}{who}\n{rest}")).is_ok(),
            "{who}"
        );
    }
}

#[test]
fn a_parsed_config_keeps_its_text_and_the_embedded_default_has_none() {
    let text = "[[tenant]]\nid = \"a\"\nname = \"A\"\n";
    assert_eq!(Config::parse(text).unwrap().source_text(), Some(text));
    assert_eq!(Config::embedded_default("alice").source_text(), None);
}

#[test]
fn durations_accept_friendly_and_iso_forms() {
    for (s, secs) in [
        ("30d", 30 * DAY),
        ("P30D", 30 * DAY),
        ("1m", 60),
        ("PT1M", 60),
        ("3s", 3),
    ] {
        assert_eq!(
            s.parse::<ConfigDuration>().unwrap().0.as_secs(),
            secs,
            "{s}"
        );
    }
    assert!("soon".parse::<ConfigDuration>().is_err());
    assert!("-5s".parse::<ConfigDuration>().is_err());
}

#[test]
fn denial_coalescing_keys_have_defaults_and_a_floor() {
    let c = Config::parse(FULL).unwrap();
    assert_eq!(c.limits.denial_window.0, Duration::from_secs(60));
    assert_eq!(c.limits.denials_per_uid, 32);
    let e = Config::parse("[limits]\ndenial_window = \"0s\"")
        .unwrap_err()
        .to_string();
    assert!(e.contains("denial_window"), "{e}");
}

#[test]
fn embedded_default_grants_the_daemon_user_tenant_admin() {
    let c = Config::embedded_default("alice");
    assert_eq!(c.tenants.len(), 1);
    assert_eq!(c.tenants[0].id.as_str(), "default");
    assert_eq!(c.grants[0].grantee(), Some(Grantee::User("alice")));
    assert_eq!(c.grants[0].role, "tenant-admin");
    assert!(c.daemon.socket_group.is_none());
    assert!(c.daemon.socket.ends_with("steward.sock"));
}

#[test]
fn the_store_backend_defaults_to_redb_and_postgres_keys_are_checked() {
    let c = Config::parse("").unwrap();
    assert_eq!(c.store.backend, StoreBackend::Redb);
    assert_eq!(c.store.postgres_url, DEFAULT_POSTGRES_URL);
    assert_eq!(c.store.pool_size, 8);
    let c = Config::parse(
        "[store]\nbackend = \"postgres\"\npostgres_url = \"postgresql://steward@db.example/steward\"\npostgres_password_file = \"/etc/steward/pw\"\npool_size = 4\n",
    )
    .unwrap();
    assert_eq!(c.store.backend, StoreBackend::Postgres);
    assert_eq!(c.store.pool_size, 4);
    assert_refused(
        "[store]\nbackend = \"sqlite\"\n",
        "unknown variant `sqlite`",
    );
    assert_refused(
        "[store]\npostgres_url = \"postgresql://steward:hunter2@db.example/steward\"\n",
        "holds a password",
    );
    assert_refused(
        "[store]\npostgres_url = \"postgres:///steward?host=/run/postgresql&password=hunter2\"\n",
        "holds a password parameter",
    );
    assert_refused(
        "[store]\npostgres_url = \"host=/run/postgresql dbname=steward\"\n",
        "must be a postgresql:// URL",
    );
    assert_refused(
        "[store]\npostgres_password_file = \"pw.txt\"\n",
        "must be an absolute path",
    );
    assert_refused("[store]\npool_size = 0\n", "pool_size = 0");
}
