//! Rubrics of the reference exam (`/work/shared/reference/exam-questions.md`)
//! encoded in dlgrade's rubric format, with the points the printed rubric
//! text gives for full, each named partial and wrong answers.
//!
//! Keys are computed by a small resolver in this file that implements the
//! textbook formulas (conv output size, receptive field, LSTM parameter
//! count, one RNN step): the grading engine only sees the engine's JSON, as it
//! will with the real compute engines. Where the printed key is wrong, the
//! computed (correct) key is used and the test says so:
//! - BITS EC3 Q3(c): printed H = 2; 4(3H + H^2 + H) = 180 gives H = 5.
//! - BITS EC3 Q2(b): printed y = 0.556; with W_hh, W_xh all 0.2 (2x2, 2x2)
//!   the step gives h = tanh(0.56) per unit and y = σ(0.2 (h1 + h2) + 0.2) = 0.5995.
//! - TUM Problem 4c prints (3, 4, 5, 5): that is the (in, out, kH, kW)
//!   layout; PyTorch's layout is (4, 3, 5, 5). All three layouts are accepted.

use dlgrade::grading::model::StudentAnswer;
use dlgrade::grading::{
    Answers, GradeOptions, GradeStatus, KeyResolver, ResolvedRubric, Rubric, Verdict, grade,
};
use serde_json::{Value, json};

/// Textbook formulas standing in for the compute engines.
struct Engines;

fn num(v: &Value, k: &str) -> Result<f64, String> {
    v.get(k)
        .and_then(Value::as_f64)
        .ok_or_else(|| format!("missing {k}"))
}

impl KeyResolver for Engines {
    fn resolve(&self, engine: &str, req: &Value) -> Result<Value, String> {
        match engine {
            // Conv/pool stack: out = floor((in + 2p - k) / s) + 1 per layer.
            "conv_output" => {
                let input = req["input"].as_array().ok_or("input")?;
                let mut h = input[0].as_f64().ok_or("h")?;
                let mut w = input[1].as_f64().ok_or("w")?;
                let mut c = input[2].as_f64().ok_or("c")?;
                let mut out = Vec::new();
                for l in req["layers"].as_array().ok_or("layers")? {
                    let (k, s, p) = (num(l, "kernel")?, num(l, "stride")?, num(l, "padding")?);
                    h = ((h + 2.0 * p - k) / s).floor() + 1.0;
                    w = ((w + 2.0 * p - k) / s).floor() + 1.0;
                    if let Some(f) = l.get("filters").and_then(Value::as_f64) {
                        c = f;
                    }
                    out.push(json!({"output_shape": [h as u64, w as u64, c as u64]}));
                }
                Ok(json!({ "layers": out }))
            }
            // r_k = r_{k-1} + (k_k - 1) * prod(strides before k).
            "receptive_field" => {
                let (mut r, mut jump) = (1.0, 1.0);
                for l in req["layers"].as_array().ok_or("layers")? {
                    r += (num(l, "kernel")? - 1.0) * jump;
                    jump *= num(l, "stride")?;
                }
                Ok(json!({"rf": r, "size": [r as u64, r as u64]}))
            }
            // (k*k*c_in + 1) * filters.
            "conv_params" => {
                let k = num(req, "kernel")?;
                Ok(
                    json!({"params": (k * k * num(req, "in_channels")? + 1.0) * num(req, "filters")?}),
                )
            }
            // 4 gates * (D*H + H*H + H) = P, solved for H by search.
            "lstm_hidden" => {
                let (d, p) = (num(req, "input_dim")?, num(req, "total_params")?);
                (1..=10_000u64)
                    .map(|h| h as f64)
                    .find(|h| 4.0 * (d * h + h * h + h) == p)
                    .map(|h| json!({ "hidden": h }))
                    .ok_or_else(|| "no integer hidden size".into())
            }
            // One step of a 2-unit tanh RNN with all weights and biases = w,
            // then one sigmoid output unit with weights and bias = w.
            "rnn_step" => {
                let w = num(req, "w")?;
                let x: Vec<f64> =
                    serde_json::from_value(req["x"].clone()).map_err(|e| e.to_string())?;
                let h0: Vec<f64> =
                    serde_json::from_value(req["h0"].clone()).map_err(|e| e.to_string())?;
                let h: Vec<f64> = (0..2)
                    .map(|_| (w * h0.iter().sum::<f64>() + w * x.iter().sum::<f64>() + w).tanh())
                    .collect();
                let z = w * h.iter().sum::<f64>() + w;
                Ok(json!({"h": h, "y": 1.0 / (1.0 + (-z).exp())}))
            }
            other => Err(format!("unknown engine {other}")),
        }
    }
}

