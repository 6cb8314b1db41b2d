//! HTTPS: the served certificate, client certificates, and the reload on SIGHUP.

use crate::TestServer;
use accord_server::tls::{TlsAcceptor, TlsFiles};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A certificate authority that issues server and client certificates.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// An issued certificate and its key.
struct Issued {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).expect("CA");
        Ca { cert, key }
    }

    fn issue(&self, name: &str) -> Issued {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(vec![name.to_owned()]).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("issued");
        Issued { cert, key }
    }
}

impl Issued {
    fn write(&self, dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, self.cert.pem()).expect("write cert");
        std::fs::write(&key, self.key.serialize_pem()).expect("write key");
        (cert, key)
    }
}

/// What a TLS client saw: the server's leaf certificate and the HTTP answer (or the error that
/// ended the connection).
struct Seen {
    leaf: Option<Vec<u8>>,
    answer: Result<String, String>,
}

/// `GET path` over TLS, trusting `ca`, presenting `client` if given.
async fn fetch(base: &str, ca: &rcgen::Certificate, client: Option<&Issued>, path: &str) -> Seen {
    let addr = base.trim_start_matches("https://").to_owned();
    let ca = ca.der().clone();
    let client = client.map(|c| {
        (
            vec![c.cert.der().clone()],
            PrivateKeyDer::try_from(c.key.serialize_der()).expect("client key"),
        )
    });
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca).expect("CA");
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
        let config = match client {
            Some((certs, key)) => builder.with_client_auth_cert(certs, key).expect("client"),
            None => builder.with_no_client_auth(),
        };
        let name = ServerName::try_from("localhost").expect("name");
        let conn = rustls::ClientConnection::new(Arc::new(config), name).expect("connection");
        let tcp = std::net::TcpStream::connect(&addr).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let request =
            format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n");
        let written = tls.write_all(request.as_bytes());
        let leaf = tls
            .conn
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c: &CertificateDer<'_>| c.to_vec());
        let mut out = Vec::new();
        let read = written.and_then(|()| tls.read_to_end(&mut out));
        let answer = match read {
            // A peer that closes without close_notify still sent its answer.
            Ok(_) => Ok(String::from_utf8_lossy(&out).into_owned()),
            Err(_) if !out.is_empty() => Ok(String::from_utf8_lossy(&out).into_owned()),
            Err(e) => Err(e.to_string()),
        };
        Seen { leaf, answer }
    })
    .await
    .expect("client task")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_serves_the_api_and_reloads_its_certificate_on_sighup() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tls_dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::new("test CA");
    let first = ca.issue("localhost");
    let (cert, key) = first.write(tls_dir.path());
    let acceptor = TlsAcceptor::new(TlsFiles {
        cert,
        key,
        client_ca: None,
    })
    .expect("TLS files load");
    let server = TestServer::start_tls(dir.path(), Arc::clone(&acceptor), |_| {}).await;
    assert!(server.base.starts_with("https://"));

    let seen = fetch(&server.base, &ca.cert, None, "/healthz").await;
    assert_eq!(seen.leaf.as_deref(), Some(first.cert.der().as_ref()));
    let answer = seen.answer.expect("an answer");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("x-request-id: "), "{answer}");
    // The request line check applies to the decrypted bytes too.
    let seen = fetch(&server.base, &ca.cert, None, "/a\tb").await;
    assert!(
        seen.answer.expect("an answer").starts_with("HTTP/1.1 400"),
        "a bad request line is refused inside TLS"
    );

    // New files, then SIGHUP: new connections get the new certificate.
    let second = ca.issue("localhost");
    second.write(tls_dir.path());
    let status = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let started = Instant::now();
    loop {
        let seen = fetch(&server.base, &ca.cert, None, "/healthz").await;
        if seen.leaf.as_deref() == Some(second.cert.der().as_ref()) {
            assert!(seen.answer.expect("an answer").starts_with("HTTP/1.1 200"));
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the certificate was not reloaded on SIGHUP"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Files that do not load leave the certificate in force.
    std::fs::write(tls_dir.path().join("cert.pem"), "not PEM").expect("write");
    let e = acceptor.reload().expect_err("refused");
    assert_eq!(e.setting, "tls-cert");
    let seen = fetch(&server.base, &ca.cert, None, "/healthz").await;
    assert_eq!(seen.leaf.as_deref(), Some(second.cert.der().as_ref()));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_ca_admits_only_clients_with_a_certificate_it_issued() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tls_dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::new("server CA");
    let (cert, key) = ca.issue("localhost").write(tls_dir.path());
    let clients = Ca::new("ledger nodes");
    let client_ca = tls_dir.path().join("clients.pem");
    std::fs::write(&client_ca, clients.cert.pem()).expect("write");
    let acceptor = TlsAcceptor::new(TlsFiles {
        cert,
        key,
        client_ca: Some(client_ca),
    })
    .expect("TLS files load");
    assert!(acceptor.requires_client_certificates());
    let server = TestServer::start_tls(dir.path(), acceptor, |_| {}).await;

    let node = clients.issue("ledger-node-1");
    let admitted = fetch(&server.base, &ca.cert, Some(&node), "/healthz").await;
    let answer = admitted.answer.expect("an answer");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    for (who, client) in [
        ("no certificate", None),
        ("a certificate of another CA", Some(ca.issue("intruder"))),
    ] {
        let refused = fetch(&server.base, &ca.cert, client.as_ref(), "/healthz").await;
        assert!(
            !refused
                .answer
                .as_deref()
                .unwrap_or("")
                .starts_with("HTTP/1.1"),
            "{who}: {:?}",
            refused.answer
        );
    }
    server.stop().await;
}

#[test]
fn tls_files_that_do_not_load_name_the_setting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::new("CA");
    let (cert, key) = ca.issue("localhost").write(dir.path());
    let other_key = dir.path().join("other-key.pem");
    std::fs::write(
        &other_key,
        KeyPair::generate().expect("key").serialize_pem(),
    )
    .expect("write");
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "-----BEGIN NOTHING-----\n").expect("write");
    let missing = dir.path().join("missing.pem");
    for (files, setting, says) in [
        (
            (missing.clone(), key.clone(), None),
            "tls-cert",
            "missing.pem",
        ),
        (
            (garbage.clone(), key.clone(), None),
            "tls-cert",
            "garbage.pem",
        ),
        (
            (cert.clone(), missing.clone(), None),
            "tls-key",
            "missing.pem",
        ),
        (
            (cert.clone(), cert.clone(), None),
            "tls-key",
            "no PEM private key",
        ),
        ((cert.clone(), other_key, None), "tls-key", "does not fit"),
        (
            (cert.clone(), key.clone(), Some(missing)),
            "tls-client-ca",
            "missing.pem",
        ),
        ((cert, key, Some(garbage)), "tls-client-ca", "garbage.pem"),
    ] {
        let (cert, key, client_ca) = files;
        let e = TlsAcceptor::new(TlsFiles {
            cert,
            key,
            client_ca,
        })
        .expect_err("refused");
        assert_eq!(e.setting, setting, "{e}");
        assert!(e.reason.contains(says), "{e}");
    }
}
