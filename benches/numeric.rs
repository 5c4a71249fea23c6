//! Criterion benchmarks of the forward/backward core: one large convolution
//! (1x3x224x224 input, 64 3x3 filters, padding 1) forward + backward, and
//! exam-size problems through the full JSON API (with worked steps).
//! tests/reference/time_torch.py times the same problems in PyTorch.

use criterion::{Criterion, criterion_group, criterion_main};
use dlgrade::compute::limits::Limits;
use dlgrade::compute::nn::{
    ForwardRequest, GradientsRequest, LayerSpec, Layout, Network, forward, gradients,
};
use dlgrade::compute::tensor::Tensor;
use serde_json::json;
use std::hint::black_box;

fn conv224(c: &mut Criterion) {
    let limits = Limits {
        max_tensor_elements: 4_000_000,
        ..Limits::default()
    };
    let w: Vec<f64> = (0..64 * 3 * 9)
        .map(|i| ((i * 37 % 101) as f64) / 101.0 - 0.5)
        .collect();
    let wt = Tensor::new(vec![64, 3, 3, 3], w).unwrap().to_json();
    let specs: Vec<LayerSpec> = serde_json::from_value(json!([
        {"type": "conv2d", "weight": wt, "bias": vec![0.1; 64], "padding": 1}
    ]))
    .unwrap();
    let (net, params) = Network::build(&specs, Layout::Pytorch, true, &limits).unwrap();
    let x: Vec<f64> = (0..3 * 224 * 224)
        .map(|i| ((i * 13 % 97) as f64) / 97.0)
        .collect();
    let input = Tensor::new(vec![1, 3, 224, 224], x).unwrap();
    let mut g = c.benchmark_group("conv2d_1x3x224x224_64x3x3");
    g.sample_size(10);
    g.bench_function("forward", |b| {
        b.iter(|| black_box(net.forward(&params, &input, &limits).unwrap()))
    });
    g.bench_function("forward_backward", |b| {
        b.iter(|| {
            let trace = net.forward(&params, &input, &limits).unwrap();
            let ones = Tensor::new(
                trace.output().shape().to_vec(),
                vec![1.0; trace.output().len()],
            )
            .unwrap();
            black_box(net.backward_lean(&params, &trace, ones).unwrap())
        })
    });
    g.finish();
}

fn exam_sizes(c: &mut Criterion) {
    let limits = Limits::default();
    let tum: GradientsRequest = serde_json::from_value(json!({
        "input": [[[[1, -0.5], [2, -2]], [[-2, 1], [-1.5, 1]], [[1, 0], [0, 0]]]],
        "layers": [
            {"type": "conv2d", "weight": [[[[1]], [[1]], [[1]]]]},
            {"type": "max_pool2d", "kernel_size": 2, "stride": 2, "padding": 1, "pad_value": "zero"}
        ],
        "target": [[[[0, 1], [1, 0]]]],
        "loss": {"kind": "bce", "reduction": "sum", "log_floor": -1e9}
    }))
    .unwrap();
    c.bench_function("exam_tum_p5_gradients_with_steps", |b| {
        b.iter(|| black_box(gradients(&tum, &limits).unwrap()))
    });
    let mlp: GradientsRequest = serde_json::from_value(json!({
        "input": [[0.75]],
        "layers": [
            {"type": "dense", "weight": [[0.5], [-0.6]], "bias": [0.1, -0.2], "activation": "sigmoid"},
            {"type": "dense", "weight": [[0.7, -0.8]], "bias": [0.3], "activation": "sigmoid"}
        ],
        "target": [[1.25]],
        "loss": {"kind": "mse"}
    }))
    .unwrap();
    c.bench_function("exam_bits_2c_mlp_gradients_with_steps", |b| {
        b.iter(|| black_box(gradients(&mlp, &limits).unwrap()))
    });
    let lenet: ForwardRequest = serde_json::from_value(json!({
        "input": vec![vec![vec![vec![0.5; 32]; 32]; 1]; 1],
        "layers": [
            {"type": "conv2d", "weight": vec![vec![vec![vec![0.01; 5]; 5]; 1]; 6], "bias": vec![0.0; 6], "activation": "relu"},
            {"type": "max_pool2d", "kernel_size": 2},
            {"type": "conv2d", "weight": vec![vec![vec![vec![0.01; 5]; 5]; 6]; 16], "bias": vec![0.0; 16], "activation": "relu"},
            {"type": "max_pool2d", "kernel_size": 2},
            {"type": "flatten"},
            {"type": "dense", "weight": vec![vec![0.01; 400]; 120], "activation": "relu"},
            {"type": "dense", "weight": vec![vec![0.01; 120]; 84], "activation": "relu"},
            {"type": "dense", "weight": vec![vec![0.01; 84]; 10], "activation": "softmax"}
        ]
    }))
    .unwrap();
    c.bench_function("lenet5_forward_with_steps", |b| {
        b.iter(|| black_box(forward(&lenet, &limits).unwrap()))
    });
}

criterion_group!(benches, conv224, exam_sizes);
criterion_main!(benches);