fn load(v: Value) -> ResolvedRubric {
    let r: Rubric = serde_json::from_value(v).expect("rubric JSON");
    let resolved = r
        .resolve_keys(&Engines)
        .unwrap_or_else(|p| panic!("{p:#?}"));
    let report = resolved.run_self_tests();
    assert!(report.failures.is_empty(), "{:#?}", report.failures);
    assert_eq!(report.total, report.passed);
    resolved
}

fn points_with(
    r: &ResolvedRubric,
    part: &str,
    answer: &str,
    working: Option<&str>,
) -> (f64, Verdict, Vec<String>) {
    let a = match working {
        Some(w) => StudentAnswer::WithWorking {
            answer: answer.into(),
            working: Some(w.into()),
        },
        None => StudentAnswer::Text(answer.into()),
    };
    let answers = Answers([(part.to_string(), a)].into_iter().collect());
    let g = grade(r, &answers, &GradeOptions::default());
    let p = g.parts.iter().find(|p| p.part_id == part).expect("part");
    (p.points, p.verdict, p.feedback.clone())
}

#[track_caller]
fn check(r: &ResolvedRubric, part: &str, answer: &str, want: f64) {
    let (got, _, fb) = points_with(r, part, answer, None);
    assert!(
        (got - want).abs() < 1e-9,
        "{part}: '{answer}' got {got}, want {want}: {fb:#?}"
    );
}

#[track_caller]
fn check_w(r: &ResolvedRubric, part: &str, answer: &str, working: &str, want: f64) {
    let (got, _, fb) = points_with(r, part, answer, Some(working));
    assert!(
        (got - want).abs() < 1e-9,
        "{part}: '{answer}' / '{working}' got {got}, want {want}: {fb:#?}"
    );
}

