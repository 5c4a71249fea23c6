//! Architecture arithmetic on a 200-layer description must answer in well
//! under 1 ms (parse + analyze with worked steps).

use criterion::{Criterion, criterion_group, criterion_main};
use dlgrade::compute::arch::{analyze, analyze_spec};
use dlgrade::compute::limits::Limits;
use dlgrade::compute::model::ModelSpec;
use serde_json::{Value, json};
use std::hint::black_box;

fn deep_model() -> Value {
    let mut layers = Vec::new();
    for i in 0..199 {
        layers.push(match i % 4 {
            0 => json!({"type": "Conv2d", "out_channels": 16, "kernel_size": 3, "padding": 1}),
            1 => json!({"type": "BatchNorm2d", "num_features": 16}),
            2 => json!({"type": "ReLU"}),
            _ => json!({"type": "Dropout", "p": 0.1}),
        });
    }
    layers.push(json!({"type": "Flatten"}));
    json!({"input_shape": [16, 32, 32], "layout": "CHW", "layers": layers})
}

fn bench(c: &mut Criterion) {
    let model = deep_model();
    let limits = Limits::default();
    c.bench_function("architecture_200_layers", |b| {
        b.iter(|| analyze(black_box(&model), &limits))
    });
    c.bench_function("architecture_200_layers_parse_only", |b| {
        b.iter(|| ModelSpec::from_json(black_box(&model)))
    });
    if let Ok(spec) = ModelSpec::from_json(&model) {
        c.bench_function("architecture_200_layers_analyze_parsed", |b| {
            b.iter(|| analyze_spec(black_box(&spec), &limits))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
