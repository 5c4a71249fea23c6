//! Rubrics, grading previews, submissions, gradebook, statistics, regrade
//! and erasure over HTTP against a real SQLite file.

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, spawn_app};

/// Problem 4b of the reference CNN exam: 5 filters, kernel 7, stride 3,
/// padding 1 on 26x26x26 -> 8x8x5 (2p), 1p for only the spatial size.
fn conv_rubric(points: f64) -> Value {
    json!({
        "title": "Conv output size",
        "prompt": "5 filters, kernel 7, stride 3, padding 1 on a 26x26x26 input: output size?",
        "parts": [{
            "id": "b",
            "max_points": points,
            "answer": {"type": "shape", "expected": [8, 8, 5]},
            "alternatives": [{"id": "spatial_only", "dims": [0, 1], "points": 1,
                              "feedback": "the depth is the number of filters, 5"}]
        }],
        "tests": [
            {"name": "full", "answers": {"b": "8x8x5"}, "expected_score": points},
            {"name": "spatial only", "answers": {"b": "8 x 8"}, "expected_score": 1}
        ]
    })
}

async fn create_rubric(app: &TestApp, key: &str, rubric: &Value) -> Value {
    let resp = app.post_json("/v1/rubrics", Some(key), rubric).await;
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    resp.json().await.unwrap()
}

async fn submit(app: &TestApp, key: &str, rubric_id: &str, learner: &str, answer: &str) -> Value {
    let resp = app
        .post_json(
            "/v1/submissions",
            Some(key),
            &json!({"rubric_id": rubric_id, "learner_id": learner, "answers": {"b": answer}}),
        )
        .await;
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    resp.json().await.unwrap()
}

#[tokio::test]
async fn rubric_roles_validation_and_self_tests() {
    let app = spawn_app().await;
    let viewer = app.create_key("viewer").await;
    let instructor = app.create_key("instructor").await;
    assert_problem(
        app.post_json("/v1/rubrics", None, &conv_rubric(2.0)).await,
        401,
    )
    .await;
    assert_problem(
        app.post_json("/v1/rubrics", Some(&viewer), &conv_rubric(2.0))
            .await,
        403,
    )
    .await;

    let mut bad = conv_rubric(2.0);
    bad["parts"][0]["max_points"] = json!(-1);
    let body = assert_problem(
        app.post_json("/v1/rubrics", Some(&instructor), &bad).await,
        422,
    )
    .await;
    assert!(
        body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["pointer"]
                .as_str()
                .unwrap()
                .starts_with("/parts/0/max_points")),
        "{body}"
    );

    let mut failing = conv_rubric(2.0);
    failing["tests"][1]["expected_score"] = json!(2);
    let body = assert_problem(
        app.post_json("/v1/rubrics", Some(&instructor), &failing)
            .await,
        422,
    )
    .await;
    assert_eq!(body["errors"][0]["pointer"], "/tests/1", "{body}");

    let created = create_rubric(&app, &instructor, &conv_rubric(2.0)).await;
    assert_eq!(created["version"], 1);
    assert_eq!(created["max_score"], 2.0);
    assert_eq!(
        created["self_tests"]["passed"], 3,
        "two own tests + the generated model-answer test"
    );
    let id = created["id"].as_str().unwrap();
    let got: Value = app
        .get(&format!("/v1/rubrics/{id}"), Some(&viewer))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got["title"], "Conv output size");
    let list: Value = app
        .get("/v1/rubrics", Some(&viewer))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"][0]["id"], id);
    assert_problem(app.get("/v1/rubrics/nope", Some(&viewer)).await, 404).await;
}

