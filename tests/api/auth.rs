use serde_json::json;

use crate::helpers::{assert_problem, spawn_app};

#[tokio::test]
async fn no_key_is_401_with_a_bearer_challenge() {
    let app = spawn_app().await;
    let resp = app.get("/v1/keys", None).await;
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    let body = assert_problem(resp, 401).await;
    assert!(body["detail"].as_str().unwrap().contains("Bearer"));
}

#[tokio::test]
async fn unknown_or_malformed_key_is_401() {
    let app = spawn_app().await;
    assert_problem(app.get("/v1/keys", Some("dlg_not_a_key")).await, 401).await;
    let resp = app
        .client
        .get(app.url("/v1/keys"))
        .header("authorization", "Basic abc")
        .send()
        .await
        .unwrap();
    assert_problem(resp, 401).await;
}

#[tokio::test]
async fn wrong_role_is_403_and_right_role_is_2xx() {
    let app = spawn_app().await;
    let viewer = app.create_key("viewer").await;
    let body = assert_problem(app.get("/v1/keys", Some(&viewer)).await, 403).await;
    assert!(body["detail"].as_str().unwrap().contains("viewer"));
    let resp = app.get("/v1/keys", Some(app.admin())).await;
    assert_eq!(resp.status(), 200);
    let keys: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(keys.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn unauthenticated_callers_get_401_before_their_body_is_judged() {
    let app = spawn_app().await;
    let resp = app.post_json("/v1/keys", None, &json!({"role": 3})).await;
    assert_problem(resp, 401).await;
}

#[tokio::test]
async fn keys_are_stored_hashed_and_listed_without_the_key() {
    let app = spawn_app().await;
    let grader = app.create_key("grader").await;
    let listed = app
        .get("/v1/keys", Some(app.admin()))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        !listed.contains(&grader),
        "the clear key must never be listed"
    );
    assert!(!listed.contains(app.admin()));
    let db_path = app.db_path.clone();
    let dir = app.stop().await;
    let raw = std::fs::read(&db_path).unwrap();
    let raw = String::from_utf8_lossy(&raw);
    assert!(
        !raw.contains(&grader),
        "the clear key must not be in the database file"
    );
    assert!(raw.contains(&dlgrade::store::keys::hash_key(&grader)));
    drop(dir);
}

#[tokio::test]
async fn revoked_keys_stop_working() {
    let app = spawn_app().await;
    let resp = app
        .post_json(
            "/v1/keys",
            Some(app.admin()),
            &json!({"role": "instructor", "label": "ta"}),
        )
        .await;
    let created: serde_json::Value = resp.json().await.unwrap();
    let key = created["key"].as_str().unwrap();
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["role"], "instructor");
    assert_eq!(created["label"], "ta");
    let resp = app
        .client
        .delete(app.url(&format!("/v1/keys/{id}")))
        .bearer_auth(app.admin())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    // An instructor may not list keys anyway; a revoked key is not even known.
    assert_problem(app.get("/v1/keys", Some(key)).await, 401).await;
    let resp = app
        .client
        .delete(app.url(&format!("/v1/keys/{id}")))
        .bearer_auth(app.admin())
        .send()
        .await
        .unwrap();
    assert_problem(resp, 404).await;
}

#[tokio::test]
async fn a_key_used_just_before_its_revocation_stops_working_at_once() {
    let app = spawn_app().await;
    let resp = app
        .post_json("/v1/keys", Some(app.admin()), &json!({"role": "viewer"}))
        .await;
    let created: serde_json::Value = resp.json().await.unwrap();
    let key = created["key"].as_str().unwrap();
    let id = created["id"].as_str().unwrap();
    // Verified keys are cached in memory: use the key so that it is.
    for _ in 0..3 {
        assert_eq!(app.get("/v1/rubrics", Some(key)).await.status(), 200);
    }
    let resp = app
        .client
        .delete(app.url(&format!("/v1/keys/{id}")))
        .bearer_auth(app.admin())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_problem(app.get("/v1/rubrics", Some(key)).await, 401).await;
    // Other keys are unaffected.
    assert_eq!(app.get("/v1/keys", Some(app.admin())).await.status(), 200);
}
