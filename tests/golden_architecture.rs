//! Golden tests: dlgrade's architecture arithmetic against PyTorch and Keras 3.
//!
//! tests/fixtures/architecture.json is produced by
//! tests/reference/gen_architecture.py, which builds every case in the real
//! framework and records output shapes, parameter counts, weight shapes and
//! empirical receptive fields (autograd). Every number must agree exactly.

use dlgrade::compute::arch::{ArchitectureRequest, LayerReport, analyze, solve};
use dlgrade::compute::limits::Limits;
use serde_json::Value;

fn fixture() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/architecture.json"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {path}: {e}"))
}

fn u64s(v: &Value) -> Vec<u64> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default()
}

fn cases(doc: &Value, key: &str) -> Vec<Value> {
    doc.get(key)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// Checks the empirical receptive field of one layer; returns a failure text.
fn check_rf(
    layer: &LayerReport,
    emp: &Value,
    input_spatial: &[u64],
    dilated: bool,
) -> Option<String> {
    let Some(rf) = &layer.receptive_field else {
        return Some("no receptive field reported".into());
    };
    let lo = u64s(&emp["lo"]);
    let hi = u64s(&emp["hi"]);
    // A flat output's element 0 comes from position 0 of every axis (C-major flatten).
    let unit = emp
        .get("unit")
        .filter(|u| !u.is_null())
        .map(u64s)
        .unwrap_or_else(|| vec![0; input_spatial.len()]);
    for (a, &n) in input_spatial.iter().enumerate() {
        let (elo, ehi) = (lo[a] as f64, hi[a] as f64);
        let whole = rf.whole_input[a];
        let (tlo, thi) = match (&unit, whole) {
            (_, true) => (0.0, n as f64 - 1.0),
            (u, false) => {
                let (Some(size), Some(jump), Some(start)) = (rf.size[a], rf.jump[a], rf.start[a])
                else {
                    return Some(format!("axis {a}: irregular field {rf:?}"));
                };
                let c = start + u[a] as f64 * jump;
                let half = (size as f64 - 1.0) / 2.0;
                (c - half, c + half)
            }
        };
        let (clo, chi) = (tlo.max(0.0), thi.min(n as f64 - 1.0));
        let clipped = clo != tlo || chi != thi;
        let ok = if clipped && dilated {
            elo >= clo && ehi <= chi
        } else {
            elo == clo && ehi == chi
        };
        if !ok {
            return Some(format!(
                "axis {a}: empirical [{elo}, {ehi}] vs computed [{tlo}, {thi}] clipped [{clo}, {chi}] ({rf:?})"
            ));
        }
    }
    None
}

#[test]
fn architecture_matches_frameworks() {
    let doc = fixture();
    let limits = Limits::default();
    let all = cases(&doc, "cases");
    assert!(all.len() >= 300, "only {} cases", all.len());
    let mut failures = Vec::new();
    let mut checked_rf = 0;
    for case in &all {
        let name = case["name"].as_str().unwrap_or("?");
        let fw = case["framework"].as_str().unwrap_or("?");
        let req = &case["request"];
        let got = analyze(req, &limits);
        if let Some(err) = case.get("error") {
            match got {
                Ok(_) => failures.push(format!(
                    "{name}: the framework fails ({err}) but dlgrade accepts it"
                )),
                Err(e) if !e.pointer.starts_with("/layers/") => failures.push(format!(
                    "{name}: error should name a layer, got pointer {:?}: {}",
                    e.pointer, e.message
                )),
                Err(_) => {}
            }
            continue;
        }
        let rep = match got {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{name}: unexpected error {e}"));
                continue;
            }
        };
        let exp_layers = cases(case, "layers");
        if rep.layers.len() != exp_layers.len() {
            failures.push(format!(
                "{name}: {} layers vs {}",
                rep.layers.len(),
                exp_layers.len()
            ));
            continue;
        }
        for (i, (l, e)) in rep.layers.iter().zip(&exp_layers).enumerate() {
            let shape = u64s(&e["output_shape"]);
            if l.output_shape != shape {
                failures.push(format!(
                    "{name} layer {i}: output shape {:?} vs {fw} {shape:?}",
                    l.output_shape
                ));
            }
            for (key, val) in [
                ("params", l.params.total),
                ("trainable", l.params.trainable),
                ("non_trainable", l.params.non_trainable),
            ] {
                if e[key].as_u64() != Some(val) {
                    failures.push(format!("{name} layer {i}: {key} {val} vs {fw} {}", e[key]));
                }
            }
            let want: Vec<Vec<u64>> = e["weights"]
                .as_array()
                .map(|a| a.iter().map(u64s).collect())
                .unwrap_or_default();
            let have: Vec<Vec<u64>> = l
                .weights
                .iter()
                .filter(|w| w.counted)
                .map(|w| {
                    if fw == "keras" {
                        w.keras.clone()
                    } else {
                        w.pytorch.clone()
                    }
                })
                .collect();
            if want != have {
                failures.push(format!(
                    "{name} layer {i}: weight shapes {have:?} vs {fw} {want:?}"
                ));
            }
            let count: u64 = l
                .weights
                .iter()
                .filter(|w| w.counted)
                .map(|w| w.count)
                .sum();
            if count != l.params.total {
                failures.push(format!(
                    "{name} layer {i}: weights sum to {count}, params {}",
                    l.params.total
                ));
            }
            if l.steps.is_empty() {
                failures.push(format!("{name} layer {i}: no worked steps"));
            }
        }
        for (key, val) in [
            ("params", rep.totals.params),
            ("trainable", rep.totals.trainable),
            ("non_trainable", rep.totals.non_trainable),
        ] {
            if case["totals"][key].as_u64() != Some(val) {
                failures.push(format!(
                    "{name}: total {key} {val} vs {fw} {}",
                    case["totals"][key]
                ));
            }
        }
        if let Some(info) = case.get("torchinfo") {
            let counts_buffers = req["conventions"]["count_bn_running_stats"] == Value::Bool(true);
            let mut checks = vec![
                ("mult_adds", rep.totals.torchinfo_mult_adds),
                ("pass_bytes", rep.totals.activation_bytes),
            ];
            if !counts_buffers {
                checks.push(("param_bytes", rep.totals.param_bytes));
            }
            for (key, val) in checks {
                if info[key].as_u64() != Some(val) {
                    failures.push(format!(
                        "{name}: torchinfo {key} {} vs dlgrade {val}",
                        info[key]
                    ));
                }
            }
        }
        if let Some(rfs) = case.get("receptive_field").and_then(Value::as_array) {
            let input = u64s(&req["input_shape"]);
            let spatial = &input[1..];
            let dilated = case["dilated"].as_bool().unwrap_or(false);
            for (i, emp) in rfs.iter().enumerate() {
                if emp.is_null() {
                    continue;
                }
                checked_rf += 1;
                if let Some(f) = check_rf(&rep.layers[i], emp, spatial, dilated) {
                    failures.push(format!("{name} layer {i}: receptive field {f}"));
                }
            }
        }
        // The documented request schema accepts the canonical (Keras-spelled) requests.
        if fw == "keras"
            && !name.contains("mixed_case")
            && let Err(e) = serde_json::from_value::<ArchitectureRequest>(req.clone())
        {
            failures.push(format!(
                "{name}: ArchitectureRequest rejects the request: {e}"
            ));
        }
    }
    assert!(
        checked_rf >= 200,
        "only {checked_rf} receptive fields checked"
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn solve_matches_brute_force_in_frameworks() {
    let doc = fixture();
    let limits = Limits::default();
    let all = cases(&doc, "solve");
    assert!(all.len() >= 10);
    let mut failures = Vec::new();
    for case in &all {
        let name = case["name"].as_str().unwrap_or("?");
        match solve(&case["request"], &limits) {
            Ok(rep) => {
                let got: Vec<u64> = rep.solutions.iter().map(|s| s.value).collect();
                let want = u64s(&case["solutions"]);
                if got != want {
                    failures.push(format!("{name}: solutions {got:?} vs brute force {want:?}"));
                }
                if want.is_empty() && !rep.message.starts_with("no ") {
                    failures.push(format!(
                        "{name}: message should say there is none: {}",
                        rep.message
                    ));
                }
            }
            Err(e) => failures.push(format!("{name}: error {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
