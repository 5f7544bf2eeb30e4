//! The client commands of `weir`: apply, get, describe, delete, diff,
//! watch, completion (and the hidden `api-server` used by tests).
//!
//! Exit codes: 0 ok, 1 server or other error, 2 usage or validation
//! error, 3 not found, 4 conflict.

pub(crate) mod output;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use weir_api::client::{plural, Client, ClientError};
use weir_model::{Object, Registry};

/// Exit codes.
pub const OK: i32 = 0;
pub const ERROR: i32 = 1;
pub const USAGE: i32 = 2;
pub const NOT_FOUND: i32 = 3;
// 4 (conflict) comes from `ClientError::exit_code`.

/// How to reach the API.
#[derive(clap::Args, Debug, Clone)]
pub struct Conn {
    /// API server: http://HOST:PORT or unix:/path [env: WEIR_SERVER; default http://127.0.0.1:7900].
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// File holding the bearer token [or the token itself in env WEIR_TOKEN].
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
}

/// What `weir get sessions` asks for.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SessionFilter {
    /// sessions: only those of inside hosts in this VPC.
    #[arg(long, value_name = "VPC")]
    pub vpc: Option<String>,
    /// sessions: only those of this NatRule.
    #[arg(long, value_name = "NAME")]
    pub rule: Option<String>,
    /// sessions: only those of this inside address.
    #[arg(long, value_name = "ADDRESS")]
    pub inside: Option<String>,
    /// sessions: only those translated to this address.
    #[arg(long, value_name = "ADDRESS")]
    pub outside: Option<String>,
    /// sessions: tcp, udp, icmp or a protocol number.
    #[arg(long, value_name = "PROTO")]
    pub protocol: Option<String>,
    /// sessions: how many to show (default 1000).
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
}

impl SessionFilter {
    fn is_empty(&self) -> bool {
        self.vpc.is_none()
            && self.rule.is_none()
            && self.inside.is_none()
            && self.outside.is_none()
            && self.protocol.is_none()
            && self.limit.is_none()
    }

    /// `/v1/sessions` with the filters as its query string.
    fn path(&self) -> String {
        let limit = self.limit.map(|n| n.to_string());
        let params: Vec<String> = [
            ("vpc", self.vpc.as_deref()),
            ("rule", self.rule.as_deref()),
            ("inside", self.inside.as_deref()),
            ("outside", self.outside.as_deref()),
            ("protocol", self.protocol.as_deref()),
            ("limit", limit.as_deref()),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k}={}", query_escape(v))))
        .collect();
        if params.is_empty() {
            "/v1/sessions".into()
        } else {
            format!("/v1/sessions?{}", params.join("&"))
        }
    }
}

