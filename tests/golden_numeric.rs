//! Golden tests of the tensor / forward / backprop / loss / inverse-conv core
//! against PyTorch, Keras 3 (JAX) and SymPy (fixtures from
//! tests/reference/gen_numeric.py), plus finite-difference property tests.

use dlgrade::compute::inverse::{FilterSolveRequest, solve_filter};
use dlgrade::compute::limits::Limits;
use dlgrade::compute::losses::{LossConfig, LossKind, LossRequest, Reduction, loss};
use dlgrade::compute::nn::{
    ForwardRequest, GradientsRequest, LayerSpec, Layout, Network, forward, gradients,
};
use dlgrade::compute::tensor::Tensor;
use proptest::prelude::*;
use serde_json::{Value, json};

const REL: f64 = 1e-9;
const ABS: f64 = 1e-12;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= REL * a.abs().max(b.abs()) + ABS
}

fn cmp(path: &str, got: &Value, want: &Value, errs: &mut Vec<String>) {
    match (got, want) {
        (Value::Number(g), Value::Number(w)) => {
            let (g, w) = (
                g.as_f64().unwrap_or(f64::NAN),
                w.as_f64().unwrap_or(f64::NAN),
            );
            if !close(g, w) {
                errs.push(format!("{path}: got {g:e}, want {w:e}"));
            }
        }
        (Value::Array(g), Value::Array(w)) => {
            if g.len() != w.len() {
                errs.push(format!("{path}: length {} vs {}", g.len(), w.len()));
                return;
            }
            for (i, (a, b)) in g.iter().zip(w).enumerate() {
                cmp(&format!("{path}/{i}"), a, b, errs);
            }
        }
        _ => errs.push(format!("{path}: got {got}, want {want}")),
    }
}

fn load() -> Vec<Value> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/numeric.json"
    ))
    .expect("fixture tests/fixtures/numeric.json (run tests/reference/gen_numeric.py)");
    let doc: Value = serde_json::from_str(&text).expect("fixture is JSON");
    doc["cases"].as_array().cloned().expect("cases array")
}

fn check_forward_layers(report: &Value, want: &Value, errs: &mut Vec<String>) {
    let Some(wl) = want.as_array() else { return };
    for (i, w) in wl.iter().enumerate() {
        let got = &report["layers"][i];
        cmp(
            &format!("layers/{i}/output"),
            &got["output"],
            &w["output"],
            errs,
        );
        if let Some(p) = w.get("pre_activation") {
            cmp(
                &format!("layers/{i}/pre_activation"),
                &got["pre_activation"],
                p,
                errs,
            );
        }
    }
}