#[tokio::test]
async fn editing_creates_versions_and_old_versions_stay() {
    let app = spawn_app().await;
    let created = create_rubric(&app, app.admin(), &conv_rubric(2.0)).await;
    let id = created["id"].as_str().unwrap();
    let resp = app
        .client
        .put(app.url(&format!("/v1/rubrics/{id}")))
        .bearer_auth(app.admin())
        .json(&conv_rubric(3.0))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let v2: Value = resp.json().await.unwrap();
    assert_eq!(v2["version"], 2);
    let v1: Value = app
        .get(&format!("/v1/rubrics/{id}/versions/1"), Some(app.admin()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v1["max_score"], 2.0);
    let latest: Value = app
        .get(&format!("/v1/rubrics/{id}"), Some(app.admin()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(latest["version"], 2);
    assert_eq!(latest["max_score"], 3.0);
    assert_problem(
        app.get(&format!("/v1/rubrics/{id}/versions/9"), Some(app.admin()))
            .await,
        404,
    )
    .await;
}

#[tokio::test]
async fn grade_preview_with_an_inline_rubric_needs_no_key() {
    let app = spawn_app().await;
    let resp = app
        .post_json(
            "/v1/grade",
            None,
            &json!({"rubric": conv_rubric(2.0), "answers": {"b": "(8, 8, 5)"}}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let result: Value = resp.json().await.unwrap();
    assert_eq!(result["score"], 2.0);
    assert_eq!(result["parts"][0]["normalized_answer"], "(8, 8, 5)");
    let resp = app
        .post_json("/v1/grade", None, &json!({"rubric_id": "x", "answers": {}}))
        .await;
    assert_problem(resp, 401).await;
}

#[tokio::test]
async fn submissions_are_graded_stored_and_scoped_to_their_grader() {
    let app = spawn_app().await;
    let rubric = create_rubric(&app, app.admin(), &conv_rubric(2.0)).await;
    let id = rubric["id"].as_str().unwrap();
    let moodle = app.create_key("grader").await;
    let canvas = app.create_key("grader").await;
    let viewer = app.create_key("viewer").await;
    assert_problem(
        app.post_json(
            "/v1/submissions",
            Some(&viewer),
            &json!({"rubric_id": id, "learner_id": "l1", "answers": {}}),
        )
        .await,
        403,
    )
    .await;

    let full = submit(&app, &moodle, id, "l1", "8x8x5").await;
    assert_eq!(full["score"], 2.0);
    assert_eq!(full["status"], "fully_graded");
    assert_eq!(full["grading_progress"], "FullyGraded");
    assert_eq!(full["attempt"], 1);
    assert_eq!(full["rubric_version"], 1);
    let partial = submit(&app, &moodle, id, "l1", "8 x 8").await;
    assert_eq!(partial["score"], 1.0);
    assert_eq!(partial["attempt"], 2);
    assert_eq!(
        partial["result"]["parts"][0]["matched_rule"],
        "spatial_only"
    );
    let unreadable = submit(&app, &canvas, id, "l2", "eight by ???").await;
    assert_eq!(unreadable["status"], "not_gradable");
    assert_eq!(unreadable["result"]["parts"][0]["verdict"], "not_gradable");

    let sid = full["id"].as_str().unwrap();
    let got: Value = app
        .get(&format!("/v1/submissions/{sid}"), Some(&moodle))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got["score"], 2.0);
    assert_eq!(got["answers"]["b"], "8x8x5");
    // another integration's grader key cannot read it; instructors and viewers can
    assert_problem(
        app.get(&format!("/v1/submissions/{sid}"), Some(&canvas))
            .await,
        404,
    )
    .await;
    assert_eq!(
        app.get(&format!("/v1/submissions/{sid}"), Some(&viewer))
            .await
            .status(),
        200
    );
    let mine: Value = app
        .get("/v1/submissions", Some(&canvas))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    let all: Value = app
        .get(
            &format!("/v1/submissions?rubric_id={id}&limit=2"),
            Some(&viewer),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all["items"].as_array().unwrap().len(), 2);
    let cursor = all["next_cursor"].as_str().unwrap();
    let rest: Value = app
        .get(
            &format!("/v1/submissions?rubric_id={id}&limit=2&cursor={cursor}"),
            Some(&viewer),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert!(rest["next_cursor"].is_null());
    let l1: Value = app
        .get("/v1/submissions?learner_id=l1", Some(&viewer))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(l1["items"].as_array().unwrap().len(), 2);

    let gs: Value = app
        .get(&format!("/v1/submissions/{sid}/gradescope"), Some(&viewer))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(gs["score"], 2.0);
    assert_eq!(gs["tests"][0]["status"], "passed");

    // unknown rubric: named field
    let resp = app
        .post_json(
            "/v1/submissions",
            Some(&moodle),
            &json!({"rubric_id": "nope", "learner_id": "l", "answers": {}}),
        )
        .await;
    let body = assert_problem(resp, 422).await;
    assert_eq!(body["errors"][0]["pointer"], "/rubric_id");
}

#[tokio::test]
async fn idempotency_keys_replay_and_refuse_other_bodies() {
    let app = spawn_app().await;
    let rubric = create_rubric(&app, app.admin(), &conv_rubric(2.0)).await;
    let id = rubric["id"].as_str().unwrap();
    let grader = app.create_key("grader").await;
    let body = json!({"rubric_id": id, "learner_id": "l1", "answers": {"b": "8x8x5"}});
    let send = |body: Value| {
        app.client
            .post(app.url("/v1/submissions"))
            .bearer_auth(&grader)
            .header("Idempotency-Key", "attempt-42")
            .json(&body)
            .send()
    };
    let first = send(body.clone()).await.unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["replayed"], false);
    let again = send(body.clone()).await.unwrap();
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["replayed"], true);
    assert_eq!(again["id"], first["id"]);
    let other = send(json!({"rubric_id": id, "learner_id": "l1", "answers": {"b": "1x1x1"}}))
        .await
        .unwrap();
    assert_problem(other, 422).await;
    let list: Value = app
        .get("/v1/submissions", Some(&grader))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn fifty_concurrent_identical_requests_store_one_submission() {
    let app = spawn_app().await;
    let rubric = create_rubric(&app, app.admin(), &conv_rubric(2.0)).await;
    let id = rubric["id"].as_str().unwrap().to_string();
    let grader = app.create_key("grader").await;
    let body = json!({"rubric_id": id, "learner_id": "l1", "answers": {"b": "8x8x5"}});
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let request = app
            .client
            .post(app.url("/v1/submissions"))
            .bearer_auth(&grader)
            .header("Idempotency-Key", "same-key")
            .json(&body);
        tasks.push(tokio::spawn(async move {
            let resp = request.send().await.unwrap();
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.unwrap();
            (status, body["id"].as_str().unwrap().to_string())
        }));
    }
    let mut created = 0;
    let mut ids = std::collections::HashSet::new();
    for t in tasks {
        let (status, id) = t.await.unwrap();
        assert!(status == 201 || status == 200, "status {status}");
        created += usize::from(status == 201);
        ids.insert(id);
    }
    assert_eq!(created, 1);
    assert_eq!(ids.len(), 1);
    let list: Value = app
        .get("/v1/submissions", Some(&grader))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn batch_items_fail_alone() {
    let app = spawn_app().await;
    let rubric = create_rubric(&app, app.admin(), &conv_rubric(2.0)).await;
    let id = rubric["id"].as_str().unwrap();
    let grader = app.create_key("grader").await;
    // A malformed item refuses the whole batch, naming each bad field.
    let resp = app
        .post_json(
            "/v1/submissions/batch",
            Some(&grader),
            &json!({"submissions": [
                {"rubric_id": id, "learner_id": "a", "answers": {"b": "8x8x5"}},
                {"rubric_id": id, "learner_id": "b", "answers": {"b": "8x8"}, "oops": 1},
                {"rubric_id": id, "answers": {}}
            ]}),
        )
        .await;
    let body = assert_problem(resp, 422).await;
    let pointers: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert_eq!(
        pointers,
        ["/submissions/1/oops", "/submissions/2/learner_id"]
    );
    let stored: Value = app
        .get("/v1/submissions", Some(&grader))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        stored["items"].as_array().unwrap().is_empty(),
        "nothing stored"
    );

    // Well-formed items fail alone.
    let resp = app
        .post_json(
            "/v1/submissions/batch",
            Some(&grader),
            &json!({"submissions": [
                {"rubric_id": id, "learner_id": "a", "answers": {"b": "8x8x5"}, "idempotency_key": "k-a"},
                {"rubric_id": "missing", "learner_id": "c", "answers": {}},
                {"rubric_id": id, "learner_id": "d", "answers": {"b": "8 x 8"}}
            ]}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["succeeded"], 2);
    assert_eq!(body["failed"], 1);
    let results = body["results"].as_array().unwrap();
    assert_eq!(results[0]["status"], 201);
    assert_eq!(results[0]["submission"]["score"], 2.0);
    assert_eq!(results[1]["status"], 422);
    assert_eq!(
        results[1]["problem"]["errors"][0]["pointer"],
        "/submissions/1/rubric_id"
    );
    assert_eq!(results[2]["submission"]["score"], 1.0);
}

#[tokio::test]
async fn gradebook_statistics_regrade_and_erasure() {
    let app = spawn_app().await;
    let rubric = create_rubric(&app, app.admin(), &conv_rubric(2.0)).await;
    let id = rubric["id"].as_str().unwrap();
    let grader = app.create_key("grader").await;
    submit(&app, &grader, id, "ann", "8 x 8").await; // 1, then improves
    submit(&app, &grader, id, "ann", "8x8x5").await; // 2
    submit(&app, &grader, id, "bob", "8x8").await; // 1
    submit(&app, &grader, id, "cy", "3x3x3").await; // 0

    let book: Value = app
        .get(&format!("/v1/rubrics/{id}/gradebook"), Some(app.admin()))
        .await
        .json()
        .await
        .unwrap();
    let rows = book["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["learner_id"], "ann");
    assert_eq!(rows[0]["score"], 2.0);
    assert_eq!(rows[0]["attempts"], 2);
    assert_eq!(rows[1]["score"], 1.0);
    assert_eq!(rows[2]["score"], 0.0);

    let resp = app
        .client
        .get(app.url(&format!("/v1/rubrics/{id}/gradebook")))
        .bearer_auth(app.admin())
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = resp.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("learner_id,score,max_score,percent,status,attempt,attempts"));
    assert!(
        lines[1].starts_with("ann,2,2,100.00,fully_graded,2,2,"),
        "{csv}"
    );
    assert!(
        lines[2].starts_with("bob,1,2,50.00,fully_graded,1,1,"),
        "{csv}"
    );
    assert_eq!(lines.len(), 4);
    let csv_op = app
        .get(
            &format!("/v1/rubrics/{id}/gradebook.csv"),
            Some(app.admin()),
        )
        .await;
    assert!(
        csv_op.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert_eq!(csv_op.text().await.unwrap(), csv);

    let stats: Value = app
        .get(&format!("/v1/rubrics/{id}/statistics"), Some(app.admin()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stats["count"], 3);
    assert_eq!(stats["mean_score"], 1.0);
    assert_eq!(stats["parts"][0]["facility"], 50.0);
    let rules = stats["parts"][0]["rule_counts"].as_array().unwrap();
    assert!(
        rules.contains(&json!({"rule": "spatial_only", "count": 1})),
        "{rules:?}"
    );

    // Version 2 gives 3 points for the full answer: dry run lists, then applies.
    app.client
        .put(app.url(&format!("/v1/rubrics/{id}")))
        .bearer_auth(app.admin())
        .json(&conv_rubric(3.0))
        .send()
        .await
        .unwrap();
    let dry: Value = app
        .post_json(
            &format!("/v1/rubrics/{id}/regrade"),
            Some(app.admin()),
            &json!({"dry_run": true}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(dry["examined"], 4);
    assert_eq!(dry["changed"].as_array().unwrap().len(), 1);
    assert_eq!(dry["changed"][0]["delta"], 1.0);
    let sid = dry["changed"][0]["submission_id"]
        .as_str()
        .unwrap()
        .to_string();
    let unchanged: Value = app
        .get(&format!("/v1/submissions/{sid}"), Some(app.admin()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(unchanged["score"], 2.0);
    let applied: Value = app
        .post_json(
            &format!("/v1/rubrics/{id}/regrade"),
            Some(app.admin()),
            &json!({}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(applied["version"], 2);
    let now: Value = app
        .get(&format!("/v1/submissions/{sid}"), Some(app.admin()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(now["score"], 3.0);
    assert_eq!(now["rubric_version"], 2);
    let history: Value = app
        .get(&format!("/v1/submissions/{sid}/history"), Some(app.admin()))
        .await
        .json()
        .await
        .unwrap();
    let history = history.as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[1]["reason"], "regrade");
    assert_eq!(history[1]["old_score"], 2.0);
    assert_eq!(history[1]["new_score"], 3.0);
    assert_eq!(history[1]["old_version"], 1);

    // Erasure
    let viewer = app.create_key("viewer").await;
    let resp = app
        .client
        .delete(app.url("/v1/learners/ann"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_problem(resp, 403).await;
    let erased: Value = app
        .client
        .delete(app.url("/v1/learners/ann"))
        .bearer_auth(app.admin())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(erased["erased_submissions"], 2);
    let left: Value = app
        .get("/v1/submissions?learner_id=ann", Some(app.admin()))
        .await
        .json()
        .await
        .unwrap();
    assert!(left["items"].as_array().unwrap().is_empty());
}
