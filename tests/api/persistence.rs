use std::time::Duration;

use sqlx::Connection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{spawn_app, spawn_app_with, start, test_config};

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

/// A one-part rubric (conv output size) for the group-commit tests below.
async fn one_part_rubric(app: &crate::helpers::TestApp) -> String {
    let resp = app
        .post_json(
            "/v1/rubrics",
            Some(app.admin()),
            &serde_json::json!({
                "title": "Conv output size",
                "prompt": "5 filters, kernel 7, stride 3, padding 1 on 26x26x26?",
                "parts": [{"id": "b", "max_points": 2,
                           "answer": {"type": "shape", "expected": [8, 8, 5]}}]
            }),
        )
        .await;
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    let body: serde_json::Value = resp.json().await.unwrap();
    body["id"].as_str().unwrap().to_string()
}

async fn batch(
    app: &crate::helpers::TestApp,
    key: &str,
    items: Vec<serde_json::Value>,
) -> Vec<serde_json::Value> {
    let resp = app
        .post_json(
            "/v1/submissions/batch",
            Some(key),
            &serde_json::json!({ "submissions": items }),
        )
        .await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let body: serde_json::Value = resp.json().await.unwrap();
    body["results"].as_array().unwrap().clone()
}

async fn stored_attempts(app: &crate::helpers::TestApp, key: &str, learner: &str) -> Vec<i64> {
    let list: serde_json::Value = app
        .get(&format!("/v1/submissions?learner_id={learner}"), Some(key))
        .await
        .json()
        .await
        .unwrap();
    let mut attempts: Vec<i64> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["attempt"].as_i64().unwrap())
        .collect();
    attempts.sort_unstable();
    attempts
}

#[tokio::test]
async fn identical_keyed_items_of_one_batch_store_one_submission() {
    // The items of a batch reach the group-commit writer together, so the
    // copies usually share one transaction; the outcome must be the same as
    // if they had been sent one by one.
    let app = spawn_app().await;
    let rubric = one_part_rubric(&app).await;
    let grader = app.create_key("grader").await;
    let item = serde_json::json!({"rubric_id": rubric, "learner_id": "dup",
                                  "answers": {"b": "8x8x5"}, "idempotency_key": "k-1"});
    let results = batch(&app, &grader, vec![item.clone(); 6]).await;
    let created = results.iter().filter(|r| r["status"] == 201).count();
    let replayed = results
        .iter()
        .filter(|r| r["status"] == 200 && r["submission"]["replayed"] == true)
        .count();
    assert_eq!((created, replayed), (1, 5), "{results:?}");
    let ids: std::collections::HashSet<&str> = results
        .iter()
        .map(|r| r["submission"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 1, "every copy answers with the one stored row");
    assert_eq!(stored_attempts(&app, &grader, "dup").await, [1]);

    // The same key again, in a later batch: replayed; with another body: 422.
    let other = serde_json::json!({"rubric_id": rubric, "learner_id": "dup",
                                   "answers": {"b": "1x1x1"}, "idempotency_key": "k-1"});
    let results = batch(&app, &grader, vec![item, other]).await;
    assert_eq!(results[0]["status"], 200);
    assert_eq!(results[0]["submission"]["replayed"], true);
    assert_eq!(results[1]["status"], 422);
    assert_eq!(stored_attempts(&app, &grader, "dup").await, [1]);
}

#[tokio::test]
async fn attempts_of_one_learner_in_one_batch_are_numbered_without_gaps() {
    let app = spawn_app().await;
    let rubric = one_part_rubric(&app).await;
    let grader = app.create_key("grader").await;
    let item = |key: Option<&str>| {
        let mut item = serde_json::json!({"rubric_id": rubric, "learner_id": "ann",
                                          "answers": {"b": "8x8x5"}});
        if let Some(key) = key {
            item["idempotency_key"] = key.into();
        }
        item
    };
    // Attempt 1, stored under a key.
    let resp = app
        .post_json("/v1/submissions", Some(&grader), &item(Some("first")))
        .await;
    assert_eq!(resp.status(), 201);
    // A batch with a replay of attempt 1 and four new attempts: the replay
    // takes no number, the new ones follow the stored attempt.
    let results = batch(
        &app,
        &grader,
        vec![
            item(Some("first")),
            item(None),
            item(None),
            item(Some("fourth")),
            item(None),
        ],
    )
    .await;
    assert_eq!(results[0]["status"], 200);
    assert_eq!(results[0]["submission"]["attempt"], 1);
    let mut new: Vec<i64> = results[1..]
        .iter()
        .map(|r| {
            assert_eq!(r["status"], 201, "{r}");
            r["submission"]["attempt"].as_i64().unwrap()
        })
        .collect();
    new.sort_unstable();
    assert_eq!(new, [2, 3, 4, 5]);
    assert_eq!(stored_attempts(&app, &grader, "ann").await, [1, 2, 3, 4, 5]);

    // An explicit attempt number counts for the attempts that follow it.
    let mut explicit = item(None);
    explicit["attempt"] = 10.into();
    let resp = app
        .post_json("/v1/submissions", Some(&grader), &explicit)
        .await;
    assert_eq!(resp.status(), 201);
    let results = batch(&app, &grader, vec![item(None), item(None)]).await;
    let mut new: Vec<i64> = results
        .iter()
        .map(|r| r["submission"]["attempt"].as_i64().unwrap())
        .collect();
    new.sort_unstable();
    assert_eq!(new, [11, 12]);
}

/// The submission writer leaves WAL checkpoints to a background connection
/// and checkpoints itself past `wal_max_frames` pages, so under a stream of
/// submissions the `-wal` file stays small (SQLite reuses it from the start
/// after a complete checkpoint; it never shrinks, so its size is the most
/// it ever held), and every submission is stored.
#[tokio::test]
async fn the_wal_stays_bounded_under_a_stream_of_submissions() {
    let app = spawn_app_with(|config| config.wal_max_frames = 64).await;
    let rubric = one_part_rubric(&app).await;
    let grader = app.create_key("grader").await;
    let wal = app.db_path.with_extension("db-wal");
    let (batches, per_batch) = (40, 100);
    for b in 0..batches {
        let items = (0..per_batch)
            .map(|i| {
                serde_json::json!({"rubric_id": rubric, "learner_id": format!("l-{b}-{i}"),
                                   "answers": {"b": format!("{i}x8x5")}})
            })
            .collect();
        let results = batch(&app, &grader, items).await;
        assert!(results.iter().all(|r| r["status"] == 201), "{results:?}");
    }
    let stats = app
        .get_json(&format!("/v1/rubrics/{rubric}/statistics"), app.admin())
        .await;
    assert_eq!(stats["count"], batches * per_batch);
    // Without checkpoints these 4,000 rows and their index entries take
    // about 7 MiB of WAL; with them it holds a few batches at most.
    let size = std::fs::metadata(&wal).expect("the WAL file exists").len();
    assert!(size < 2 << 20, "WAL grew to {size} bytes");
    app.stop().await;
}
