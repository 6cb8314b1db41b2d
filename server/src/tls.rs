//! HTTPS: the certificate and key files (`--tls-cert`, `--tls-key`), optional client-certificate
//! authentication (`--tls-client-ca`), and their reload on SIGHUP.
//!
//! The rustls configuration is kept behind an [`ArcSwap`]: a reload builds a new one from the
//! files and swaps it in; connections already open keep the one they started with, new ones get
//! the new one. A reload that fails (a file missing, a key that does not match its certificate)
//! is logged and leaves the configuration in force unchanged.

use crate::config::ConfigError;
use arc_swap::ArcSwap;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::TcpStream;

/// Where the TLS material is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM: the server's certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM: its private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM: the certificate authorities client certificates must chain to; when set, every
    /// connection must present one.
    pub client_ca: Option<PathBuf>,
}

impl TlsFiles {
    /// Builds the rustls configuration from the files. Errors name the setting whose file is at
    /// fault (`tls-cert`, `tls-key`, `tls-client-ca`).
    pub fn load(&self) -> Result<ServerConfig, ConfigError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certs = read_certs(&self.cert).map_err(|e| ConfigError::new("tls-cert", e))?;
        let key = PrivateKeyDer::from_pem_file(&self.key)
            .map_err(|e| ConfigError::new("tls-key", pem_error(&self.key, e, "private key")))?;
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| ConfigError::new("tls-cert", e.to_string()))?;
        let builder = match &self.client_ca {
            None => builder.with_no_client_auth(),
            Some(path) => {
                let fail = |reason: String| ConfigError::new("tls-client-ca", reason);
                let mut roots = RootCertStore::empty();
                for cert in read_certs(path).map_err(fail)? {
                    roots
                        .add(cert)
                        .map_err(|e| fail(format!("{}: {e}", path.display())))?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .map_err(|e| fail(format!("{}: {e}", path.display())))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder.with_single_cert(certs, key).map_err(|e| {
            ConfigError::new(
                "tls-key",
                format!(
                    "{} does not fit {}: {e}",
                    self.key.display(),
                    self.cert.display()
                ),
            )
        })?;
        // The server speaks HTTP/1.1 only.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error(path, e, "certificate"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, e, "certificate"))?;
    if certs.is_empty() {
        return Err(format!("{}: holds no PEM certificate", path.display()));
    }
    Ok(certs)
}

fn pem_error(path: &Path, e: rustls::pki_types::pem::Error, what: &str) -> String {
    match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            format!("{}: holds no PEM {what}", path.display())
        }
        other => format!("{}: {other}", path.display()),
    }
}

/// Accepts TLS connections with the configuration in force; [`Self::reload`] replaces it.
pub struct TlsAcceptor {
    files: TlsFiles,
    current: ArcSwap<ServerConfig>,
}

impl std::fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsAcceptor")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl TlsAcceptor {
    /// Loads the files; an error names the setting at fault.
    pub fn new(files: TlsFiles) -> Result<Arc<Self>, ConfigError> {
        let config = files.load()?;
        Ok(Arc::new(TlsAcceptor {
            files,
            current: ArcSwap::from_pointee(config),
        }))
    }

    /// Whether connections must present a client certificate.
    pub fn requires_client_certificates(&self) -> bool {
        self.files.client_ca.is_some()
    }

    /// Starts the handshake of `stream` under the configuration in force.
    pub fn accept(&self, stream: TcpStream) -> tokio_rustls::Accept<TcpStream> {
        tokio_rustls::TlsAcceptor::from(self.current.load_full()).accept(stream)
    }

    /// Reads the files again and, if they make a configuration, puts it in force; otherwise the
    /// configuration in force stays.
    pub fn reload(&self) -> Result<(), ConfigError> {
        let config = self.files.load()?;
        self.current.store(Arc::new(config));
        Ok(())
    }

    /// Reloads on every SIGHUP until the returned future is dropped. The signal handler is
    /// installed by this call (within a runtime), not when the future first runs, so a SIGHUP
    /// sent once `serve` has started is never the default action (which ends the process).
    pub fn reload_on_sighup(self: Arc<Self>) -> impl std::future::Future<Output = ()> + Send {
        #[cfg(unix)]
        let hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
        async move {
            #[cfg(unix)]
            {
                let mut hangups = match hangups {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot listen for SIGHUP: TLS files are not reloaded");
                        return;
                    }
                };
                while hangups.recv().await.is_some() {
                    match self.reload() {
                        Ok(()) => tracing::info!(
                            cert = %self.files.cert.display(),
                            "SIGHUP: TLS certificate and key reloaded"
                        ),
                        Err(e) => tracing::error!(
                            error = %e,
                            "SIGHUP: TLS files not reloaded; the previous certificate stays in force"
                        ),
                    }
                }
            }
            #[cfg(not(unix))]
            std::future::pending::<()>().await
        }
    }
}
