//! The [`KeyResolver`] over dlgrade's own compute engines: a rubric's computed
//! key names an engine (the same names as the computation endpoints) and
//! gives the request body that endpoint takes.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::resolve::KeyResolver;
use crate::compute::error::ComputeResult;
use crate::compute::limits::Limits;
use crate::compute::{arch, expr, inverse, losses, nn, objective, perceptron, recurrent};

/// Engine names accepted in `compute.engine`, with the endpoint whose request
/// body `compute.request` is.
pub const ENGINES: &[(&str, &str)] = &[
    ("architecture", "POST /v1/architecture"),
    ("architecture_solve", "POST /v1/architecture/solve"),
    ("forward", "POST /v1/forward"),
    ("gradients", "POST /v1/gradients"),
    ("loss", "POST /v1/losses"),
    ("solve_filter", "POST /v1/convolution/solve-filter"),
    ("calculus", "POST /v1/calculus"),
    ("optimizer_steps", "POST /v1/optimizers/steps"),
    ("optimizer_train", "POST /v1/optimizers/train"),
    ("recurrent", "POST /v1/recurrent"),
    ("perceptron", "POST /v1/perceptron"),
];

/// Resolves computed keys by running the compute engines in-process.
#[derive(Debug, Clone, Default)]
pub struct Engines {
    pub limits: Limits,
}

fn typed<Req, Rep>(
    request: &Value,
    f: fn(&Req, &Limits) -> ComputeResult<Rep>,
    limits: &Limits,
) -> Result<Value, String>
where
    Req: DeserializeOwned,
    Rep: Serialize,
{
    let request: Req = serde_path_to_error::deserialize(request)
        .map_err(|e| format!("invalid request at `{}`: {}", e.path(), e.inner()))?;
    encode(f(&request, limits))
}

fn encode<Rep: Serialize>(report: ComputeResult<Rep>) -> Result<Value, String> {
    let report = report.map_err(|e| e.to_string())?;
    serde_json::to_value(report).map_err(|e| format!("cannot encode the engine's answer: {e}"))
}

