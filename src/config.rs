//! Runtime configuration: every knob has a default that serves a newcomer, a
//! command-line flag and an environment variable.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

use crate::compute::limits::Limits;

/// Settings of `dlgrade serve` (and of the subcommands that open the database).
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "DLGRADE_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,

    /// SQLite database URL (the file is created and migrated at start).
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://dlgrade.db")]
    pub database_url: String,

    /// Log as JSON lines instead of human-readable text.
    #[arg(long, env = "DLGRADE_LOG_JSON", default_value_t = false)]
    pub log_json: bool,

    /// Maximum request body size in bytes (larger bodies get 413).
    #[arg(long, env = "DLGRADE_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Time limit for one request in milliseconds (past it: 503).
    #[arg(long, env = "DLGRADE_REQUEST_TIMEOUT_MS", default_value_t = 10_000)]
    pub request_timeout_ms: u64,

    /// Require an API key for the stateless computation endpoints too.
    #[arg(long, env = "DLGRADE_REQUIRE_KEY_FOR_COMPUTE", default_value_t = false)]
    pub require_key_for_compute: bool,

    /// Maximum nesting depth of a JSON request body.
    #[arg(long, env = "DLGRADE_MAX_JSON_DEPTH", default_value_t = 64)]
    pub max_json_depth: usize,

    /// Maximum elements in one tensor of a computation request.
    #[arg(long, env = "DLGRADE_MAX_TENSOR_ELEMENTS", default_value_t = 1_000_000)]
    pub max_tensor_elements: usize,

    /// Maximum layers in one model description.
    #[arg(long, env = "DLGRADE_MAX_LAYERS", default_value_t = 1_000)]
    pub max_layers: usize,

    /// Maximum timesteps of a recurrent sequence.
    #[arg(long, env = "DLGRADE_MAX_TIMESTEPS", default_value_t = 1_000)]
    pub max_timesteps: usize,

    /// Maximum optimizer steps in one request.
    #[arg(long, env = "DLGRADE_MAX_OPTIMIZER_STEPS", default_value_t = 10_000)]
    pub max_optimizer_steps: usize,

    /// Maximum characters of one expression.
    #[arg(long, env = "DLGRADE_MAX_EXPRESSION_LEN", default_value_t = 4_096)]
    pub max_expression_len: usize,

    /// Maximum nesting depth of one expression.
    #[arg(long, env = "DLGRADE_MAX_EXPRESSION_DEPTH", default_value_t = 64)]
    pub max_expression_depth: usize,

    /// Maximum draws per seed when a template's variant is made (a template
    /// asking for more in `max_attempts` is refused).
    #[arg(long, env = "DLGRADE_MAX_VARIANT_ATTEMPTS", default_value_t = 200)]
    pub max_variant_attempts: u32,

    /// Maximum submissions in one batch request.
    #[arg(long, env = "DLGRADE_MAX_BATCH_ITEMS", default_value_t = 100)]
    pub max_batch_items: usize,

    /// WAL size, in 4 KiB pages, past which the submission writer runs a
    /// checkpoint itself between batches (below it, checkpoints run in the
    /// background without delaying writes). Bounds the `-wal` file under
    /// sustained load; smaller means more frequent pauses of the writer.
    #[arg(long, env = "DLGRADE_WAL_MAX_FRAMES", default_value_t = crate::store::DEFAULT_WAL_MAX_FRAMES,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub wal_max_frames: u32,

    /// Do not load the question bank into an empty database at start.
    #[arg(long, env = "DLGRADE_NO_BANK", default_value_t = false)]
    pub no_bank: bool,

    /// Do not create and print an admin key on first start with an empty database.
    #[arg(long, env = "DLGRADE_NO_BOOTSTRAP_KEY", default_value_t = false)]
    pub no_bootstrap_key: bool,
}

impl Config {
    /// The defaults, as `dlgrade serve` with nothing configured uses them
    /// (ignoring the environment): handy for tests.
    pub fn defaults() -> Self {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            config: Config,
        }
        // Parsing no arguments cannot fail: every field has a default.
        match Wrapper::try_parse_from(["dlgrade"]) {
            Ok(w) => w.config,
            Err(e) => unreachable!("defaults must parse: {e}"),
        }
    }

    /// The store's tuning.
    pub fn store_options(&self) -> crate::store::StoreOptions {
        crate::store::StoreOptions {
            wal_max_frames: self.wal_max_frames,
        }
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// The caps handed to the computation core.
    pub fn limits(&self) -> Limits {
        Limits {
            max_tensor_elements: self.max_tensor_elements,
            max_layers: self.max_layers,
            max_timesteps: self.max_timesteps,
            max_optimizer_steps: self.max_optimizer_steps,
            max_expression_len: self.max_expression_len,
            max_expression_depth: self.max_expression_depth,
            ..Limits::default()
        }
    }
}
