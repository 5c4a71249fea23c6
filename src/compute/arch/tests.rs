//! Unit tests per formula, parser behaviour, errors, solve, and property tests.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::{ArchitectureReport, analyze, solve};
use crate::compute::error::ComputeError;
use crate::compute::limits::Limits;
use crate::compute::model::ModelSpec;

fn ok(v: Value) -> ArchitectureReport {
    match analyze(&v, &Limits::default()) {
        Ok(r) => r,
        Err(e) => panic!("unexpected error {e} for {v}"),
    }
}

fn err(v: Value) -> ComputeError {
    match analyze(&v, &Limits::default()) {
        Ok(r) => panic!("expected an error, got output {:?}", r.output_shape),
        Err(e) => e,
    }
}

fn one(input: Value, layer: Value) -> ArchitectureReport {
    ok(json!({"input_shape": input, "layers": [layer]}))
}

fn one_keras(input: Value, layer: Value) -> ArchitectureReport {
    ok(
        json!({"input_shape": input, "layout": "HWC", "layers": [layer],
              "conventions": {"framework": "keras"}}),
    )
}

fn texts(r: &ArchitectureReport, i: usize) -> Vec<String> {
    r.layers[i].steps.iter().map(|s| s.text.clone()).collect()
}

#[test]
fn exam_conv_output_with_worked_step() {
    let r = one(
        json!([26, 26, 26]),
        json!({"type": "Conv2d", "out_channels": 5, "kernel_size": 7, "stride": 3, "padding": 1}),
    );
    assert_eq!(r.output_shape, vec![5, 8, 8]);
    assert!(
        texts(&r, 0).iter().any(
            |t| t.starts_with("H, W: out = floor((26 + 2*1 - 7) / 3) + 1") && t.ends_with("= 8")
        ),
        "{:?}",
        texts(&r, 0)
    );
}

#[test]
fn alexnet_first_layer_formula() {
    let r = one(
        json!([3, 256, 256]),
        json!({"type": "Conv2d", "out_channels": 96, "kernel_size": 11, "stride": 4, "padding": 5}),
    );
    assert_eq!(r.layers[0].params.formula, "(11*11*3 + 1) * 96 = 34944");
    assert_eq!(r.output_shape, vec![96, 64, 64]);
}

#[test]
fn conv_weight_shapes_in_three_conventions() {
    let r = one(
        json!([3, 32, 32]),
        json!({"type": "Conv2d", "out_channels": 4, "kernel_size": 5}),
    );
    let w = &r.layers[0].weights[0];
    assert_eq!(w.pytorch, vec![4, 3, 5, 5]);
    assert_eq!(w.keras, vec![5, 5, 3, 4]);
    assert_eq!(w.in_out, vec![3, 4, 5, 5]);
    assert_eq!(r.layers[0].params.total, 304);
}

#[test]
fn grouped_conv_params() {
    let r = one(
        json!([64, 8, 8]),
        json!({"type": "Conv2d", "out_channels": 128, "kernel_size": 3, "groups": 2}),
    );
    assert_eq!(r.layers[0].params.total, 3 * 3 * 32 * 128 + 128);
    assert_eq!(r.layers[0].params.formula, "(3*3*(64/2) + 1) * 128 = 36992");
}

#[test]
fn dense_params_and_last_axis() {
    let r = one(json!([50]), json!({"type": "Dense", "units": 64}));
    assert_eq!(r.layers[0].params.formula, "(50 + 1) * 64 = 3264");
    let r = one(json!([100, 64]), json!({"type": "Dense", "units": 128}));
    assert_eq!(r.output_shape, vec![100, 128]);
    assert_eq!(r.totals.params, 64 * 128 + 128);
    let e = err(
        json!({"input_shape": [100, 64], "layers": [{"type": "Dense", "units": 2}],
                       "conventions": {"dense_input": "require_flat"}}),
    );
    assert_eq!(e.pointer, "/layers/0/type");
}

