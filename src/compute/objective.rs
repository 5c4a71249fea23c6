//! Optimizer steps on a loss given as an expression of the parameters (the
//! exam staple "one Adam step on f(w, b) = ..."): the gradient is the exact
//! symbolic derivative, re-evaluated at every step.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ComputeError, ComputeResult};
use super::expr::{self, Expr, ExprLimits};
use super::limits::Limits;
use super::nn::{self, GradientsRequest};
use super::optim::{self, OptimizerConfig, OptimizerReport, OptimizerRequest, Param, ParamSet};

/// Training a network: optimizer steps whose gradients are recomputed by
/// backpropagation through `model` at every step.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrainingRequest {
    /// Optimizer and hyper-parameters.
    pub optimizer: OptimizerConfig,
    /// Number of steps (at least 1).
    #[schema(minimum = 1)]
    pub steps: usize,
    /// The network with its initial weights, the input, the target and the
    /// loss: the body of `POST /v1/gradients`.
    pub model: GradientsRequest,
}

/// Runs `steps` optimizer steps on a network, recomputing the loss and the
/// gradients of every trainable parameter (batch-norm running statistics are
/// not trained) by backpropagation at each step. Parameters are named as in
/// the gradients report (`0.weight`, `0.bias`, ...).
pub fn train(req: &TrainingRequest, limits: &Limits) -> ComputeResult<OptimizerReport> {
    if req.steps == 0 {
        return Err(ComputeError::new("/steps", "at least one step is needed"));
    }
    let problem = nn::training_problem(&req.model, limits).map_err(|e| e.under("/model"))?;
    let trainable: Vec<usize> = (0..problem.params.params.len())
        .filter(|&i| problem.params.params[i].trainable)
        .collect();
    let initial = ParamSet(
        trainable
            .iter()
            .map(|&i| Param {
                name: problem.params.params[i].name.clone(),
                values: problem.params.params[i].data.clone(),
            })
            .collect(),
    );
    // The mult-add cap holds for the whole run, not for each step.
    let per_step = Limits {
        max_mult_adds: (limits.max_mult_adds / req.steps as u64).max(1),
        ..limits.clone()
    };
    let mut current = problem.params.clone();
    optim::run_with(
        &req.optimizer,
        &initial,
        req.steps,
        limits,
        |point: &ParamSet| {
            for (slot, &i) in trainable.iter().enumerate() {
                if let Some(p) = point.0.get(slot) {
                    current.params[i].data.clone_from(&p.values);
                }
            }
            let (loss, grads) = problem
                .net
                .loss_and_grads(
                    &current,
                    &problem.input,
                    &problem.target,
                    &problem.loss,
                    &per_step,
                )
                .map_err(|e| e.under("/model"))?;
            let gradient = trainable
                .iter()
                .map(|&i| Param {
                    name: current.params[i].name.clone(),
                    values: grads.get(i).cloned().unwrap_or_default(),
                })
                .collect();
            Ok((loss, ParamSet(gradient)))
        },
    )
}

