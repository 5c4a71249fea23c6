//! Golden tests for the optimizers and recurrent cells against PyTorch and
//! Keras 3 (fixtures from tests/reference/gen_optim_recurrent.py), plus
//! property tests.

use dlgrade::compute::error::ComputeResult;
use dlgrade::compute::limits::Limits;
use dlgrade::compute::optim::{
    Algorithm, MomentumConvention, OptimizerConfig, OptimizerReport, OptimizerRequest, Param,
    ParamSet, optimizer_steps, run_with,
};
use dlgrade::compute::recurrent::{
    CellKind, CellWeights, Framework, LossKind, LossOn, LossSpec, RecurrentRequest, recurrent,
};
use proptest::prelude::*;
use serde_json::Value;

const OPTIM: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/optim_cases.json"
));
const RECURRENT: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/recurrent_cases.json"
));

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()) + 1e-12
}

/// Compares a JSON number tree (nested arrays) with a flat list of values.
fn flatten(v: &Value, out: &mut Vec<f64>) {
    match v {
        Value::Array(a) => a.iter().for_each(|x| flatten(x, out)),
        Value::Number(n) => out.push(n.as_f64().unwrap_or(f64::NAN)),
        other => panic!("unexpected JSON in fixture: {other}"),
    }
}

fn assert_all_close(case: &str, what: &str, expected: &Value, got: &[f64]) {
    let mut e = Vec::new();
    flatten(expected, &mut e);
    assert_eq!(
        e.len(),
        got.len(),
        "{case}: {what}: length {} vs {}",
        e.len(),
        got.len()
    );
    for (i, (a, b)) in e.iter().zip(got).enumerate() {
        assert!(close(*a, *b), "{case}: {what}[{i}]: expected {a}, got {b}");
    }
}

fn one(name: &str, v: Vec<f64>) -> Param {
    Param {
        name: name.into(),
        values: v,
    }
}

/// The gradient functions the fixtures name in "model".
fn model_grad(model: &Value, ps: &ParamSet) -> ComputeResult<(f64, ParamSet)> {
    let first = |i: usize| {
        ps.0.get(i)
            .and_then(|p| p.values.first().copied())
            .unwrap_or(f64::NAN)
    };
    match model["kind"].as_str() {
        Some("sigmoid_bce") => {
            let x = model["x"][0].as_f64().unwrap_or(f64::NAN);
            let y = model["y"].as_f64().unwrap_or(f64::NAN);
            let (w, b) = (first(0), first(1));
            let yhat = 1.0 / (1.0 + (-(w * x + b)).exp());
            let loss = -(y * yhat.ln() + (1.0 - y) * (1.0 - yhat).ln());
            let d = yhat - y;
            Ok((
                loss,
                ParamSet(vec![one("w", vec![d * x]), one("b", vec![d])]),
            ))
        }
        Some("quartic") => {
            let (x, y) = (first(0), first(1));
            let loss = x.powi(4) - 32.0 * x * x + y.powi(4) - 18.0 * y * y;
            Ok((
                loss,
                ParamSet(vec![
                    one("x", vec![4.0 * x.powi(3) - 64.0 * x]),
                    one("y", vec![4.0 * y.powi(3) - 36.0 * y]),
                ]),
            ))
        }
        other => panic!("unknown model {other:?}"),
    }
}

fn state_field<'a>(
    r: &'a OptimizerReport,
    t: usize,
    name: &str,
    field: &str,
) -> Option<&'a Vec<f64>> {
    let st = r.history.get(t)?.state.iter().find(|s| s.name == name)?;
    match field {
        "velocity" => st.velocity.as_ref(),
        "m" => st.m.as_ref(),
        "v" => st.v.as_ref(),
        "m_hat" => st.m_hat.as_ref(),
        "v_hat" => st.v_hat.as_ref(),
        "v_max" => st.v_max.as_ref(),
        "accumulator" => st.accumulator.as_ref(),
        "square_avg" => st.square_avg.as_ref(),
        "grad_avg" => st.grad_avg.as_ref(),
        _ => None,
    }
}