#[test]
fn transposed_depthwise_separable_params() {
    let r = one(
        json!([40, 4, 4]),
        json!({"type": "ConvTranspose2d", "out_channels": 30, "kernel_size": 4, "stride": 2, "padding": 1}),
    );
    assert_eq!(r.output_shape, vec![30, 8, 8]);
    assert_eq!(r.totals.params, 40 * 30 * 16 + 30);
    assert_eq!(r.layers[0].weights[0].pytorch, vec![40, 30, 4, 4]);
    let r = one_keras(
        json!([12, 12, 4]),
        json!({"type": "DepthwiseConv2D", "kernel_size": 3, "depth_multiplier": 2}),
    );
    assert_eq!(r.output_shape, vec![10, 10, 8]);
    assert_eq!(r.totals.params, 3 * 3 * 8 + 8);
    let r = one_keras(
        json!([12, 12, 4]),
        json!({"type": "SeparableConv2D", "filters": 8, "kernel_size": 3}),
    );
    assert_eq!(r.totals.params, 3 * 3 * 4 + 4 * 8 + 8);
}

#[test]
fn batch_norm_conventions() {
    let keras = one_keras(json!([100, 64]), json!({"type": "BatchNormalization"}));
    assert_eq!(
        (keras.totals.trainable, keras.totals.non_trainable),
        (128, 128)
    );
    let torch = one(
        json!([64, 100]),
        json!({"type": "BatchNorm1d", "num_features": 64}),
    );
    assert_eq!(
        (torch.totals.trainable, torch.totals.non_trainable),
        (128, 0)
    );
    assert_eq!(torch.layers[0].weights.len(), 4);
    assert!(!torch.layers[0].weights[2].counted);
}

#[test]
fn recurrent_conventions() {
    // Keras LSTM(3) on 4 features: 4*(3*(4+3)+3) = 96; PyTorch adds a second bias: 108.
    let k = one_keras(json!([5, 4]), json!({"type": "LSTM", "units": 3}));
    assert_eq!(k.totals.params, 96);
    assert_eq!(k.layers[0].params.formula, "4*(3*(4 + 3) + 3) = 96");
    assert_eq!(k.output_shape, vec![3]);
    let t = one(json!([5, 4]), json!({"type": "LSTM", "hidden_size": 3}));
    assert_eq!(t.totals.params, 108);
    assert_eq!(t.output_shape, vec![5, 3]);
    // GRU reset_after: Keras default two bias vectors, reset_after=false one.
    let g = one_keras(json!([9, 4]), json!({"type": "GRU", "units": 5}));
    assert_eq!(g.totals.params, 3 * (5 * 9 + 2 * 5));
    let g = one_keras(
        json!([9, 4]),
        json!({"type": "GRU", "units": 5, "reset_after": false}),
    );
    assert_eq!(g.totals.params, 3 * (5 * 9 + 5));
    // Bidirectional, stacked (PyTorch): layer 2 reads 2h features.
    let b = one(
        json!([6, 5]),
        json!({"type": "GRU", "hidden_size": 6, "num_layers": 2, "bidirectional": true}),
    );
    let l0 = 2 * (3 * 6 * (5 + 6) + 6 * 6);
    let l1 = 2 * (3 * 6 * (12 + 6) + 6 * 6);
    assert_eq!(b.totals.params, l0 + l1);
    assert_eq!(b.output_shape, vec![6, 12]);
    // The recurrent_bias convention overrides the framework.
    let s = ok(
        json!({"input_shape": [5, 4], "layers": [{"type": "LSTM", "hidden_size": 3}],
                      "conventions": {"recurrent_bias": "single"}}),
    );
    assert_eq!(s.totals.params, 96);
    assert_eq!(s.conventions[1].source, "request");
}

