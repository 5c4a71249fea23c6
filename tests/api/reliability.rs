//! Abuse limits and access scoping over HTTP: every cap answers quickly with a
//! 4xx problem+json that names it, and no hostile input crashes the process
//! (a stack overflow would abort this whole test binary).

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, spawn_app, spawn_app_with};

/// How long a refusal may take in a debug build on a loaded machine.
const QUICK: Duration = Duration::from_secs(5);

/// POSTs `body` and returns the response and how long it took.
async fn timed_post(
    app: &TestApp,
    path: &str,
    key: Option<&str>,
    body: &Value,
) -> (reqwest::Response, Duration) {
    let start = Instant::now();
    let resp = app.post_json(path, key, body).await;
    (resp, start.elapsed())
}

/// The problem's `detail` and every `errors[].detail`, lowercased, in one string.
fn problem_text(body: &Value) -> String {
    let mut text = body["detail"].as_str().unwrap_or("").to_string();
    if let Some(errors) = body["errors"].as_array() {
        for e in errors {
            text.push(' ');
            text.push_str(e["detail"].as_str().unwrap_or(""));
        }
    }
    text.to_lowercase()
}

/// The `errors[].pointer` values of a problem.
fn pointers(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e["pointer"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn conv_rubric_with_parts(n: usize) -> Value {
    let parts: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "id": format!("p{i}"),
                "max_points": 1,
                "answer": {"type": "shape", "expected": [8, 8, 5]}
            })
        })
        .collect();
    json!({"title": "many parts", "prompt": "output size?", "parts": parts})
}

