//! One bounded `GET` of a JWKS URL on the tokio runtime: hyper's HTTP/1
//! client over TCP, or over rustls (ring, the system's CA certificates) for
//! `https://`. No redirects are followed; the answer must be a 200 within
//! [`TIMEOUT`] and at most [`MAX_BYTES`].

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::header::{ACCEPT, HOST, USER_AGENT};
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// The whole fetch: connect, TLS, request, body.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// The largest document taken (a JWKS of a few keys is a few KiB).
pub const MAX_BYTES: usize = 1 << 20;

/// Why a fetch failed. Says where (the URL without its query or user
/// part), never what a query string might carry.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{0}: not an http:// or https:// URL with a host")]
    BadUrl(String),
    #[error("{url}: {reason}")]
    Failed { url: String, reason: String },
    #[error("{url}: answered {status}")]
    Status { url: String, status: u16 },
    #[error("{0}: no complete answer within 10 s")]
    Timeout(String),
}

/// The URL as it may be logged: scheme, host, port and path.
pub fn printable(url: &str) -> String {
    match url.parse::<Uri>() {
        Ok(uri) => {
            format!(
                "{}://{}{}",
                uri.scheme_str().unwrap_or("?"),
                uri.host().unwrap_or("?"),
                uri.port().map(|p| format!(":{p}")).unwrap_or_default()
            ) + uri.path()
        }
        Err(_) => "<unparsable url>".into(),
    }
}

/// GETs `url`; the body of a 200.
pub async fn get(url: &str) -> Result<Bytes, FetchError> {
    let shown = printable(url);
    let uri: Uri = url.parse().map_err(|_| FetchError::BadUrl(shown.clone()))?;
    let tls = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(FetchError::BadUrl(shown)),
    };
    let host = uri
        .host()
        .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_string())
        .filter(|h| !h.is_empty())
        .ok_or_else(|| FetchError::BadUrl(shown.clone()))?;
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let authority = uri
        .authority()
        .map(|a| {
            a.as_str()
                .rsplit('@')
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .unwrap_or_default();
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let req = Request::get(path)
        .header(HOST, authority)
        .header(ACCEPT, "application/json, application/jwk-set+json")
        .header(USER_AGENT, concat!("ws-chat/", env!("CARGO_PKG_VERSION")))
        .body(Empty::<Bytes>::new())
        .map_err(|_| FetchError::BadUrl(shown.clone()))?;
    let failed = |reason: String| FetchError::Failed {
        url: shown.clone(),
        reason,
    };
    let attempt = async {
        let tcp = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| failed(e.to_string()))?;
        if tls {
            let name = rustls::pki_types::ServerName::try_from(host.clone())
                .map_err(|_| FetchError::BadUrl(shown.clone()))?;
            let config = client_config().map_err(|e| failed(e.clone()))?;
            let stream = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(|e| failed(format!("TLS: {e}")))?;
            send(TokioIo::new(stream), req).await
        } else {
            send(TokioIo::new(tcp), req).await
        }
        .map_err(|e| match e {
            Sent::Status(status) => FetchError::Status {
                url: shown.clone(),
                status,
            },
            Sent::Failed(reason) => failed(reason),
        })
    };
    tokio::time::timeout(TIMEOUT, attempt)
        .await
        .map_err(|_| FetchError::Timeout(shown.clone()))?
}

enum Sent {
    Status(u16),
    Failed(String),
}

async fn send<I>(io: I, req: Request<Empty<Bytes>>) -> Result<Bytes, Sent>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| Sent::Failed(e.to_string()))?;
    // Drives the connection; it ends with the response (or the timeout).
    let driver = tokio::spawn(conn);
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| Sent::Failed(e.to_string()))?;
    if resp.status() != hyper::StatusCode::OK {
        driver.abort();
        return Err(Sent::Status(resp.status().as_u16()));
    }
    let body = Limited::new(resp.into_body(), MAX_BYTES)
        .collect()
        .await
        .map_err(|e| Sent::Failed(format!("reading the body: {e}")))?;
    driver.abort();
    Ok(body.to_bytes())
}

/// rustls with ring and the system's CA certificates, built once.
fn client_config() -> Result<Arc<rustls::ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                return Err("no CA certificates found on this system".into());
            }
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map(|b| Arc::new(b.with_root_certificates(roots).with_no_client_auth()))
                .map_err(|e| e.to_string())
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_urls_lose_user_and_query() {
        assert_eq!(
            printable("https://user:pw@id.example:8443/jwks.json?key=s3cret"),
            "https://id.example:8443/jwks.json"
        );
        assert_eq!(printable("http://127.0.0.1/k"), "http://127.0.0.1/k");
    }
}
