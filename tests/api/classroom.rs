//! End to end over HTTP, as a course would use dlgrade: the bank is loaded on
//! first start, 100 learners each get their own variant of a bank question,
//! submit right, partially right and wrong answers (some twice), and the
//! gradebook CSV and the statistics are read back. Every expected number is
//! computed here from the variants' parameters, not taken from the service.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app_with};

const LEARNERS: usize = 100;

/// What a learner answers, and what it must earn (points, matched rule).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Right,
    SpatialOnly,
    NoPadding,
    Wrong,
}

impl Kind {
    fn of(i: usize) -> Kind {
        match i % 5 {
            0 | 1 => Kind::Right,
            2 => Kind::SpatialOnly,
            3 => Kind::NoPadding,
            _ => Kind::Wrong,
        }
    }

    fn points(self) -> f64 {
        match self {
            Kind::Right => 2.0,
            Kind::SpatialOnly => 1.0,
            Kind::NoPadding | Kind::Wrong => 0.0,
        }
    }

    fn rule(self) -> &'static str {
        match self {
            Kind::Right => "full",
            Kind::SpatialOnly => "spatial_only",
            Kind::NoPadding => "no_padding",
            Kind::Wrong => "none",
        }
    }
}

/// A learner's variant: the parameters of TUM 4b (input n × n, kernel k,
/// stride s, padding p, f filters).
struct Params {
    n: i64,
    k: i64,
    s: i64,
    p: i64,
    f: i64,
}

impl Params {
    fn of(variant: &Value) -> Params {
        let get = |name: &str| {
            variant["parameters"][name]
                .as_i64()
                .unwrap_or_else(|| panic!("integer parameter {name}: {variant}"))
        };
        Params {
            n: get("n"),
            k: get("k"),
            s: get("s"),
            p: get("p"),
            f: get("f"),
        }
    }

    /// `(n - k + 2p)/s + 1`, a whole number by the template's constraint.
    fn out(&self) -> i64 {
        let num = self.n - self.k + 2 * self.p;
        assert_eq!(num % self.s, 0, "the template keeps the division exact");
        num / self.s + 1
    }

    /// The size without padding, floor((n - k)/s) + 1.
    fn no_padding(&self) -> i64 {
        (self.n - self.k).div_euclid(self.s) + 1
    }

    fn answer(&self, kind: Kind) -> String {
        let (out, f) = (self.out(), self.f);
        match kind {
            Kind::Right => format!("{out}x{out}x{f}"),
            Kind::SpatialOnly => format!("{out} x {out}"),
            Kind::NoPadding => {
                let v = self.no_padding();
                format!("({v}, {v}, {f})")
            }
            // n + 1 is never the output size (asserted for every variant).
            Kind::Wrong => format!("{0}x{0}x{f}", self.n + 1),
        }
    }
}

