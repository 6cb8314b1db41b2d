//! `POST /v1/backup`: a consistent copy of the data directory, streamed while the node runs
//! ([`crate::backup`]).

use super::openapi::ProblemDetails;
use super::Routes;
use crate::backup::write_backup;
use crate::problem::Problem;
use crate::state::AppState;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::Response;
use std::io::Write;

/// Bytes the response is sent in.
const CHUNK: usize = 64 * 1024;

pub fn router() -> Routes {
    Routes::new().post("/v1/backup", backup)
}

/// Streams the backup as it is written on the blocking pool, a few chunks ahead of the client:
/// the node holds no more than that in memory, however large the directory. Should the copy fail
/// midway, the response is cut short, and the file it made fails its digest check.
#[utoipa::path(
    post, path = "/v1/backup", tag = "operations", operation_id = "backup",
    summary = "A consistent copy of the data directory, streamed while the node runs",
    description = "The node's state as of one applied height and the decision log up to it, as `accord restore` reads it (docs/server.md, Backup and restore). It holds the decision log and consents: the `audit` role.",
    responses(
        (status = 200, description = "The backup file: a header, every tree, a SHA-256 of the whole", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 503, description = "`state-unavailable`: the storage is faulted", content_type = "application/problem+json", body = ProblemDetails),
    ),
    security(("token" = ["audit"]))
)]
pub(crate) async fn backup(State(state): State<AppState>) -> Result<Response, Problem> {
    let storage = state.storage()?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::task::spawn_blocking(move || {
        let out = Chunks {
            tx: tx.clone(),
            buf: Vec::with_capacity(CHUNK),
        };
        match write_backup(&storage.db, Some(&storage.node), out) {
            Ok(header) => tracing::info!(
                height = header.height,
                entries = header.decision_log_entries,
                "backup written"
            ),
            Err(e) => {
                tracing::error!(error = %e, "backup failed");
                let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    let mut response = Response::new(Body::from_stream(stream));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    Ok(response)
}

/// Sends what is written as chunks of [`CHUNK`] bytes; fails once the client is gone.
struct Chunks {
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

impl Chunks {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx
            .blocking_send(Ok(Bytes::from(chunk)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client gone"))
    }
}

impl Write for Chunks {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}
