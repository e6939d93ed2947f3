//! A keep-alive HTTP/1.1 connection to the daemon's socket (hyper's `client::conn`), so
//! a measured round trip is one request on an open connection, not a connect.

use std::path::Path;

use anyhow::{Context, Result};
use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;

/// One open connection.
pub struct Conn {
    tx: SendRequest<Full<Bytes>>,
}

impl Conn {
    /// Connects and hands the connection's driver to the runtime.
    pub async fn open(socket: &Path) -> Result<Conn> {
        let stream = UnixStream::connect(socket)
            .await
            .with_context(|| format!("connect {}", socket.display()))?;
        let (tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn { tx })
    }

    /// Sends one request and reads the whole answer.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<(StatusCode, Bytes)> {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "localhost");
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let req = req.body(Full::new(body.unwrap_or_default()))?;
        self.tx.ready().await?;
        let res = self.tx.send_request(req).await?;
        let status = res.status();
        let bytes = res.into_body().collect().await?.to_bytes();
        Ok((status, bytes))
    }

    /// `GET`, failing on anything but 200.
    pub async fn get_ok(&mut self, path: &str) -> Result<Bytes> {
        let (s, b) = self.send(Method::GET, path, None).await?;
        anyhow::ensure!(
            s == StatusCode::OK,
            "GET {path}: {s} {}",
            String::from_utf8_lossy(&b)
        );
        Ok(b)
    }

    /// Streams a `GET` answer, calling `chunk` on each piece as it arrives.
    pub async fn get_streaming(&mut self, path: &str, mut chunk: impl FnMut(&[u8])) -> Result<()> {
        let req = Request::get(path)
            .header(header::HOST, "localhost")
            .body(Full::new(Bytes::new()))?;
        self.tx.ready().await?;
        let res = self.tx.send_request(req).await?;
        anyhow::ensure!(
            res.status() == StatusCode::OK,
            "GET {path}: {}",
            res.status()
        );
        let mut body = res.into_body();
        while let Some(frame) = body.frame().await {
            if let Some(data) = frame?.data_ref() {
                chunk(data);
            }
        }
        Ok(())
    }
}
