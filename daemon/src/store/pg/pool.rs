//! The read connections: `pool_size` threads, each owning one synchronous
//! [`postgres::Client`], taking work from one queue.
//!
//! Why threads: the synchronous client drives its own small tokio runtime, which must not
//! be entered from a thread that is already inside the daemon's runtime (it would panic).
//! A read handed to a pool thread runs outside any runtime, and its caller waits for the
//! answer the way a redb read waits for the disk. Work crosses as a `'static` closure, so
//! callers bring owned parameters and filter the rows they get back themselves.
//!
//! A connection that broke (the server restarted, a failover) is opened again before the
//! next read it takes; a read that fails on it reports the error once.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use postgres::{Client, Config, NoTls};

use crate::store::error::StoreError;

/// A read, run against one pooled connection.
type Work = Box<dyn FnOnce(&mut Client) + Send>;

/// The read connections' threads and their queue. Dropping the last handle ends them.
#[derive(Debug)]
pub(crate) struct Pool {
    /// The queue the threads take work from.
    queue: Mutex<Option<mpsc::Sender<Work>>>,
}

impl Pool {
    /// Opens `size` connections (each on its own thread), failing if any cannot connect.
    pub(crate) fn open(config: &Config, size: usize) -> Result<Arc<Pool>, StoreError> {
        let (tx, rx) = mpsc::channel::<Work>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..size.max(1) {
            let client = connect(config)?;
            let rx = rx.clone();
            let config = config.clone();
            std::thread::Builder::new()
                .name(format!("steward-pg-read-{i}"))
                .spawn(move || serve(client, &config, &rx))?;
        }
        Ok(Arc::new(Pool {
            queue: Mutex::new(Some(tx)),
        }))
    }

    /// Runs `f` on a pooled connection and waits for its answer.
    pub(crate) fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Client) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel();
        let work: Work = Box::new(move |client: &mut Client| {
            let _ = tx.send(f(client));
        });
        let queue = self
            .queue
            .lock()
            .map_err(|_| StoreError::WriterStopped)?
            .clone()
            .ok_or(StoreError::WriterStopped)?;
        queue.send(work).map_err(|_| StoreError::WriterStopped)?;
        rx.recv().map_err(|_| StoreError::WriterStopped)?
    }

    /// Stops taking work: the threads end once the queue is empty.
    pub(crate) fn close(&self) {
        if let Ok(mut q) = self.queue.lock() {
            q.take();
        }
    }
}

/// Opens one connection with the store's session settings: durable commits
/// (`synchronous_commit = on`, whatever the server's default) and UTC.
pub(crate) fn connect(config: &Config) -> Result<Client, StoreError> {
    let mut client = config.connect(NoTls)?;
    client.batch_execute("SET synchronous_commit = on; SET TIME ZONE 'UTC'")?;
    Ok(client)
}

/// A pool thread: takes work until the queue closes, reconnecting a broken connection
/// before the next piece of work.
fn serve(mut client: Client, config: &Config, rx: &Mutex<mpsc::Receiver<Work>>) {
    loop {
        let work = match rx.lock() {
            Ok(rx) => match rx.recv() {
                Ok(w) => w,
                Err(_) => return,
            },
            Err(_) => return,
        };
        if client.is_closed() {
            match connect(config) {
                Ok(c) => client = c,
                Err(e) => tracing::warn!(error = %e, "cannot reconnect to PostgreSQL"),
            }
        }
        work(&mut client);
    }
}
