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
