//! The wrong printed keys of the reference exam (listed in `bank/INDEX.md`),
//! each with the computation that checks it and the correct value; shared by
//! the in-process audit test (`tests/bank.rs`) and the HTTP one
//! (`tests/api/bank.rs`).

use serde_json::{Value, json};

/// One wrong printed key: the part's expected value is the printed one, its
/// check is the computation; the audit must flag it with `correct`.
pub struct WrongKey {
    pub name: &'static str,
    pub answer_type: Value,
    pub printed: Value,
    pub check: Value,
    pub correct: Value,
}

/// A rubric with one part per case: the printed value as a checked key.
/// The audit must flag part i at `/parts/i/answer/expected`.
pub fn audit_rubric(cases: &[WrongKey]) -> Value {
    let parts: Vec<Value> = cases
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut answer = c.answer_type.clone();
            answer["expected"] = json!({"value": c.printed, "check": c.check});
            json!({"id": format!("k{i}"), "max_points": 1, "answer": answer})
        })
        .collect();
    json!({"title": "wrong printed keys", "parts": parts})
}

pub fn close(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| close(p, q))
        }
        _ => match (a.as_f64(), b.as_f64()) {
            (Some(p), Some(q)) => (p - q).abs() <= 1e-6 * q.abs().max(1.0),
            _ => a == b,
        },
    }
}

fn rnn_sample_request() -> Value {
    json!({"cell": "rnn", "inputs": [[[1], [1], [0]]], "activation": "sigmoid",
           "output_activation": "relu",
           "weights_per_step": [
               {"kernel": [[0.5]], "recurrent_kernel": [[0.2]], "output_kernel": [[0.4]]},
               {"kernel": [[0.6]], "recurrent_kernel": [[0.3]], "output_kernel": [[0.2]]},
               {"kernel": [[0.2]], "recurrent_kernel": [[0.8]], "output_kernel": [[0.1]]}]})
}

fn lstm_sample_request() -> Value {
    // PyTorch gate order i, f, g (candidate), o; one row per gate.
    json!({"cell": "lstm", "inputs": [[[1], [1], [0]]], "activation": "sigmoid",
           "output_activation": "sigmoid",
           "weights_per_step": [
               {"kernel": [[0.9], [0.6], [0.5], [0.4]], "recurrent_kernel": [[0.1], [0.5], [0.2], [0.9]],
                "output_kernel": [[0.4]]},
               {"kernel": [[0.1], [0.2], [0.6], [0.3]], "recurrent_kernel": [[0.4], [0.3], [0.3], [0.1]],
                "output_kernel": [[0.2]]},
               {"kernel": [[0.3], [0.3], [0.2], [0.2]], "recurrent_kernel": [[0.2], [0.2], [0.8], [0.3]],
                "output_kernel": [[0.1]]}]})
}

fn adam_request() -> Value {
    json!({"optimizer": {"algorithm": "adam", "lr": 0.1, "beta1": 0.9, "beta2": 0.99, "eps": 1e-8},
           "params": [{"name": "w", "values": [-2.0]}, {"name": "b", "values": [-2.0]}],
           "steps": 1,
           "expression": "-(0.5*ln(sigmoid(3.5*w + b)) + 0.5*ln(1 - sigmoid(3.5*w + b)))"})
}