/// Percent-encodes all but unreserved characters (RFC 3986).
fn query_escape(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

fn is_sessions(kind: &str) -> bool {
    matches!(kind.to_ascii_lowercase().as_str(), "sessions" | "session")
}

/// `weir get sessions`.
async fn get_sessions(c: &Client, f: &SessionFilter, output: Output) -> i32 {
    let (status, body) = match c.raw(axum::http::Method::GET, &f.path(), None).await {
        Ok(x) => x,
        Err(e) => return fail(&e),
    };
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    if !status.is_success() {
        let msg = v["error"]
            .as_str()
            .map_or_else(|| String::from_utf8_lossy(&body).into_owned(), String::from);
        eprintln!("error: {msg}");
        return if status.as_u16() == 400 { USAGE } else { ERROR };
    }
    match output {
        Output::Table => print!("{}", output::sessions(&v)),
        Output::Json => {
            println!("{}", serde_json::to_string_pretty(&v).expect("JSON"))
        }
        Output::Yaml => print!("{}", serde_norway::to_string(&v).expect("YAML")),
    }
    OK
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Table,
    Yaml,
    Json,
}

#[derive(clap::Subcommand, Debug)]
pub enum ApiCommand {
    /// Create or update the objects in YAML/JSON files, all in one transaction.
    Apply {
        /// A file, a directory (its *.yaml, *.yml, *.json) or - for stdin.
        #[arg(
            short = 'f',
            long = "filename",
            required = true,
            value_name = "FILE|DIR|-"
        )]
        files: Vec<PathBuf>,
        /// Validate everything on the server, store nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// List objects of a kind, or show one; `get sessions` lists the
    /// gateway's NAT sessions.
    Get {
        /// Kind: Route, route or routes; or sessions.
        kind: String,
        name: Option<String>,
        #[arg(short = 'o', long, value_enum, default_value_t = Output::Table)]
        output: Output,
        /// Label selector: a=b,c!=d.
        #[arg(short = 'l', long)]
        selector: Option<String>,
        #[command(flatten)]
        sessions: SessionFilter,
        #[command(flatten)]
        conn: Conn,
    },
    /// Show one object in detail: spec, status, labels, revision.
    Describe {
        kind: String,
        name: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Delete objects by kind and name, or those named in files.
    Delete {
        kind: Option<String>,
        name: Option<String>,
        #[arg(short = 'f', long = "filename", value_name = "FILE|DIR|-")]
        files: Vec<PathBuf>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Show what `weir apply -f` would change.
    Diff {
        #[arg(
            short = 'f',
            long = "filename",
            required = true,
            value_name = "FILE|DIR|-"
        )]
        files: Vec<PathBuf>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Print changes to objects of a kind as they happen.
    Watch {
        kind: String,
        /// Start from this store revision (default: from now).
        #[arg(long, default_value_t = 0)]
        from_revision: u64,
        #[arg(short = 'o', long, value_enum, default_value_t = Output::Table)]
        output: Output,
        #[command(flatten)]
        conn: Conn,
    },
    /// Print a shell completion script.
    Completion { shell: clap_complete::Shell },
    /// Run only the management API on a store (tests).
    #[command(hide = true)]
    ApiServer {
        /// Store: a file path or etcd://host:port.
        #[arg(long)]
        store: String,
        #[arg(long, default_value = "127.0.0.1:7900")]
        listen: String,
        #[arg(long)]
        token_file: Option<PathBuf>,
        /// Listen beyond loopback without a token.
        #[arg(long)]
        insecure: bool,
        #[arg(long, default_value = "local")]
        node: String,
    },
}

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

pub(crate) fn client(conn: &Conn) -> Result<Client, i32> {
    let server = conn
        .server
        .clone()
        .or_else(|| std::env::var("WEIR_SERVER").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| weir_api::client::DEFAULT_SERVER.to_string());
    let token = match &conn.token_file {
        Some(f) => match weir_api::read_token(f) {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("error: {e}");
                return Err(USAGE);
            }
        },
        None => std::env::var("WEIR_TOKEN").ok(),
    };
    Client::new(&server)
        .map(|c| c.with_token(token))
        .map_err(|e| {
            eprintln!("error: {e}");
            USAGE
        })
}

/// Prints a client error and returns its exit code.
fn fail(e: &ClientError) -> i32 {
    eprintln!("error: {e}");
    if let ClientError::Api { body, .. } = e {
        if let (Some(g), Some(c)) = (body.given_revision, body.current_revision) {
            eprintln!("  revision {g} given, current revision {c}");
        }
        if body.details.len() > 1
            || body
                .details
                .first()
                .is_some_and(|d| !body.error.contains(&d.reason))
        {
            for d in &body.details {
                eprintln!("  {d}");
            }
        }
    }
    e.exit_code()
}

/// Reads files, directories and stdin into one multi-document text.
fn read_sources(files: &[PathBuf]) -> Result<String, String> {
    let mut docs = Vec::new();
    for f in files {
        if f == Path::new("-") {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| format!("stdin: {e}"))?;
            docs.push(s);
        } else if f.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(f)
                .map_err(|e| format!("{}: {e}", f.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.extension()
                        .and_then(|x| x.to_str())
                        .is_some_and(|x| matches!(x, "yaml" | "yml" | "json"))
                })
                .collect();
            entries.sort();
            for p in entries {
                docs.push(
                    std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?,
                );
            }
        } else {
            docs.push(std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?);
        }
    }
    Ok(docs
        .iter()
        .map(|d| d.trim_start_matches("---").trim_end())
        .collect::<Vec<_>>()
        .join("\n---\n"))
}

