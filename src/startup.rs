//! Building and running the application: open the store, bind the listener,
//! serve until SIGINT/SIGTERM, then finish in-flight requests and close the
//! database cleanly.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::api::{self, AppState};
use crate::config::Config;
use crate::store::Store;
use crate::store::keys::NewKey;

/// A bound, ready-to-run server.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    /// The admin key created on first start with an empty database.
    pub bootstrap_key: Option<NewKey>,
}

impl Application {
    /// Opens and migrates the database, creates the first admin key if the
    /// database has none (unless disabled), and binds `config.addr` (port 0
    /// picks a free port).
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let store = Store::open_with(&config.database_url, &config.store_options()).await?;
        if !config.no_bank && store.has_no_rubrics().await? {
            // A bank problem must not keep the service from starting: it is
            // logged, and `dlgrade bank load` reports it in full.
            match crate::bank::load(&store, &config.limits()).await {
                Ok(loaded) => tracing::info!(
                    questions = loaded.len(),
                    "loaded the question bank into the empty database"
                ),
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "cannot load the question bank")
                }
            }
        }
        let bootstrap_key = if config.no_bootstrap_key {
            None
        } else {
            store.bootstrap_admin_key().await?
        };
        let listener = TcpListener::bind(config.addr)
            .await
            .with_context(|| format!("cannot listen on {}", config.addr))?;
        let limits = Arc::new(config.limits());
        let state = AppState {
            store,
            config: Arc::new(config),
            limits,
            rubrics: Arc::default(),
        };
        Ok(Self {
            listener,
            state,
            bootstrap_key,
        })
    }

    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        self.listener
            .local_addr()
            .context("listener has no address")
    }

    pub fn store(&self) -> &Store {
        &self.state.store
    }

    /// Serves until `shutdown` resolves; then stops accepting, lets in-flight
    /// requests finish and closes the database (checkpointing the WAL).
    pub async fn run_until<F>(self, shutdown: F) -> anyhow::Result<()>
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let store = self.state.store.clone();
        let app = api::app(self.state);
        let result = axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .context("server error");
        store.close().await;
        result
    }

    /// Serves until SIGINT or SIGTERM.
    pub async fn run_until_signal(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received: finishing in-flight requests");
}
