//! Benchmarks: a long Adam run and an LSTM forward + BPTT pass.

use criterion::{Criterion, criterion_group, criterion_main};
use dlgrade::compute::limits::Limits;
use dlgrade::compute::optim::{OptimizerRequest, optimizer_steps};
use dlgrade::compute::recurrent::{RecurrentRequest, recurrent};
use serde_json::json;
use std::hint::black_box;

fn adam_request() -> OptimizerRequest {
    let values: Vec<f64> = (0..100).map(|i| (i as f64 * 0.37).sin()).collect();
    let grad: Vec<f64> = (0..100).map(|i| (i as f64 * 0.11).cos()).collect();
    serde_json::from_value(json!({
        "optimizer": {"algorithm": "adam", "lr": 0.01, "amsgrad": true},
        "params": [{"name": "w", "values": values}],
        "gradient": [{"name": "w", "values": grad}],
        "steps": 500
    }))
    .expect("valid request")
}

fn lstm_request() -> RecurrentRequest {
    let (n_in, h, t_n) = (8usize, 16usize, 40usize);
    let m = |r: usize, c: usize, s: f64| -> Vec<Vec<f64>> {
        (0..r)
            .map(|i| {
                (0..c)
                    .map(|j| ((i * c + j) as f64 * s).sin() * 0.3)
                    .collect()
            })
            .collect()
    };
    serde_json::from_value(json!({
        "cell": "lstm",
        "inputs": [m(t_n, n_in, 0.7)],
        "weights": {
            "kernel": m(4 * h, n_in, 0.13),
            "recurrent_kernel": m(4 * h, h, 0.29),
            "bias": vec![0.1; 4 * h],
            "recurrent_bias": vec![-0.05; 4 * h]
        },
        "loss": {"targets": [m(t_n, h, 0.5)]}
    }))
    .expect("valid request")
}

fn bench(c: &mut Criterion) {
    let limits = Limits::default();
    let adam = adam_request();
    c.bench_function("adam_500_steps_100_params", |b| {
        b.iter(|| optimizer_steps(black_box(&adam), &limits).expect("runs"))
    });
    let lstm = lstm_request();
    c.bench_function("lstm_40_steps_h16_forward_bptt", |b| {
        b.iter(|| recurrent(black_box(&lstm), &limits).expect("runs"))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
