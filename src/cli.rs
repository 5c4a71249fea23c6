//! The command line: `dlgrade serve | openapi | keys create`.

use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::startup::Application;
use crate::store::Store;
use crate::store::keys::Role;

/// dlgrade computes the answers to deep-learning exam problems with worked
/// steps and grades students' answers against rubrics with partial credit.
#[derive(Debug, Parser)]
#[command(name = "dlgrade", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the HTTP server (default 127.0.0.1:8080, SQLite file ./dlgrade.db,
    /// created and migrated at start). Stops gracefully on SIGINT/SIGTERM.
    Serve(Box<Config>),
    /// Print the OpenAPI 3.1 document to stdout
    /// (regenerate the committed copy: `cargo run -- openapi > openapi/openapi.json`).
    Openapi,
    /// The question bank shipped with dlgrade (bank/*.json).
    Bank {
        #[command(subcommand)]
        command: BankCommand,
    },
    /// Manage API keys in the database directly.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum BankCommand {
    /// Load the bank into the database: new questions become rubrics, changed
    /// ones new versions (every question's self-tests must pass).
    Load {
        /// SQLite database URL.
        #[arg(long, env = "DATABASE_URL", default_value = "sqlite://dlgrade.db")]
        database_url: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key and print it once (it is stored hashed).
    Create {
        /// Role of the key: admin, instructor, grader (LMS integrations) or viewer.
        #[arg(long)]
        role: Role,
        /// Free label, e.g. the integration it is for.
        #[arg(long, default_value = "")]
        label: String,
        /// SQLite database URL.
        #[arg(long, env = "DATABASE_URL", default_value = "sqlite://dlgrade.db")]
        database_url: String,
    },
}

impl clap::ValueEnum for Role {
    fn value_variants<'a>() -> &'a [Self] {
        &[Role::Admin, Role::Instructor, Role::Grader, Role::Viewer]
    }
    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.as_str()))
    }
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(config) => {
            crate::telemetry::init(config.log_json);
            let app = Application::build(*config).await?;
            if let Some(key) = &app.bootstrap_key {
                println!(
                    "Created the first admin API key (shown only this once; it is stored hashed):\n\n    {}\n",
                    key.key
                );
            }
            let addr = app.local_addr()?;
            tracing::info!(%addr, "dlgrade listening; API docs at http://{addr}/docs");
            app.run_until_signal().await
        }
        Command::Bank {
            command: BankCommand::Load { database_url },
        } => {
            let store = Store::open(&database_url).await?;
            let limits = crate::compute::limits::Limits::default();
            let loaded = crate::bank::load(&store, &limits).await;
            store.close().await;
            for item in loaded? {
                match item {
                    crate::bank::Loaded::Created { slug, rubric_id } => {
                        println!("created  {slug} (rubric {rubric_id})")
                    }
                    crate::bank::Loaded::NewVersion {
                        slug,
                        rubric_id,
                        version,
                    } => println!("updated  {slug} (rubric {rubric_id}, version {version})"),
                    crate::bank::Loaded::Unchanged { slug } => println!("same     {slug}"),
                }
            }
            Ok(())
        }
        Command::Openapi => {
            print!("{}", crate::api::openapi_json());
            Ok(())
        }
        Command::Keys {
            command:
                KeysCommand::Create {
                    role,
                    label,
                    database_url,
                },
        } => {
            let store = Store::open(&database_url).await?;
            let key = store.create_key(role, &label).await?;
            store.close().await;
            println!("{}", key.key);
            eprintln!(
                "created {} key {} (shown only this once)",
                role.as_str(),
                key.info.id
            );
            Ok(())
        }
    }
}