/// TUM Problem 4 (CNNs and receptive field), parts a-d.
fn problem4() -> ResolvedRubric {
    load(json!({
        "title": "Problem 4: Convolutional Neural Networks and Receptive Field",
        "prompt": "a) effects of C1 (box) and C2; b) conv output size; c) weight tensor; d) receptive field",
        "parts": [
            {"id": "a_c1", "max_points": 1,
             "answer": {"type": "concepts", "groups": [
                {"id": "local_box", "points": 0.5,
                 "phrases": ["local", "box", "mean", "average", "averaging", "avg"],
                 "feedback": "a mean (box) filter over a local neighbourhood"},
                {"id": "blur", "points": 0.5,
                 "phrases": ["blur", "blurring", "smoothing", "smooth", "low pass"],
                 "missing_feedback": "C1 blurs/smooths the image (a mean alone earns 0.5)."}]}},
            {"id": "a_c2", "max_points": 1,
             "answer": {"type": "concepts", "groups": [
                {"id": "vertical", "points": 0.5, "phrases": ["vertical"]},
                {"id": "edge_detector", "points": 0.5,
                 "phrases": ["edge detector", "edge detection", "edge filter", "detects edge", "edge"]}]}},
            {"id": "b", "max_points": 2,
             "answer": {"type": "shape", "order": "any",
                "expected": {"compute": {"engine": "conv_output",
                    "request": {"input": [26, 26, 26],
                                "layers": [{"filters": 5, "kernel": 7, "stride": 3, "padding": 1}]},
                    "select": "/layers/0/output_shape"}}},
             "alternatives": [{"id": "spatial_only", "label": "only the spatial size", "dims": [0, 1],
                "points": 1, "feedback": "the depth is the number of filters, 5"}],
             "mistakes": [{"id": "no_padding", "mistake": "padding ignored",
                "patch": {"/layers/0/padding": 0}, "points": 0,
                "feedback": "(26 - 7 + 2*1)/3 + 1 = 8: the padding counts on both sides"}],
             "method_credit": [{"id": "kernel_size_computation", "value": 7, "points": 1,
                "feedback": "(26 - 7 + 2)/3 = 7 is the kernel size computation"}]},
            {"id": "c_shape", "max_points": 1,
             "answer": {"type": "weight_shape",
                "expected": {"out_channels": 4, "in_channels": 3, "kernel_size": [5, 5]},
                "accept": [{"convention": "pytorch"}, {"convention": "in_out"}, {"convention": "keras"}]},
             "alternatives": [{"id": "three_dims", "recognize": "subsequence", "points": 1}],
             "deductions": [{"id": "only_3_dims", "points": 1, "when": {"kind": "rank", "rank": 3},
                "feedback": "a conv weight has 4 dimensions (out, in, kH, kW)"}]},
            {"id": "c_names", "max_points": 1,
             "answer": {"type": "concepts", "groups": [
                {"id": "in_channels", "points": 0.25,
                 "phrases": ["input channel", "in channel", "rgb", "color channel", "input depth", "input size"]},
                {"id": "out_channels", "points": 0.25,
                 "phrases": ["output channel", "out channel", "number of filter", "output size", "output depth", "filter count"]},
                {"id": "width", "points": 0.25, "phrases": ["width"]},
                {"id": "height", "points": 0.25, "phrases": ["height"]},
                {"id": "filter_size", "points": -1, "phrases": ["filter size", "kernel size"],
                 "feedback": "the 5s are the kernel's width and height"}]}},
            {"id": "d", "max_points": 1,
             "answer": {"type": "shape", "scalar_shorthand": true,
                "expected": {"compute": {"engine": "receptive_field",
                    "request": {"layers": [{"kernel": 3, "stride": 1}, {"kernel": 3, "stride": 1},
                                           {"kernel": 3, "stride": 1}]},
                    "select": "/size"}}},
             "deductions": [{"id": "no_tuple", "points": 0.5, "when": {"kind": "scalar"},
                "feedback": "write the receptive field as 7x7"}]}
        ],
        "tests": [
            {"name": "all full", "answers": {"a_c1": "local blur", "a_c2": "vertical edge detector",
                "b": "8x8x5", "c_shape": "(4, 3, 5, 5)", "c_names": "out channels, in channels, height, width",
                "d": "7x7"}, "expected_score": 7},
            {"name": "named partials", "answers": {"a_c1": "mean filter", "a_c2": "edge detection",
                "b": "8x8", "c_shape": "(4, 5, 5)", "c_names": "filters, input channels, filter size",
                "d": "7"}, "expected_score": 2.5,
             "expected_parts": {"a_c1": 0.5, "a_c2": 0.5, "b": 1, "c_shape": 0, "c_names": 0, "d": 0.5}}
        ]
    }))
}

#[test]
fn problem4_a_concepts() {
    let r = problem4();
    check(&r, "a_c1", "Local blur kernel", 1.0);
    check(&r, "a_c1", "a box filter that smooths the image", 1.0);
    check(&r, "a_c1", "mean", 0.5);
    check(
        &r,
        "a_c1",
        "It computes the average of the 3x3 neighbourhood",
        0.5,
    );
    check(&r, "a_c1", "Blurring", 0.5);
    check(&r, "a_c1", "sharpening", 0.0);
    check(&r, "a_c2", "vertical edge detector", 1.0);
    check(&r, "a_c2", "Vertical-Edge-Detectors!", 1.0);
    check(&r, "a_c2", "edge detection", 0.5);
    check(&r, "a_c2", "finds vertical lines", 0.5);
    check(&r, "a_c2", "blur", 0.0);
}

#[test]
fn problem4_b_output_shape() {
    let r = problem4();
    for full in [
        "8x8x5",
        "8 × 8 × 5",
        "(8, 8, 5)",
        "[8,8,5]",
        "8*8*5",
        "8 by 8 by 5",
        "5x8x8",
    ] {
        check(&r, "b", full, 2.0);
    }
    // "1p for only kernel size computation": the spatial size alone, or the
    // stated intermediate value 7 in the working.
    check(&r, "b", "8x8", 1.0);
    check(&r, "b", "8x8x26", 1.0);
    check_w(&r, "b", "7x7x5", "(26-7+2)/3 = 7", 1.0);
    check(&r, "b", "7x7x5", 0.0);
    let (_, _, fb) = points_with(&r, "b", "7x7x5", None);
    assert!(fb.iter().any(|l| l.contains("padding ignored")), "{fb:?}");
    check(&r, "b", "26x26x5", 0.0);
    let (p, v, fb) = points_with(&r, "b", "eight by eight", None);
    assert_eq!((p, v), (0.0, Verdict::NotGradable));
    assert!(fb[0].contains("eight"), "{fb:?}");
}

