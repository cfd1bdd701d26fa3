//! A real `redis-server` per test: on a free port, without persistence or
//! with an append-only file in a temp dir, killed with SIGKILL and restarted
//! on the same port for the failure cases. A missing `redis-server` fails the
//! test with a message saying how to install it; it is never skipped. Also the
//! process plumbing the cluster and sentinel harnesses share: spawning,
//! waiting for PING, querying one node, SIGKILL and respawn ([`RedisNode`]).

use std::ffi::OsString;
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
        self.child = Some(spawn_checked(cmd));
        let port = self.port;
        poll_blocking(
            &format!("redis-server on port {port} to answer PING"),
            Duration::from_secs(10),
            || self.try_query(&["PING"]).map_err(|e| e.to_string()),
        );
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
        run(&client, args)
    }

    /// Stalls Redis for `seconds` with `DEBUG SLEEP`, sent from a blocking
    /// thread; the handle ends when Redis answers again. Plain servers only.
    pub fn stall(&self, seconds: f64) -> tokio::task::JoinHandle<()> {
        let url = self.url();
        tokio::task::spawn_blocking(move || {
            let client = redis::Client::open(url.as_str()).expect("client");
            let mut conn = client.get_connection().expect("connection");
            redis::cmd("DEBUG")
                .arg("SLEEP")
                .arg(seconds)
                .query::<()>(&mut conn)
                .expect("DEBUG SLEEP");
        })
    }

    /// SIGKILL, and wait until it is gone.
    pub fn kill(&mut self) {
        kill_child(&mut self.child);
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

/// Spawns `cmd` (a `redis-server`, as a server or a sentinel); a missing
/// binary fails the test saying how to install it.
fn spawn_checked(mut cmd: Command) -> Child {
    match cmd.spawn() {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "redis-server is not installed: these tests need it \
             (Debian package redis-server; run scripts/install-deps.sh)"
        ),
        Err(e) => panic!("cannot start redis-server: {e}"),
    }
}

/// One command on a fresh connection from `client`: 500 ms to connect, 2 s
/// for the reply (a stalled node fails the query instead of the test hanging).
fn run(client: &redis::Client, args: &[&str]) -> redis::RedisResult<redis::Value> {
    Ok(run_all(client, &[args])?.remove(0))
}

/// Commands one after another on one fresh connection (as `WAIT` needs: it
/// waits for the writes of its own connection).
fn run_all(client: &redis::Client, cmds: &[&[&str]]) -> redis::RedisResult<Vec<redis::Value>> {
    let mut conn = client.get_connection_with_timeout(Duration::from_millis(500))?;
    conn.set_read_timeout(Some(Duration::from_secs(2)))?;
    conn.set_write_timeout(Some(Duration::from_secs(2)))?;
    cmds.iter()
        .map(|args| {
            let mut cmd = redis::cmd(args[0]);
            for a in &args[1..] {
                cmd.arg(*a);
            }
            cmd.query(&mut conn)
        })
        .collect()
}

