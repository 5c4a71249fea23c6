//! Template rubrics over HTTP: variants by seed, grading and regrading
//! against a variant's keys, and the refusals (bad seeds, fixed rubrics,
//! templates without acceptable variants).

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, spawn_app};

/// Convolution output size with five parameters; `out` is derived.
fn conv_template(max_points: f64) -> Value {
    json!({
        "title": "Convolution output size",
        "prompt": "{{f}} filters of {{k}}x{{k}}, stride {{s}}, padding {{p}}, on a {{n}}x{{n}}x3 input: output size?",
        "parts": [{
            "id": "b", "max_points": max_points,
            "answer": {"type": "shape", "expected": {"compute": {
                "engine": "architecture",
                "request": {"input_shape": ["{{n}}", "{{n}}", 3], "layout": "HWC",
                    "layers": [{"type": "conv2d", "filters": "{{f}}", "kernel_size": "{{k}}",
                                "strides": "{{s}}", "padding": "{{p}}"}]},
                "select": "/layers/0/output_shape"}}},
            "alternatives": [{"id": "spatial_only", "dims": [0, 1], "points": max_points / 2.0}],
            "mistakes": [{"id": "no_padding", "patch": {"/layers/0/padding": 0}, "points": 0,
                          "feedback": "the padding of {{p}} counts on both sides"}]
        }],
        "tests": [{"name": "printed", "answers": {"b": "8x8x5"}, "expected_score": max_points}],
        "template": {
            "parameters": {
                "n": {"default": 26, "min": 20, "max": 40},
                "k": {"default": 7, "values": [3, 5, 7]},
                "s": {"default": 3, "values": [1, 2, 3]},
                "p": {"default": 1, "values": [0, 1, 2]},
                "f": {"default": 5, "min": 2, "max": 16}
            },
            "derived": {"out": "(n - k + 2*p)/s + 1"},
            "constraints": [{"expr": "out", "integer": true, "min": 2}],
            "tests": [{"name": "model", "answers": {"b": "{{out}}x{{out}}x{{f}}"},
                       "expected_score": max_points}]
        }
    })
}

async fn create(app: &TestApp, rubric: &Value) -> String {
    let resp = app
        .post_json("/v1/rubrics", Some(app.admin()), rubric)
        .await;
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    body["id"].as_str().unwrap().to_string()
}

/// Stores `rubric`, which must be refused with a 422; returns the problem.
async fn refused(app: &TestApp, rubric: &Value) -> Value {
    let resp = app
        .post_json("/v1/rubrics", Some(app.admin()), rubric)
        .await;
    assert_problem(resp, 422).await
}