#[test]
fn problem4_c_weight_shape_conventions() {
    let r = problem4();
    check(&r, "c_shape", "(4, 3, 5, 5)", 1.0); // PyTorch
    check(&r, "c_shape", "(3, 4, 5, 5)", 1.0); // the printed key: (in, out, kH, kW)
    check(&r, "c_shape", "5x5x3x4", 1.0); // Keras
    check(&r, "c_shape", "torch.Size([4, 3, 5, 5])", 1.0);
    // "-1p if only 3 dimensions are mentioned".
    check(&r, "c_shape", "(4, 5, 5)", 0.0);
    let (_, _, fb) = points_with(&r, "c_shape", "(4, 5, 5)", None);
    assert!(
        fb.iter().any(|l| l.starts_with("-1 (only_3_dims)")),
        "{fb:?}"
    );
    check(&r, "c_shape", "(5, 5, 4, 3)", 0.0);
    check(
        &r,
        "c_names",
        "output channels, input channels, kernel height, kernel width",
        1.0,
    );
    check(
        &r,
        "c_names",
        "number of filters, RGB channels, width, height",
        1.0,
    );
    check(&r, "c_names", "in channels and out channels", 0.5);
    // "-1p if 5's are simply described as filter size".
    check(
        &r,
        "c_names",
        "out channels, in channels, filter size, filter size",
        0.0,
    );
}

#[test]
fn problem4_d_receptive_field() {
    let r = problem4();
    check(&r, "d", "7x7", 1.0);
    check(&r, "d", "1x1 → 3x3 → 5x5 → 7x7", 1.0);
    check(&r, "d", "(7, 7)", 1.0);
    check(&r, "d", "7", 0.5); // "-0.5p if no tuple"
    check(&r, "d", "5x5", 0.0);
    check(&r, "d", "9", 0.0);
}

/// TUM Problem 7a (LeNet receptive fields).
fn lenet() -> ResolvedRubric {
    let stack = json!([{"kernel": 5, "stride": 1}, {"kernel": 2, "stride": 2},
                       {"kernel": 5, "stride": 1}, {"kernel": 2, "stride": 2},
                       {"kernel": 5, "stride": 1}]);
    let pool1 = json!([{"kernel": 5, "stride": 1}, {"kernel": 2, "stride": 2}]);
    load(json!({
        "title": "Problem 7a: receptive field in LeNet",
        "parts": [
            {"id": "term", "max_points": 1,
             "answer": {"type": "concepts", "groups": [
                {"id": "input_region", "points": 0.5,
                 "phrases": ["region + input", "area + input", "input space", "part of the input"]},
                {"id": "affects_output", "points": 0.5,
                 "phrases": ["affect", "influence", "depend", "see", "contribute"]}]}},
            {"id": "maxpool1", "max_points": 1,
             "answer": {"type": "shape", "scalar_shorthand": true,
                "expected": {"compute": {"engine": "receptive_field",
                    "request": {"layers": pool1}, "select": "/size"}}},
             "alternatives": [{"id": "wrt_conv1", "label": "only maxpool1 w.r.t. conv1",
                "value": [2, 2], "points": 0.5}],
             "mistakes": [{"id": "pool_ignored", "mistake": "pooling ignored",
                "patch": {"/layers/1/kernel": 1}, "points": 0,
                "feedback": "the 2x2 pooling widens the field by one"}]},
            {"id": "f1", "max_points": 1,
             "answer": {"type": "shape", "scalar_shorthand": true,
                "expected": {"compute": {"engine": "receptive_field",
                    "request": {"layers": stack}, "select": "/size"}}}}
        ],
        "tests": [{"name": "full", "answers": {"term": "the region of the input that affects a pixel",
            "maxpool1": "6x6", "f1": "32x32"}, "expected_score": 3}]
    }))
}

