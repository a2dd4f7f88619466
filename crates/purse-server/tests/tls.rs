//! HTTPS: `serve` with a certificate answers over TLS (rustls on both ends), and the server
//! closes the ledger when its shutdown comes.
//!
//! The fixture is a self-signed P-256 certificate for localhost and 127.0.0.1, valid for a
//! hundred years, made once with
//! `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout tls-key.pem
//! -out tls-cert.pem -days 36500 -subj /CN=localhost
//! -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -addext "basicConstraints=critical,CA:FALSE"
//! -addext "extendedKeyUsage=serverAuth"`. It protects nothing: it is a test's key.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;

use purse_ledger::{Ledger, LedgerConfig};
use purse_server::{serve, AppState, KeyStore, Keys, Scope, ServeOptions, ServerConfig};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// One HTTPS request on a fresh connection; the whole answer as text.
fn https(address: std::net::SocketAddr, request: &str) -> String {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(fixture("tls-cert.pem")).unwrap()).unwrap();
    let config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    let name = ServerName::try_from("localhost").unwrap();
    let connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let socket = std::net::TcpStream::connect(address).unwrap();
    let mut stream = rustls::StreamOwned::new(connection, socket);
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    // The server closes the connection after answering (Connection: close).
    let _ = stream.read_to_string(&mut answer);
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_https_with_the_given_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(LedgerConfig::new(dir.path().join("ledger"))).await.unwrap();
    let mut keys = Keys { version: 1, ..Keys::default() };
    let (_, token) = keys.add_key("reader", Scope::Read).unwrap();
    let state = AppState::new(ledger, KeyStore::fixed(keys), ServerConfig::default());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let options = ServeOptions { tls: Some((fixture("tls-cert.pem"), fixture("tls-key.pem"))) };
    let server = tokio::spawn(serve(listener, state, options, async move {
        let _ = stopped.await;
    }));
    let health = tokio::task::spawn_blocking(move || {
        let health = https(address, "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        let rules = https(
            address,
            &format!("GET /v1/rules HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"),
        );
        (health, rules)
    })
    .await
    .unwrap();
    assert!(health.0.starts_with("HTTP/1.1 200"), "{}", health.0);
    assert!(health.0.contains("{\"status\":\"ok\"}"), "{}", health.0);
    assert!(health.1.starts_with("HTTP/1.1 200"), "{}", health.1);
    assert!(health.1.contains("PERCENT_DEDUCT"), "{}", health.1);
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    // The ledger was closed: it opens again here.
    Ledger::open(LedgerConfig::new(dir.path().join("ledger"))).await.unwrap().close().await.unwrap();
}
