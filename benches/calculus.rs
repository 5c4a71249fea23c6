//! Benchmarks for the expression engine and the perceptron.
//! Run: cargo bench --bench calculus

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use dlgrade::compute::expr::{CalculusRequest, ExprLimits, calculus, parse};
use dlgrade::compute::limits::Limits;
use dlgrade::compute::perceptron::{Convention, Encoding, Gate, PerceptronRequest, perceptron};

const EXAM: &str = "x^4 - 32x^2 + y^4 - 18y^2";
const NETWORK: &str = "(1.25 - sigmoid(w3*sigmoid(w1*x + b1) + w4*sigmoid(w2*x + b2) + b3))^2 / 2";

fn bench(c: &mut Criterion) {
    let limits = ExprLimits::default();
    c.bench_function("parse exam quartic", |b| {
        b.iter(|| parse(black_box(EXAM), &limits))
    });
    let long = "x+".repeat(2000) + "x";
    c.bench_function("parse 4001-char sum", |b| {
        b.iter(|| parse(black_box(&long), &limits))
    });
    let deep = "(".repeat(100_000) + "x" + &")".repeat(100_000);
    let big = ExprLimits {
        max_len: 1 << 20,
        max_depth: 64,
    };
    c.bench_function("reject 100000-deep nesting", |b| {
        b.iter(|| parse(black_box(&deep), &big))
    });
    if let Ok(net) = parse(NETWORK, &limits) {
        c.bench_function("d/dw1 of a 1-2-1 network loss", |b| {
            b.iter(|| black_box(&net).derivative("w1"))
        });
    }
    let req = CalculusRequest {
        expression: EXAM.into(),
        variables: None,
        points: vec![[("x".to_string(), 2.0), ("y".to_string(), 2.0)].into()],
        hessian: true,
        graph: true,
        critical_points: true,
        tolerance: 1e-9,
    };
    let lim = Limits::default();
    c.bench_function(
        "calculus: exam quartic with graph and critical points",
        |b| b.iter(|| calculus(black_box(&req), &lim)),
    );
    let xor = PerceptronRequest {
        gate: Some(Gate::Xor),
        inputs: Some(4),
        samples: None,
        learning_rate: 0.5,
        convention: Convention::Bias,
        output_encoding: Encoding::Binary,
        input_encoding: Encoding::Binary,
        initial_weights: None,
        initial_bias: 0.0,
        threshold: 0.0,
        learn_threshold: false,
        max_epochs: 100,
    };
    c.bench_function("perceptron: 4-input XOR, 100 epochs + separability", |b| {
        b.iter(|| perceptron(black_box(&xor), &lim))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
