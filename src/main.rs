use clap::Parser;

/// mimalloc: the service allocates many small short-lived objects per
/// request (JSON values, feedback strings); see BENCHMARKS.md.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    dlgrade::cli::run(dlgrade::cli::Cli::parse()).await
}