#[test]
fn optimizers_match_torch_and_keras() {
    let cases: Vec<Value> = serde_json::from_str(OPTIM).expect("fixture parses");
    assert!(cases.len() >= 80, "only {} optimizer cases", cases.len());
    let limits = Limits::default();
    let mut checked = 0usize;
    for c in &cases {
        let name = c["name"].as_str().unwrap_or("?");
        let mut req_json = c["request"].clone();
        let report = if let Some(model) = c.get("model") {
            let steps = req_json["steps"].as_u64().unwrap_or(0) as usize;
            if let Some(o) = req_json.as_object_mut() {
                o.remove("expression");
                o.remove("steps");
            }
            let cfg: OptimizerConfig =
                serde_json::from_value(req_json["optimizer"].clone()).expect(name);
            let params: ParamSet = serde_json::from_value(req_json["params"].clone()).expect(name);
            run_with(&cfg, &params, steps, &limits, |p| model_grad(model, p))
        } else {
            let req: OptimizerRequest =
                serde_json::from_value(req_json).unwrap_or_else(|e| panic!("{name}: {e}"));
            optimizer_steps(&req, &limits)
        }
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let hist = c["expected"]["history"].as_array().expect("history");
        assert_eq!(hist.len(), report.history.len(), "{name}: number of steps");
        for (t, h) in hist.iter().enumerate() {
            for (pname, vals) in h["params"].as_object().expect("params") {
                let got = report.history[t]
                    .params
                    .get(pname)
                    .unwrap_or_else(|| panic!("{name}: no {pname}"));
                assert_all_close(name, &format!("step {} {pname}", t + 1), vals, got);
                checked += 1;
            }
            for (pname, st) in h["state"].as_object().expect("state") {
                for (field, vals) in st.as_object().expect("state entry") {
                    let got = state_field(&report, t, pname, field).unwrap_or_else(|| {
                        panic!("{name}: step {} has no {field} for {pname}", t + 1)
                    });
                    assert_all_close(name, &format!("step {} {pname}.{field}", t + 1), vals, got);
                    checked += 1;
                }
            }
            if let Some(l) = h.get("loss").and_then(Value::as_f64) {
                let got = report.history[t].loss.unwrap_or(f64::NAN);
                assert!(
                    close(l, got),
                    "{name}: loss at step {}: {l} vs {got}",
                    t + 1
                );
            }
        }
        assert!(!report.steps.is_empty(), "{name}: no worked steps");
    }
    assert!(checked > 500);
}