async fn variant(app: &TestApp, id: &str, seed: i64) -> Value {
    let resp = app
        .post_json(
            &format!("/v1/rubrics/{id}/variants"),
            Some(app.admin()),
            &json!({"seed": seed}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

/// The output size of a variant, from its parameters (independent of the engine).
fn output_size(v: &Value) -> (i64, i64) {
    let p = |name: &str| v["parameters"][name].as_f64().unwrap();
    let out = (p("n") - p("k") + 2.0 * p("p")) / p("s") + 1.0;
    assert_eq!(out.fract(), 0.0, "constraint: whole output size");
    (out as i64, p("f") as i64)
}

#[tokio::test]
async fn a_seed_gives_one_variant_and_submissions_are_graded_against_it() {
    let app = spawn_app().await;
    let id = create(&app, &conv_template(2.0)).await;
    let grader = app.create_key("grader").await;

    let a = variant(&app, &id, 11).await;
    assert_eq!(a, variant(&app, &id, 11).await, "same seed, same variant");
    assert_eq!(a["seed"], 11);
    assert_eq!(a["version"], 1);
    let (out, f) = output_size(&a);
    let p = &a["parameters"];
    assert_ne!(
        p["p"], 0,
        "padding 0 makes the no-padding mistake equal the key"
    );
    assert_eq!(a["derived"]["out"], out);
    assert_eq!(a["model_answers"]["b"], format!("({out}, {out}, {f})"));
    assert_eq!(
        a["prompt"],
        format!(
            "{f} filters of {k}x{k}, stride {s}, padding {pad}, on a {n}x{n}x3 input: output size?",
            k = p["k"],
            s = p["s"],
            pad = p["p"],
            n = p["n"]
        )
    );
    assert_eq!(
        a["rubric"]["parts"][0]["answer"]["expected"],
        json!([out, out, f])
    );
    assert!(a["rubric"].get("template").is_none());
    assert_eq!(a["self_tests"]["failures"], json!([]));
    let distinct: std::collections::BTreeSet<String> = {
        let mut s = std::collections::BTreeSet::new();
        for seed in 0..8 {
            s.insert(variant(&app, &id, seed).await["parameters"].to_string());
        }
        s
    };
    assert!(distinct.len() >= 6, "{distinct:?}");

    // The model answer of the variant earns full marks with its seed.
    let submit = |seed: Option<i64>, learner: &str, answer: String| {
        let mut body = json!({"rubric_id": id, "learner_id": learner, "answers": {"b": answer}});
        if let Some(seed) = seed {
            body["variant_seed"] = json!(seed);
        }
        let app = &app;
        let grader = grader.clone();
        async move {
            let resp = app.post_json("/v1/submissions", Some(&grader), &body).await;
            assert_eq!(resp.status(), 201);
            resp.json::<Value>().await.unwrap()
        }
    };
    let right = submit(Some(11), "ann", format!("{out}x{out}x{f}")).await;
    assert_eq!(right["result"]["score"], 2.0);
    assert_eq!(right["variant_seed"], 11);
    let spatial = submit(Some(11), "bob", format!("{out} x {out}")).await;
    assert_eq!(spatial["result"]["score"], 1.0);
    assert_eq!(
        spatial["result"]["parts"][0]["matched_rule"],
        "spatial_only"
    );
    // Without the seed the printed question's key (8, 8, 5) applies.
    let printed = submit(None, "cy", "8x8x5".into()).await;
    assert_eq!(printed["result"]["score"], 2.0);
    if (out, f) != (8, 5) {
        let wrong_variant = submit(Some(11), "dan", "8x8x5".into()).await;
        assert!(wrong_variant["result"]["score"].as_f64().unwrap() < 2.0);
    }

    // A preview with the stored rubric and with the inline template agree.
    for body in [
        json!({"rubric_id": id, "variant_seed": 11, "answers": {"b": format!("{out}x{out}x{f}")}}),
        json!({"rubric": conv_template(2.0), "variant_seed": 11,
               "answers": {"b": format!("{out}x{out}x{f}")}}),
    ] {
        let resp = app.post_json("/v1/grade", Some(app.admin()), &body).await;
        assert_eq!(resp.status(), 200);
        let graded: Value = resp.json().await.unwrap();
        assert_eq!(graded["score"], 2.0);
    }

    // The gradebook records the seed of each learner's variant.
    let book: Value = app
        .get_json(&format!("/v1/rubrics/{id}/gradebook"), app.admin())
        .await;
    let seeds: Vec<&Value> = book["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["variant_seed"])
        .collect();
    assert_eq!(seeds[..3], [&json!(11), &json!(11), &Value::Null]);
}

#[tokio::test]
async fn a_regrade_uses_the_same_seed_on_the_new_version() {
    let app = spawn_app().await;
    let id = create(&app, &conv_template(2.0)).await;
    let grader = app.create_key("grader").await;
    for seed in 0..6 {
        let v = variant(&app, &id, seed).await;
        let (out, f) = output_size(&v);
        let body = json!({"rubric_id": id, "learner_id": format!("l{seed}"), "variant_seed": seed,
                          "answers": {"b": format!("{out}x{out}x{f}")}});
        let resp = app.post_json("/v1/submissions", Some(&grader), &body).await;
        assert_eq!(resp.status(), 201);
    }
    // Version 2 doubles the points; the variants of seeds 0-5 stay the same
    // (same template), so every learner keeps full marks, now 4.
    let resp = app
        .put_json(
            &format!("/v1/rubrics/{id}"),
            app.admin(),
            &conv_template(4.0),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let resp = app
        .post_json(
            &format!("/v1/rubrics/{id}/regrade"),
            Some(app.admin()),
            &json!({"dry_run": false}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let report: Value = resp.json().await.unwrap();
    assert_eq!(report["examined"], 6);
    let changed = report["changed"].as_array().unwrap();
    assert_eq!(changed.len(), 6);
    assert!(
        changed
            .iter()
            .all(|c| c["old_score"] == 2.0 && c["new_score"] == 4.0)
    );
}

#[tokio::test]
async fn bad_seeds_fixed_rubrics_and_impossible_templates_are_refused() {
    let app = spawn_app().await;
    let id = create(&app, &conv_template(2.0)).await;
    for seed in [json!(-1), json!(9007199254740992i64)] {
        let resp = app
            .post_json(
                &format!("/v1/rubrics/{id}/variants"),
                Some(app.admin()),
                &json!({"seed": seed}),
            )
            .await;
        let body = assert_problem(resp, 422).await;
        assert_eq!(body["errors"][0]["pointer"], "/seed", "{body}");
    }
    let resp = app
        .post_json(
            "/v1/rubrics/nope/variants",
            Some(app.admin()),
            &json!({"seed": 1}),
        )
        .await;
    assert_problem(resp, 404).await;

    // A fixed rubric has no variants.
    let mut fixed = conv_template(2.0);
    fixed.as_object_mut().unwrap().remove("template");
    fixed["parts"][0]["answer"]["expected"] = json!([8, 8, 5]);
    fixed["parts"][0]["mistakes"] = json!([]);
    let fixed_id = create(&app, &fixed).await;
    let resp = app
        .post_json(
            &format!("/v1/rubrics/{fixed_id}/variants"),
            Some(app.admin()),
            &json!({"seed": 1}),
        )
        .await;
    let body = assert_problem(resp, 422).await;
    assert_eq!(body["errors"][0]["pointer"], "/seed");
    assert!(body["detail"].as_str().unwrap().contains("not a template"));
    let grader = app.create_key("grader").await;
    let resp = app
        .post_json(
            "/v1/submissions",
            Some(&grader),
            &json!({"rubric_id": fixed_id, "learner_id": "x", "variant_seed": 3,
                    "answers": {"b": "8x8x5"}}),
        )
        .await;
    let body = assert_problem(resp, 422).await;
    assert_eq!(body["errors"][0]["pointer"], "/variant_seed");
    let resp = app
        .post_json(
            "/v1/submissions/batch",
            Some(&grader),
            &json!({"submissions": [{"rubric_id": fixed_id, "learner_id": "x", "variant_seed": -4,
                    "answers": {"b": "8x8x5"}}]}),
        )
        .await;
    let body = assert_problem(resp, 422).await;
    assert_eq!(
        body["errors"][0]["pointer"], "/submissions/0/variant_seed",
        "{body}"
    );

    // A template whose draws all fail is refused when stored: here a
    // template test holds only for the printed numbers.
    let mut impossible = conv_template(2.0);
    impossible["template"]["tests"] =
        json!([{"name": "printed only", "answers": {"b": "8x8x5"}, "expected_score": 2}]);
    impossible["template"]["max_attempts"] = json!(5);
    let body = refused(&app, &impossible).await;
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("seed 0: no acceptable variant in 5 draws"),
        "{body}"
    );
    assert!(detail.contains("self-test 'printed only' fails"), "{body}");
    assert_eq!(body["errors"][0]["pointer"], "/template");

    // Default parameters that break a constraint are refused too.
    let mut broken = conv_template(2.0);
    broken["template"]["constraints"]
        .as_array_mut()
        .unwrap()
        .push(json!({"expr": "n", "min": 30, "message": "a larger input"}));
    let body = refused(&app, &broken).await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("constraint 1 'n' fails: it is 26 (a larger input)"),
        "{body}"
    );

    // More draws than the server allows (DLGRADE_MAX_VARIANT_ATTEMPTS, 200).
    let mut greedy = conv_template(2.0);
    greedy["template"]["max_attempts"] = json!(500);
    let body = refused(&app, &greedy).await;
    assert_eq!(
        body["errors"][0]["pointer"], "/template/max_attempts",
        "{body}"
    );

    // An unknown name in a derived value points at it.
    let mut unknown = conv_template(2.0);
    unknown["template"]["derived"]["bad"] = json!("n + zz");
    let body = refused(&app, &unknown).await;
    assert_eq!(
        body["errors"][0]["pointer"], "/template/derived/bad",
        "{body}"
    );
}