fn run_case(case: &Value, limits: &Limits) -> Vec<String> {
    let mut errs = Vec::new();
    let req = &case["request"];
    let exp = &case["expected"];
    match case["kind"].as_str().unwrap_or("") {
        "forward" => {
            let r: ForwardRequest = match serde_json::from_value(req.clone()) {
                Ok(r) => r,
                Err(e) => return vec![format!("request does not parse: {e}")],
            };
            match forward(&r, limits) {
                Ok(rep) => {
                    let v = serde_json::to_value(&rep).unwrap_or(Value::Null);
                    check_forward_layers(&v, &exp["layers"], &mut errs);
                }
                Err(e) => errs.push(format!("error {e}")),
            }
        }
        "gradients" => {
            let r: GradientsRequest = match serde_json::from_value(req.clone()) {
                Ok(r) => r,
                Err(e) => return vec![format!("request does not parse: {e}")],
            };
            match gradients(&r, limits) {
                Ok(rep) => {
                    let v = serde_json::to_value(&rep).unwrap_or(Value::Null);
                    cmp("loss", &v["loss"], &exp["loss"], &mut errs);
                    check_forward_layers(&v["forward"], &exp["layers"], &mut errs);
                    cmp(
                        "input_gradient",
                        &v["input_gradient"],
                        &exp["input_gradient"],
                        &mut errs,
                    );
                    if let Some(og) = exp.get("output_gradients").and_then(Value::as_array) {
                        for (i, g) in og.iter().enumerate() {
                            cmp(
                                &format!("layers/{i}/output_gradient"),
                                &v["layers"][i]["output_gradient"],
                                g,
                                &mut errs,
                            );
                        }
                    }
                    if let Some(pg) = exp
                        .get("pre_activation_gradients")
                        .and_then(Value::as_array)
                    {
                        for (i, g) in pg.iter().enumerate() {
                            if !g.is_null() {
                                cmp(
                                    &format!("layers/{i}/pre_activation_gradient"),
                                    &v["layers"][i]["pre_activation_gradient"],
                                    g,
                                    &mut errs,
                                );
                            }
                        }
                    }
                    let mut by_name = std::collections::HashMap::new();
                    for l in v["layers"].as_array().into_iter().flatten() {
                        for p in l["parameters"].as_array().into_iter().flatten() {
                            by_name.insert(
                                p["name"].as_str().unwrap_or("").to_string(),
                                p["gradient"].clone(),
                            );
                        }
                    }
                    for (name, g) in exp["params"].as_object().into_iter().flatten() {
                        match by_name.get(name) {
                            Some(got) => cmp(&format!("params/{name}"), got, g, &mut errs),
                            None => errs.push(format!("parameter {name} missing from the report")),
                        }
                    }
                }
                Err(e) => errs.push(format!("error {e}")),
            }
        }
        "loss" => {
            let r: LossRequest = match serde_json::from_value(req.clone()) {
                Ok(r) => r,
                Err(e) => return vec![format!("request does not parse: {e}")],
            };
            match loss(&r, limits) {
                Ok(rep) => {
                    cmp("value", &json!(rep.value), &exp["value"], &mut errs);
                    cmp("gradient", &rep.gradient, &exp["gradient"], &mut errs);
                }
                Err(e) => errs.push(format!("error {e}")),
            }
        }
        "solve_filter" => {
            let r: FilterSolveRequest = match serde_json::from_value(req.clone()) {
                Ok(r) => r,
                Err(e) => return vec![format!("request does not parse: {e}")],
            };
            match solve_filter(&r, limits) {
                Ok(rep) => {
                    let v = serde_json::to_value(&rep).unwrap_or(Value::Null);
                    if v["status"] != exp["status"] {
                        errs.push(format!("status {} vs {}", v["status"], exp["status"]));
                    }
                    if let Some(fv) = exp.get("free_variables")
                        && &v["free_variables"] != fv
                    {
                        errs.push(format!("free variables {} vs {fv}", v["free_variables"]));
                    }
                    for (name, want) in exp
                        .get("values")
                        .and_then(Value::as_object)
                        .into_iter()
                        .flatten()
                    {
                        let got = rep
                            .solution
                            .iter()
                            .find(|s| &s.name == name)
                            .and_then(|s| s.value);
                        match got {
                            Some(g) => cmp(&format!("values/{name}"), &json!(g), want, &mut errs),
                            None => errs.push(format!("{name} not determined")),
                        }
                    }
                }
                Err(e) => errs.push(format!("error {e}")),
            }
        }
        other => errs.push(format!("unknown case kind {other:?}")),
    }
    errs
}