#[test]
fn lenet_receptive_field() {
    let r = lenet();
    check(
        &r,
        "term",
        "The size of the region in the input space that a pixel in the output is affected by",
        1.0,
    );
    check(&r, "term", "the input space", 0.5);
    check(&r, "maxpool1", "6x6", 1.0);
    check(&r, "maxpool1", "6", 1.0); // no tuple deduction in this rubric
    check(&r, "maxpool1", "2x2", 0.5); // "0.5p if only maxpool1 wrt conv1 (= 2x2)"
    check(&r, "maxpool1", "5x5", 0.0);
    let (_, _, fb) = points_with(&r, "maxpool1", "5x5", None);
    assert!(fb.iter().any(|l| l.contains("pooling ignored")), "{fb:?}");
    check(&r, "f1", "32x32", 1.0); // whole image
    check(&r, "f1", "28x28", 0.0);
}

/// TUM Problem 7 (7.5 credits): AlexNet-style first layers.
fn alexnet() -> ResolvedRubric {
    load(json!({
        "title": "Problem 7: CNN for 1000 classes",
        "parts": [
            {"id": "b", "max_points": 1,
             "answer": {"type": "shape", "order": "any",
                "expected": {"compute": {"engine": "conv_output",
                    "request": {"input": [256, 256, 3],
                                "layers": [{"filters": 96, "kernel": 11, "stride": 4, "padding": 5}]},
                    "select": "/layers/0/output_shape"}}},
             "mistakes": [{"id": "no_padding", "patch": {"/layers/0/padding": 0}, "points": 0,
                "feedback": "p = (f - 1)/2 = 5 for f = 11"}]},
            {"id": "c", "max_points": 1,
             "answer": {"type": "integer",
                "expected": {"value": 34944, "check": {"engine": "conv_params",
                    "request": {"kernel": 11, "in_channels": 3, "filters": 96}, "select": "/params"}}},
             "mistakes": [{"id": "no_bias", "value": 34848, "points": 0,
                "feedback": "each of the 96 filters has a bias"}]},
            {"id": "d2", "max_points": 1,
             "answer": {"type": "number", "tolerance": {"mode": "exact"},
                "expected": {"compute": {"engine": "receptive_field",
                    "request": {"layers": [{"kernel": 11, "stride": 4}, {"kernel": 3, "stride": 2}]},
                    "select": "/rf"}}},
             "method_credit": [{"id": "calculation", "value": 8, "points": 0.5}],
             "deductions": [{"id": "no_calculation", "points": 0.5, "when": {"kind": "no_working"}}]},
            {"id": "d3", "max_points": 1,
             "answer": {"type": "number", "tolerance": {"mode": "exact"},
                "expected": {"compute": {"engine": "receptive_field",
                    "request": {"layers": [{"kernel": 11, "stride": 4}, {"kernel": 3, "stride": 2},
                                           {"kernel": 5, "stride": 1}]},
                    "select": "/rf"}}},
             "method_credit": [{"id": "calculation", "value": 32, "points": 0.5}],
             "deductions": [{"id": "no_calculation", "points": 0.5, "when": {"kind": "no_working"}}]},
            {"id": "e", "max_points": 1,
             "answer": {"type": "concepts", "groups": [
                {"id": "upsampling_conv", "points": 1,
                 "phrases": ["transposed convolution", "transpose convolution", "transposed conv",
                             "upsampling + convolution", "upsampling + conv",
                             "unpooling + convolution", "unpooling + conv"],
                 "misspelled": 0.5,
                 "partial": [{"phrases": ["upsampling", "unpooling", "inverse convolution",
                                          "transformed convolution"], "points": 0.5,
                              "feedback": "upsampling alone, or a misnamed transposed convolution"}]}]}}
        ],
        "tests": [{"name": "full", "answers": {"b": "64 x 64 x 96", "c": "(11*11*3+1)*96",
            "d2": {"answer": "19", "working": "r2 = 11 + 4*(3-1) = 11 + 8 = 19"},
            "d3": {"answer": "51", "working": "r3 = 19 + 4*2*(5-1) = 19 + 32 = 51"},
            "e": "transposed convolution"}, "expected_score": 5}]
    }))
}