#[test]
fn layer_norm_embedding_dropout() {
    let r = one(
        json!([3, 4, 8]),
        json!({"type": "LayerNorm", "normalized_shape": [4, 8]}),
    );
    assert_eq!(r.totals.params, 64);
    let r = one(
        json!([12]),
        json!({"type": "Embedding", "num_embeddings": 1000, "embedding_dim": 16}),
    );
    assert_eq!(
        (r.output_shape.clone(), r.totals.params),
        (vec![12, 16], 16000)
    );
    let r = one(json!([12]), json!({"type": "Dropout", "p": 0.5}));
    assert_eq!((r.output_shape.clone(), r.totals.params), (vec![12], 0));
}

#[test]
fn causal_padding_pads_the_left() {
    let r = ok(
        json!({"input_shape": [50, 2], "layout": "LC", "conventions": {"framework": "keras"},
        "layers": [{"type": "Conv1D", "filters": 4, "kernel_size": 3, "dilation_rate": 4, "padding": "causal"}]}),
    );
    assert_eq!(r.output_shape, vec![50, 4]);
    let rf = r.layers[0]
        .receptive_field
        .clone()
        .unwrap_or_else(|| panic!("no rf"));
    // Output t sees inputs t-8..=t: centre t - 4.
    assert_eq!((rf.size, rf.start), (vec![Some(9)], vec![Some(-4.0)]));
}

#[test]
fn zero_padding_and_upsampling() {
    // PyTorch order (left, right, top, bottom).
    let r = one(
        json!([2, 7, 9]),
        json!({"type": "ZeroPad2d", "padding": [1, 2, 0, 3]}),
    );
    assert_eq!(r.output_shape, vec![2, 10, 12]);
    let r = one_keras(
        json!([7, 9, 2]),
        json!({"type": "ZeroPadding2D", "padding": [[1, 0], [2, 3]]}),
    );
    assert_eq!(r.output_shape, vec![8, 14, 2]);
    let r = one_keras(
        json!([4, 5, 3]),
        json!({"type": "UpSampling2D", "size": [2, 3]}),
    );
    assert_eq!(r.output_shape, vec![8, 15, 3]);
    let r = one(
        json!([3, 5, 6]),
        json!({"type": "Upsample", "size": [9, 4]}),
    );
    assert_eq!(r.output_shape, vec![3, 9, 4]);
    let e = err(json!({"input_shape": [3, 5, 6], "layers": [{"type": "Upsample"}]}));
    assert!(e.message.contains("exactly one"), "{}", e.message);
}

#[test]
fn pooling_defaults_and_ceil_mode() {
    let r = one(
        json!([6, 28, 28]),
        json!({"type": "MaxPool2d", "kernel_size": 2}),
    );
    assert_eq!(r.output_shape, vec![6, 14, 14]);
    let r = one(
        json!([1, 5, 5]),
        json!({"type": "MaxPool2d", "kernel_size": 2, "stride": 2, "padding": 1, "ceil_mode": true}),
    );
    assert_eq!(r.output_shape, vec![1, 3, 3]);
    let r = ok(json!({"input_shape": [1, 5, 5],
        "layers": [{"type": "MaxPool2d", "kernel_size": 2, "stride": 2, "padding": 1, "ceil_mode": true}],
        "conventions": {"ceil_mode_rule": "plain"}}));
    assert_eq!(r.output_shape, vec![1, 4, 4]);
    let r = ok(
        json!({"input_shape": [1, 5, 5], "layers": [{"type": "MaxPool2d", "kernel_size": 2}],
                      "conventions": {"pool_stride_default": "one"}}),
    );
    assert_eq!(r.output_shape, vec![1, 4, 4]);
}

#[test]
fn same_padding_rules() {
    let k = one_keras(
        json!([10, 10, 1]),
        json!({"type": "Conv2D", "filters": 1, "kernel_size": 3, "strides": 4, "padding": "same"}),
    );
    assert_eq!(k.output_shape, vec![3, 3, 1]);
    let e = err(json!({"input_shape": [1, 10, 10], "layers": [
        {"type": "Conv2d", "out_channels": 1, "kernel_size": 3, "stride": 2, "padding": "same"}]}));
    assert!(e.message.contains("stride 1"), "{}", e.message);
}