#[test]
fn golden_numeric_cases_agree_with_frameworks() {
    let cases = load();
    assert!(cases.len() >= 200, "only {} cases", cases.len());
    let limits = Limits::default();
    let mut failures = Vec::new();
    for case in &cases {
        let name = case["name"].as_str().unwrap_or("?");
        let errs = run_case(case, &limits);
        if !errs.is_empty() {
            let shown: Vec<&String> = errs.iter().take(4).collect();
            failures.push(format!(
                "{name}: {} mismatch(es), e.g. {shown:?}",
                errs.len()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases disagree:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn exam_tum_p5_matches_the_key_with_zero_padding() {
    // Key: forward [[0, 0.5], [0.5, 0]], BCE = 2 ln 2, dBCE/dw = (-3, 1, 0).
    let req: GradientsRequest = serde_json::from_value(json!({
        "input": [[[[1, -0.5], [2, -2]], [[-2, 1], [-1.5, 1]], [[1, 0], [0, 0]]]],
        "layers": [
            {"type": "conv2d", "weight": [[[[1]], [[1]], [[1]]]]},
            {"type": "max_pool2d", "kernel_size": 2, "stride": 2, "padding": 1, "pad_value": "zero"}
        ],
        "target": [[[[0, 1], [1, 0]]]],
        "loss": {"kind": "bce", "reduction": "sum", "log_floor": -1e9}
    }))
    .unwrap();
    let rep = gradients(&req, &Limits::default()).unwrap();
    assert_eq!(rep.forward.output, json!([[[[0.0, 0.5], [0.5, 0.0]]]]));
    assert!((rep.loss - 2.0 * 2f64.ln()).abs() < 1e-15);
    assert_eq!(
        rep.layers[0].parameters[0].gradient,
        json!([[[[-3.0]], [[1.0]], [[0.0]]]])
    );
    // The steps show the dot products.
    let text: Vec<&str> = rep.forward.layers[0]
        .steps
        .iter()
        .map(|s| s.text.as_str())
        .collect();
    assert!(
        text.iter()
            .any(|t| t.contains("z[0, 0, 1, 0] = 1*2 + 1*(-1.5) + 1*0 = 0.5")),
        "{text:?}"
    );
}

#[test]
fn dense_steps_show_the_dot_product() {
    let req: ForwardRequest = serde_json::from_value(json!({
        "batched": false,
        "input": [1, 2],
        "layers": [{"type": "dense", "weight": [[0.5, -1]], "bias": [0.1], "activation": "relu"}]
    }))
    .unwrap();
    let rep = forward(&req, &Limits::default()).unwrap();
    let t = &rep.layers[0].steps[1].text;
    assert_eq!(
        t,
        "z[0] = 0.5*1 + (-1)*2 + 0.1 = -1.4; a = relu(-1.4) = max(0, -1.4) = 0"
    );
    assert_eq!(rep.output, json!([0.0]));
}

#[test]
fn big_layers_are_summarized_not_printed() {
    let w: Vec<Vec<f64>> = (0..50)
        .map(|j| (0..40).map(|i| ((i + j) % 5) as f64).collect())
        .collect();
    let req: ForwardRequest = serde_json::from_value(json!({
        "input": [vec![1.0; 40]],
        "layers": [{"type": "dense", "weight": w}],
        "max_steps_per_layer": 5
    }))
    .unwrap();
    let rep = forward(&req, &Limits::default()).unwrap();
    let steps = &rep.layers[0].steps;
    assert_eq!(steps.len(), 1 + 5 + 1);
    assert!(steps[6].text.contains("45 more outputs not shown"));
    assert!(steps[1].text.contains("more products"));
}

#[test]
fn bad_requests_name_the_field() {
    let limits = Limits::default();
    let bad = |v: Value| -> String {
        let r: ForwardRequest = serde_json::from_value(v).unwrap();
        forward(&r, &limits).unwrap_err().pointer
    };
    assert_eq!(
        bad(json!({"input": [[1, 2, 3]], "layers": [{"type": "dense", "weight": [[1, 2]]}]})),
        "/layers/0/weight"
    );
    assert_eq!(
        bad(
            json!({"input": [[1, 2]], "layers": [{"type": "dense", "weight": [[1, 2]], "bias": [1, 2]}]})
        ),
        "/layers/0/bias"
    );
    assert_eq!(
        bad(
            json!({"input": [[[[1]]]], "layers": [{"type": "conv2d", "weight": [[[[1, 1], [1, 1]]]]}]})
        ),
        "/layers/0/weight"
    );
    assert_eq!(
        bad(json!({"input": [[1, "x"]], "layers": []})),
        "/input/0/1"
    );
    assert_eq!(
        bad(
            json!({"input": [[[[1, 2]]]], "layers": [{"type": "conv2d", "weight": [[[[1]]]], "groups": 0}]})
        ),
        "/layers/0/groups"
    );
    let tight = Limits {
        max_tensor_elements: 10,
        ..Limits::default()
    };
    let r: ForwardRequest = serde_json::from_value(json!({
        "input": [[1, 2]],
        "layers": [{"type": "dense", "weight": vec![vec![1.0, 1.0]; 11]}]
    }))
    .unwrap();
    assert_eq!(forward(&r, &tight).unwrap_err().pointer, "/layers/0/weight");
}

#[test]
fn keras_and_pytorch_layouts_agree() {
    // Same conv net written in both layouts gives transposed-but-equal results.
    let x_nchw = json!([[[[1.0, 2.0, 0.5], [0.0, -1.0, 3.0], [2.0, 1.0, -2.0]]]]);
    let x_nhwc = json!([[
        [[1.0], [2.0], [0.5]],
        [[0.0], [-1.0], [3.0]],
        [[2.0], [1.0], [-2.0]]
    ]]);
    let pt: GradientsRequest = serde_json::from_value(json!({
        "input": x_nchw,
        "layers": [
            {"type": "conv2d", "weight": [[[[1, -1], [0.5, 2]]]], "bias": [0.1], "activation": "tanh"},
            {"type": "flatten"},
            {"type": "dense", "weight": [[1, 2, 3, 4]], "bias": [0.0]}
        ],
        "target": [[1.0]],
        "loss": {"kind": "mse"}
    }))
    .unwrap();
    let kr: GradientsRequest = serde_json::from_value(json!({
        "layout": "keras",
        "input": x_nhwc,
        "layers": [
            {"type": "conv2d", "kernel": [[[[1]], [[-1]]], [[[0.5]], [[2]]]], "bias": [0.1], "activation": "tanh"},
            {"type": "flatten"},
            {"type": "dense", "kernel": [[1], [2], [3], [4]], "bias": [0.0]}
        ],
        "target": [[1.0]],
        "loss": {"kind": "mse"}
    }))
    .unwrap();
    let a = gradients(&pt, &Limits::default()).unwrap();
    let b = gradients(&kr, &Limits::default()).unwrap();
    // One channel: NCHW and NHWC flatten to the same order.
    assert!(close(a.loss, b.loss));
    let mut errs = Vec::new();
    let ga = &a.layers[0].parameters[0].gradient;
    let gb = &b.layers[0].parameters[0].gradient;
    let flat = |v: &Value| -> Vec<f64> {
        let t = Tensor::from_json(v, "", &Limits::default()).unwrap();
        t.into_data()
    };
    cmp("kernel", &json!(flat(ga)), &json!(flat(gb)), &mut errs);
    assert!(errs.is_empty(), "{errs:?}");
}

/// A random small network description and input for the property test.
fn small_net() -> impl Strategy<Value = (Value, Value, Value, u8)> {
    (
        1usize..3,
        1usize..3,
        3usize..6,
        prop::collection::vec(-1.0f64..1.0, 400),
        0u8..6,
        0u8..4,
    )
        .prop_map(|(n, c, hw, pool, act, loss_kind)| {
            let mut it = pool.into_iter().cycle();
            let mut take = |k: usize| -> Vec<f64> { (0..k).map(|_| it.next().unwrap_or(0.3)).collect() };
            let nest = |d: Vec<f64>, shape: &[usize]| -> Value {
                let t = Tensor::new(shape.to_vec(), d).unwrap();
                t.to_json()
            };
            let acts = ["tanh", "sigmoid", "elu", "gelu", "gelu_tanh", "linear"];
            let a = acts[act as usize % acts.len()];
            let cout = 2;
            let conv_w = nest(take(cout * c * 4), &[cout, c, 2, 2]);
            let conv_b = nest(take(cout), &[cout]);
            // 2x2 kernel with padding 1 -> (hw + 1)^2; avg pool 2, stride 1 -> hw^2.
            let feat = cout * hw * hw;
            let dense_w = nest(take(3 * feat), &[3, feat]);
            let input = nest(take(n * c * hw * hw), &[n, c, hw, hw]);
            let layers = json!([
                {"type": "conv2d", "weight": conv_w, "bias": conv_b, "padding": 1, "activation": a},
                {"type": "avg_pool2d", "kernel_size": 2, "stride": 1},
                {"type": "batch_norm", "running_mean": [0.1, -0.2], "running_var": [0.5, 1.5], "gamma": [1.2, 0.7], "beta": [0.0, 0.1]},
                {"type": "flatten"},
                {"type": "dense", "weight": dense_w, "bias": [0.1, 0.0, -0.1], "activation": "tanh"}
            ]);
            let target = match loss_kind {
                0 | 1 => nest(take(n * 3), &[n, 3]),
                2 => json!(vec![vec![0.2, 0.5, 0.3]; n]),
                _ => json!(vec![1.0; n]),
            };
            (layers, input, target, loss_kind)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Backprop gradients equal central finite differences of the loss.
    #[test]
    fn gradients_match_central_differences((layers, input, target, lk) in small_net()) {
        let limits = Limits::default();
        let specs: Vec<LayerSpec> = serde_json::from_value(layers).unwrap();
        let (net, params) = Network::build(&specs, Layout::Pytorch, true, &limits).unwrap();
        let x = Tensor::from_json(&input, "/input", &limits).unwrap();
        let y = Tensor::from_json(&target, "/target", &limits).unwrap();
        let kind = [LossKind::Mse, LossKind::Sse, LossKind::CategoricalCrossentropyWithLogits,
                    LossKind::SparseCategoricalCrossentropyWithLogits][lk as usize];
        let cfg = LossConfig { reduction: Some(Reduction::Mean), ..LossConfig::new(kind) };
        let (_, grads) = net.loss_and_grads(&params, &x, &y, &cfg, &limits).unwrap();
        let h = 1e-6;
        for (pi, p) in params.params.iter().enumerate() {
            if !p.trainable { continue; }
            for k in (0..p.data.len()).step_by(3) {
                let mut plus = params.clone();
                plus.params[pi].data[k] += h;
                let mut minus = params.clone();
                minus.params[pi].data[k] -= h;
                let fp = net.loss_and_grads(&plus, &x, &y, &cfg, &limits).unwrap().0;
                let fm = net.loss_and_grads(&minus, &x, &y, &cfg, &limits).unwrap().0;
                let fd = (fp - fm) / (2.0 * h);
                let g = grads[pi][k];
                prop_assert!((fd - g).abs() <= 1e-6 * (1.0 + g.abs()), "{} [{}]: backprop {} vs fd {}", p.name, k, g, fd);
            }
        }
    }
}
