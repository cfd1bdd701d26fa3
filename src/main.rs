//! `ws-chat`: argument parsing, signals, and nothing else.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use ws_chat::{smoke, telemetry, Control, Sources};

const USAGE: &str = "\
usage:
  ws-chat [--config FILE]                  run the server
  ws-chat check-config [--config FILE]     print the effective settings (secrets redacted)
  ws-chat smoke [--url URL] [--token T] [--origin O] [--room R] [--timeout SECS]
                                           send a message and wait for its echo
  ws-chat healthcheck [--url URL]          exit 0 if the admin /healthz answers 200
  ws-chat sleep SECONDS                    wait (a shell-less preStop hook)
  ws-chat --version | --help";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, rest) = match args.first().map(String::as_str) {
        Some(c) if !c.starts_with('-') => (c.to_string(), args[1..].to_vec()),
        _ => ("run".to_string(), args),
    };
    let flags = match Flags::parse(&rest) {
        Ok(f) => f,
        Err(e) => return fail(&e),
    };
    match command.as_str() {
        _ if flags.help => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ if flags.version => {
            println!("ws-chat {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        "run" => {
            let code = runtime().block_on(serve(flags));
            // Outside the runtime: the exporter's flush blocks.
            telemetry::shutdown();
            code
        }
        "check-config" => match ws_chat::load_settings(&Sources::from_process(flags.config)) {
            Ok(settings) => {
                print!("{}", settings.redacted());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("ws-chat: {e}");
                ExitCode::from(2)
            }
        },
        "smoke" => runtime().block_on(run_smoke(flags)),
        "healthcheck" => runtime().block_on(healthcheck(flags)),
        "sleep" => match flags.positional.first().and_then(|s| s.parse::<f64>().ok()) {
            Some(secs) if secs >= 0.0 => {
                std::thread::sleep(Duration::from_secs_f64(secs));
                ExitCode::SUCCESS
            }
            _ => fail("sleep needs a number of seconds"),
        },
        other => fail(&format!("unknown command `{other}`")),
    }
}

#[derive(Default)]
struct Flags {
    config: Option<PathBuf>,
    url: Option<String>,
    token: Option<String>,
    origin: Option<String>,
    room: Option<String>,
    timeout: Option<f64>,
    help: bool,
    version: bool,
    positional: Vec<String>,
}

impl Flags {
    fn parse(args: &[String]) -> Result<Flags, String> {
        let mut f = Flags::default();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
                _ => (arg.as_str(), None),
            };
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| it.next().cloned())
                    .ok_or(format!("{name} needs a value"))
            };
            match name {
                "--config" => f.config = Some(PathBuf::from(value()?)),
                "--url" => f.url = Some(value()?),
                "--token" => f.token = Some(value()?),
                "--origin" => f.origin = Some(value()?),
                "--room" => f.room = Some(value()?),
                "--timeout" => {
                    f.timeout = Some(value()?.parse().map_err(|_| "--timeout needs seconds")?)
                }
                "-h" | "--help" => f.help = true,
                "-V" | "--version" => f.version = true,
                other if other.starts_with('-') => return Err(format!("unknown option `{other}`")),
                other => f.positional.push(other.to_string()),
            }
        }
        Ok(f)
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("ws-chat: {message}\n\n{USAGE}");
    ExitCode::from(2)
}

fn runtime() -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ws-chat: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    }
}

async fn serve(flags: Flags) -> ExitCode {
    let sources = Sources::from_process(flags.config);
    let settings = match ws_chat::load_settings(&sources) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ws-chat: {e}");
            return ExitCode::from(2);
        }
    };
    let traces = match telemetry::init(&settings.telemetry, &sources.env) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("ws-chat: {e}");
            return ExitCode::from(2);
        }
    };
    // Many sockets are the point: lift the soft descriptor limit to the hard one.
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        tracing::warn!(error = %e, "cannot raise the open file limit");
    }
    let bind = |host: &str, port: u16| {
        let addr = format!("{host}:{port}");
        async move {
            listen(&addr)
                .await
                .map_err(|e| format!("cannot listen on {addr}: {e}"))
        }
    };
    let s = &settings.server;
    let (public, admin) = match (
        bind(&s.host, s.port).await,
        bind(&s.admin_host, s.admin_port).await,
    ) {
        (Ok(p), Ok(a)) => (p, a),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!("{e}");
            eprintln!("ws-chat: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        public = %public.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        admin = %admin.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        broker = ?settings.broker.kind,
        tokens = settings.auth.tokens.len(),
        traces = traces.is_some(),
        trace_sample_ratio = traces.as_ref().map(|t| t.root_ratio),
        "ws-chat listening"
    );
    let control = Control::default();
    tokio::spawn(signals(control.clone()));
    match ws_chat::run(public, admin, settings, sources, control).await {
        Ok(()) => {
            tracing::info!("drained; bye");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ws-chat: {e}");
            ExitCode::from(2)
        }
    }
}

async fn signals(control: Control) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => control.shutdown.cancel(),
            _ = int.recv() => control.shutdown.cancel(),
            _ = hup.recv() => control.reload.notify_one(),
        }
    }
}

async fn run_smoke(flags: Flags) -> ExitCode {
    let opts = smoke::SmokeOptions {
        url: flags
            .url
            .unwrap_or_else(|| "ws://127.0.0.1:8080/chat".into()),
        token: flags
            .token
            .or_else(|| std::env::var("CHAT_TOKEN").ok())
            .unwrap_or_else(|| "dev-token".into()),
        origin: flags.origin,
        room: flags.room.unwrap_or_else(|| "smoke".into()),
        timeout: Duration::from_secs_f64(flags.timeout.unwrap_or(10.0)),
    };
    match smoke::run(&opts).await {
        Ok(what) => {
            println!("smoke: ok, {what}");
            ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!("smoke: failed: {why}");
            ExitCode::FAILURE
        }
    }
}

async fn healthcheck(flags: Flags) -> ExitCode {
    let url = flags
        .url
        .unwrap_or_else(|| "http://127.0.0.1:8081/healthz".into());
    match ws_chat::edge::http::probe(&url, Duration::from_secs(3)).await {
        Ok(200) => ExitCode::SUCCESS,
        Ok(status) => {
            eprintln!("healthcheck: {url} answered {status}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("healthcheck: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Pending connections the kernel queues before `accept` (it caps this at
/// `net.core.somaxconn`, 4096 on current kernels). Tokio's default of 1024
/// overflowed in a 10,000-client reconnect storm: the dropped handshakes were
/// retried by the clients a second later (894 SYN retransmits in one run).
const LISTEN_BACKLOG: u32 = 65_535;

/// Binds `addr` (host names resolved) with [`LISTEN_BACKLOG`].
async fn listen(addr: &str) -> std::io::Result<tokio::net::TcpListener> {
    let mut last = None;
    for a in tokio::net::lookup_host(addr).await? {
        let socket = if a.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        // As `TcpListener::bind` does: a restart may reuse the port at once.
        socket.set_reuseaddr(true)?;
        match socket.bind(a).and_then(|()| socket.listen(LISTEN_BACKLOG)) {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("the name resolved to no address")))
}
