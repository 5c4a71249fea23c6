use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    dlgrade::cli::run(dlgrade::cli::Cli::parse()).await
}
