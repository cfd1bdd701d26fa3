//! JWT test helpers: real keys made by the `openssl` CLI, real signed
//! tokens (the `jsonwebtoken` crate), a server started from a config file,
//! and a tiny JWKS server on 127.0.0.1 whose document and availability the
//! test controls.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::TestServer;

/// A private key (to sign) and its public half (for the server), as PEM.
pub struct KeyPair {
    pub private_pem: Vec<u8>,
    pub public_pem: Vec<u8>,
}

fn openssl(args: &[&str], input: Option<&[u8]>) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the openssl CLI (scripts/deps/jwt.sh installs it)");
    if let Some(bytes) = input {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(bytes)
            .expect("write");
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("openssl");
    assert!(out.status.success(), "openssl {args:?} failed");
    out.stdout
}

fn generate(genpkey: &[&str], traditional: bool) -> KeyPair {
    let mut args = vec!["genpkey"];
    args.extend_from_slice(genpkey);
    let private = openssl(&args, None);
    let public = openssl(&["pkey", "-pubout"], Some(&private));
    // jsonwebtoken signs RSA with a PKCS#1 ("RSA PRIVATE KEY") key.
    let private = match traditional {
        true => openssl(&["pkey", "-traditional"], Some(&private)),
        false => private,
    };
    KeyPair {
        private_pem: private,
        public_pem: public,
    }
}

/// The key pair for an asymmetric algorithm, made once per test binary
/// (one RSA key serves RS256/384/512 and PS256).
pub fn key_pair(alg: Algorithm) -> &'static KeyPair {
    static RSA: OnceLock<KeyPair> = OnceLock::new();
    static P256: OnceLock<KeyPair> = OnceLock::new();
    static P384: OnceLock<KeyPair> = OnceLock::new();
    static ED: OnceLock<KeyPair> = OnceLock::new();
    match alg {
        Algorithm::ES256 => P256.get_or_init(|| {
            generate(
                &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
                false,
            )
        }),
        Algorithm::ES384 => P384.get_or_init(|| {
            generate(
                &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
                false,
            )
        }),
        Algorithm::EdDSA => ED.get_or_init(|| generate(&["-algorithm", "ed25519"], false)),
        _ => RSA.get_or_init(|| {
            generate(
                &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
                true,
            )
        }),
    }
}

/// A second, different key of the same kind (rotation, JWKS tests).
pub fn other_key_pair(alg: Algorithm) -> KeyPair {
    match alg {
        Algorithm::ES256 => generate(
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            false,
        ),
        Algorithm::EdDSA => generate(&["-algorithm", "ed25519"], false),
        _ => panic!("other_key_pair: ES256 or EdDSA"),
    }
}

/// The signing key for `alg`: `secret` for HS*, the key pair's private key otherwise.
pub fn encoding_key(alg: Algorithm, secret: &[u8], pair: Option<&KeyPair>) -> EncodingKey {
    let pair = || pair.unwrap_or_else(|| key_pair(alg));
    match alg {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => secret_key(secret),
        Algorithm::ES256 | Algorithm::ES384 => {
            EncodingKey::from_ec_pem(&pair().private_pem).expect("ec key")
        }
        Algorithm::EdDSA => EncodingKey::from_ed_pem(&pair().private_pem).expect("ed key"),
        _ => EncodingKey::from_rsa_pem(&pair().private_pem).expect("rsa key"),
    }
}

/// An HMAC signing key.
pub fn secret_key(secret: &[u8]) -> EncodingKey {
    EncodingKey::from_secret(secret).expect("a non-empty secret")
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// Claims valid for an hour for user `sub`.
pub fn claims(sub: &str) -> Value {
    json!({ "sub": sub, "exp": now() + 3600, "iat": now() })
}

/// Signs `claims` with `key` as `alg`, naming `kid` in the header.
pub fn sign(alg: Algorithm, kid: Option<&str>, claims: &Value, key: &EncodingKey) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, claims, key).expect("sign")
}

/// A JWK for the public half of `key` with `kid`.
pub fn jwk(alg: Algorithm, kid: &str, key: &EncodingKey) -> Jwk {
    let mut jwk = Jwk::from_encoding_key(key, alg).expect("jwk");
    jwk.common.key_id = Some(kid.to_string());
    jwk
}

/// A JWKS document of these keys.
pub fn jwks(keys: Vec<Jwk>) -> String {
    serde_json::to_string(&JwkSet { keys }).expect("jwks")
}

/// Writes `contents` to `dir/name` and returns the path as a string.
pub fn write(dir: &Path, name: &str, contents: impl AsRef<[u8]>) -> String {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write test file");
    path.to_string_lossy().into_owned()
}

/// Starts a server with the test token and origin, `env` overrides, and
/// `config` (TOML) as its `--config` file at `file` (rewrite it and
/// reload to change settings).
pub async fn start_with_config(file: &Path, config: &str, env: &[(&str, &str)]) -> TestServer {
    std::fs::write(file, config).expect("write config");
    // Refused tokens are the point of these tests: no lock-out in between.
    let mut all = vec![("CHAT__LIMITS__IP_AUTH_FAILURE_BURST", "1000")];
    all.extend_from_slice(env);
    let mut sources = super::test_sources(&all);
    sources.config_file = Some(PathBuf::from(file));
    let settings =
        ws_chat::load_settings(&sources).unwrap_or_else(|e| panic!("test settings: {e}"));
    TestServer::start_with(settings, sources).await
}

/// `ws://addr/chat?token=<token>&query`.
pub fn url_with(server: &TestServer, token: &str, query: &str) -> String {
    format!("ws://{}/chat?token={token}&{query}", server.addr)
}

/// A JWKS document served over plain HTTP on 127.0.0.1, counting reads.
pub struct JwksServer {
    pub url: String,
    doc: Arc<Mutex<String>>,
    hits: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl JwksServer {
    pub async fn start(doc: String) -> JwksServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind jwks");
        let url = format!(
            "http://{}/.well-known/jwks.json",
            listener.local_addr().expect("addr")
        );
        let doc = Arc::new(Mutex::new(doc));
        let hits = Arc::new(AtomicUsize::new(0));
        let (d, h) = (doc.clone(), hits.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let (d, h) = (d.clone(), h.clone());
                tokio::spawn(async move {
                    let mut req = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => req.extend_from_slice(&chunk[..n]),
                        }
                    }
                    h.fetch_add(1, Ordering::SeqCst);
                    let body = d.lock().expect("doc").clone();
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = s.write_all(reply.as_bytes()).await;
                });
            }
        });
        JwksServer {
            url,
            doc,
            hits,
            task,
        }
    }

    /// Serves `doc` from now on.
    pub fn set(&self, doc: String) {
        *self.doc.lock().expect("doc") = doc;
    }

    /// How many requests it has answered.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Stops listening: reads fail with "connection refused" from now on.
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