#[test]
fn receptive_fields_of_exam_networks() {
    // LeNet: after maxpool1 6x6; after f1 the whole 32x32 image.
    let r = ok(json!({"input_shape": [1, 32, 32], "layers": [
        {"type": "Conv2d", "out_channels": 6, "kernel_size": 5},
        {"type": "MaxPool2d", "kernel_size": 2},
        {"type": "Conv2d", "out_channels": 16, "kernel_size": 5},
        {"type": "MaxPool2d", "kernel_size": 2},
        {"type": "Flatten"},
        {"type": "Linear", "out_features": 120}]}));
    let rf1 = r.layers[1]
        .receptive_field
        .clone()
        .unwrap_or_else(|| panic!("no rf"));
    assert_eq!(rf1.size, vec![Some(6), Some(6)]);
    let rf5 = r.layers[5]
        .receptive_field
        .clone()
        .unwrap_or_else(|| panic!("no rf"));
    assert_eq!(rf5.size, vec![Some(32), Some(32)]);
    assert_eq!(rf5.whole_input, vec![true, true]);
    // pixel_edge origin shifts the start by 0.5.
    let r = ok(
        json!({"input_shape": [1, 9, 9], "layers": [{"type": "Conv2d", "out_channels": 1, "kernel_size": 3}],
                      "conventions": {"receptive_field_origin": "pixel_edge"}}),
    );
    let rf = r.layers[0]
        .receptive_field
        .clone()
        .unwrap_or_else(|| panic!("no rf"));
    assert_eq!(rf.start, vec![Some(1.5), Some(1.5)]);
}

#[test]
fn receptive_field_is_layout_independent() {
    let layers = json!([
        {"type": "Conv2D", "filters": 4, "kernel_size": [3, 5], "strides": [1, 2]},
        {"type": "MaxPooling2D", "pool_size": 2},
        {"type": "Conv2D", "filters": 4, "kernel_size": 3, "dilation_rate": [2, 1]}
    ]);
    let chw = ok(json!({"input_shape": [3, 40, 50], "layers": layers.clone()}));
    let hwc = ok(json!({"input_shape": [40, 50, 3], "layout": "HWC", "layers": layers}));
    for (a, b) in chw.layers.iter().zip(&hwc.layers) {
        assert_eq!(a.receptive_field, b.receptive_field);
        assert_eq!(a.params, b.params);
    }
    let rf = chw.layers[2]
        .receptive_field
        .clone()
        .unwrap_or_else(|| panic!("no rf"));
    // H: 3 -> 4 -> 4 + 2*2*(3-1) = 12; W: 5 -> 5 + 2 = 7 -> 7 + 4*(3-1) = 15.
    assert_eq!(rf.size, vec![Some(12), Some(15)]);
    assert_eq!(rf.jump, vec![Some(2.0), Some(4.0)]);
}

#[test]
fn error_pointer_uses_the_request_spelling() {
    let e =
        err(json!({"input_shape": [1, 3, 3], "layers": [{"type": "MaxPool2d", "kernel_size": 4}]}));
    assert_eq!(e.pointer, "/layers/0/kernel_size");
    let e = err(json!({"input_shape": [3, 3, 1], "layout": "HWC",
                       "layers": [{"type": "MaxPooling2D", "pool_size": 4}]}));
    assert_eq!(e.pointer, "/layers/0/pool_size");
    let e = err(json!({"input_shape": [4, 2], "layers": [
        {"type": "Bidirectional", "layer": {"type": "LSTM", "hidden_size": 3, "input_size": 5}}]}));
    assert_eq!(e.pointer, "/layers/0/layer/input_size");
}

