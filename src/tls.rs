//! In-process TLS (rustls; TLS 1.2 and 1.3 only) for deployments with nothing
//! in front: the acceptor, and a certificate that is swapped in place when
//! its files change, without dropping a connection.
//!
//! hyper serves the upgrade request over the TLS stream; the session then
//! takes the TCP stream and the rustls connection back and drives rustls
//! without an async wrapper, on the same readiness loop as plain sockets.

use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

use crate::config::TlsSettings;

/// Why the certificate or key could not be used. Names the file, never
/// its contents.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("set both tls.cert_file and tls.key_file")]
    Incomplete,
    #[error("cert_file {path}: {reason}")]
    Cert { path: String, reason: String },
    #[error("key_file {path}: {reason}")]
    Key { path: String, reason: String },
    #[error("key_file {key} does not belong to cert_file {cert}: {reason}")]
    Mismatch {
        cert: String,
        key: String,
        reason: String,
    },
    #[error("tls: {0}")]
    Config(#[from] rustls::Error),
}

/// Reads and checks the certificate chain and key named in the settings.
pub fn load(settings: &TlsSettings) -> Result<CertifiedKey, TlsError> {
    let (cert_path, key_path) = (&settings.cert_file, &settings.key_file);
    if cert_path.is_empty() || key_path.is_empty() {
        return Err(TlsError::Incomplete);
    }
    let cert_err = |reason: String| TlsError::Cert {
        path: cert_path.clone(),
        reason,
    };
    let key_err = |reason: String| TlsError::Key {
        path: key_path.clone(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(cert_path)
        .map_err(|e| cert_err(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_err(e.to_string()))?;
    if certs.is_empty() {
        return Err(cert_err("no certificate in it".into()));
    }
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| key_err(e.to_string()))?;
    let signer =
        rustls::crypto::ring::sign::any_supported_type(&key).map_err(|e| key_err(e.to_string()))?;
    let certified = CertifiedKey::new(certs, signer);
    certified.keys_match().map_err(|e| TlsError::Mismatch {
        cert: cert_path.clone(),
        key: key_path.clone(),
        reason: e.to_string(),
    })?;
    Ok(certified)
}

#[derive(Debug)]
struct Current(ArcSwap<CertifiedKey>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.load_full())
    }
}

/// The problem with the TLS settings, if TLS is on and its files do not load.
pub fn problems(settings: &TlsSettings) -> Vec<String> {
    match settings.enabled() {
        true => load(settings)
            .err()
            .map(|e| format!("tls: {e}"))
            .into_iter()
            .collect(),
        false => Vec::new(),
    }
}

/// The TLS acceptor and its reloadable certificate.
pub struct Tls {
    pub acceptor: TlsAcceptor,
    current: Arc<Current>,
}

impl Tls {
    /// Builds the acceptor from validated settings.
    pub fn new(settings: &TlsSettings) -> Result<Tls, TlsError> {
        let current = Arc::new(Current(ArcSwap::from_pointee(load(settings)?)));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            current,
        })
    }

    /// Swaps in the certificate from the files; the old one stays on error.
    pub fn reload(&self, settings: &TlsSettings) -> Result<(), TlsError> {
        self.current.0.store(Arc::new(load(settings)?));
        Ok(())
    }
}
