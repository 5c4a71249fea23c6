//! The question bank over HTTP: loaded on the first start of an empty
//! database, listed, and every question's own self-test answers graded
//! through `POST /v1/submissions` to exactly their expected scores.

use serde_json::{Value, json};

use crate::helpers::spawn_app_with;

#[tokio::test]
async fn the_bank_is_loaded_on_first_start_and_grades_its_own_tests() {
    let app = spawn_app_with(|c| c.no_bank = false).await;
    let grader = app.create_key("grader").await;
    let bank: Value = app
        .get("/v1/bank", Some(app.admin()))
        .await
        .json()
        .await
        .unwrap();
    let bank = bank.as_array().unwrap();
    let files = dlgrade::bank::files();
    assert_eq!(bank.len(), files.len(), "every bank file is loaded");
    assert!(files.len() >= 10, "the bank ships its questions");

    let mut graded = 0;
    for (n, entry) in bank.iter().enumerate() {
        let id = entry["rubric_id"].as_str().unwrap();
        let rubric: Value = app
            .get(&format!("/v1/rubrics/{id}"), Some(&grader))
            .await
            .json()
            .await
            .unwrap();
        assert!(
            rubric["warnings"].as_array().unwrap().is_empty(),
            "{}: audit warnings",
            entry["slug"]
        );
        for (t, test) in rubric["rubric"]["tests"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
        {
            let resp = app
                .post_json(
                    "/v1/submissions",
                    Some(&grader),
                    &json!({"rubric_id": id, "learner_id": format!("learner-{n}-{t}"), "answers": test["answers"]}),
                )
                .await;
            assert_eq!(resp.status(), 201);
            let result: Value = resp.json().await.unwrap();
            let expected = test["expected_score"].as_f64().unwrap();
            let score = result["score"].as_f64().unwrap();
            assert!(
                (score - expected).abs() < 1e-9,
                "{} test `{}`: expected {expected}, got {score}",
                entry["slug"],
                test["name"]
            );
            graded += 1;
        }
    }
    assert!(
        graded >= 3 * files.len(),
        "at least three self-tests per question"
    );
}

/// The audit endpoint flags every wrong printed key of the reference exam
/// (the cases of `tests/common/wrong_keys.rs`, listed in `bank/INDEX.md`)
/// with the correct value: as warnings when the rubric is stored, and from
/// `POST /v1/rubrics/{id}/audit`.
#[tokio::test]
async fn the_audit_endpoint_flags_every_wrong_printed_key() {
    use crate::wrong_keys::{audit_rubric, close, wrong_keys};
    let app = crate::helpers::spawn_app().await;
    let cases = wrong_keys();
    let resp = app
        .post_json("/v1/rubrics", Some(app.admin()), &audit_rubric(&cases))
        .await;
    assert_eq!(resp.status(), 201);
    let created: Value = resp.json().await.unwrap();
    let id = created["id"].as_str().unwrap();
    let resp = app
        .post_json(
            &format!("/v1/rubrics/{id}/audit"),
            Some(app.admin()),
            &json!({}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let report: Value = resp.json().await.unwrap();
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), cases.len(), "{report:#}");
    assert_eq!(created["warnings"], report["findings"]);
    for (i, case) in cases.iter().enumerate() {
        let pointer = format!("/parts/{i}/answer/expected");
        let finding = findings
            .iter()
            .find(|f| f["pointer"] == pointer)
            .unwrap_or_else(|| panic!("{}: not flagged", case.name));
        assert_eq!(finding["printed"], case.printed, "{}", case.name);
        assert!(
            close(&finding["computed"], &case.correct),
            "{}: computed {} but the correct value is {}",
            case.name,
            finding["computed"],
            case.correct
        );
        assert!(finding["message"].as_str().unwrap().contains("disagrees"));
    }
}