#[test]
fn totals_memory_and_mult_adds() {
    let r = ok(json!({"input_shape": [3, 8, 8], "layers": [
        {"type": "Conv2d", "out_channels": 4, "kernel_size": 3, "padding": 1},
        {"type": "Flatten"},
        {"type": "Linear", "out_features": 10}]}));
    assert_eq!(r.layers[0].mult_adds, 4 * 8 * 8 * 3 * 9);
    assert_eq!(r.layers[2].mult_adds, 256 * 10);
    assert_eq!(r.totals.activation_elements, 256 + 256 + 10);
    assert_eq!(r.totals.forward_activation_bytes, 4 * 522);
    // torchinfo: 2 * 4 bytes per output of layers with parameters; params x positions.
    assert_eq!(r.totals.activation_bytes, 8 * (256 + 10));
    assert_eq!(r.totals.torchinfo_mult_adds, (4 * 27 + 4) * 64 + 2570);
    assert_eq!(r.totals.param_bytes, 4 * r.totals.params);
    let b = ok(
        json!({"input_shape": [5], "layers": [{"type": "Linear", "out_features": 3}],
                      "conventions": {"mult_adds_include_bias": true}}),
    );
    assert_eq!(b.totals.mult_adds, 15 + 3);
}

#[test]
fn keras_and_pytorch_spellings_agree() {
    let a = ok(json!({"input_shape": [3, 16, 16], "layers": [
        {"type": "Conv2d", "in_channels": 3, "out_channels": 8, "kernel_size": 3, "stride": 2, "dilation": 1, "bias": true},
        {"type": "Linear", "out_features": 4, "bias": false}]}));
    let b = ok(json!({"input_shape": [3, 16, 16], "layers": [
        {"TYPE": "CONV2D", "Filters": 8, "kernel_size": [3, 3], "strides": [2, 2], "dilation_rate": 1, "use_bias": true},
        {"type": "dense", "units": 4, "use_bias": false}]}));
    assert_eq!(a.output_shape, b.output_shape);
    assert_eq!(a.totals, b.totals);
}

#[test]
fn unknown_field_names_pointer_and_suggestion() {
    let e = err(json!({"input_shape": [3, 8, 8], "layers": [
        {"type": "ReLU"}, {"type": "ReLU"}, {"type": "ReLU"},
        {"type": "Conv2D", "filters": 2, "kernal_size": 3}]}));
    assert_eq!(e.pointer, "/layers/3/kernal_size");
    assert_eq!(
        e.message,
        "unknown field `kernal_size` for Conv2D; did you mean `kernel_size`?"
    );
    let e = err(json!({"input_shape": [3, 8, 8], "layers": [
        {"type": "Conv2D", "filters": 2, "kernel_size": 3, "strdes": 2}]}));
    assert_eq!(e.pointer, "/layers/0/strdes");
    assert!(
        e.message.contains("did you mean `strides`?"),
        "{}",
        e.message
    );
    let e = err(json!({"input_shape": [3, 8, 8], "layers": [{"type": "Conv2DD", "filters": 2}]}));
    assert_eq!(e.pointer, "/layers/0/type");
    assert!(e.message.contains("unknown layer type"), "{}", e.message);
    let e = err(json!({"input_shape": [3, 8, 8], "layers": [
        {"type": "Conv2d", "out_channels": 2, "filters": 3, "kernel_size": 3}]}));
    assert!(e.message.contains("give only one"), "{}", e.message);
    let e = err(json!({"input_shape": [3, 8, 8], "layrs": []}));
    assert_eq!(e.pointer, "/layrs");
}

