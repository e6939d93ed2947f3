//! Connections, identities and event streams of the real `stewardd` process, with real OS
//! users: the connection caps, file descriptors, group membership that changes while a
//! connection is open, and per-tenant event numbering.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{Stewardd, raw};

/// 500 clients in a row, each `Connection: close`, under a per-uid cap of 1: a connection
/// the previous client has finished with no longer counts, so none is refused.
#[test]
fn sequential_connection_close_clients_are_never_refused() {
    let mut d = Stewardd::new("max_connections_per_uid = 1", "");
    d.start();
    let req = b"GET /v1/tenants/contoso/contacts HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let mut refused = 0;
    let mut other = Vec::new();
    for _ in 0..500 {
        let r = raw(&d.socket, req, Duration::from_secs(10), 1);
        match r.statuses.first() {
            Some(200) => {}
            Some(429) => refused += 1,
            s => other.push(format!("{s:?} {r:?}")),
        }
    }
    println!("500 sequential Connection: close clients, per-uid cap 1: {refused} answered 429");
    assert_eq!(refused, 0, "sequential clients under the cap were refused");
    assert!(other.is_empty(), "{other:?}");
    d.stop();
}
