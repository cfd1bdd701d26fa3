//! Command-line options of the load generator: parsing, defaults, validation.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub const USAGE: &str = "\
loadgen --mode fanout|idle|join-storm|connect-storm|api-publish [options]

  --url URL              ws://HOST:PORT/chat (default ws://127.0.0.1:8080/chat)
  --also-url URL         a second replica: odd-numbered connections go there
  --origin ORIGIN        Origin header (default http://localhost:8080)
  --token TOKEN          bearer token, sent as ?token= (default dev-token)
  --tokens-file FILE     one token per line; connection i sends line i mod n
                         (distinct users' JWTs) instead of --token
  --label NAME           server name written into the report (default: the URL)
  --rooms N              rooms (fanout, join-storm default 1; idle,
                         connect-storm default 100)
  --members N            fanout: members per room, publishers included (200)
  --publishers N         fanout: publishers per room (40)
  --rooms-per-conn N     fanout: rooms each connection is in (1): the room of
                         its query string, then N-1 `join`s (protocol v2);
                         --rooms must be a multiple of N; R x M / N
                         connections, each room exactly M members
  --rate R               fanout: messages per second per publisher (1.5);
                         api-publish: API calls per second in all (0 = as
                         fast as the callers go, closed loop; default 0)
  --api-url URL          api-publish: the admin listener, http://HOST:PORT
  --api-key KEY          api-publish: bearer key with the publish scope
  --callers N            api-publish: concurrent callers, one keep-alive
                         HTTP/1.1 connection each (16)
  --watchers N           api-publish: WebSocket clients in the room (100)
  --warmup SECS          fanout, api-publish: publishing before measuring starts (5)
  --duration SECS        fanout, api-publish: measured publishing time (20); idle: hold time (5)
  --connections N        idle: connections in total (10000)
  --clients N            join-storm: clients joining one room;
                         connect-storm: clients connecting (5000)
  --per-ip N             connections per loopback source address (32)
  --connect-concurrency N  handshakes in flight at once (256)
  --timeout SECS         give up connecting/joining after this (60)
  --late-ms MS           a delivery later than this counts as not delivered (3000)
  --server-pid PID       read the server's CPU time and RSS from /proc/PID
  --extra-pid PID        fanout: add this process's CPU to the server's
                         (a second replica, redis-server); repeatable
  --threads N            runtime worker threads; 1 = current-thread (1)
  --json FILE            also write the report as JSON
  --shard K/N            fanout: run only the K-th of N equal slices of the
                         connections (several generator processes, one run)
  --clock-base-ms MS     time stamps count from this Unix time (ms), so that
                         several generators' stamps compare (default: start)
  --sync-dir DIR         fanout: once joined, write DIR/ready-K and wait for
                         DIR/go, holding the publishing start (µs on the
                         clock above); the report then carries the latency
                         histogram (latency_hist_us) to merge
";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Fanout,
    Idle,
    JoinStorm,
    /// Clients connect as fast as they may; each one's handshake and join
    /// time is recorded, then they leave.
    ConnectStorm,
    /// Watchers in one room; callers publish into it through the server API.
    ApiPublish,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Fanout => "fanout",
            Mode::Idle => "idle",
            Mode::JoinStorm => "join-storm",
            Mode::ConnectStorm => "connect-storm",
            Mode::ApiPublish => "api-publish",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Args {
    pub mode: Mode,
    pub url: String,
    pub server: SocketAddr,
    /// A second replica (URL and address) for odd-numbered connections.
    pub also: Option<(String, SocketAddr)>,
    pub origin: String,
    pub token: String,
    /// From --tokens-file: connection i sends `tokens[i % len]`.
    pub tokens: Vec<String>,
    pub label: String,
    pub rooms: usize,
    pub members: usize,
    pub publishers: usize,
    /// Fanout: rooms per connection (version 2 `join`s after the first).
    pub rooms_per_conn: usize,
    pub rate: f64,
    /// api-publish: the admin listener's address, the key, callers, watchers.
    pub api: Option<SocketAddr>,
    pub api_key: String,
    pub callers: usize,
    pub watchers: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub connections: usize,
    pub clients: usize,
    pub per_ip: usize,
    pub connect_concurrency: usize,
    pub timeout: Duration,
    pub late: Duration,
    pub server_pid: Option<u32>,
    /// More processes whose CPU counts as the server's (fanout).
    pub extra_pids: Vec<u32>,
    pub threads: usize,
    pub json: Option<PathBuf>,
    /// Fanout: this generator's slice (K, N) of the connections.
    pub shard: (usize, usize),
    pub clock_base_ms: Option<u64>,
    pub sync_dir: Option<PathBuf>,
}

fn number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{flag}: not a valid number: {value}"))
}

fn seconds(flag: &str, value: &str) -> Result<Duration, String> {
    let secs: f64 = number(flag, value)?;
    if !(0.0..=86_400.0).contains(&secs) {
        return Err(format!("{flag}: out of range: {value}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `ws://host:port/path` → the socket address to connect to.
fn server_addr(url: &str) -> Result<SocketAddr, String> {
    let rest = url
        .strip_prefix("ws://")
        .ok_or_else(|| format!("--url must start with ws:// (got {url})"))?;
    let authority = rest.split('/').next().unwrap_or(rest);
    let with_port = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let with_port = with_port.replace("localhost", "127.0.0.1");
    with_port
        .parse()
        .map_err(|e| format!("--url: host must be an IP address or localhost ({authority}): {e}"))
}

pub fn parse(argv: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut mode = None;
    let mut url = "ws://127.0.0.1:8080/chat".to_string();
    let mut args = Args {
        mode: Mode::Fanout,
        url: String::new(),
        server: SocketAddr::from(([127, 0, 0, 1], 8080)),
        also: None,
        origin: "http://localhost:8080".into(),
        token: "dev-token".into(),
        tokens: Vec::new(),
        label: String::new(),
        rooms: 0,
        members: 200,
        publishers: 40,
        rooms_per_conn: 1,
        rate: 1.5,
        api: None,
        api_key: String::new(),
        callers: 16,
        watchers: 100,
        warmup: Duration::from_secs(5),
        duration: Duration::ZERO,
        connections: 10_000,
        clients: 5_000,
        per_ip: 32,
        connect_concurrency: 256,
        timeout: Duration::from_secs(60),
        late: Duration::from_millis(3000),
        server_pid: None,
        extra_pids: Vec::new(),
        threads: 1,
        json: None,
        shard: (0, 1),
        clock_base_ms: None,
        sync_dir: None,
    };
    let mut duration = None;
    let mut rate = None;
    let mut it = argv.into_iter();
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            return Err(USAGE.to_string());
        }
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n\n{USAGE}"))?;
        let f = flag.as_str();
        match f {
            "--mode" => {
                mode = Some(match value.as_str() {
                    "fanout" => Mode::Fanout,
                    "idle" => Mode::Idle,
                    "join-storm" => Mode::JoinStorm,
                    "connect-storm" => Mode::ConnectStorm,
                    "api-publish" => Mode::ApiPublish,
                    other => return Err(format!("--mode: unknown mode {other}")),
                })
            }
            "--url" => url = value,
            "--also-url" => args.also = Some((value.clone(), server_addr(&value)?)),
            "--origin" => args.origin = value,
            "--token" => args.token = value,
            "--tokens-file" => args.tokens = read_tokens(&value)?,
            "--label" => args.label = value,
            "--rooms" => args.rooms = number(f, &value)?,
            "--members" => args.members = number(f, &value)?,
            "--publishers" => args.publishers = number(f, &value)?,
            "--rooms-per-conn" => args.rooms_per_conn = number(f, &value)?,
            "--rate" => rate = Some(number(f, &value)?),
            "--api-url" => args.api = Some(http_addr(&value)?),
            "--api-key" => args.api_key = value,
            "--callers" => args.callers = number(f, &value)?,
            "--watchers" => args.watchers = number(f, &value)?,
            "--warmup" => args.warmup = seconds(f, &value)?,
            "--duration" => duration = Some(seconds(f, &value)?),
            "--connections" => args.connections = number(f, &value)?,
            "--clients" => args.clients = number(f, &value)?,
            "--per-ip" => args.per_ip = number(f, &value)?,
            "--connect-concurrency" => args.connect_concurrency = number(f, &value)?,
            "--timeout" => args.timeout = seconds(f, &value)?,
            "--late-ms" => args.late = Duration::from_millis(number(f, &value)?),
            "--server-pid" => args.server_pid = Some(number(f, &value)?),
            "--extra-pid" => args.extra_pids.push(number(f, &value)?),
            "--threads" => args.threads = number(f, &value)?,
            "--json" => args.json = Some(PathBuf::from(value)),
            "--shard" => args.shard = shard(&value)?,
            "--clock-base-ms" => args.clock_base_ms = Some(number(f, &value)?),
            "--sync-dir" => args.sync_dir = Some(PathBuf::from(value)),
            other => return Err(format!("unknown option {other}\n\n{USAGE}")),
        }
    }
    args.mode = mode.ok_or_else(|| format!("--mode is required\n\n{USAGE}"))?;
    args.server = server_addr(&url)?;
    args.url = url;
    if args.label.is_empty() {
        args.label = args.url.clone();
    }
    if args.rooms == 0 {
        args.rooms = match args.mode {
            Mode::Idle | Mode::ConnectStorm => 100,
            Mode::Fanout | Mode::JoinStorm | Mode::ApiPublish => 1,
        };
    }
    args.rate = rate.unwrap_or(match args.mode {
        Mode::ApiPublish => 0.0,
        _ => 1.5,
    });
    args.duration = duration.unwrap_or(match args.mode {
        Mode::Fanout | Mode::ApiPublish => Duration::from_secs(20),
        _ => Duration::from_secs(5),
    });
    validate(&args)?;
    Ok(args)
}

/// `K/N` with K < N.
fn shard(value: &str) -> Result<(usize, usize), String> {
    let (k, n) = value
        .split_once('/')
        .ok_or_else(|| format!("--shard: K/N expected, got {value}"))?;
    let (k, n): (usize, usize) = (number("--shard", k)?, number("--shard", n)?);
    if k >= n {
        return Err(format!("--shard: K must be below N ({value})"));
    }
    Ok((k, n))
}

/// `http://host:port` (a path, if any, is ignored) → the address.
fn http_addr(url: &str) -> Result<SocketAddr, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("--api-url must start with http:// (got {url})"))?;
    server_addr(&format!("ws://{rest}"))
}

/// The non-empty lines of `path`, each one token.
fn read_tokens(path: &str) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("--tokens-file {path}: {e}"))?;
    let tokens: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(String::from)
        .collect();
    if tokens.is_empty() {
        return Err(format!("--tokens-file {path}: no tokens in it"));
    }
    Ok(tokens)
}