#[test]
fn invalid_architectures_name_layer_and_field() {
    let e = err(json!({"input_shape": [1, 8, 8], "layers": [
        {"type": "MaxPool2d", "kernel_size": 2},
        {"type": "MaxPool2d", "kernel_size": 2},
        {"type": "Conv2d", "out_channels": 1, "kernel_size": 3}]}));
    assert_eq!(e.pointer, "/layers/2/kernel_size");
    assert!(e.message.starts_with("layer 2 (Conv2D)"), "{}", e.message);
    let e = err(json!({"input_shape": [5, 8, 8], "layers": [
        {"type": "Conv2d", "out_channels": 4, "kernel_size": 3, "groups": 2}]}));
    assert_eq!(e.pointer, "/layers/0/groups");
    let e = err(json!({"input_shape": [1, 8, 8], "layers": [{"type": "LSTM", "units": 3}]}));
    assert!(e.message.contains("(timesteps, features)"), "{}", e.message);
    let e = err(json!({"input_shape": [1, 8, 8], "layers": [
        {"type": "ConvTranspose2d", "out_channels": 1, "kernel_size": 3, "stride": 2, "output_padding": 2}]}));
    assert_eq!(e.pointer, "/layers/0/output_padding");
    let e = err(
        json!({"input_shape": [1, 8, 8], "layers": [{"type": "Conv2d", "out_channels": "?", "kernel_size": 3}]}),
    );
    assert!(e.message.contains("solve"), "{}", e.message);
}

#[test]
fn limits_are_enforced() {
    let limits = Limits {
        max_layers: 2,
        ..Limits::default()
    };
    let v = json!({"input_shape": [4], "layers": [{"type": "ReLU"}, {"type": "ReLU"}, {"type": "ReLU"}]});
    let e = analyze(&v, &limits)
        .err()
        .unwrap_or_else(|| panic!("accepted"));
    assert_eq!(e.pointer, "/layers");
    let e =
        err(json!({"input_shape": [4], "layers": [{"type": "Linear", "out_features": 5_000_000}]}));
    assert!(e.message.contains("limit"), "{}", e.message);
    let e = err(json!({"input_shape": [4], "layers": [{"type": "Linear", "out_features": 1e300}]}));
    assert_eq!(e.pointer, "/layers/0/out_features");
}

#[test]
fn garbage_never_panics() {
    for v in [
        json!(null),
        json!([]),
        json!({"input_shape": [], "layers": []}),
        json!({"input_shape": [0], "layers": []}),
        json!({"input_shape": [3], "layers": [1, 2]}),
        json!({"input_shape": [3], "layers": [{"type": 5}]}),
        json!({"input_shape": [3], "layers": [{"type": "Flatten", "start_dim": 7}]}),
        json!({"input_shape": [3], "layers": [{"type": "Bidirectional", "layer": {"type": "Bidirectional", "layer": {}}}]}),
        json!({"input_shape": [3, 3], "layers": [{"type": "Conv2d", "out_channels": 1, "kernel_size": [1, 2, 3]}]}),
        json!({"input_shape": [3, 3], "layers": [{"type": "BatchNormalization", "axis": 0}]}),
        json!({"input_shape": [3, 3], "layers": [{"type": "LayerNorm", "normalized_shape": [4]}]}),
    ] {
        assert!(analyze(&v, &Limits::default()).is_err(), "accepted {v}");
    }
}

#[test]
fn model_spec_parse_is_reusable() {
    let spec = ModelSpec::from_json(&json!({"input_shape": [2, 4], "layout": "LC", "layers": [
        {"type": "Bidirectional", "merge_mode": "sum", "layer": {"type": "GRU", "units": 3}}]}));
    let spec = spec.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(spec.layers.len(), 1);
    assert_eq!(spec.layers[0].kind.type_name(), "Bidirectional(GRU)");
    assert_eq!(
        spec.layers[0].field_pointer("units"),
        "/layers/0/layer/units"
    );
}

