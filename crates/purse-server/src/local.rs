//! The admin socket: `<data>/serve.sock`, a Unix socket `purse serve` listens on beside its
//! TCP address, so that `purse account`, `purse flows`, `purse verify` … work on a ledger a
//! server holds, instead of failing with "the ledger is in use".
//!
//! How it is found: at the ledger directory, by its fixed name. How it is authorized: by the
//! file system. The socket is made with mode 0600 in a directory only the ledger's owner
//! writes, so whoever can connect could have opened the ledger's files directly; requests that
//! arrive on it are given a per-process admin key (random, never written anywhere), which no
//! TCP client can present.

use std::path::{Path, PathBuf};

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;

/// The socket's name in the ledger directory.
pub const SOCKET_FILE: &str = "serve.sock";

pub fn socket_path(data: &Path) -> PathBuf {
    data.join(SOCKET_FILE)
}

/// A fresh admin key for this process's socket, or `None` when the system gives no
/// randomness: then there is no socket (a key anyone could guess must not exist).
pub fn new_local_key() -> Option<String> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).ok()?;
    Some(format!("local_{}", hex::encode(bytes)))
}

/// Serves `app` on the admin socket until `shutdown`; every request gets `local_key` as its
/// API key. A leftover socket file (a server that was killed) is removed first: this process
/// holds the ledger's lock, so no other server can be using it.
#[cfg(unix)]
pub async fn serve_socket(
    data: &Path,
    app: Router,
    local_key: String,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let path = socket_path(data);
    let _ = std::fs::remove_file(&path);
    // Bound inside a directory only this user can enter, made owner-only there, then moved
    // into place: the socket is never reachable with the umask's looser mode.
    // Leftovers of a server killed while staging (this process holds the ledger's lock, so
    // no other server is staging now).
    if let Ok(entries) = std::fs::read_dir(data) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(".serve-sock-") {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let private = data.join(format!(".serve-sock-{}", std::process::id()));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&private)
        .map_err(|error| format!("{}: {error}", private.display()))?;
    let staged = private.join(SOCKET_FILE);
    let bound = tokio::net::UnixListener::bind(&staged)
        .map_err(|error| format!("{}: {error}", staged.display()))
        .and_then(|listener| {
            std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o600))
                .and_then(|()| std::fs::rename(&staged, &path))
                .map_err(|error| format!("{}: {error}", path.display()))
                .map(|()| listener)
        });
    let _ = std::fs::remove_dir_all(&private);
    let listener = bound?;
    let bearer = HeaderValue::from_str(&format!("Bearer {local_key}")).map_err(|error| error.to_string())?;
    let app = app.layer(axum::middleware::map_request(move |mut request: Request| {
        let bearer = bearer.clone();
        async move {
            request.headers_mut().insert(axum::http::header::AUTHORIZATION, bearer);
            request
        }
    }));
    let served = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
    let _ = std::fs::remove_file(&path);
    served.map_err(|error| format!("serving {}: {error}", path.display()))
}

/// An answer from the admin socket: its status and its body, streamed.
#[derive(Debug)]
pub struct LocalAnswer {
    pub status: StatusCode,
    pub body: Body,
}

impl LocalAnswer {
    /// The next piece of the body, or `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, String> {
        loop {
            match self.body.frame().await {
                None => return Ok(None),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        return Ok(Some(data));
                    }
                }
                Some(Err(error)) => return Err(format!("reading the server's answer: {error}")),
            }
        }
    }
}

/// Sends `method path_and_query` to the server holding the ledger at `data`. `Err` when no
/// server answers on its socket (then the caller reports the ledger as in use).
#[cfg(unix)]
pub async fn request(data: &Path, method: &str, path_and_query: &str) -> Result<LocalAnswer, String> {
    let path = socket_path(data);
    let stream =
        tokio::net::UnixStream::connect(&path).await.map_err(|error| format!("{}: {error}", path.display()))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|error| format!("{}: {error}", path.display()))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let request = axum::http::Request::builder()
        .method(method)
        .uri(path_and_query)
        .header(axum::http::header::HOST, "localhost")
        .body(http_body_util::Empty::<Bytes>::new())
        .map_err(|error| error.to_string())?;
    let response = sender.send_request(request).await.map_err(|error| format!("{}: {error}", path.display()))?;
    let (parts, body) = response.into_parts();
    Ok(LocalAnswer { status: parts.status, body: Body::new(body) })
}
