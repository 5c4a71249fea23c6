//! Grading one 8-part rubric in-process (target: under 50 µs), compiling
//! that rubric once (what storing it costs), and drawing a variant of a bank
//! template (what the first request for a seed costs; later ones are cached).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use dlgrade::grading::engines::Engines;
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

    let template: Rubric =
        serde_json::from_str(include_str!("../bank/tum-cnn-p4b-conv-output.json"))
            .expect("the bank's TUM 4b is a rubric");
    let engines = Engines::default();
    let mut seed = 0u64;
    c.bench_function(
        "variant of a bank template (TUM 4b, new seed each time)",
        |b| {
            b.iter(|| {
                seed += 1;
                template
                    .variant(black_box(seed), &engines)
                    .expect("a variant")
            })
        },
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