#[test]
fn solve_exam_lstm_hidden_size() {
    let keras = json!({"model": {"input_shape": [15, 3], "layout": "LC",
        "conventions": {"framework": "keras"}, "layers": [{"type": "LSTM", "units": "?"}]},
        "target": {"params": 180}});
    let r = solve(&keras, &Limits::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        r.solutions.iter().map(|s| s.value).collect::<Vec<_>>(),
        vec![5]
    );
    assert_eq!(
        r.closed_form.as_ref().map(|c| c.equation.clone()),
        Some("4*units^2 + 16*units = 180".to_string())
    );
    let torch = json!({"model": {"input_shape": [15, 3], "layers": [{"type": "LSTM", "hidden_size": 1}]},
        "unknown": {"layer": 0, "field": "hidden_size"}, "target": {"params": 180}});
    let r = solve(&torch, &Limits::default()).unwrap_or_else(|e| panic!("{e}"));
    assert!(r.solutions.is_empty());
    let roots = r.closed_form.map(|c| c.real_roots).unwrap_or_default();
    assert_eq!(roots.len(), 2);
    assert!((roots[1] - (-5.0 + 205f64.sqrt()) / 2.0).abs() < 1e-12);
    assert_eq!(
        r.nearest.iter().map(|c| c.value).collect::<Vec<_>>(),
        vec![4, 5]
    );
}

#[test]
fn solve_shape_without_integer_solution_gives_real_root() {
    // out = floor((10 - 3) / s) + 1 = 5 needs s = 7/4.
    let req = json!({"model": {"input_shape": [2, 10, 10], "layers": [
        {"type": "Conv2d", "out_channels": 2, "kernel_size": 3, "stride": "?"}]},
        "target": {"output_shape": [2, 5, 5]}, "search": {"min": 1, "max": 10}});
    let r = solve(&req, &Limits::default()).unwrap_or_else(|e| panic!("{e}"));
    assert!(r.solutions.is_empty());
    assert_eq!(r.closed_form.map(|c| c.real_roots), Some(vec![1.75]));
    assert!(r.message.starts_with("no integer stride"), "{}", r.message);
    // Padding: (26 + 2p - 7)/3 + 1 = 8 has the integer solutions 1 and 2 (floor).
    let req = json!({"model": {"input_shape": [1, 26, 26], "layers": [
        {"type": "Conv2d", "out_channels": 5, "kernel_size": 7, "stride": 3, "padding": "?"}]},
        "target": {"output_shape": [5, 8, 8]}, "search": {"min": 0, "max": 5}});
    let r = solve(&req, &Limits::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        r.solutions.iter().map(|s| s.value).collect::<Vec<_>>(),
        vec![1, 2]
    );
}

#[test]
fn solve_rejects_bad_requests() {
    let two = json!({"model": {"input_shape": [3], "layers": [{"type": "Linear", "out_features": "?", "in_features": "?"}]},
                     "target": {"params": 4}});
    assert!(solve(&two, &Limits::default()).is_err());
    let none = json!({"model": {"input_shape": [3], "layers": [{"type": "Linear", "out_features": 2}]},
                      "target": {"params": 4}});
    assert_eq!(
        solve(&none, &Limits::default()).err().map(|e| e.pointer),
        Some("/unknown".to_string())
    );
    let wide = json!({"model": {"input_shape": [3], "layers": [{"type": "Linear", "out_features": "?"}]},
                      "target": {"params": 4}, "search": {"min": 1, "max": 10_000_000}});
    assert_eq!(
        solve(&wide, &Limits::default()).err().map(|e| e.pointer),
        Some("/search".to_string())
    );
    let typo = json!({"model": {"input_shape": [3], "layers": [{"type": "Linear", "out_features": 2}]},
                      "unknown": {"layer": 0, "field": "out_featurs"}, "target": {"params": 4}});
    assert!(solve(&typo, &Limits::default()).is_err());
}

fn conv_out(n: u64, k: u64, s: u64, p: u64, d: u64) -> Option<u64> {
    analyze(
        &json!({"input_shape": [1, n], "layers": [
            {"type": "Conv1d", "out_channels": 1, "kernel_size": k, "stride": s, "padding": p, "dilation": d}]}),
        &Limits::default(),
    )
    .ok()
    .map(|r| r.output_shape[1])
}