async fn submit(app: &TestApp, key: &str, body: Value) -> Value {
    let resp = app.post_json("/v1/submissions", Some(key), &body).await;
    assert_eq!(resp.status(), 201, "{body}");
    resp.json().await.unwrap()
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

fn population_std(xs: &[f64]) -> f64 {
    let m = mean(xs);
    (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / xs.len() as f64).sqrt()
}

fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn close(a: &Value, b: f64) -> bool {
    a.as_f64()
        .is_some_and(|a| (a - b).abs() <= 1e-9 * b.abs().max(1.0))
}

#[tokio::test]
async fn a_class_of_100_learners_on_bank_variants() {
    let app = spawn_app_with(|c| c.no_bank = false).await;
    let grader = app.create_key("grader").await;
    let bank: Value = app.get_json("/v1/bank", app.admin()).await;
    let entry = bank
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["slug"] == "tum-cnn-p4b-conv-output")
        .expect("TUM 4b is in the bank");
    assert_eq!(entry["parameters"], json!(["c", "f", "k", "n", "p", "s"]));
    let id = entry["rubric_id"].as_str().unwrap().to_string();

    // The variant the README's walkthrough shows.
    let resp = app
        .post_json(
            &format!("/v1/rubrics/{id}/variants"),
            Some(&grader),
            &json!({"seed": 42}),
        )
        .await;
    let readme: Value = resp.json().await.unwrap();
    assert_eq!(
        readme["parameters"],
        json!({"c": 34, "f": 18, "k": 5, "n": 25, "p": 1, "s": 2}),
        "README.md shows this variant: update it with the bank question"
    );
    assert_eq!(readme["model_answers"]["b"], "(12, 12, 18)");

    // Each learner gets a variant; the LMS derives the seed from the learner.
    let mut expected: BTreeMap<String, (u64, Kind, Params)> = BTreeMap::new();
    let mut distinct = std::collections::BTreeSet::new();
    for i in 0..LEARNERS {
        let learner = format!("learner-{i:03}");
        let seed = 1_000 + 7_919 * i as u64;
        let resp = app
            .post_json(
                &format!("/v1/rubrics/{id}/variants"),
                Some(&grader),
                &json!({"seed": seed}),
            )
            .await;
        assert_eq!(resp.status(), 200);
        let variant: Value = resp.json().await.unwrap();
        let params = Params::of(&variant);
        // For the template's domains (k in {3, 5, 7}, p in {1, 2}) the
        // output size is never n + 1: that answer is wrong in every variant.
        assert_ne!(params.out(), params.n + 1);
        assert_eq!(
            variant["model_answers"]["b"],
            format!("({0}, {0}, {1})", params.out(), params.f)
        );
        assert!(
            variant["prompt"]
                .as_str()
                .unwrap()
                .contains(&format!("{0} × {0} × ", params.n)),
            "{}",
            variant["prompt"]
        );
        distinct.insert(variant["parameters"].to_string());
        expected.insert(learner, (seed, Kind::of(i), params));
    }
    assert!(distinct.len() >= 80, "{} distinct variants", distinct.len());

    // Every tenth learner first submits a right answer, then a wrong one:
    // the latest attempt counts by default, the best with policy=best.
    for (learner, (seed, kind, params)) in &expected {
        let retry = learner.ends_with('9');
        if retry {
            let first = submit(
                &app,
                &grader,
                json!({"rubric_id": id, "learner_id": learner, "variant_seed": seed,
                       "answers": {"b": params.answer(Kind::Right)}}),
            )
            .await;
            assert!(close(&first["result"]["score"], 2.0), "{first}");
        }
        let result = submit(
            &app,
            &grader,
            json!({"rubric_id": id, "learner_id": learner, "variant_seed": seed,
                   "answers": {"b": params.answer(*kind)}}),
        )
        .await;
        let part = &result["result"]["parts"][0];
        assert!(close(&part["points"], kind.points()), "{learner}: {result}");
        assert_eq!(part["matched_rule"].as_str().unwrap_or("none"), kind.rule());
        assert_eq!(result["attempt"], if retry { 2 } else { 1 });
        if *kind == Kind::NoPadding {
            let feedback = part["feedback"].to_string();
            assert!(
                feedback.contains(&format!(
                    "the padding of {} is added on both sides",
                    params.p
                )),
                "{feedback}"
            );
        }
    }

    // The gradebook as CSV (what Moodle and Canvas import).
    let resp = app
        .client
        .get(app.url(&format!("/v1/rubrics/{id}/gradebook")))
        .bearer_auth(app.admin())
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    assert_eq!(
        header,
        [
            "learner_id",
            "score",
            "max_score",
            "percent",
            "status",
            "attempt",
            "attempts",
            "submitted_at",
            "variant_seed",
            "part b",
            "feedback"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), LEARNERS);
    let mut latest_scores = Vec::new();
    let mut best_scores = Vec::new();
    for row in &rows {
        let (seed, kind, _) = &expected[&row[0]];
        let retry = row[0].ends_with('9');
        let points = kind.points();
        latest_scores.push(points);
        best_scores.push(if retry { 2.0 } else { points });
        assert_eq!(row[1].parse::<f64>().unwrap(), points, "{row:?}");
        assert_eq!(&row[2], "2");
        assert_eq!(&row[3], format!("{:.2}", points / 2.0 * 100.0));
        assert_eq!(&row[4], "fully_graded");
        let attempts = if retry { "2" } else { "1" };
        assert_eq!((&row[5], &row[6]), (attempts, attempts));
        assert!(!row[7].is_empty());
        assert_eq!(row[8], seed.to_string());
        assert_eq!(row[9].parse::<f64>().unwrap(), points);
        assert!(row[10].starts_with("b: "), "{row:?}");
    }

    // Statistics: latest attempts, then best attempts.
    for (policy, scores) in [("latest", &latest_scores), ("best", &best_scores)] {
        let stats: Value = app
            .get_json(
                &format!("/v1/rubrics/{id}/statistics?policy={policy}"),
                app.admin(),
            )
            .await;
        assert_eq!(stats["count"], LEARNERS as u64);
        assert!(
            close(&stats["mean_score"], mean(scores)),
            "{policy}: {stats}"
        );
        assert!(close(&stats["median_score"], median(scores)), "{policy}");
        assert!(close(&stats["std_dev"], population_std(scores)), "{policy}");
        let mut bins = [0u64; 10];
        for s in scores.iter() {
            bins[((s / 2.0 * 10.0).floor() as usize).min(9)] += 1;
        }
        let got: Vec<u64> = stats["distribution"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["count"].as_u64().unwrap())
            .collect();
        assert_eq!(got, bins, "{policy}");
        let part = &stats["parts"][0];
        assert_eq!(part["part_id"], "b");
        assert!(close(&part["mean"], mean(scores)));
        assert!(close(&part["facility"], mean(scores) / 2.0 * 100.0));
        // One part: the rest of the test has no variance, so no index.
        assert_eq!(part["discrimination_index"], Value::Null);
        let mut want: BTreeMap<&str, u64> = BTreeMap::new();
        for (learner, (_, kind, _)) in &expected {
            let rule = if policy == "best" && learner.ends_with('9') {
                "full"
            } else {
                kind.rule()
            };
            *want.entry(rule).or_default() += 1;
        }
        let got: BTreeMap<&str, u64> = part["rule_counts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["rule"].as_str().unwrap(), r["count"].as_u64().unwrap()))
            .collect();
        assert_eq!(got, want, "{policy}");
    }
}
