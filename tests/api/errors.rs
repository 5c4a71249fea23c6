use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{assert_problem, spawn_app, spawn_app_with};

#[tokio::test]
async fn unknown_route_is_404_problem() {
    let app = spawn_app().await;
    let body = assert_problem(app.get("/v1/nothing-here", None).await, 404).await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("/v1/nothing-here")
    );
}

#[tokio::test]
async fn wrong_method_is_405_problem() {
    let app = spawn_app().await;
    let resp = app.client.put(app.url("/healthz")).send().await.unwrap();
    assert_problem(resp, 405).await;
}

#[tokio::test]
async fn malformed_json_is_400_problem() {
    let app = spawn_app().await;
    let resp = app
        .client
        .post(app.url("/v1/keys"))
        .bearer_auth(app.admin())
        .header("content-type", "application/json")
        .body(r#"{"role": "viewer""#)
        .send()
        .await
        .unwrap();
    let body = assert_problem(resp, 400).await;
    assert!(body["detail"].as_str().unwrap().contains("malformed JSON"));
}

#[tokio::test]
async fn wrong_type_is_422_naming_the_field() {
    let app = spawn_app().await;
    let resp = app
        .post_json(
            "/v1/keys",
            Some(app.admin()),
            &json!({"role": "viewer", "label": 7}),
        )
        .await;
    let body = assert_problem(resp, 422).await;
    assert_eq!(body["errors"][0]["pointer"], "/label");
    let resp = app
        .post_json("/v1/keys", Some(app.admin()), &json!({"role": "wizard"}))
        .await;
    let body = assert_problem(resp, 422).await;
    assert_eq!(body["errors"][0]["pointer"], "/role");
    assert!(
        body["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("wizard")
    );
}

#[tokio::test]
async fn missing_and_unknown_fields_are_named() {
    let app = spawn_app().await;
    let resp = app
        .post_json("/v1/keys", Some(app.admin()), &json!({}))
        .await;
    let body = assert_problem(resp, 422).await;
    assert_eq!(body["errors"][0]["pointer"], "/role");
    let resp = app
        .post_json(
            "/v1/keys",
            Some(app.admin()),
            &json!({"role": "viewer", "lable": "x"}),
        )
        .await;
    let body = assert_problem(resp, 422).await;
    assert_eq!(body["errors"][0]["pointer"], "/lable");
}

#[tokio::test]
async fn body_not_declared_as_json_is_415() {
    let app = spawn_app().await;
    let resp = app
        .client
        .post(app.url("/v1/keys"))
        .bearer_auth(app.admin())
        .header("content-type", "text/plain")
        .body(r#"{"role": "viewer"}"#)
        .send()
        .await
        .unwrap();
    assert_problem(resp, 415).await;
}

#[tokio::test]
async fn oversized_body_is_413() {
    let app = spawn_app_with(|c| c.max_body_bytes = 1024).await;
    let label = "x".repeat(4096);
    let resp = app
        .post_json(
            "/v1/keys",
            Some(app.admin()),
            &json!({"role": "viewer", "label": label}),
        )
        .await;
    assert_problem(resp, 413).await;
}

#[tokio::test]
async fn deeply_nested_body_is_400_not_a_crash() {
    let app = spawn_app().await;
    let deep = format!("{}{}", "[".repeat(50_000), "]".repeat(50_000));
    let resp = app
        .client
        .post(app.url("/v1/keys"))
        .bearer_auth(app.admin())
        .header("content-type", "application/json")
        .body(deep)
        .send()
        .await
        .unwrap();
    let body = assert_problem(resp, 400).await;
    assert!(body["detail"].as_str().unwrap().contains("nested deeper"));
}

/// A client that sends its headers and then stalls makes the request outlive
/// the time limit: the server answers 503 problem+json instead of hanging.
#[tokio::test]
async fn requests_past_the_time_limit_get_503() {
    let app = spawn_app_with(|c| c.request_timeout_ms = 200).await;
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST /v1/keys HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"role\":",
        app.addr,
        app.admin()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), async {
        let mut chunk = [0u8; 4096];
        loop {
            let n = stream.read(&mut chunk).await.unwrap();
            buf.extend_from_slice(&chunk[..n]);
            if n == 0 || String::from_utf8_lossy(&buf).contains("\"status\":503") {
                break;
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server did not answer within 5 s");
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 503"), "got: {text}");
    assert!(text.contains("application/problem+json"), "got: {text}");
}