#[tokio::test]
async fn body_over_the_limit_is_413() {
    let app = spawn_app_with(|c| c.max_body_bytes = 2048).await;
    let body = json!({"expression": "x+".repeat(2000) + "x"});
    let (resp, took) = timed_post(&app, "/v1/calculus", None, &body).await;
    let problem = assert_problem(resp, 413).await;
    assert!(took < QUICK, "took {took:?}");
    assert!(problem_text(&problem).contains("limit"), "{problem}");

    // Just under the limit the same endpoint answers normally.
    let (resp, _) = timed_post(&app, "/v1/calculus", None, &json!({"expression": "x^2"})).await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn body_over_the_default_limit_of_one_mebibyte_is_413() {
    let app = spawn_app().await;
    let body = json!({"expression": "x".repeat(1024 * 1024 + 1)});
    let (resp, took) = timed_post(&app, "/v1/calculus", None, &body).await;
    assert_problem(resp, 413).await;
    assert!(took < QUICK, "took {took:?}");
}

#[tokio::test]
async fn json_nested_past_the_depth_limit_is_400() {
    let app = spawn_app().await;
    // 65 levels of arrays inside the top-level object: 66 > 64.
    let deep = format!("{{\"expression\": {}1{}}}", "[".repeat(65), "]".repeat(65));
    let start = Instant::now();
    let resp = app
        .client
        .post(app.url("/v1/calculus"))
        .header("content-type", "application/json")
        .body(deep)
        .send()
        .await
        .expect("request sent");
    let problem = assert_problem(resp, 400).await;
    assert!(start.elapsed() < QUICK);
    assert!(problem_text(&problem).contains("64"), "{problem}");

    // 100 000 levels (well under the body limit): refused the same way, no
    // recursion in the parser.
    let deeper = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
    let resp = app
        .client
        .post(app.url("/v1/submissions/batch"))
        .bearer_auth(app.admin())
        .header("content-type", "application/json")
        .body(deeper)
        .send()
        .await
        .expect("request sent");
    assert_problem(resp, 400).await;
}

#[tokio::test]
async fn tensor_over_max_tensor_elements_is_422_naming_the_cap() {
    let app = spawn_app_with(|c| c.max_tensor_elements = 100).await;
    let ok = json!({"input": [vec![0.5; 100]], "layers": [{"type": "activation", "activation": "relu"}]});
    let (resp, _) = timed_post(&app, "/v1/forward", None, &ok).await;
    assert_eq!(
        resp.status(),
        200,
        "{}",
        resp.text().await.unwrap_or_default()
    );

    let big = json!({"input": [vec![0.5; 101]], "layers": [{"type": "activation", "activation": "relu"}]});
    let (resp, took) = timed_post(&app, "/v1/forward", None, &big).await;
    let problem = assert_problem(resp, 422).await;
    assert!(took < QUICK, "took {took:?}");
    let text = problem_text(&problem);
    assert!(text.contains("100"), "the cap is named: {problem}");
    assert!(
        pointers(&problem).iter().any(|p| p.starts_with("/input")),
        "{problem}"
    );
}

#[tokio::test]
async fn expression_over_max_length_is_422() {
    let app = spawn_app_with(|c| c.max_expression_len = 100).await;
    let expression = "x+".repeat(50) + "x"; // 101 characters
    let (resp, took) = timed_post(
        &app,
        "/v1/calculus",
        None,
        &json!({"expression": expression}),
    )
    .await;
    let problem = assert_problem(resp, 422).await;
    assert!(took < QUICK, "took {took:?}");
    assert!(problem_text(&problem).contains("100"), "{problem}");
    assert_eq!(pointers(&problem), ["/expression"], "{problem}");
}

#[tokio::test]
async fn deeply_nested_expressions_are_422_without_stack_overflow() {
    // Length cap raised so that only the depth guards stand in the way.
    let app = spawn_app_with(|c| {
        c.max_body_bytes = 8 * 1024 * 1024;
        c.max_expression_len = 4_000_000;
        c.max_expression_depth = 1_000_000;
    })
    .await;
    let n = 200_000;
    // Nesting past the parser's hard ceiling (128) is refused whatever the
    // configured depth; long flat sums and products are read iteratively.
    let nested = [
        format!("{}x{}", "(".repeat(n), ")".repeat(n)),
        format!("{}x{}", "sin(".repeat(n), ")".repeat(n)),
        format!("{}x", "-".repeat(n)),
        vec!["x"; n].join("^"),
    ];
    let flat = [
        format!("{}x", "2*".repeat(n)),
        format!("{}x", "x+".repeat(n)),
    ];
    for (expression, nests) in nested
        .into_iter()
        .map(|e| (e, true))
        .chain(flat.into_iter().map(|e| (e, false)))
    {
        let (resp, took) = timed_post(
            &app,
            "/v1/calculus",
            None,
            &json!({"expression": expression, "hessian": false}),
        )
        .await;
        let what = &expression[..20];
        assert!(took < Duration::from_secs(30), "{what}...: took {took:?}");
        if nests {
            let problem = assert_problem(resp, 422).await;
            assert_eq!(pointers(&problem), ["/expression"], "{what}: {problem}");
            assert!(problem_text(&problem).contains("nested"), "{problem}");
        } else {
            assert_eq!(resp.status(), 200, "{what}");
        }
    }

    // With the default caps, 2000 parentheses (under 4096 characters) are refused
    // for their depth of 2000 > 64.
    let app = spawn_app().await;
    let expression = format!("{}x{}", "(".repeat(2000), ")".repeat(2000));
    let (resp, took) = timed_post(
        &app,
        "/v1/calculus",
        None,
        &json!({"expression": expression}),
    )
    .await;
    let problem = assert_problem(resp, 422).await;
    assert!(took < QUICK, "took {took:?}");
    assert!(problem_text(&problem).contains("64"), "{problem}");
}

#[tokio::test]
async fn nested_sigmoids_finish_within_the_derivative_budget() {
    let app = spawn_app().await;
    let expression = format!("{}x{}", "sigmoid(".repeat(60), ")".repeat(60));
    let (resp, took) = timed_post(
        &app,
        "/v1/calculus",
        None,
        &json!({"expression": expression, "hessian": true, "points": [{"x": 0.5}]}),
    )
    .await;
    assert!(took < Duration::from_secs(20), "took {took:?}");
    let status = resp.status().as_u16();
    assert!(status == 200 || status == 422, "status {status}");
    if status == 422 {
        assert_problem(resp, 422).await;
    }
}

#[tokio::test]
async fn too_many_layers_is_422_naming_the_cap() {
    let app = spawn_app_with(|c| c.max_layers = 10).await;
    let request =
        |n: usize| json!({"input_shape": [3, 8, 8], "layers": vec![json!({"type": "ReLU"}); n]});
    let (resp, _) = timed_post(&app, "/v1/architecture", None, &request(10)).await;
    assert_eq!(
        resp.status(),
        200,
        "{}",
        resp.text().await.unwrap_or_default()
    );
    let (resp, took) = timed_post(&app, "/v1/architecture", None, &request(11)).await;
    let problem = assert_problem(resp, 422).await;
    assert!(took < QUICK, "took {took:?}");
    assert!(problem_text(&problem).contains("10"), "{problem}");
    assert!(
        pointers(&problem).iter().any(|p| p.starts_with("/layers")),
        "{problem}"
    );
}

#[tokio::test]
async fn batch_over_max_batch_items_is_422() {
    let app = spawn_app_with(|c| c.max_batch_items = 3).await;
    let grader = app.create_key("grader").await;
    let item = json!({"rubric_id": "r", "learner_id": "l", "answers": {}});
    let (resp, took) = timed_post(
        &app,
        "/v1/submissions/batch",
        Some(&grader),
        &json!({"submissions": vec![item; 4]}),
    )
    .await;
    let problem = assert_problem(resp, 422).await;
    assert!(took < QUICK, "took {took:?}");
    assert!(problem_text(&problem).contains('3'), "{problem}");
    assert_eq!(pointers(&problem), ["/submissions"], "{problem}");
    let stored: Value = app
        .get("/v1/submissions", Some(&grader))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(stored["items"].as_array().map(Vec::len), Some(0));
}

#[tokio::test]
async fn rubric_with_too_many_parts_is_refused() {
    let app = spawn_app().await;
    let (resp, took) = timed_post(
        &app,
        "/v1/rubrics",
        Some(app.admin()),
        &conv_rubric_with_parts(101),
    )
    .await;
    let problem = assert_problem(resp, 422).await;
    assert!(took < QUICK, "took {took:?}");
    assert!(problem_text(&problem).contains("100"), "{problem}");
    assert!(
        pointers(&problem).iter().any(|p| p == "/parts"),
        "{problem}"
    );
    // 100 parts are accepted.
    let (resp, _) = timed_post(
        &app,
        "/v1/rubrics",
        Some(app.admin()),
        &conv_rubric_with_parts(100),
    )
    .await;
    assert_eq!(
        resp.status(),
        201,
        "{}",
        resp.text().await.unwrap_or_default()
    );
}

#[tokio::test]
async fn a_viewer_can_write_nothing() {
    let app = spawn_app().await;
    let created: Value = app
        .post_json("/v1/rubrics", Some(app.admin()), &conv_rubric_with_parts(1))
        .await
        .json()
        .await
        .expect("json");
    let id = created["id"].as_str().expect("rubric id").to_string();
    let viewer = app.create_key("viewer").await;
    let writes = [
        ("POST", "/v1/rubrics".to_string(), conv_rubric_with_parts(1)),
        (
            "PUT",
            format!("/v1/rubrics/{id}"),
            conv_rubric_with_parts(1),
        ),
        ("POST", format!("/v1/rubrics/{id}/regrade"), json!({})),
        (
            "POST",
            "/v1/submissions".to_string(),
            json!({"rubric_id": id, "learner_id": "l", "answers": {}}),
        ),
        (
            "POST",
            "/v1/submissions/batch".to_string(),
            json!({"submissions": []}),
        ),
        ("POST", "/v1/keys".to_string(), json!({"role": "admin"})),
        ("DELETE", "/v1/learners/l".to_string(), Value::Null),
    ];
    for (method, path, body) in writes {
        let mut req = match method {
            "PUT" => app.client.put(app.url(&path)),
            "DELETE" => app.client.delete(app.url(&path)),
            _ => app.client.post(app.url(&path)),
        };
        if !body.is_null() {
            req = req.json(&body);
        }
        let resp = req.bearer_auth(&viewer).send().await.expect("request sent");
        let status = resp.status().as_u16();
        assert_eq!(status, 403, "{method} {path}");
        assert_problem(resp, 403).await;
    }
    let rubrics: Value = app
        .get("/v1/rubrics", Some(&viewer))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(rubrics["items"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn a_grader_sees_nothing_of_another_graders_submission() {
    let app = spawn_app().await;
    let created: Value = app
        .post_json("/v1/rubrics", Some(app.admin()), &conv_rubric_with_parts(1))
        .await
        .json()
        .await
        .expect("json");
    let id = created["id"].as_str().expect("rubric id").to_string();
    let moodle = app.create_key("grader").await;
    let canvas = app.create_key("grader").await;
    let resp = app
        .post_json(
            "/v1/submissions",
            Some(&moodle),
            &json!({"rubric_id": id, "learner_id": "ann", "answers": {"p0": "8x8x5"}}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let sub: Value = resp.json().await.expect("json");
    let sid = sub["id"].as_str().expect("submission id");
    for path in [
        format!("/v1/submissions/{sid}"),
        format!("/v1/submissions/{sid}/gradescope"),
        format!("/v1/submissions/{sid}/history"),
    ] {
        assert_eq!(app.get(&path, Some(&moodle)).await.status(), 200, "{path}");
        assert_problem(app.get(&path, Some(&canvas)).await, 404).await;
    }
    for path in [
        "/v1/submissions".to_string(),
        "/v1/submissions?learner_id=ann".to_string(),
        format!("/v1/submissions?rubric_id={id}"),
    ] {
        let page: Value = app
            .get(&path, Some(&canvas))
            .await
            .json()
            .await
            .expect("json");
        assert_eq!(page["items"].as_array().map(Vec::len), Some(0), "{path}");
    }
    // The other grader's gradebook has no row for it either.
    let book: Value = app
        .get(&format!("/v1/rubrics/{id}/gradebook"), Some(&canvas))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(book["rows"].as_array().map(Vec::len), Some(0), "{book}");
    // Its own gradebook and statistics count it; the other grader's do not.
    let book = app
        .get_json(&format!("/v1/rubrics/{id}/gradebook"), &moodle)
        .await;
    assert_eq!(book["rows"][0]["submission_id"], sid, "{book}");
    for (key, count) in [(&moodle, 1), (&canvas, 0)] {
        let stats = app
            .get_json(&format!("/v1/rubrics/{id}/statistics"), key)
            .await;
        assert_eq!(stats["count"], count, "{stats}");
    }
    // Same key, same body, other grader: a new submission, not a replay of
    // the first grader's (idempotency keys are scoped to their API key).
    let body = json!({"rubric_id": id, "learner_id": "ann", "answers": {"p0": "8x8x5"}});
    for key in [&moodle, &canvas] {
        let resp = app
            .client
            .post(app.url("/v1/submissions"))
            .bearer_auth(key)
            .header("Idempotency-Key", "shared-key")
            .json(&body)
            .send()
            .await
            .expect("request sent");
        assert_eq!(resp.status(), 201);
    }
}
