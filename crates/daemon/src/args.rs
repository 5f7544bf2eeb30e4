//! What `weir serve` is told on its command line.

use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Day-0 file of weir/v1 objects (multi-document YAML), applied
    /// through the API at start.
    #[arg(long, short = 'c')]
    pub config: Option<PathBuf>,
    /// Where desired state lives: a file (embedded store) or etcd://HOST:PORT[,HOST:PORT].
    #[arg(long, default_value = "/var/lib/weir/store.redb")]
    pub store: String,
    /// API address: 127.0.0.1:PORT, [::1]:PORT, unix:/path, or an address
    /// other hosts can reach (0.0.0.0:PORT, [::]:PORT, ...), which needs
    /// --token-file.
    #[arg(long, default_value = "127.0.0.1:7900")]
    pub listen: String,
    /// Bearer token file; every request but /livez must carry the token.
    /// Required to listen beyond loopback.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Listen beyond loopback without a token: anyone who can reach the
    /// address can change the configuration. Warns at every start.
    #[arg(long)]
    pub insecure: bool,
    /// This gateway's node name: objects with another metadata.node are
    /// left to their node.
    #[arg(long)]
    pub node: Option<String>,
    /// Worker threads (one per core).
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// CPUs to pin the workers to, e.g. 1 or 2,3.
    #[arg(long, value_delimiter = ',')]
    pub cores: Vec<usize>,
    /// Do not create kernel mirrors (TAPs) for the interfaces.
    #[arg(long)]
    pub no_mirror: bool,
    /// Write "ready" to this file once the day-0 objects are reconciled.
    #[arg(long)]
    pub ready_file: Option<PathBuf>,
    /// Revisions of store history to keep for watches (older ones are
    /// compacted away; a watch from before them is told to relist).
    #[arg(long, default_value_t = weir_store::DEFAULT_HISTORY, value_parser = clap::value_parser!(u64).range(1..))]
    pub history: u64,
    /// Sessions the NAT table holds (allocated when the first NatRule
    /// is applied).
    #[arg(long, default_value_t = weir_dataplane::modules::nat44::DEFAULT_CAPACITY, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub nat_sessions: usize,
}