/// Asks `probe` every 20 ms until it answers `Ok`, for at most `within`;
/// then panics saying `what` it waited for and the last answer. The blocking
/// twin of [`super::eventually`], for the synchronous constructors.
pub fn poll_blocking<T, E: std::fmt::Display>(
    what: &str,
    within: Duration,
    mut probe: impl FnMut() -> Result<T, E>,
) -> T {
    let started = Instant::now();
    loop {
        match probe() {
            Ok(v) => return v,
            Err(seen) if started.elapsed() >= within => panic!(
                "waited {:?} for {what}; last seen: {seen}",
                started.elapsed()
            ),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// A plain `redis-server` (or `redis-server --sentinel`) on a loopback port,
/// started with fixed arguments: SIGKILLed and respawned with the same ones,
/// so a node keeps its port and its files (cluster config, sentinel config).
/// No TLS; a password if asked for. Dropping it kills it.
pub struct RedisNode {
    pub port: u16,
    args: Vec<OsString>,
    child: Option<Child>,
    /// `requirepass`, which this helper's own connections send.
    password: Option<String>,
}

impl RedisNode {
    /// Spawns `redis-server <args>` (the arguments must make it listen on
    /// `port`) and waits until it answers PING.
    pub fn start(port: u16, args: Vec<OsString>) -> RedisNode {
        let mut node = RedisNode {
            port,
            args,
            child: None,
            password: None,
        };
        node.spawn().unwrap_or_else(|e| panic!("{e}"));
        node
    }

    /// Like [`RedisNode::start`] on `n` free ports (the first one the node's
    /// own, all given to `args`): a port another test took between
    /// [`free_ports`] and the bind is tried again on new ones (3 times).
    pub fn start_on_free_ports(n: usize, args: impl Fn(&[u16]) -> Vec<OsString>) -> RedisNode {
        Self::start_on_free_ports_with(n, None, args)
    }

    /// Like [`RedisNode::start_on_free_ports`], for a node whose `args` set
    /// `--requirepass password`.
    pub fn start_on_free_ports_with(
        n: usize,
        password: Option<&str>,
        args: impl Fn(&[u16]) -> Vec<OsString>,
    ) -> RedisNode {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let ports = free_ports(n);
            let mut node = RedisNode {
                port: ports[0],
                args: args(&ports),
                child: None,
                password: password.map(str::to_owned),
            };
            match node.spawn() {
                Ok(()) => return node,
                Err(e) if attempt >= 3 => panic!("{e} (attempt {attempt})"),
                Err(_) => continue,
            }
        }
    }

    /// Spawns and waits for PING; `Err` when it exits first (a port in use,
    /// a bad argument), saying how.
    fn spawn(&mut self) -> Result<(), String> {
        let mut cmd = Command::new("redis-server");
        cmd.args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = spawn_checked(cmd);
        let pid = child.id().to_string();
        self.child = Some(child);
        let port = self.port;
        let client = redis::Client::open(self.auth_url().as_str()).expect("redis URL");
        let started = poll_blocking(
            &format!("redis-server on port {port} to answer"),
            Duration::from_secs(10),
            || {
                if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                    return Ok(Err(format!(
                        "redis-server on port {port} exited at start ({status}); \
                         arguments {:?}",
                        self.args
                    )));
                }
                // The process that answers must be this one, not another
                // test's that holds the port (this one then exits).
                let info = run(&client, &["INFO", "server"]).map_err(|e| e.to_string())?;
                let info: String = redis::from_redis_value(info).map_err(|e| e.to_string())?;
                match info_field(&info, "process_id") {
                    Some(p) if p == pid => Ok(Ok(())),
                    other => Err(format!("port {port} answered by process {other:?}")),
                }
            },
        );
        if started.is_err() {
            self.child = None;
        }
        started
    }

    /// `redis://127.0.0.1:<port>` (no password in it).
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The URL this helper connects with: the password in it, if any.
    fn auth_url(&self) -> String {
        match &self.password {
            Some(pw) => format!("redis://:{pw}@127.0.0.1:{}", self.port),
            None => self.url(),
        }
    }

    /// Whether it runs (not killed, or restarted since).
    pub fn is_up(&self) -> bool {
        self.child.is_some()
    }

    /// Runs one command; panics on failure.
    pub fn query(&self, args: &[&str]) -> redis::Value {
        self.try_query(args)
            .unwrap_or_else(|e| panic!("redis on port {} {args:?}: {e}", self.port))
    }

    /// Runs one command on a fresh connection.
    pub fn try_query(&self, args: &[&str]) -> redis::RedisResult<redis::Value> {
        run(&redis::Client::open(self.auth_url().as_str())?, args)
    }

    /// Runs commands in turn on one fresh connection (a write and its
    /// `WAIT`); panics on failure.
    pub fn query_all(&self, cmds: &[&[&str]]) -> Vec<redis::Value> {
        redis::Client::open(self.auth_url().as_str())
            .and_then(|c| run_all(&c, cmds))
            .unwrap_or_else(|e| panic!("redis on port {} {cmds:?}: {e}", self.port))
    }

    /// A text reply (`INFO`, `CLUSTER INFO`, `CLUSTER NODES`) as a string.
    pub fn try_text(&self, args: &[&str]) -> Result<String, String> {
        let v = self.try_query(args).map_err(|e| e.to_string())?;
        redis::from_redis_value::<String>(v).map_err(|e| format!("{args:?}: {e}"))
    }

    /// SIGKILL, and wait until it is gone.
    pub fn kill(&mut self) {
        kill_child(&mut self.child);
    }

    /// Starts again with the same arguments and waits for PING.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn().unwrap_or_else(|e| panic!("{e}"));
    }
}

impl Drop for RedisNode {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `field` of an `INFO`-style reply (`name:value` lines).
/// A data node's arguments: `port` on loopback, no persistence, a replica's
/// first sync at once (not after the default 5 s), its log in `dir`.
pub fn data_node_args(dir: &Path, port: u16) -> Vec<OsString> {
    let d = dir.to_string_lossy();
    [
        "--port".to_string(),
        port.to_string(),
        "--bind".into(),
        "127.0.0.1".into(),
        "--save".into(),
        String::new(),
        "--appendonly".into(),
        "no".into(),
        "--repl-diskless-sync-delay".into(),
        "0".into(),
        "--dir".into(),
        d.to_string(),
        "--logfile".into(),
        format!("{d}/redis-{port}.log"),
    ]
    .into_iter()
    .map(OsString::from)
    .collect()
}

/// SIGKILLs `child`, if any, and waits until it is gone.
fn kill_child(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

pub fn info_field<'a>(info: &'a str, field: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|l| l.trim_end().strip_prefix(field)?.strip_prefix(':'))
}

/// Free loopback ports, `n` of them and all different.
pub fn free_ports(n: usize) -> Vec<u16> {
    let mut ports: Vec<u16> = Vec::with_capacity(n);
    while ports.len() < n {
        let p = super::free_port();
        if !ports.contains(&p) {
            ports.push(p);
        }
    }
    ports
}