proptest! {
    #[test]
    fn output_size_monotone_in_input(n in 1u64..200, k in 1u64..12, s in 1u64..5, p in 0u64..5, d in 1u64..4) {
        if let Some(a) = conv_out(n, k, s, p, d) {
            let b = conv_out(n + 1, k, s, p, d);
            prop_assert!(b.is_some_and(|b| b >= a));
        }
    }

    #[test]
    fn same_padding_stride_one_keeps_size(n in 1u64..300, k in 1u64..10, d in 1u64..4, keras in any::<bool>()) {
        let fw = if keras { "keras" } else { "pytorch" };
        let r = analyze(&json!({"input_shape": [2, n], "layers": [
            {"type": "Conv1d", "out_channels": 3, "kernel_size": k, "padding": "same", "dilation": d}],
            "conventions": {"framework": fw}}), &Limits::default());
        let r = r.map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(r.output_shape, vec![3, n]);
    }

    #[test]
    fn conv_params_independent_of_input_size(n in 8u64..100, m in 8u64..100, c in 1u64..8, f in 1u64..16, k in 1u64..8) {
        let params = |n: u64| analyze(&json!({"input_shape": [c, n, n], "layers": [
            {"type": "Conv2d", "out_channels": f, "kernel_size": k}]}), &Limits::default()).map(|r| r.totals.params);
        let (a, b) = (params(n), params(m));
        prop_assert_eq!(a.clone(), b);
        prop_assert_eq!(a, Ok((k * k * c + 1) * f));
    }

    #[test]
    fn stacked_3x3_receptive_field_is_2n_plus_1(layers in 1usize..30) {
        let conv = json!({"type": "Conv2d", "out_channels": 1, "kernel_size": 3, "padding": 1});
        let r = analyze(&json!({"input_shape": [1, 64, 64], "layers": vec![conv; layers]}), &Limits::default());
        let r = r.map_err(|e| TestCaseError::fail(e.to_string()))?;
        let rf = r.layers.last().and_then(|l| l.receptive_field.clone());
        let want = 2 * layers as u64 + 1;
        prop_assert_eq!(rf.map(|rf| rf.size), Some(vec![Some(want), Some(want)]));
    }

    #[test]
    fn random_layers_never_panic(
        pick in 0usize..10, k in 0u64..6, s in 0u64..4, p in 0u64..4, n in 1u64..10, units in 0u64..5,
        rank in 1usize..4,
    ) {
        let layer = match pick {
            0 => json!({"type": "Conv2d", "out_channels": units, "kernel_size": k, "stride": s, "padding": p}),
            1 => json!({"type": "MaxPool2d", "kernel_size": k, "stride": s, "padding": p, "ceil_mode": true}),
            2 => json!({"type": "Linear", "out_features": units}),
            3 => json!({"type": "LSTM", "hidden_size": units, "num_layers": s}),
            4 => json!({"type": "ConvTranspose2d", "out_channels": units, "kernel_size": k, "stride": s,
                        "padding": p, "output_padding": p}),
            5 => json!({"type": "BatchNorm2d", "num_features": units}),
            6 => json!({"type": "Flatten", "start_dim": s, "end_dim": p}),
            7 => json!({"type": "AdaptiveAvgPool2d", "output_size": units}),
            8 => json!({"type": "Conv1d", "out_channels": 1, "kernel_size": k, "padding": "same", "dilation": s}),
            _ => json!({"type": "LayerNorm", "normalized_shape": [n]}),
        };
        let v = json!({"input_shape": vec![n; rank], "layers": [layer]});
        let _ = analyze(&v, &Limits::default());
        let _ = solve(&json!({"model": {"input_shape": vec![n; rank], "layers": [layer]},
            "unknown": {"layer": 0, "field": "kernel_size"}, "target": {"params": units},
            "search": {"min": 0, "max": 12}}), &Limits::default());
    }
}
