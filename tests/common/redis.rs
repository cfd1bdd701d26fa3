//! A real `redis-server` per test: on a free port, without persistence or
//! with an append-only file in a temp dir, killed with SIGKILL and restarted
//! on the same port for the failure cases. A missing `redis-server` fails the
//! test with a message saying how to install it; it is never skipped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// PEM files for a TLS `redis-server`: a private CA, a server certificate it
/// signed for 127.0.0.1 and localhost, and a client certificate it signed.
#[derive(Clone)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl TlsFiles {
    /// Generates a fresh CA, server and client certificate into `dir`.
    pub fn generate(dir: &Path) -> TlsFiles {
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "ws-chat test CA");
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).expect("CA");
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
            .expect("params")
            .signed_by(&key, &*ca)
            .expect("certificate");
        let client_key = rcgen::KeyPair::generate().expect("client key");
        let client_cert = rcgen::CertificateParams::new(vec!["ws-chat".into()])
            .expect("params")
            .signed_by(&client_key, &*ca)
            .expect("client certificate");
        let files = TlsFiles {
            ca: dir.join("ca.pem"),
            cert: dir.join("redis.pem"),
            key: dir.join("redis.key"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client.key"),
        };
        let write = |path: &Path, pem: String| std::fs::write(path, pem).expect("write PEM");
        write(&files.ca, ca.pem());
        write(&files.cert, cert.pem());
        write(&files.key, key.serialize_pem());
        write(&files.client_cert, client_cert.pem());
        write(&files.client_key, client_key.serialize_pem());
        files
    }
}

/// One `redis-server` child process.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
    persistent: bool,
    password: Option<String>,
    tls: Option<(TlsFiles, bool)>,
}

impl RedisServer {
    /// No persistence (`--save "" --appendonly no`): a restart loses everything.
    pub fn start() -> RedisServer {
        Self::launch(false, None)
    }

    /// Append-only file in a temp dir, fsync on every write: a restart keeps
    /// every acknowledged write.
    pub fn start_persistent() -> RedisServer {
        Self::launch(true, None)
    }

    /// No persistence, `requirepass` set.
    pub fn start_with_password(password: &str) -> RedisServer {
        Self::launch(false, Some(password.to_string()))
    }

    /// No persistence, TLS only (no plain port). `client_certs`: clients must
    /// show a certificate the CA signed (redis-server's own default with TLS);
    /// otherwise they are not asked, as on managed Redis services.
    pub fn start_tls(files: &TlsFiles, client_certs: bool) -> RedisServer {
        let mut s = Self::new(false, None);
        s.tls = Some((files.clone(), client_certs));
        s.spawn();
        s
    }

    fn launch(persistent: bool, password: Option<String>) -> RedisServer {
        let mut s = Self::new(persistent, password);
        s.spawn();
        s
    }

    fn new(persistent: bool, password: Option<String>) -> RedisServer {
        RedisServer {
            port: super::free_port(),
            child: None,
            dir: tempfile::tempdir().expect("temp dir for redis"),
            persistent,
            password,
            tls: None,
        }
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new("redis-server");
        let port = self.port.to_string();
        match &self.tls {
            None => cmd.args(["--port", &port]),
            Some((t, client_certs)) => cmd
                .args(["--port", "0", "--tls-port", &port, "--tls-auth-clients"])
                .arg(if *client_certs { "yes" } else { "no" })
                .arg("--tls-cert-file")
                .arg(&t.cert)
                .arg("--tls-key-file")
                .arg(&t.key)
                .arg("--tls-ca-cert-file")
                .arg(&t.ca),
        };
        cmd.args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            // DEBUG SLEEP stalls Redis for the lost-reply test.
            .args(["--enable-debug-command", "yes"])
            .args(["--dir", &self.dir.path().to_string_lossy()])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if self.persistent {
            cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            cmd.args(["--appendonly", "no"]);
        }
        if let Some(pw) = &self.password {
            cmd.args(["--requirepass", pw]);
        }
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "redis-server is not installed: these tests need it \
                 (Debian package redis-server; run scripts/install-deps.sh)"
            ),
            Err(e) => panic!("cannot start redis-server: {e}"),
        };
        self.child = Some(child);
        self.wait_ping();
    }

    /// Blocking, not [`super::eventually`]: the constructors are synchronous.
    fn wait_ping(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.try_query(&["PING"]) {
                Ok(_) => return,
                Err(e) if Instant::now() >= deadline => panic!(
                    "redis-server on port {} did not answer PING within 10 s: {e}",
                    self.port
                ),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// `redis://127.0.0.1:<port>`, or `rediss://` with TLS (no password in it).
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// Runs one command; panics on failure.
    pub fn query(&self, args: &[&str]) -> redis::Value {
        self.try_query(args)
            .unwrap_or_else(|e| panic!("redis {args:?}: {e}"))
    }

    fn try_query(&self, args: &[&str]) -> redis::RedisResult<redis::Value> {
        let mut info = redis::IntoConnectionInfo::into_connection_info(self.url().as_str())?;
        if let Some(pw) = &self.password {
            let r = info.redis_settings().clone().set_password(pw);
            info = info.set_redis_settings(r);
        }
        let client = match &self.tls {
            None => redis::Client::open(info)?,
            Some((t, _)) => {
                let read = |path: &Path| std::fs::read(path).expect("read PEM");
                let certs = redis::TlsCertificates {
                    client_tls: Some(redis::ClientTlsConfig {
                        client_cert: read(&t.client_cert),
                        client_key: read(&t.client_key),
                    }),
                    root_cert: Some(read(&t.ca)),
                };
                redis::Client::build_with_tls(info, certs)?
            }
        };
        let mut conn = client.get_connection_with_timeout(Duration::from_millis(500))?;
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query(&mut conn)
    }

    /// SIGKILL, and wait until it is gone.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts again on the same port (and data dir) and waits for PING.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// The `CHAT__BROKER__*` settings that point a server here.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("CHAT__BROKER__KIND", "redis".to_string()),
            ("CHAT__BROKER__REDIS_URL", self.url()),
        ]
    }
}

/// `env` as the `(&str, &str)` pairs the test servers take.
pub fn as_vars<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