#[test]
fn alexnet_shapes_params_and_receptive_fields() {
    let r = alexnet();
    check(&r, "b", "64 x 64 x 96", 1.0);
    check(&r, "b", "96x64x64", 1.0);
    check(&r, "b", "62x62x96", 0.0);
    check(&r, "c", "34944", 1.0);
    check(&r, "c", "34,944", 1.0);
    check(&r, "c", "(11 * 11 * 3 + 1) * 96", 1.0); // un-multiplied answers are accepted
    check(&r, "c", "11*11*3*96", 0.0);
    // "0.5p answer, 0.5p calculation".
    check_w(&r, "d2", "19", "11 + 4*(3-1) = 11 + 8 = 19", 1.0);
    check(&r, "d2", "r2 = 11 + 4 * 2 = 19", 1.0);
    check(&r, "d2", "19", 0.5);
    check_w(&r, "d2", "27", "4*(3-1) = 8, 11 + 8*2 = 27", 0.5);
    check_w(&r, "d2", "13", "11 + (3 - 1) = 13", 0.0);
    check_w(&r, "d3", "51", "19 + 4*2*(5-1) = 19 + 32 = 51", 1.0);
    check(&r, "d3", "51", 0.5);
    check(&r, "e", "Transposed convolutions", 1.0);
    check(&r, "e", "Upsampling followed by a 3x3 convolution", 1.0);
    check(&r, "e", "upsampling", 0.5);
    check(&r, "e", "inverse convolution", 0.5);
    // "... and all other misspellings are 0.5p".
    check(&r, "e", "transponed convolution", 0.5);
    check(&r, "e", "tranposed convolution", 0.5);
    check(&r, "e", "transposed convolutoin", 0.5);
    check(&r, "e", "max pooling", 0.0);
}

/// TUM Problem 5 (backprop and conv layers), parts b, e, f.
fn problem5() -> ResolvedRubric {
    load(json!({
        "title": "Problem 5: Backpropagation and Convolutional Layers",
        "parts": [
            {"id": "b", "max_points": 1,
             "answer": {"type": "number", "expected": "2 ln 2", "tolerance": {"mode": "sigfig", "digits": 3}},
             "mistakes": [{"id": "sign", "recognize": "sign_flip", "points": 0,
                "feedback": "cross-entropy is -Σ t log s, which is positive here"}]},
            {"id": "e_filter", "max_points": 1,
             "answer": {"type": "matrix", "expected": [[1, 0, -1], [1, 0, -1], [1, 0, -1]],
                "equivalences": ["horizontal_flip", "vertical_flip", "any_scaling"]},
             "mistakes": [{"id": "horizontal", "recognize": "transpose", "points": 0,
                "feedback": "that kernel detects horizontal edges"}]},
            {"id": "e_name", "max_points": 1,
             "answer": {"type": "concepts", "groups": [
                {"id": "vertical_edge", "points": 1, "phrases": ["vertical edge"]}]}},
            {"id": "f", "max_points": 2,
             "answer": {"type": "matrix", "expected": "[-1 1 -1; 1 -1 1; -1 1 -1]",
                "equivalences": ["horizontal_flip", "vertical_flip", "positive_scaling"]},
             "mistakes": [{"id": "white_cross", "recognize": "sign_flip", "points": 0,
                "feedback": "this highlights white crosses; black is 0"}]}
        ],
        "tests": [{"name": "full", "answers": {"b": "2 log 2", "e_filter": "[1 0 -1; 1 0 -1; 1 0 -1]",
            "e_name": "vertical edge detector", "f": "[[-1,1,-1],[1,-1,1],[-1,1,-1]]"}, "expected_score": 5}]
    }))
}

