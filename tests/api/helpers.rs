use std::net::SocketAddr;
use std::path::PathBuf;

use dlgrade::config::Config;
use dlgrade::startup::Application;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running server on a random port with its own SQLite file.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    /// The bootstrap admin key (None when the database already had keys).
    pub admin_key: Option<String>,
    pub db_path: PathBuf,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
    _dir: Option<tempfile::TempDir>,
}

pub fn test_config(db_path: &std::path::Path) -> Config {
    let mut config = Config::defaults();
    config.addr = "127.0.0.1:0".parse().expect("literal address");
    config.database_url = format!("sqlite://{}", db_path.display());
    // Most tests want an empty database; tests/api/bank.rs loads the bank.
    config.no_bank = true;
    config
}

/// Starts a server on a fresh database in a new temp dir.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts a server on a fresh database, with the config adjusted by `tweak`.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let db_path = dir.path().join("dlgrade.db");
    let mut config = test_config(&db_path);
    tweak(&mut config);
    let mut app = start(config, db_path).await;
    app._dir = Some(dir);
    app
}

/// Starts a server with `config` (whose database is at `db_path`).
pub async fn start(config: Config, db_path: PathBuf) -> TestApp {
    let application = Application::build(config).await.expect("build app");
    let addr = application.local_addr().expect("bound address");
    let admin_key = application.bootstrap_key.as_ref().map(|k| k.key.clone());
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(application.run_until(async {
        let _ = rx.await;
    }));
    TestApp {
        addr,
        client: reqwest::Client::new(),
        admin_key,
        db_path,
        shutdown: Some(tx),
        handle: Some(handle),
        _dir: None,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn admin(&self) -> &str {
        self.admin_key
            .as_deref()
            .expect("this app has a bootstrap admin key")
    }

    pub async fn get(&self, path: &str, key: Option<&str>) -> reqwest::Response {
        let mut req = self.client.get(self.url(path));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        req.send().await.expect("request sent")
    }

    /// GET `path` with `key`, expecting 200 and a JSON body.
    pub async fn get_json(&self, path: &str, key: &str) -> Value {
        let resp = self.get(path, Some(key)).await;
        assert_eq!(resp.status(), 200, "GET {path}");
        resp.json().await.expect("JSON body")
    }

    /// PUT `body` to `path` with `key`; returns the response.
    pub async fn put_json(&self, path: &str, key: &str, body: &Value) -> reqwest::Response {
        self.client
            .put(self.url(path))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn post_json(
        &self,
        path: &str,
        key: Option<&str>,
        body: &Value,
    ) -> reqwest::Response {
        let mut req = self.client.post(self.url(path)).json(body);
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        req.send().await.expect("request sent")
    }

    /// Creates a key of `role` through the API with the admin key.
    pub async fn create_key(&self, role: &str) -> String {
        let resp = self
            .post_json(
                "/v1/keys",
                Some(self.admin()),
                &serde_json::json!({"role": role}),
            )
            .await;
        assert_eq!(resp.status(), 201);
        let body: Value = resp.json().await.expect("json");
        body["key"].as_str().expect("key in response").to_string()
    }

    /// Graceful shutdown; waits until the server has closed the database.
    /// Returns the temp dir so that the database file outlives the server.
    pub async fn stop(mut self) -> Option<tempfile::TempDir> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle
                .await
                .expect("server task")
                .expect("server ran cleanly");
        }
        self._dir.take()
    }
}

/// Asserts a problem+json response with `status` and returns its body.
pub async fn assert_problem(resp: reqwest::Response, status: u16) -> Value {
    assert_eq!(resp.status().as_u16(), status, "unexpected status");
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = resp.json().await.expect("problem body is JSON");
    assert_eq!(body["status"], status);
    assert!(body["type"].is_string(), "type missing: {body}");
    assert!(body["title"].is_string(), "title missing: {body}");
    assert!(body["detail"].is_string(), "detail missing: {body}");
    body
}