/// Runs the request: on its given gradients, or on the gradient of its
/// `expression` (one scalar parameter per variable of the expression).
pub fn optimizer_steps(req: &OptimizerRequest, limits: &Limits) -> ComputeResult<OptimizerReport> {
    let Some(source) = &req.expression else {
        return optim::optimizer_steps(req, limits);
    };
    let loss = expr::parse(source, &ExprLimits::from(limits))
        .map_err(|e| ComputeError::new("/expression", e.to_string()))?;
    for (i, p) in req.params.0.iter().enumerate() {
        if p.values.len() != 1 {
            return Err(ComputeError::new(
                format!("/params/{i}/values"),
                format!(
                    "with an expression every parameter is one scalar; `{}` has {} values",
                    p.name,
                    p.values.len()
                ),
            ));
        }
    }
    for var in loss.variables() {
        if req.params.get(&var).is_none() {
            return Err(ComputeError::new(
                "/expression",
                format!("the expression uses `{var}`, which is not among the parameters"),
            ));
        }
    }
    let partials: Vec<(String, Expr)> = req
        .params
        .0
        .iter()
        .map(|p| {
            loss.derivative(&p.name)
                .map(|d| (p.name.clone(), d.simplified()))
                .map_err(|e| ComputeError::new("/expression", e.to_string()))
        })
        .collect::<ComputeResult<_>>()?;
    optim::optimizer_steps_with(req, limits, |params: &ParamSet| {
        let lookup = |name: &str| params.get(name).and_then(|v| v.first().copied());
        let value = loss.eval(&lookup).map_err(|e| {
            ComputeError::new("/expression", format!("cannot evaluate the loss: {e}"))
        })?;
        let gradient = partials
            .iter()
            .map(|(name, d)| {
                d.eval(&lookup)
                    .map(|g| Param {
                        name: name.clone(),
                        values: vec![g],
                    })
                    .map_err(|e| {
                        ComputeError::new(
                            "/expression",
                            format!("cannot evaluate d/d{name} of the loss: {e}"),
                        )
                    })
            })
            .collect::<ComputeResult<Vec<_>>>()?;
        Ok((value, ParamSet(gradient)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(json: serde_json::Value) -> OptimizerRequest {
        serde_json::from_value(json).expect("valid request")
    }

    #[test]
    fn sgd_on_a_quadratic_follows_the_exact_gradient() {
        // f = w^2 + 3b: grad = (2w, 3); lr 0.1 from w=1, b=0: w = 0.8, 0.64; b = -0.3, -0.6
        let req = request(serde_json::json!({
            "optimizer": {"algorithm": "sgd", "lr": 0.1},
            "params": [{"name": "w", "values": [1.0]}, {"name": "b", "values": [0.0]}],
            "expression": "w^2 + 3*b",
            "steps": 2
        }));
        let report = optimizer_steps(&req, &Limits::default()).unwrap();
        let json = serde_json::to_value(&report).unwrap();
        let text = json.to_string();
        assert!(text.contains("0.64"), "{text}");
        assert!(text.contains("-0.6"), "{text}");
    }

    /// Two SGD steps of `train` equal two manual steps of `p -= lr * grad`
    /// with the gradients endpoint's own gradients.
    #[test]
    fn training_follows_backprop_gradients() {
        let model = serde_json::json!({
            "input": [[1.0, -2.0]],
            "layers": [
                {"type": "dense", "weight": [[0.5, -0.25], [0.1, 0.3]], "bias": [0.0, 0.1],
                 "activation": "sigmoid"},
                {"type": "dense", "weight": [[1.0, -1.0]], "bias": [0.2]}
            ],
            "target": [[0.7]],
            "loss": {"kind": "mse"}
        });
        let lr = 0.5;
        let req: TrainingRequest = serde_json::from_value(serde_json::json!({
            "optimizer": {"algorithm": "sgd", "lr": lr}, "steps": 2, "model": model.clone()
        }))
        .unwrap();
        let report = train(&req, &Limits::default()).unwrap();

        let mut manual = model;
        let mut losses = Vec::new();
        for _ in 0..2 {
            let g: nn::GradientsRequest = serde_json::from_value(manual.clone()).unwrap();
            let grads =
                serde_json::to_value(nn::gradients(&g, &Limits::default()).unwrap()).unwrap();
            losses.push(grads["loss"].as_f64().unwrap());
            for (li, layer) in grads["layers"].as_array().unwrap().iter().enumerate() {
                for p in layer["parameters"].as_array().unwrap() {
                    let field = if p["name"].as_str().unwrap().ends_with("bias") {
                        "bias"
                    } else {
                        "weight"
                    };
                    let value = &p["value"];
                    let grad = &p["gradient"];
                    let updated = step(value, grad, lr);
                    manual["layers"][li][field] = updated;
                }
            }
        }
        let expected: Vec<f64> = manual["layers"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|layer| [flatten(&layer["weight"]), flatten(&layer["bias"])])
            .flatten()
            .collect();
        let got: Vec<f64> = report
            .final_params
            .0
            .iter()
            .flat_map(|p| p.values.clone())
            .collect();
        assert_eq!(got.len(), expected.len());
        for (g, e) in got.iter().zip(&expected) {
            assert!(
                (g - e).abs() <= 1e-12 * e.abs().max(1.0),
                "{got:?} vs {expected:?}"
            );
        }
        let reported: Vec<f64> = report.history.iter().map(|h| h.loss.unwrap()).collect();
        assert_eq!(reported, losses);
    }

    fn step(value: &serde_json::Value, grad: &serde_json::Value, lr: f64) -> serde_json::Value {
        match (value, grad) {
            (serde_json::Value::Array(v), serde_json::Value::Array(g)) => {
                serde_json::Value::Array(v.iter().zip(g).map(|(a, b)| step(a, b, lr)).collect())
            }
            (v, g) => serde_json::json!(v.as_f64().unwrap() - lr * g.as_f64().unwrap()),
        }
    }

    fn flatten(v: &serde_json::Value) -> Vec<f64> {
        match v {
            serde_json::Value::Array(items) => items.iter().flat_map(flatten).collect(),
            x => vec![x.as_f64().unwrap()],
        }
    }

    #[test]
    fn unknown_variables_and_vector_params_are_named() {
        let req = request(serde_json::json!({
            "optimizer": {"algorithm": "sgd", "lr": 0.1},
            "params": [{"name": "w", "values": [1.0]}],
            "expression": "w*z", "steps": 1
        }));
        let err = optimizer_steps(&req, &Limits::default()).unwrap_err();
        assert_eq!(err.pointer, "/expression");
        assert!(err.message.contains('z'));
        let req = request(serde_json::json!({
            "optimizer": {"algorithm": "sgd", "lr": 0.1},
            "params": [{"name": "w", "values": [1.0, 2.0]}],
            "expression": "w", "steps": 1
        }));
        assert_eq!(
            optimizer_steps(&req, &Limits::default())
                .unwrap_err()
                .pointer,
            "/params/0/values"
        );
    }
}