#[test]
fn recurrent_cells_match_torch_and_keras() {
    let cases: Vec<Value> = serde_json::from_str(RECURRENT).expect("fixture parses");
    assert!(cases.len() >= 70, "only {} recurrent cases", cases.len());
    let limits = Limits::default();
    for c in &cases {
        let name = c["name"].as_str().unwrap_or("?");
        let req: RecurrentRequest =
            serde_json::from_value(c["request"].clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let r = recurrent(&req, &limits).unwrap_or_else(|e| panic!("{name}: {e}"));
        let e = &c["expected"];
        let seqs = &r.sequences;
        let h: Vec<f64> = seqs
            .iter()
            .flat_map(|s| s.timesteps.iter().flat_map(|t| t.h.clone()))
            .collect();
        assert_all_close(name, "h", &e["h"], &h);
        if let Some(ec) = e.get("c") {
            let c: Vec<f64> = seqs
                .iter()
                .flat_map(|s| {
                    s.timesteps
                        .iter()
                        .flat_map(|t| t.c.clone().unwrap_or_default())
                })
                .collect();
            assert_all_close(name, "c", ec, &c);
        }
        if let Some(ey) = e.get("y") {
            let y: Vec<f64> = seqs
                .iter()
                .flat_map(|s| {
                    s.timesteps
                        .iter()
                        .flat_map(|t| t.y.clone().unwrap_or_default())
                })
                .collect();
            assert_all_close(name, "y", ey, &y);
        }
        for (gname, vals) in e["gates"].as_object().expect("gates") {
            let got: Vec<f64> = seqs
                .iter()
                .flat_map(|s| {
                    s.timesteps.iter().flat_map(|t| {
                        t.gates
                            .iter()
                            .find(|g| &g.name == gname)
                            .map(|g| g.value.clone())
                            .unwrap_or_else(|| panic!("{name}: no gate {gname}"))
                    })
                })
                .collect();
            assert_all_close(name, &format!("gate {gname}"), vals, &got);
        }
        if let Some(l) = e.get("loss").and_then(Value::as_f64) {
            let got = r.loss.unwrap_or(f64::NAN);
            assert!(close(l, got), "{name}: loss {l} vs {got}");
            let g = r
                .gradients
                .as_ref()
                .unwrap_or_else(|| panic!("{name}: no gradients"));
            let gw = e["grad_weights"].as_array().expect("grad_weights");
            assert_eq!(gw.len(), g.weights.len(), "{name}: weight sets");
            for (k, (ew, w)) in gw.iter().zip(&g.weights).enumerate() {
                let got = serde_json::to_value(w).expect("serializes");
                for (field, vals) in ew.as_object().expect("grad set") {
                    let mut flat = Vec::new();
                    flatten(&got[field], &mut flat);
                    assert_all_close(name, &format!("d{field}[{k}]"), vals, &flat);
                }
                let n_fields = got.as_object().map_or(0, |o| o.len());
                assert_eq!(
                    n_fields,
                    ew.as_object().map_or(0, |o| o.len()),
                    "{name}: gradient fields of set {k}"
                );
            }
            let flat2 = |v: &Vec<Vec<f64>>| v.iter().flatten().copied().collect::<Vec<f64>>();
            assert_all_close(name, "dh0", &e["grad_h0"], &flat2(&g.h0));
            if let Some(ec0) = e.get("grad_c0") {
                assert_all_close(name, "dc0", ec0, &flat2(g.c0.as_ref().expect("dc0")));
            }
            let dx: Vec<f64> = g.inputs.iter().flatten().flatten().copied().collect();
            assert_all_close(name, "dinputs", &e["grad_inputs"], &dx);
        }
        assert!(!r.steps.is_empty(), "{name}: no worked steps");
    }
}

#[test]
fn exam_adam_question_worked_steps() {
    // BITS EC3 4(a): sigmoid neuron, BCE, x = 3.5, y = 0.5, w = b = -2, lr 0.1, b1 0.9, b2 0.99.
    let cfg: OptimizerConfig = serde_json::from_value(serde_json::json!({
        "algorithm": "adam", "lr": 0.1, "beta1": 0.9, "beta2": 0.99, "eps": 1e-8
    }))
    .expect("config");
    let params = ParamSet(vec![one("w", vec![-2.0]), one("b", vec![-2.0])]);
    let model = serde_json::json!({"kind": "sigmoid_bce", "x": [3.5], "y": 0.5});
    let r = run_with(&cfg, &params, 1, &Limits::default(), |p| {
        model_grad(&model, p)
    })
    .expect("runs");
    // First Adam step: each parameter moves by ~lr against its gradient's sign.
    let w = r.final_params.get("w").expect("w")[0];
    let b = r.final_params.get("b").expect("b")[0];
    assert!(
        (w - (-2.0 + 0.1)).abs() < 1e-6 && (b - (-2.0 + 0.1)).abs() < 1e-6,
        "w = {w}, b = {b}"
    );
    assert!(
        r.steps
            .iter()
            .any(|s| s.text.starts_with("m1 = b1*m + (1-b1)*g = 0.9*0 + 0.1*"))
    );
    assert!(
        r.steps
            .iter()
            .any(|s| s.text.starts_with("v_hat = v/(1-b2^1)"))
    );
}

fn sgd(convention: MomentumConvention, momentum: f64, nesterov: bool, lr: f64) -> OptimizerConfig {
    serde_json::from_value(serde_json::json!({
        "algorithm": "sgd", "lr": lr, "momentum": momentum, "nesterov": nesterov,
        "momentum_convention": convention,
    }))
    .expect("config")
}

fn given(params: &[f64], grads: &[Vec<f64>], cfg: OptimizerConfig) -> OptimizerRequest {
    OptimizerRequest {
        optimizer: cfg,
        params: ParamSet(vec![one("w", params.to_vec())]),
        steps: None,
        gradient: None,
        gradients: Some(
            grads
                .iter()
                .map(|g| ParamSet(vec![one("w", g.clone())]))
                .collect(),
        ),
        expression: None,
    }
}

fn rnn_request(cell: CellKind, fw: Framework, seed: &[f64], reset_after: bool) -> RecurrentRequest {
    let (n_in, h, t_n, b_n) = (2usize, 2usize, 3usize, 2usize);
    let g = match cell {
        CellKind::Rnn => 1,
        CellKind::Lstm => 4,
        CellKind::Gru => 3,
    };
    let mut k = 0usize;
    let mut next = || {
        k += 1;
        seed[k % seed.len()] * (1.0 + (k as f64 * 0.7).sin() * 0.3)
    };
    let mut mat = |r: usize, c: usize| {
        (0..r)
            .map(|_| (0..c).map(|_| next()).collect())
            .collect::<Vec<Vec<f64>>>()
    };
    let (kernel, rk) = match fw {
        Framework::Pytorch => (mat(g * h, n_in), mat(g * h, h)),
        Framework::Keras => (mat(n_in, g * h), mat(h, g * h)),
    };
    let bias = mat(1, g * h).remove(0);
    let rbias = mat(1, g * h).remove(0);
    let inputs = (0..b_n).map(|_| mat(t_n, n_in)).collect();
    let targets = (0..b_n).map(|_| mat(t_n, h)).collect();
    let h0 = mat(b_n, h);
    let c0 = mat(b_n, h);
    RecurrentRequest {
        cell,
        framework: fw,
        inputs,
        weights: Some(CellWeights {
            kernel,
            recurrent_kernel: rk,
            bias: Some(bias),
            recurrent_bias: (cell != CellKind::Gru || reset_after).then_some(rbias),
            output_kernel: None,
            output_bias: None,
        }),
        weights_per_step: None,
        h0: Some(h0),
        c0: (cell == CellKind::Lstm).then_some(c0),
        activation: None,
        recurrent_activation: None,
        reset_after: (cell == CellKind::Gru).then_some(reset_after),
        output_activation: None,
        loss: Some(LossSpec {
            targets,
            on: LossOn::AllTimesteps,
            kind: LossKind::HalfSse,
        }),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn adam_first_step_moves_by_lr_times_sign(g in prop::collection::vec(prop_oneof![-50.0..-0.01f64, 0.01..50.0f64], 1..6),
                                              p0 in -5.0..5.0f64, lr in 1e-4..1.0f64,
                                              keras in any::<bool>()) {
        let cfg: OptimizerConfig = serde_json::from_value(serde_json::json!({
            "algorithm": "adam", "lr": lr, "adam_eps_style": if keras { "keras" } else { "pytorch" }
        })).expect("config");
        let params = vec![p0; g.len()];
        let r = optimizer_steps(&given(&params, std::slice::from_ref(&g), cfg), &Limits::default()).expect("runs");
        for (p, gi) in r.final_params.0[0].values.iter().zip(&g) {
            let step = p0 - p;
            prop_assert!((step - lr * gi.signum()).abs() <= lr * 1e-4, "step {} vs lr {}", step, lr);
        }
    }

    #[test]
    fn momentum_conventions_agree_and_zero_momentum_is_plain_sgd(
        grads in prop::collection::vec(prop::collection::vec(-3.0..3.0f64, 2), 1..8),
        mu in 0.0..0.95f64, lr in 1e-3..0.5f64, nesterov in any::<bool>()) {
        let p0 = [0.3, -1.2];
        let l = Limits::default();
        let nest = nesterov && mu > 0.0;
        let a = optimizer_steps(&given(&p0, &grads, sgd(MomentumConvention::Pytorch, mu, nest, lr)), &l).expect("torch");
        let b = optimizer_steps(&given(&p0, &grads, sgd(MomentumConvention::Classic, mu, nest, lr)), &l).expect("classic");
        for (ra, rb) in a.history.iter().zip(&b.history) {
            for (x, y) in ra.params.0[0].values.iter().zip(&rb.params.0[0].values) {
                prop_assert!((x - y).abs() <= 1e-12 * (1.0 + x.abs()), "{} vs {}", x, y);
            }
            if mu > 0.0 {
                let va = ra.state[0].velocity.as_ref().expect("v");
                let vb = rb.state[0].velocity.as_ref().expect("v");
                for (x, y) in va.iter().zip(vb) {
                    prop_assert!((-lr * x - y).abs() <= 1e-12 * (1.0 + y.abs()));
                }
            }
        }
        // mu = 0 in either convention: p_T = p_0 - lr * sum g.
        for conv in [MomentumConvention::Pytorch, MomentumConvention::Classic] {
            let z = optimizer_steps(&given(&p0, &grads, sgd(conv, 0.0, false, lr)), &l).expect("plain");
            for (i, p) in z.final_params.0[0].values.iter().enumerate() {
                let mut expect = p0[i];
                for g in &grads { expect -= lr * g[i]; }
                prop_assert!((p - expect).abs() <= 1e-12 * (1.0 + expect.abs()));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn lookahead_nesterov_is_convention_independent(x0 in -3.0..3.0f64, y0 in -3.0..3.0f64,
                                                   mu in 0.05..0.95f64, lr in 1e-3..0.02f64) {
        let quartic = serde_json::json!({"kind": "quartic"});
        let params = ParamSet(vec![one("x", vec![x0]), one("y", vec![y0])]);
        let mk = |conv: &str| -> OptimizerConfig {
            serde_json::from_value(serde_json::json!({
                "algorithm": "sgd", "lr": lr, "momentum": mu, "nesterov": true,
                "momentum_convention": conv, "nesterov_formulation": "lookahead"
            })).expect("config")
        };
        let l = Limits::default();
        let a = run_with(&mk("pytorch"), &params, 6, &l, |p| model_grad(&quartic, p)).expect("pytorch");
        let b = run_with(&mk("classic"), &params, 6, &l, |p| model_grad(&quartic, p)).expect("classic");
        for (ra, rb) in a.history.iter().zip(&b.history) {
            for (pa, pb) in ra.params.0.iter().zip(&rb.params.0) {
                let (x, y) = (pa.values[0], pb.values[0]);
                prop_assert!((x - y).abs() <= 1e-10 * (1.0 + x.abs()), "{} vs {}", x, y);
            }
        }
    }

    #[test]
    fn bptt_agrees_with_central_differences(seed in prop::collection::vec(-1.0..1.0f64, 5..12),
                                            which in 0usize..5, pick in 0usize..1000) {
        let (cell, fw, ra) = [
            (CellKind::Rnn, Framework::Pytorch, true),
            (CellKind::Lstm, Framework::Pytorch, true),
            (CellKind::Lstm, Framework::Keras, true),
            (CellKind::Gru, Framework::Pytorch, true),
            (CellKind::Gru, Framework::Keras, false),
        ][which];
        let req = rnn_request(cell, fw, &seed, ra);
        let l = Limits::default();
        let rep = recurrent(&req, &l).expect("runs");
        let grads = rep.gradients.expect("gradients");
        let loss = |r: &RecurrentRequest| recurrent(r, &l).expect("runs").loss.expect("loss");
        let eps = 1e-6;
        // one recurrent-kernel entry, one input, one h0 entry
        let w = req.weights.as_ref().expect("w");
        let rows = w.recurrent_kernel.len();
        let cols = w.recurrent_kernel[0].len();
        let (i, j) = (pick % rows, (pick / rows) % cols);
        let mut p = req.clone();
        let mut m = req.clone();
        p.weights.as_mut().expect("w").recurrent_kernel[i][j] += eps;
        m.weights.as_mut().expect("w").recurrent_kernel[i][j] -= eps;
        let fd = (loss(&p) - loss(&m)) / (2.0 * eps);
        let an = grads.weights[0].recurrent_kernel[i][j];
        prop_assert!((fd - an).abs() <= 1e-6 * (1.0 + an.abs()), "dR[{}][{}]: {} vs {}", i, j, fd, an);
        let (b, t, k) = (pick % 2, pick % 3, pick % 2);
        let mut p = req.clone();
        let mut m = req.clone();
        p.inputs[b][t][k] += eps;
        m.inputs[b][t][k] -= eps;
        let fd = (loss(&p) - loss(&m)) / (2.0 * eps);
        prop_assert!((fd - grads.inputs[b][t][k]).abs() <= 1e-6 * (1.0 + fd.abs()));
        let mut p = req.clone();
        let mut m = req.clone();
        p.h0.as_mut().expect("h0")[b][k] += eps;
        m.h0.as_mut().expect("h0")[b][k] -= eps;
        let fd = (loss(&p) - loss(&m)) / (2.0 * eps);
        prop_assert!((fd - grads.h0[b][k]).abs() <= 1e-6 * (1.0 + fd.abs()));
    }

    #[test]
    fn untied_identical_weights_equal_tied(seed in prop::collection::vec(-1.0..1.0f64, 5..12), which in 0usize..3) {
        let cell = [CellKind::Rnn, CellKind::Lstm, CellKind::Gru][which];
        let tied = rnn_request(cell, Framework::Keras, &seed, true);
        let mut untied = tied.clone();
        let w = untied.weights.take().expect("w");
        untied.weights_per_step = Some(vec![w; 3]);
        let l = Limits::default();
        let a = recurrent(&tied, &l).expect("tied");
        let b = recurrent(&untied, &l).expect("untied");
        prop_assert_eq!(&a.sequences, &b.sequences);
        let (ga, gb) = (a.gradients.expect("g"), b.gradients.expect("g"));
        let sum: Vec<f64> = (0..ga.weights[0].kernel.len() * ga.weights[0].kernel[0].len())
            .map(|n| {
                let (i, j) = (n / ga.weights[0].kernel[0].len(), n % ga.weights[0].kernel[0].len());
                gb.weights.iter().map(|w| w.kernel[i][j]).sum()
            })
            .collect();
        let tied_flat: Vec<f64> = ga.weights[0].kernel.iter().flatten().copied().collect();
        for (x, y) in sum.iter().zip(&tied_flat) {
            prop_assert!((x - y).abs() <= 1e-12 * (1.0 + y.abs()));
        }
    }
}

#[test]
fn adam_algorithms_are_named_in_the_answer() {
    let cfg: OptimizerConfig = serde_json::from_value(serde_json::json!({
        "algorithm": "adamw", "lr": 0.01, "adam_eps_style": "keras"
    }))
    .expect("config");
    let r = optimizer_steps(&given(&[1.0], &[vec![0.5]], cfg), &Limits::default()).expect("runs");
    assert_eq!(r.algorithm, Algorithm::Adamw);
    assert!(
        r.conventions
            .iter()
            .any(|c| c.contains("decoupled weight decay"))
    );
    assert!(
        r.conventions
            .iter()
            .any(|c| c.contains("lr_t = lr*sqrt(1-b2^t)/(1-b1^t)"))
    );
}

fn any_matrix() -> impl Strategy<Value = Vec<Vec<f64>>> {
    prop::collection::vec(prop::collection::vec(-2.0..2.0f64, 0..4), 0..9)
}

fn any_weights() -> impl Strategy<Value = CellWeights> {
    (
        any_matrix(),
        any_matrix(),
        prop::option::of(prop::collection::vec(-1.0..1.0f64, 0..10)),
        prop::option::of(prop::collection::vec(-1.0..1.0f64, 0..10)),
        prop::option::of(any_matrix()),
        prop::option::of(prop::collection::vec(-1.0..1.0f64, 0..3)),
    )
        .prop_map(
            |(kernel, recurrent_kernel, bias, recurrent_bias, output_kernel, output_bias)| {
                CellWeights {
                    kernel,
                    recurrent_kernel,
                    bias,
                    recurrent_bias,
                    output_kernel,
                    output_bias,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Malformed requests of every shape are answered with an error naming a
    /// field, never a panic.
    #[test]
    fn recurrent_never_panics(cell in 0usize..3, keras in any::<bool>(),
                              inputs in prop::collection::vec(any_matrix(), 0..3),
                              weights in any_weights(), untied in any::<bool>(),
                              h0 in prop::option::of(any_matrix()), c0 in prop::option::of(any_matrix()),
                              reset_after in prop::option::of(any::<bool>()),
                              targets in prop::option::of(prop::collection::vec(any_matrix(), 0..3)),
                              last in any::<bool>()) {
        let cell = [CellKind::Rnn, CellKind::Lstm, CellKind::Gru][cell];
        let t_n = inputs.first().map_or(0, |s| s.len());
        let req = RecurrentRequest {
            cell,
            framework: if keras { Framework::Keras } else { Framework::Pytorch },
            inputs,
            weights: (!untied).then(|| weights.clone()),
            weights_per_step: untied.then(|| vec![weights; t_n]),
            h0,
            c0,
            activation: None,
            recurrent_activation: None,
            reset_after,
            output_activation: None,
            loss: targets.map(|targets| LossSpec {
                targets,
                on: if last { LossOn::LastTimestep } else { LossOn::AllTimesteps },
                kind: LossKind::Mse,
            }),
        };
        match recurrent(&req, &Limits::default()) {
            Ok(r) => prop_assert!(r.sequences.iter().all(|s| s.timesteps.len() == t_n)),
            Err(e) => prop_assert!(e.pointer.starts_with('/') && !e.message.is_empty(), "{:?}", e),
        }
    }

    #[test]
    fn optimizer_never_panics(alg in 0usize..5, lr in -1.0..1.0f64, momentum in -0.5..1.5f64,
                              nesterov in any::<bool>(), lookahead in any::<bool>(),
                              eps in prop::option::of(-1.0..1.0f64), wd in prop::option::of(-0.5..0.5f64),
                              params in prop::collection::vec(prop::collection::vec(-3.0..3.0f64, 0..3), 0..3),
                              grads in prop::collection::vec(prop::collection::vec(prop::collection::vec(-3.0..3.0f64, 0..3), 0..3), 0..4),
                              steps in prop::option::of(0usize..6)) {
        let algorithm = ["sgd", "adagrad", "rmsprop", "adam", "adamw"][alg];
        let names = ["a", "b", "a"];
        let set = |v: &Vec<Vec<f64>>| ParamSet(v.iter().enumerate().map(|(i, x)| one(names[i % 3], x.clone())).collect());
        let cfg = serde_json::json!({
            "algorithm": algorithm, "lr": lr, "momentum": momentum, "nesterov": nesterov,
            "nesterov_formulation": if lookahead { "lookahead" } else { "reformulated" },
            "eps": eps, "weight_decay": wd,
        });
        let Ok(optimizer) = serde_json::from_value::<OptimizerConfig>(cfg) else { return Ok(()); };
        let req = OptimizerRequest {
            optimizer,
            params: set(&params),
            steps,
            gradient: None,
            gradients: Some(grads.iter().map(set).collect()),
            expression: None,
        };
        match optimizer_steps(&req, &Limits::default()) {
            Ok(r) => prop_assert_eq!(r.history.len(), grads.len()),
            Err(e) => prop_assert!(e.pointer.starts_with('/') && !e.message.is_empty(), "{:?}", e),
        }
    }
}
