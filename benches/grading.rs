//! Grading one 8-part rubric in-process (target: under 50 µs), and compiling
//! that rubric once (what storing it costs).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use dlgrade::grading::{GradeOptions, NoEngines, Rubric, grade};

fn rubric() -> Rubric {
    let text = include_str!("rubric8.json");
    serde_json::from_str(text).expect("benches/rubric8.json is a rubric")
}

fn bench(c: &mut Criterion) {
    let rubric = rubric();
    let resolved = rubric.resolve_keys(&NoEngines).expect("rubric resolves");
    let answers = rubric.tests[0].answers.clone();
    let options = GradeOptions::default();
    let check = grade(&resolved, &answers, &options);
    assert_eq!(check.score, 9.0, "the model answer must score full marks");

    c.bench_function("grade 8-part rubric (model answer)", |b| {
        b.iter(|| grade(black_box(&resolved), black_box(&answers), &options))
    });
    c.bench_function("compile 8-part rubric", |b| {
        b.iter(|| black_box(&rubric).resolve_keys(&NoEngines))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
