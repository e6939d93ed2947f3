//! Microsoft's own SDK against the daemon: `azure-mgmt-security` 7.0.0 (Python, from
//! the virtual environment `scripts/azure-sdk-venv.sh` makes; `.ci/install-deps` runs it)
//! drives every operation of its `security_contacts`, `jit_network_access_policies` and
//! `alerts` groups through an azure-core transport that speaks HTTP over the daemon's
//! Unix socket (`tests/azure_sdk/sdk_e2e.py`), so the daemon sees the test's own OS user.
//! A missing environment fails the test, saying how to make it.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use http::StatusCode;
use serde_json::{Value, json};
use steward::model::AuditStatus::{Denied, Succeeded};
use steward_testkit::inproc::{ConfigBuilder, TestDaemon, me};

/// The tenant, a subscription id as the SDK's examples write them.
const SUB: &str = "20ff7fc3-e762-44dd-bd96-b71116dcdc23";

/// The workspace root.
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The venv's python, or a failure saying how to install it.
fn sdk_python() -> PathBuf {
    let venv = std::env::var_os("STEWARD_AZURE_SDK_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".venv-azure-sdk"));
    let python = venv.join("bin/python");
    let ok = Command::new(&python)
        .args([
            "-c",
            "import importlib.metadata as m, sys; sys.exit(m.version('azure-mgmt-security') != '7.0.0')",
        ])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "no Python environment with azure-mgmt-security 7.0.0 at {}: run `bash scripts/azure-sdk-venv.sh` \
         (or `bash .ci/install-deps`, which runs it) from the workspace root, or point \
         STEWARD_AZURE_SDK_VENV at one",
        venv.display()
    );
    python
}

/// An alert as a source sends it, at resource group `rg` (or the subscription) and
/// location `loc`, generated `minutes` ago.
fn alert(name: &str, rg: Option<&str>, loc: &str, minutes: i64) -> Value {
    let rg_part = rg
        .map(|g| format!("/resourceGroups/{g}"))
        .unwrap_or_default();
    let at = jiff::Timestamp::now() - jiff::SignedDuration::from_mins(minutes);
    let at = jiff::Timestamp::from_second(at.as_second()).unwrap();
    json!({
        "id": format!("/subscriptions/{SUB}{rg_part}/providers/Microsoft.Security/locations/{loc}/alerts/{name}"),
        "name": name,
        "properties": {
            "alertType": "VM_EICAR",
            "systemAlertId": name,
            "alertDisplayName": format!("Test malware {name}"),
            "description": "A test file was detected",
            "severity": if minutes % 2 == 0 { "High" } else { "Low" },
            "intent": "Execution",
            "status": "Active",
            "startTimeUtc": at.to_string(),
            "endTimeUtc": at.to_string(),
            "timeGeneratedUtc": at.to_string(),
            "processingEndTimeUtc": at.to_string(),
            "resourceIdentifiers": [{"type": "AzureResource", "azureResourceId": format!("/subscriptions/{SUB}{rg_part}/providers/Microsoft.Compute/virtualMachines/vm1")}],
            "remediationSteps": ["Remove the file"],
            "vendorName": "Microsoft",
            "productName": "Microsoft Defender for Cloud",
            "entities": [{"type": "host", "hostName": "vm1"}, {"type": "ip", "address": "198.51.100.7"}],
            "isIncident": false,
            "correlationKey": "key",
            "extendedProperties": {"file name": "eicar.com"},
            "compromisedEntity": "vm1",
            "techniques": ["T1059"],
            "subTechniques": ["T1059.001"]
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_drives_every_operation() {
    let python = sdk_python();
    let dir = tempfile::tempdir().unwrap();
    let b = ConfigBuilder::new(dir.path())
        .tenant(SUB, "Contoso (Azure subscription)")
        .grant(&me(), SUB, "tenant-admin")
        .grant(&me(), SUB, "ingest");
    let d = TestDaemon::start_config(dir.path(), &b).await;

    // Five alerts at three places, ingested as a source would: 3 pages of 2 through the SDK.
    let placed = [
        ("a1", Some("rg1"), "westeurope"),
        ("a2", Some("rg1"), "westeurope"),
        ("a3", Some("rg1"), "northeurope"),
        ("a4", Some("rg2"), "westeurope"),
        ("a5", None, "westeurope"),
    ];
    let alerts: Vec<Value> = placed
        .iter()
        .enumerate()
        .map(|(i, (n, rg, loc))| json!({"alert": alert(n, *rg, loc, i as i64 + 1), "rg": rg, "loc": loc}))
        .collect();
    let batch: Vec<Value> = alerts.iter().map(|a| a["alert"].clone()).collect();
    let (s, v, _) = d
        .client()
        .post(&format!("/v1/tenants/{SUB}/alerts"), &json!(batch))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let alerts_file = dir.path().join("alerts.json");
    std::fs::write(&alerts_file, serde_json::to_vec(&alerts).unwrap()).unwrap();

    let socket = d.socket.clone();
    let script = root().join("tests/azure_sdk/sdk_e2e.py");
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .env("STEWARD_SOCKET", &socket)
            .env("STEWARD_SUBSCRIPTION", SUB)
            .env("STEWARD_ALERTS", &alerts_file)
            .env("STEWARD_USER", me())
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the SDK script failed after {:?}:\n{stdout}\n{stderr}",
        started.elapsed()
    );
    assert!(stdout.contains("checks passed"), "{stdout}\n{stderr}");

    // The SDK's calls were audited as the test's OS user, with the operations' own names,
    // exactly as the /v1 routes audit them.
    let audit = d.audit_of(SUB).await;
    let me = me();
    let done = |op: &str, status| {
        audit
            .iter()
            .filter(|r| r.operation_name == op && r.status == status && r.caller.user == me)
            .count()
    };
    assert_eq!(
        done("contacts.write", Succeeded),
        3,
        "two creates, one replace"
    );
    assert_eq!(done("contacts.delete", Succeeded), 1);
    assert_eq!(done("jit.write", Succeeded), 5);
    assert_eq!(done("jit.initiate", Succeeded), 1);
    assert_eq!(done("jit.delete", Succeeded), 1);
    assert!(
        done("alerts.dismiss", Denied) >= 1,
        "state actions are audited as denied"
    );
    let (s, v, _) = d
        .client()
        .get(&format!("/v1/tenants/{SUB}/audit/verify"))
        .await;
    assert_eq!((s, &v["ok"]), (StatusCode::OK, &json!(true)), "{v}");
    d.stop().await;
}