impl KeyResolver for Engines {
    fn resolve(&self, engine: &str, request: &Value) -> Result<Value, String> {
        let limits = &self.limits;
        match engine {
            "architecture" => encode(arch::analyze(request, limits)),
            "architecture_solve" => encode(arch::solve(request, limits)),
            "forward" => typed(request, nn::forward, limits),
            "gradients" => typed(request, nn::gradients, limits),
            "loss" => typed(request, losses::loss, limits),
            "solve_filter" => typed(request, inverse::solve_filter, limits),
            "calculus" => typed(request, expr::calculus, limits),
            "optimizer_steps" => typed(request, objective::optimizer_steps, limits),
            "optimizer_train" => typed(request, objective::train, limits),
            "recurrent" => typed(request, recurrent::recurrent, limits),
            "perceptron" => typed(request, perceptron::perceptron, limits),
            other => {
                let known: Vec<&str> = ENGINES.iter().map(|(name, _)| *name).collect();
                Err(format!(
                    "unknown engine `{other}`; known engines: {}",
                    known.join(", ")
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_engines_are_named() {
        let err = Engines::default()
            .resolve("nope", &Value::Null)
            .unwrap_err();
        assert!(err.contains("unknown engine `nope`"), "{err}");
        assert!(err.contains("recurrent"));
    }

    #[test]
    fn a_key_can_gather_several_values_of_one_computation() {
        use crate::grading::{Answers, GradeOptions, Rubric, grade};
        // BITS EC3 Q1(e): x, y, z of a filter as one all-or-nothing vector.
        let spec = serde_json::json!({"engine": "solve_filter", "request": {
            "input": [[3, 0, 3, -3, 0], [-3, 2, 0, 3, -2], [-5, 0, 3, -2, 0]],
            "filter": [["x", "y", "z"], [1, 0, 2], [-1, 1, 0]],
            "outputs": [[4, 0, -3]]},
            "select": ["/solution/0/value", "/solution/1/value", "/solution/2/value"]});
        let rubric: Rubric = serde_json::from_value(serde_json::json!({"title": "t", "parts": [
            {"id": "xyz", "max_points": 3, "answer": {"type": "vector", "expected": {"compute": spec}}}]}))
        .unwrap();
        let resolved = rubric.resolve_keys(&Engines::default()).unwrap();
        let crate::grading::model::AnswerSpec::Vector(m) = &resolved.rubric().parts[0].answer
        else {
            panic!("a vector part");
        };
        let crate::grading::model::ExpectedValue::Literal(key) = &m.expected else {
            panic!("a computed key becomes a literal");
        };
        let key: Vec<f64> = serde_json::from_value(key.clone()).unwrap();
        for (got, want) in key.iter().zip([-0.5, -2.5, 7.0 / 6.0]) {
            assert!((got - want).abs() < 1e-12, "{key:?}");
        }
        let score = |a: &str| {
            grade(
                &resolved,
                &Answers::from_pairs([("xyz", a)]),
                &GradeOptions::default(),
            )
            .score
        };
        assert_eq!(score("[-1/2, -5/2, 7/6]"), 3.0);
        assert_eq!(score("[-0.5, -2.5, 1]"), 0.0);
        let mut bad = rubric.clone();
        if let crate::grading::model::AnswerSpec::Vector(m) = &mut bad.parts[0].answer
            && let crate::grading::model::ExpectedValue::Computed(c) = &mut m.expected
        {
            c.compute.select = Some(crate::grading::model::Selector::Many(vec![
                "/solution/0/value".into(),
                "/solution/9/value".into(),
            ]));
        }
        let problems = bad.resolve_keys(&Engines::default()).unwrap_err();
        assert!(
            problems[0].message.contains("'/solution/9/value'"),
            "{problems:?}"
        );
    }

    #[test]
    fn a_choice_key_can_be_computed_and_a_printed_one_audited() {
        use crate::grading::{Answers, GradeOptions, Rubric, grade};
        let choice = |correct: serde_json::Value| {
            serde_json::from_value::<Rubric>(serde_json::json!({"title": "t", "parts": [
                {"id": "c", "max_points": 1, "answer": {"type": "choice",
                 "options": [{"id": "yes", "text": "it converges", "value": true},
                             {"id": "no", "text": "it never converges", "value": false}],
                 "correct": correct,
                 "compute": {"engine": "perceptron", "request": {"gate": "xnor",
                     "learning_rate": 0.02, "convention": "threshold", "threshold": 0.2},
                     "select": "/converged"}}}]}))
            .unwrap()
        };
        let engines = Engines::default();
        let computed = choice(serde_json::json!([]));
        let resolved = computed.resolve_keys(&engines).unwrap();
        let score = |a: &str| {
            grade(
                &resolved,
                &Answers::from_pairs([("c", a)]),
                &GradeOptions::default(),
            )
            .score
        };
        assert_eq!(
            (score("no"), score("It never converges"), score("yes")),
            (1.0, 1.0, 0.0)
        );
        assert!(computed.audit(&engines).is_empty());
        // A printed "yes" is used for grading but flagged by the audit.
        let printed = choice(serde_json::json!(["yes"]));
        let findings = printed.audit(&engines);
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].pointer, "/parts/0/answer/correct");
        assert_eq!(findings[0].computed, serde_json::json!(["no"]));
        assert!(findings[0].message.contains("the computation gives false"));
        // The right printed key is not flagged.
        assert!(choice(serde_json::json!(["no"])).audit(&engines).is_empty());
        // A computed value that no option stands for is a rubric problem.
        let mut unmatched = computed.clone();
        if let crate::grading::model::AnswerSpec::Choice(c) = &mut unmatched.parts[0].answer {
            c.options[1].value = Some(serde_json::json!("false"));
        }
        let problems = unmatched.resolve_keys(&engines).unwrap_err();
        assert!(
            problems[0].message.contains("the value of no option"),
            "{problems:?}"
        );
    }

    #[test]
    fn every_listed_engine_is_dispatched() {
        for (name, _) in ENGINES {
            let err = Engines::default()
                .resolve(name, &serde_json::json!({}))
                .unwrap_err();
            assert!(
                !err.contains("unknown engine"),
                "{name} is listed but not dispatched"
            );
        }
    }
}