impl Args {
    /// The token connection `index` sends.
    pub fn token_for(&self, index: usize) -> &str {
        match self.tokens.len() {
            0 => &self.token,
            n => &self.tokens[index % n],
        }
    }
}

fn validate(a: &Args) -> Result<(), String> {
    if a.per_ip == 0 || a.connect_concurrency == 0 || a.threads == 0 {
        return Err("--per-ip, --connect-concurrency and --threads must be at least 1".into());
    }
    if a.mode == Mode::Fanout {
        if a.members == 0 || a.publishers == 0 || a.publishers > a.members {
            return Err("fanout needs 1 <= --publishers <= --members".into());
        }
        if !(a.rate > 0.0 && a.rate <= 1000.0) {
            return Err("--rate must be in (0, 1000]".into());
        }
        crate::rooms::validate(a)?;
    }
    if a.mode == Mode::ApiPublish {
        if a.api.is_none() || a.api_key.is_empty() {
            return Err("api-publish needs --api-url and --api-key".into());
        }
        if a.callers == 0 || a.watchers == 0 || !(0.0..=1e6).contains(&a.rate) {
            return Err("api-publish needs --callers, --watchers >= 1 and 0 <= --rate".into());
        }
    }
    let total = match a.mode {
        Mode::Fanout => crate::rooms::connections(a),
        Mode::Idle => a.connections,
        Mode::JoinStorm | Mode::ConnectStorm => a.clients,
        Mode::ApiPublish => a.watchers,
    };
    // 127.0.0.2 .. 127.0.255.251: 250 addresses per third octet.
    if total.div_ceil(a.per_ip) > 250 * 255 {
        return Err("too many connections for the loopback source addresses".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn fanout_defaults() {
        let a = parse(argv("--mode fanout --url ws://localhost:9000/chat")).expect("parses");
        assert_eq!(a.server, SocketAddr::from(([127, 0, 0, 1], 9000)));
        assert_eq!((a.rooms, a.members, a.publishers), (1, 200, 40));
        assert_eq!(a.duration, Duration::from_secs(20));
    }

    #[test]
    fn tokens_come_from_a_file_round_robin() {
        let dir = std::env::temp_dir().join(format!("loadgen-args-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("tokens");
        std::fs::write(&file, "a.b.c\n\n  d.e.f  \n").expect("write");
        let a = parse(argv(&format!(
            "--mode connect-storm --tokens-file {}",
            file.display()
        )))
        .expect("parses");
        assert_eq!(
            (a.token_for(0), a.token_for(1), a.token_for(2)),
            ("a.b.c", "d.e.f", "a.b.c")
        );
        assert_eq!(a.rooms, 100);
        let none = parse(argv("--mode connect-storm")).expect("parses");
        assert_eq!(none.token_for(7), "dev-token");
        std::fs::write(&file, "\n").expect("write");
        assert!(parse(argv(&format!(
            "--mode idle --tokens-file {}",
            file.display()
        )))
        .is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn rejects_bad_input() {
        assert!(parse(argv("--url ws://127.0.0.1:1/chat")).is_err());
        assert!(parse(argv("--mode fanout --publishers 9 --members 3")).is_err());
        assert!(parse(argv("--mode fanout --url http://x/chat")).is_err());
        assert!(parse(argv("--mode fanout --rate")).is_err());
        assert!(parse(argv("--mode api-publish")).is_err());
        assert!(parse(argv("--mode api-publish --api-url ws://x:1 --api-key k")).is_err());
    }

    #[test]
    fn api_publish_options() {
        let a = parse(argv(
            "--mode api-publish --api-url http://localhost:9001 --api-key k --callers 4",
        ))
        .expect("parses");
        assert_eq!(a.api, Some(SocketAddr::from(([127, 0, 0, 1], 9001))));
        assert_eq!((a.callers, a.watchers, a.rate, a.rooms), (4, 100, 0.0, 1));
        let b = parse(argv("--mode fanout")).expect("parses");
        assert_eq!(b.rate, 1.5);
    }

    #[test]
    fn shards() {
        let a = parse(argv("--mode fanout --shard 2/6 --sync-dir /tmp/x")).expect("parses");
        assert_eq!(a.shard, (2, 6));
        assert!(parse(argv("--mode fanout --shard 6/6")).is_err());
        assert!(parse(argv("--mode fanout --shard 3")).is_err());
    }
}