pub fn wrong_keys() -> Vec<WrongKey> {
    let number = json!({"type": "number", "tolerance": {"mode": "sigfig", "digits": 3}});
    let integer = json!({"type": "integer"});
    vec![
        // BITS EC3 Q3(c): 4(DH + H^2 + H) = 180 with D = 3 gives H^2 + 4H - 45 = 0,
        // (H + 9)(H - 5) = 0, H = 5 (printed: 2, from a wrong quadratic 3H^2 + 7H - 45).
        WrongKey {
            name: "BITS EC3 Q3(c) LSTM hidden size",
            answer_type: integer.clone(),
            printed: json!(2),
            check: json!({"engine": "architecture_solve",
                "request": {"model": {"input_shape": [15, 3], "layers": [{"type": "lstm", "units": "?"}],
                                      "conventions": {"framework": "keras"}},
                            "target": {"params": 180}},
                "select": "/solutions/0/value"}),
            correct: json!(5),
        },
        // BITS EC3 Q2(b): W_xh and W_hh are 2x2 (all 0.2), so each unit's
        // pre-activation is 0.2(0.3 + 0.4) + 0.2(0.5 + 0.6) + 0.2 = 0.56,
        // h = tanh(0.56) = 0.50798 per unit, y = σ(0.2(2 × 0.50798) + 0.2) = σ(0.40319) = 0.59945
        // (printed 0.556275 uses one weight per unit: tanh(0.06), tanh(0.08) and drops b_h).
        WrongKey {
            name: "BITS EC3 Q2(b) RNN output",
            answer_type: number.clone(),
            printed: json!(0.556275),
            check: json!({"engine": "recurrent",
                "request": {"cell": "rnn", "inputs": [[[0.5, 0.6]]], "h0": [[0.3, 0.4]],
                            "weights": {"kernel": [[0.2, 0.2], [0.2, 0.2]],
                                        "recurrent_kernel": [[0.2, 0.2], [0.2, 0.2]],
                                        "bias": [0.2, 0.2], "output_kernel": [[0.2, 0.2]],
                                        "output_bias": [0.2]},
                            "output_activation": "sigmoid"},
                "select": "/sequences/0/timesteps/0/y/0"}),
            correct: json!(0.599_454_6),
        },
        // TUM Problem 4c: 4 filters of 5x5 over 3 RGB channels; PyTorch's
        // Conv2d weight is (out, in, kH, kW) = (4, 3, 5, 5); the printed (3, 4, 5, 5)
        // is the (in, out, kH, kW) layout (accepted by the bank rubric, but not
        // the PyTorch shape).
        WrongKey {
            name: "TUM P4c weight shape (as a PyTorch shape)",
            answer_type: json!({"type": "shape"}),
            printed: json!([3, 4, 5, 5]),
            check: json!({"engine": "architecture",
                "request": {"input_shape": [3, 224, 224],
                            "layers": [{"type": "conv2d", "filters": 4, "kernel_size": 5}]},
                "select": "/layers/0/weights/0/pytorch"}),
            correct: json!([4, 3, 5, 5]),
        },
        // BITS EC3 Q1(e): top-left outputs of the valid cross-correlation:
        // O11 = 3x + 3z + 2 = 4, O12 = 3y - 3z + 11 = 0, O13 = 3x - 3y - 9 = -3,
        // so x + z = 2/3, y - z = -11/3, x - y = 2: x = -1/2, y = -5/2, z = 7/6
        // (printed x = 3, y = 1, z = 14/3 from wrongly set up equations).
        WrongKey {
            name: "BITS EC3 Q1(e) filter entry x",
            answer_type: number.clone(),
            printed: json!(3),
            check: inverse_check("/solution/0/value"),
            correct: json!(-0.5),
        },
        WrongKey {
            name: "BITS EC3 Q1(e) filter entry y",
            answer_type: number.clone(),
            printed: json!(1),
            check: inverse_check("/solution/1/value"),
            correct: json!(-2.5),
        },
        WrongKey {
            name: "BITS EC3 Q1(e) filter entry z",
            answer_type: number.clone(),
            printed: json!(14.0 / 3.0),
            check: inverse_check("/solution/2/value"),
            correct: json!(7.0 / 6.0),
        },
        // BITS EC3 Q3(b): 50·64 + 64 = 3264, 64·128 + 128 = 8320,
        // 128·256 + 256 = 33024, 256 + 1 = 257; the sum is 44865 (printed 44705).
        WrongKey {
            name: "BITS EC3 Q3(b) DNN parameters",
            answer_type: integer.clone(),
            printed: json!(44705),
            check: json!({"engine": "architecture",
                "request": {"input_shape": [50],
                            "layers": [{"type": "dense", "units": 64}, {"type": "dense", "units": 128},
                                       {"type": "dense", "units": 256}, {"type": "dense", "units": 1}]},
                "select": "/totals/params"}),
            correct: json!(44865),
        },
        // BITS EC3 Q2(a): an LSTM's cell state has the hidden size, so with
        // input 4 and hidden 3: 4·(4·3 + 3·3 + 3) = 96, plus the output layer
        // 3 + 1 = 4: 100 (printed 140 gives the cell state its own size 8).
        WrongKey {
            name: "BITS EC3 Q2(a) LSTM parameters",
            answer_type: integer.clone(),
            printed: json!(140),
            check: json!({"engine": "architecture",
                "request": {"input_shape": [1, 4], "layout": "LC",
                            "layers": [{"type": "lstm", "units": 3}, {"type": "dense", "units": 1}],
                            "conventions": {"framework": "keras"}},
                "select": "/totals/params"}),
            correct: json!(100),
        },
        // BITS EC3 Q4(a) Adam, one step: ŷ = σ(3.5·(-2) - 2) = σ(-9) = 1.234e-4
        // (printed 0.0180), g_w = (ŷ - 0.5)·3.5 = -1.74957, g_b = -0.49988;
        // s = 0.1 g, r = 0.01 g² (β2 = 0.99; the printed working uses 0.999),
        // ŝ/√r̂ = sign(g) on the first step, so w = b = -2 + 0.1 = -1.9
        // (printed -2.081 and -2.079: wrong sign of the step).
        WrongKey {
            name: "BITS EC3 Q4(a) Adam w",
            answer_type: number.clone(),
            printed: json!(-2.081),
            check: json!({"engine": "optimizer_steps", "request": adam_request(),
                          "select": "/final_params/0/values/0"}),
            correct: json!(-1.9),
        },
        WrongKey {
            name: "BITS EC3 Q4(a) Adam b",
            answer_type: number.clone(),
            printed: json!(-2.079),
            check: json!({"engine": "optimizer_steps", "request": adam_request(),
                          "select": "/final_params/1/values/0"}),
            correct: json!(-1.9),
        },
        // s_W = 0.9·0 + 0.1·(-1.74957) = -0.174957 (printed +0.0493).
        WrongKey {
            name: "BITS EC3 Q4(a) Adam s_W",
            answer_type: number.clone(),
            printed: json!(0.0493),
            check: json!({"engine": "optimizer_steps", "request": adam_request(),
                          "select": "/history/0/state/0/m/0"}),
            correct: json!(-0.174_956_811_898_404_8),
        },
        // r_W = 0.01·(-1.74957)² = 0.0306099 (printed 0.0001216).
        WrongKey {
            name: "BITS EC3 Q4(a) Adam r_W",
            answer_type: number.clone(),
            printed: json!(0.0001216),
            check: json!({"engine": "optimizer_steps", "request": adam_request(),
                          "select": "/history/0/state/0/v/0"}),
            correct: json!(0.030_609_886_029_653_84),
        },
        // s_B = 0.1·(-0.499877) = -0.0499877 (printed +0.0482).
        WrongKey {
            name: "BITS EC3 Q4(a) Adam s_B",
            answer_type: number.clone(),
            printed: json!(0.0482),
            check: json!({"engine": "optimizer_steps", "request": adam_request(),
                          "select": "/history/0/state/1/m/0"}),
            correct: json!(-0.049_987_660_542_401_37),
        },
        // r_B = 0.01·(-0.499877)² = 0.00249877 (printed 0.0001168).
        WrongKey {
            name: "BITS EC3 Q4(a) Adam r_B",
            answer_type: number.clone(),
            printed: json!(0.0001168),
            check: json!({"engine": "optimizer_steps", "request": adam_request(),
                          "select": "/history/0/state/1/v/0"}),
            correct: json!(0.002_498_766_206_502_354),
        },
        // ... and the loss -0.5 ln σ(-9) - 0.5 ln(1 - σ(-9)) = 4.50012 (printed 4.0076 uses σ(-4) = 0.0180).
        WrongKey {
            name: "BITS EC3 Q4(a) BCE loss",
            answer_type: number.clone(),
            printed: json!(4.0076),
            check: json!({"engine": "optimizer_steps", "request": adam_request(),
                          "select": "/history/0/loss"}),
            correct: json!(4.500_123_402_189_724),
        },
        // g_w = (ŷ - y)·x = (1.234e-4 - 0.5)·3.5 = -1.74957 (printed -0.493).
        WrongKey {
            name: "BITS EC3 Q4(a) gradient of w",
            answer_type: number.clone(),
            printed: json!(-0.493),
            check: json!({"engine": "optimizer_steps", "request": adam_request(),
                          "select": "/history/0/gradient/0/values/0"}),
            correct: json!(-1.749_568_118_984_048_4),
        },
        // BITS EC3 Q4(b): ŷ = σ(0.3·0.65 + 0.5·0.75 + 1.75) = σ(2.32) = 0.910520,
        // SSE = ½(0.910520 - 2.5)² = ½·2.52645 = 1.26322 (printed 1.2623: 1.5894² taken as 2.5245).
        // Graded to 4 significant figures here; the bank rubric uses 3, where both read 1.26.
        WrongKey {
            name: "BITS EC3 Q4(b) SSE",
            answer_type: json!({"type": "number", "tolerance": {"mode": "sigfig", "digits": 4}}),
            printed: json!(1.2623),
            check: json!({"engine": "gradients",
                "request": {"batched": false, "input": [0.65, 0.75],
                            "layers": [{"type": "dense", "weight": [[0.3, 0.5]], "bias": [1.75],
                                        "activation": "sigmoid"}],
                            "target": [2.5], "loss": {"kind": "sse"}},
                "select": "/loss"}),
            correct: json!(1.263_223_429_509_510_8),
        },
        // Sample RNN: s1 = σ(0.5) = 0.62246 (printed 0.6), y1 = 0.4·s1 = 0.24898 (printed 0.24).
        WrongKey {
            name: "BITS sample RNN y1",
            answer_type: number.clone(),
            printed: json!(0.24),
            check: json!({"engine": "recurrent", "request": rnn_sample_request(),
                          "select": "/sequences/0/timesteps/0/y/0"}),
            correct: json!(0.248_983_732_480_741_85),
        },
        // Sample RNN: s1 = σ(0.5·1 + 0.2·0) = 0.622459 (printed 0.6).
        WrongKey {
            name: "BITS sample RNN s1",
            answer_type: number.clone(),
            printed: json!(0.6),
            check: json!({"engine": "recurrent", "request": rnn_sample_request(),
                          "select": "/sequences/0/timesteps/0/h/0"}),
            correct: json!(0.622_459_331_201_854_6),
        },
        // Sample RNN: s2 = σ(0.6 + 0.3·0.622459) = σ(0.786738) = 0.687130, y2 = 0.2·s2 = 0.137426
        // (printed 0.136 from s2 = 0.68).
        WrongKey {
            name: "BITS sample RNN y2",
            answer_type: number.clone(),
            printed: json!(0.136),
            check: json!({"engine": "recurrent", "request": rnn_sample_request(),
                          "select": "/sequences/0/timesteps/1/y/0"}),
            correct: json!(0.137_426_088_801_056_06),
        },
        // Sample LSTM input gate: i1 = σ(0.9·1 + 0.1·0) = 0.710950 (printed σ(0.3) = 0.574).
        WrongKey {
            name: "BITS sample LSTM i1",
            answer_type: number.clone(),
            printed: json!(0.574),
            check: json!({"engine": "recurrent", "request": lstm_sample_request(),
                          "select": "/sequences/0/timesteps/0/gates/0/value/0"}),
            correct: json!(0.710_949_502_625_003_9),
        },
        // Sample LSTM: i1 = σ(U_i[1]·x1) = σ(0.9) = 0.71095 (printed σ(0.3) = 0.574),
        // so s1 = i1·ŝ1 = 0.71095·σ(0.5) = 0.44254 (printed 0.355).
        WrongKey {
            name: "BITS sample LSTM cell state s1",
            answer_type: number.clone(),
            printed: json!(0.355),
            check: json!({"engine": "recurrent", "request": lstm_sample_request(),
                          "select": "/sequences/0/timesteps/0/c/0"}),
            correct: json!(0.442_537_151_922_251_07),
        },
        // ... and h1 = o1·σ(s1) = 0.59869·σ(0.44254) = 0.36452 (printed 0.351).
        WrongKey {
            name: "BITS sample LSTM h1",
            answer_type: number,
            printed: json!(0.351),
            check: json!({"engine": "recurrent", "request": lstm_sample_request(),
                          "select": "/sequences/0/timesteps/0/h/0"}),
            correct: json!(0.364_519_014_410_383_6),
        },
    ]
}

fn inverse_check(select: &str) -> Value {
    json!({"engine": "solve_filter",
        "request": {"input": [[3, 0, 3, -3, 0], [-3, 2, 0, 3, -2], [-5, 0, 3, -2, 0]],
                    "filter": [["x", "y", "z"], [1, 0, 2], [-1, 1, 0]],
                    "outputs": [[4, 0, -3]]},
        "select": select})
}
