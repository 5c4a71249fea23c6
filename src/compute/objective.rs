//! Optimizer steps on a loss given as an expression of the parameters (the
//! exam staple "one Adam step on f(w, b) = ..."): the gradient is the exact
//! symbolic derivative, re-evaluated at every step.

use super::error::{ComputeError, ComputeResult};
use super::expr::{self, Expr, ExprLimits};
use super::limits::Limits;
use super::optim::{self, OptimizerReport, OptimizerRequest, Param, ParamSet};

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