/// The registry to lay out a kind: the built-in kinds, plus the server's
/// run-time kinds when `word` is not built in.
async fn registry_for(c: &Client, word: &str) -> Result<(Registry, String), i32> {
    let mut reg = Registry::builtin();
    if let Some(k) = reg.lookup(word) {
        let name = k.name().to_string();
        return Ok((reg, name));
    }
    let kinds = c.kinds().await.map_err(|e| fail(&e))?;
    for k in &kinds {
        if !k.builtin {
            let _ = reg.register_dynamic(&k.kind, k.spec_schema.clone());
        }
    }
    match reg.lookup(word) {
        Some(k) => {
            let name = k.name().to_string();
            Ok((reg, name))
        }
        None => {
            eprintln!(
                "error: unknown kind {word:?}; known kinds: {}",
                kinds
                    .iter()
                    .map(|k| k.kind.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            Err(NOT_FOUND)
        }
    }
}

/// Runs a client command; returns the exit code.
pub fn run(cmd: ApiCommand) -> i32 {
    match cmd {
        ApiCommand::Completion { shell } => {
            let mut cmd = <crate::Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "weir", &mut std::io::stdout());
            OK
        }
        ApiCommand::ApiServer {
            store,
            listen,
            token_file,
            insecure,
            node,
        } => runtime().block_on(api_server(store, listen, token_file, insecure, node)),
        cmd => runtime().block_on(client_command(cmd)),
    }
}

async fn api_server(
    store: String,
    listen: String,
    token_file: Option<PathBuf>,
    insecure: bool,
    node: String,
) -> i32 {
    let store = match weir_store::open(&store).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: store {store}: {e}");
            return ERROR;
        }
    };
    let opts = weir_api::ServerOptions {
        listen,
        store,
        token_file,
        insecure,
        node,
        extra: None,
    };
    let server = match weir_api::Server::start(opts).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return if e.is_usage() { USAGE } else { ERROR };
        }
    };
    println!("listening on {}", server.url());
    let _ = std::io::stdout().flush();
    let shutdown = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    match server.serve(shutdown).await {
        Ok(()) => OK,
        Err(e) => {
            eprintln!("error: {e}");
            ERROR
        }
    }
}

