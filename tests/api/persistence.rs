use std::time::Duration;

use sqlx::Connection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{spawn_app, start, test_config};

#[tokio::test]
async fn migrations_are_applied_on_an_empty_file() {
    let app = spawn_app().await;
    let db_path = app.db_path.clone();
    let dir = app.stop().await;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db_path.display()))
        .await
        .unwrap();
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .unwrap()
        .count() as i64;
    assert_eq!(applied, files);
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(journal, "wal");
    drop(dir);
}

#[tokio::test]
async fn restart_on_the_same_file_keeps_data() {
    let app = spawn_app().await;
    let admin = app.admin().to_string();
    let viewer = app.create_key("viewer").await;
    let db_path = app.db_path.clone();
    let dir = app.stop().await;

    let app = start(test_config(&db_path), db_path.clone()).await;
    assert!(
        app.admin_key.is_none(),
        "no second bootstrap key on a used database"
    );
    let resp = app.get("/v1/keys", Some(&admin)).await;
    assert_eq!(resp.status(), 200);
    let keys: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(keys.as_array().unwrap().len(), 2);
    assert_eq!(app.get("/healthz", Some(&viewer)).await.status(), 200);
    app.stop().await;
    drop(dir);
}

/// Graceful shutdown: a request already in flight when the signal arrives
/// is finished, and what it wrote is there after a restart.
#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_requests() {
    let app = spawn_app().await;
    let admin = app.admin().to_string();
    let db_path = app.db_path.clone();
    let addr = app.addr;

    let body = r#"{"role":"grader","label":"in-flight"}"#;
    let (first, rest) = body.split_at(10);
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /v1/keys HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {admin}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{first}",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    let stopping = tokio::spawn(app.stop());
    tokio::time::sleep(Duration::from_millis(100)).await;
    stream.write_all(rest.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 201"), "got: {response}");
    let dir = stopping.await.unwrap();

    let app = start(test_config(&db_path), db_path.clone()).await;
    let listed = app
        .get("/v1/keys", Some(&admin))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        listed.contains("in-flight"),
        "the in-flight write was lost: {listed}"
    );
    app.stop().await;
    drop(dir);
}
