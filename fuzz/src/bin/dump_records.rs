//! Writes every stored value of a steward database (documents and audit records, as
//! stored: format byte + postcard) into a directory, one file each, as seeds for the
//! `record` fuzz target: `cargo run --bin dump-records -- DB_FILE OUT_DIR` (daemon stopped).

use redb::{Database, ReadableDatabase, ReadableTable};
use steward_daemon::store::tables::{AUDIT, RECORDS};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(db), Some(out)) = (args.next(), args.next()) else {
        return Err("usage: dump-records DB_FILE OUT_DIR".into());
    };
    std::fs::create_dir_all(&out)?;
    let db = Database::open(&db)?;
    let rtx = db.begin_read()?;
    let mut n = 0;
    for item in rtx.open_table(RECORDS)?.iter()? {
        let (_, v) = item?;
        std::fs::write(format!("{out}/doc-{n}"), v.value())?;
        n += 1;
    }
    for item in rtx.open_table(AUDIT)?.iter()? {
        let (_, v) = item?;
        std::fs::write(format!("{out}/audit-{n}"), v.value())?;
        n += 1;
    }
    println!("{n} values written to {out}");
    Ok(())
}