#[test]
fn problem5_bce_and_filters() {
    let r = problem5();
    for full in [
        "2 log 2",
        "2 ln 2",
        "ln(4)",
        "1.386",
        "1.39",
        "-2 log(0.5)",
        "2*\\ln 2",
    ] {
        check(&r, "b", full, 1.0);
    }
    check(&r, "b", "log 2", 0.0);
    check(&r, "b", "-2 log 2", 0.0);
    // "Flipping & Scaling are OK".
    for full in [
        "[1 0 -1; 1 0 -1; 1 0 -1]",
        "[[-1,0,1],[-1,0,1],[-1,0,1]]",
        "\\begin{bmatrix} 2 & 0 & -2 \\\\ 2 & 0 & -2 \\\\ 2 & 0 & -2 \\end{bmatrix}",
        "1/3 * [1 0 -1; 1 0 -1; 1 0 -1]",
    ] {
        check(&r, "e_filter", full, 1.0);
    }
    check(&r, "e_filter", "[1 1 1; 0 0 0; -1 -1 -1]", 0.0);
    let (_, _, fb) = points_with(&r, "e_filter", "[1 1 1; 0 0 0; -1 -1 -1]", None);
    assert!(fb.iter().any(|l| l.contains("horizontal edges")), "{fb:?}");
    check(&r, "e_filter", "[1 0 -1; 1 0 -1]", 0.0);
    check(&r, "e_name", "A vertical edge detector", 1.0);
    check(&r, "e_name", "edge detector", 0.0);
    check(&r, "f", "[-1 1 -1; 1 -1 1; -1 1 -1]", 2.0);
    check(&r, "f", "0.5 * [-1 1 -1; 1 -1 1; -1 1 -1]", 2.0);
    check(&r, "f", "[1 -1 1; -1 1 -1; 1 -1 1]", 0.0);
    // One wrong entry: no points (no per-entry credit in this rubric), but the
    // mask shows which entry is wrong.
    let answers = Answers::from_pairs([("f", "[-1 1 -1; 1 1 1; -1 1 -1]")]);
    let g = grade(&r, &answers, &GradeOptions::default());
    let f = g.parts.iter().find(|p| p.part_id == "f").unwrap();
    assert_eq!(f.points, 0.0);
    let mask = f.mask.as_ref().expect("mask");
    assert!(mask[1][1]);
    assert_eq!(mask.iter().flatten().filter(|w| **w).count(), 1);
}

/// BITS WILP EC3: LSTM hidden size (printed H = 2 is wrong) and RNN output
/// (printed 0.556 is wrong). Graded with the computed keys.
fn bits() -> ResolvedRubric {
    load(json!({
        "title": "BITS EC3 Q2b / Q3c",
        "parts": [
            {"id": "lstm_h", "max_points": 3,
             "answer": {"type": "integer", "expected": {"compute": {"engine": "lstm_hidden",
                "request": {"input_dim": 3, "total_params": 180}, "select": "/hidden"}}}},
            {"id": "rnn_y", "max_points": 5,
             "answer": {"type": "number", "tolerance": {"mode": "sigfig", "digits": 3},
                "expected": {"compute": {"engine": "rnn_step",
                    "request": {"w": 0.2, "x": [0.5, 0.6], "h0": [0.3, 0.4]}, "select": "/y"}}},
             "mistakes": [{"id": "printed_key", "value": 0.556275, "points": 0,
                "feedback": "W_hh h and W_xh x sum over both units: each pre-activation is 0.56"}]}
        ],
        "tests": [{"name": "full", "answers": {"lstm_h": "H = 5", "rnn_y": "0.5995"}, "expected_score": 8}]
    }))
}

#[test]
fn bits_corrected_keys() {
    let r = bits();
    check(&r, "lstm_h", "5", 3.0);
    check(&r, "lstm_h", "H = 5", 3.0);
    check(&r, "lstm_h", "2", 0.0); // the printed (wrong) key
    check(&r, "lstm_h", "5.5", 0.0);
    check(&r, "rnn_y", "0.5995", 5.0);
    check(&r, "rnn_y", "≈ 0.599", 5.0);
    check(&r, "rnn_y", "σ(0.2*2*tanh(0.56) + 0.2)", 5.0);
    check(&r, "rnn_y", "≈ 0.556", 0.0); // the printed (wrong) key
    let (_, _, fb) = points_with(&r, "rnn_y", "0.556", None);
    assert!(fb.iter().any(|l| l.contains("printed_key")), "{fb:?}");
}