async fn client_command(cmd: ApiCommand) -> i32 {
    match cmd {
        ApiCommand::Apply {
            files,
            dry_run,
            conn,
        } => {
            let c = match client(&conn) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let text = match read_sources(&files) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("error: {e}");
                    return USAGE;
                }
            };
            match c.apply_text(&text, dry_run).await {
                Ok(r) => {
                    let suffix = if dry_run { " (dry run)" } else { "" };
                    for o in &r.results {
                        println!(
                            "{}/{} {}{suffix}",
                            o.kind.to_ascii_lowercase(),
                            o.name,
                            o.action.as_str()
                        );
                    }
                    OK
                }
                Err(e) => fail(&e),
            }
        }
        ApiCommand::Get {
            kind,
            name,
            output,
            selector,
            sessions,
            conn,
        } => {
            let c = match client(&conn) {
                Ok(c) => c,
                Err(code) => return code,
            };
            if is_sessions(&kind) {
                if name.is_some() || selector.is_some() {
                    eprintln!("error: get sessions takes filters (--vpc, --rule, --inside, --outside, --protocol, --limit), not a name or a selector");
                    return USAGE;
                }
                return get_sessions(&c, &sessions, output).await;
            }
            if !sessions.is_empty() {
                eprintln!("error: --vpc, --rule, --inside, --outside, --protocol and --limit are for get sessions");
                return USAGE;
            }
            let (reg, kind) = match registry_for(&c, &kind).await {
                Ok(x) => x,
                Err(code) => return code,
            };
            let objects = match &name {
                Some(n) => match c.get(&kind, n).await {
                    Ok(o) => vec![o],
                    Err(e) => return fail(&e),
                },
                None => match c.list(&kind, selector.as_deref()).await {
                    Ok(l) => l.items,
                    Err(e) => return fail(&e),
                },
            };
            print!(
                "{}",
                output::render(&reg, &kind, &objects, output, name.is_some())
            );
            if objects.is_empty() && output == Output::Table {
                eprintln!("No {kind} objects found.");
            }
            OK
        }
        ApiCommand::Describe { kind, name, conn } => {
            let c = match client(&conn) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let (_, kind) = match registry_for(&c, &kind).await {
                Ok(x) => x,
                Err(code) => return code,
            };
            match c.get(&kind, &name).await {
                Ok(o) => {
                    print!("{}", output::describe(&o));
                    OK
                }
                Err(e) => fail(&e),
            }
        }
        ApiCommand::Delete {
            kind,
            name,
            files,
            conn,
        } => {
            let c = match client(&conn) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let targets: Vec<(String, String)> = if !files.is_empty() {
                if kind.is_some() {
                    eprintln!("error: give KIND NAME or -f FILE, not both");
                    return USAGE;
                }
                let text = match read_sources(&files) {
                    Ok(t) => t,
                    Err(e) => {
                        eprintln!("error: {e}");
                        return USAGE;
                    }
                };
                let docs = match weir_model::yaml::documents(&text) {
                    Ok(d) => d,
                    Err(e) => {
                        eprintln!("error: {e}");
                        return USAGE;
                    }
                };
                let mut t = Vec::new();
                for (i, d) in docs.iter().enumerate() {
                    let k = d.get("kind").and_then(|v| v.as_str());
                    let n = d
                        .get("metadata")
                        .and_then(|m| m.get("name"))
                        .and_then(|v| v.as_str());
                    match (k, n) {
                        (Some(k), Some(n)) => t.push((k.to_string(), n.to_string())),
                        _ => {
                            eprintln!(
                                "error: document {}: kind and metadata.name are required",
                                i + 1
                            );
                            return USAGE;
                        }
                    }
                }
                t
            } else {
                match (kind, name) {
                    (Some(k), Some(n)) => vec![(k, n)],
                    _ => {
                        eprintln!("error: give KIND NAME or -f FILE");
                        return USAGE;
                    }
                }
            };
            let mut code = OK;
            for (k, n) in targets {
                match c.delete(&k, &n, None).await {
                    Ok(o) => println!("{}/{} deleted", o.kind.to_ascii_lowercase(), o.name),
                    Err(e) => {
                        let label = plural(&k);
                        eprint!("{label}/{n}: ");
                        code = code.max(fail(&e));
                    }
                }
            }
            code
        }
        ApiCommand::Diff { files, conn } => {
            let c = match client(&conn) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let text = match read_sources(&files) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("error: {e}");
                    return USAGE;
                }
            };
            let r = match c.apply_text(&text, true).await {
                Ok(r) => r,
                Err(e) => return fail(&e),
            };
            for o in &r.results {
                if o.action == weir_api::Action::Unchanged {
                    continue;
                }
                let live = match c.get(&o.kind, &o.name).await {
                    Ok(l) => Some(l),
                    Err(e) if e.status() == Some(404) => None,
                    Err(e) => return fail(&e),
                };
                let label = format!("{}/{}", o.kind.to_ascii_lowercase(), o.name);
                print!("{}", output::diff(&label, live.as_ref(), o.object.as_ref()));
            }
            OK
        }
        ApiCommand::Watch {
            kind,
            from_revision,
            output,
            conn,
        } => {
            let c = match client(&conn) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let (_, kind) = match registry_for(&c, &kind).await {
                Ok(x) => x,
                Err(code) => return code,
            };
            let mut from = from_revision;
            loop {
                let mut w = match c.watch(&[&kind], from).await {
                    Ok(w) => w,
                    Err(e) => return fail(&e),
                };
                while let Some(ev) = w.next().await {
                    let ev = match ev {
                        Ok(ev) => ev,
                        Err(e) => return fail(&e),
                    };
                    match ev.kind.as_str() {
                        "BOOKMARK" => continue,
                        "RELIST" => {
                            eprintln!(
                                "history before revision {} was compacted; watching from now",
                                ev.revision
                            );
                            from = 0;
                            break;
                        }
                        "ERROR" => {
                            eprintln!("error: {}", ev.error.unwrap_or_default());
                            return ERROR;
                        }
                        _ => {}
                    }
                    from = ev.revision + 1;
                    if output == Output::Json {
                        println!("{}", serde_json::to_string(&ev).expect("JSON"));
                    } else {
                        let name = ev.object.as_ref().map(Object::name).unwrap_or("?");
                        let state = ev
                            .object
                            .as_ref()
                            .filter(|_| ev.kind != "DELETED")
                            .map(|o| o.state().to_string())
                            .unwrap_or_default();
                        println!(
                            "{:<9} {}/{name} revision {} {state}",
                            ev.kind,
                            kind.to_ascii_lowercase(),
                            ev.revision
                        );
                    }
                    let _ = std::io::stdout().flush();
                }
                if from == 0 {
                    continue;
                }
                return OK;
            }
        }
        ApiCommand::Completion { .. } | ApiCommand::ApiServer { .. } => unreachable!(),
    }
}