#[test]
fn audit_reports_wrong_printed_keys() {
    let r: Rubric = serde_json::from_value(json!({
        "title": "audit",
        "parts": [
            {"id": "lstm_h", "max_points": 3, "answer": {"type": "integer",
                "expected": {"value": 2, "check": {"engine": "lstm_hidden",
                    "request": {"input_dim": 3, "total_params": 180}, "select": "/hidden"}}}},
            {"id": "rnn_y", "max_points": 5, "answer": {"type": "number",
                "tolerance": {"mode": "sigfig", "digits": 3},
                "expected": {"value": 0.556275, "check": {"engine": "rnn_step",
                    "request": {"w": 0.2, "x": [0.5, 0.6], "h0": [0.3, 0.4]}, "select": "/y"}}}},
            {"id": "params", "max_points": 1, "answer": {"type": "integer",
                "expected": {"value": 34944, "check": {"engine": "conv_params",
                    "request": {"kernel": 11, "in_channels": 3, "filters": 96}, "select": "/params"}}}},
            {"id": "shape", "max_points": 1, "answer": {"type": "shape",
                "expected": {"value": "64x64x96", "check": {"engine": "conv_output",
                    "request": {"input": [256, 256, 3],
                                "layers": [{"filters": 96, "kernel": 11, "stride": 4, "padding": 0}]},
                    "select": "/layers/0/output_shape"}}}}
        ]
    }))
    .unwrap();
    let findings = r.audit(&Engines);
    let ptrs: Vec<&str> = findings.iter().map(|f| f.pointer.as_str()).collect();
    assert_eq!(
        ptrs,
        [
            "/parts/0/answer/expected",
            "/parts/1/answer/expected",
            "/parts/3/answer/expected"
        ]
    );
    assert!(findings[0].message.contains("5"), "{}", findings[0].message);
    assert_eq!(findings[2].computed, json!([62, 62, 96]));
    // The printed keys still grade (the audit only reports).
    let resolved = r.compile().unwrap();
    let g = grade(
        &resolved,
        &Answers::from_pairs([("lstm_h", "2")]),
        &GradeOptions::default(),
    );
    assert_eq!(g.parts[0].points, 3.0);
}

#[test]
fn unreadable_answers_are_not_gradable_and_flag_the_submission() {
    let r = problem4();
    let answers = Answers::from_pairs([("b", "eight x 8 x 5"), ("d", "7x7")]);
    let g = grade(&r, &answers, &GradeOptions::default());
    assert_eq!(g.status, GradeStatus::NotGradable);
    let b = &g.parts[2];
    assert_eq!(b.verdict, Verdict::NotGradable);
    assert!(b.reason.as_deref().unwrap_or("").contains("eight"));
    assert_eq!(g.score, 1.0);
    assert_eq!(g.max_score, 7.0);
    let gs = g.to_gradescope();
    assert_eq!(gs.tests.len(), 6);
    assert_eq!(gs.tests[5].status, "passed");
    assert_eq!(gs.tests[2].status, "failed");
    assert!(gs.output.contains("could not be read"));
}

/// The same RNN key, computed by dlgrade's own `recurrent` engine through
/// the service's resolver, and audited against the printed 0.556.
#[test]
fn bits_rnn_key_from_the_recurrent_engine() {
    use dlgrade::grading::engines::Engines as Service;
    let request = json!({
        "cell": "rnn",
        "inputs": [[[0.5, 0.6]]],
        "h0": [[0.3, 0.4]],
        "weights": {"kernel": [[0.2, 0.2], [0.2, 0.2]],
                    "recurrent_kernel": [[0.2, 0.2], [0.2, 0.2]],
                    "bias": [0.2, 0.2],
                    "output_kernel": [[0.2, 0.2]],
                    "output_bias": [0.2]},
        "output_activation": "sigmoid"
    });
    let spec = json!({"engine": "recurrent", "request": request,
                       "select": "/sequences/0/timesteps/0/y/0"});
    let r: Rubric = serde_json::from_value(json!({
        "title": "BITS EC3 Q2b",
        "parts": [
            {"id": "computed", "max_points": 5,
             "answer": {"type": "number", "tolerance": {"mode": "sigfig", "digits": 3},
                        "expected": {"compute": spec}}},
            {"id": "printed", "max_points": 5,
             "answer": {"type": "number", "tolerance": {"mode": "sigfig", "digits": 3},
                        "expected": {"value": 0.556275, "check": spec}}}
        ]
    }))
    .unwrap();
    let service = Service::default();
    let resolved = r
        .resolve_keys(&service)
        .unwrap_or_else(|p| panic!("{p:#?}"));
    check(&resolved, "computed", "0.5995", 5.0);
    check(&resolved, "computed", "σ(0.2*2*tanh(0.56) + 0.2)", 5.0);
    check(&resolved, "computed", "0.556", 0.0);
    let findings = r.audit(&service);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0].pointer, "/parts/1/answer/expected");
    let y = findings[0].computed.as_f64().unwrap();
    let h = 0.56f64.tanh();
    assert!((y - 1.0 / (1.0 + (-(0.2 * 2.0 * h + 0.2)).exp())).abs() < 1e-12);
}
