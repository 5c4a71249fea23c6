//! The question bank (`bank/*.json`): every rubric parses, its computed keys
//! resolve with the service's own engines, its self-tests pass (at least a
//! model answer with full marks and a wrong answer with 0), and the key audit
//! finds nothing. A second test feeds the wrong printed keys of the reference
//! exam (listed in `bank/INDEX.md`) to the audit and checks that each is
//! flagged with the correct computed value.

use std::path::PathBuf;

use dlgrade::grading::Rubric;
use dlgrade::grading::engines::Engines;

fn bank_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/bank"))
}

fn bank_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(bank_dir())
        .expect("bank/ exists")
        .map(|e| e.expect("readable bank entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

/// Checks one bank file; returns the problems found (empty when it is fine).
fn check_file(path: &PathBuf, engines: &Engines) -> Vec<String> {
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return vec![format!("{name}: unreadable: {e}")],
    };
    let rubric: Rubric = match serde_json::from_str(&text) {
        Ok(r) => r,
        Err(e) => return vec![format!("{name}: not a rubric: {e}")],
    };
    let mut problems = Vec::new();
    let max: f64 = rubric.parts.iter().map(|p| p.max_points).sum();
    let scores: Vec<f64> = rubric.tests.iter().map(|t| t.expected_score).collect();
    if rubric.tests.len() < 3 {
        problems.push(format!(
            "{name}: {} self-tests, want at least 3",
            rubric.tests.len()
        ));
    }
    if !scores.iter().any(|s| (s - max).abs() < 1e-9) {
        problems.push(format!("{name}: no self-test with full marks ({max})"));
    }
    if !scores.iter().any(|s| s.abs() < 1e-9) {
        problems.push(format!("{name}: no self-test scoring 0"));
    }
    match rubric.resolve_keys(engines) {
        Ok(resolved) => {
            let report = resolved.run_all_self_tests();
            if !report.failures.is_empty() || report.passed != report.total {
                problems.push(format!("{name}: self-tests failed: {:#?}", report.failures));
            }
        }
        Err(p) => problems.push(format!("{name}: keys do not resolve: {p:#?}")),
    }
    problems.extend(check_variants(&name, &rubric, engines));
    let findings = rubric.audit(engines);
    if !findings.is_empty() {
        problems.push(format!("{name}: audit disagreements: {findings:#?}"));
    }
    problems
}

/// Seeds drawn per template in the bank check.
const SEEDS: u64 = 25;

/// A template must give a variant for every seed tried (each passing its
/// self-tests: model answers full marks, each valued mistake its points),
/// the variants must differ, and their keys must change with the numbers.
fn check_variants(name: &str, rubric: &Rubric, engines: &Engines) -> Vec<String> {
    let Some(template) = &rubric.template else {
        return Vec::new();
    };
    let mut problems = Vec::new();
    let printed = match rubric.resolve_keys(engines) {
        Ok(r) => r.model_answers(),
        Err(_) => return problems,
    };
    let mut distinct = std::collections::BTreeSet::new();
    let mut changed_keys = 0;
    for seed in 0..SEEDS {
        match rubric.variant(seed, engines) {
            Ok(v) => {
                if v.self_tests.total < template.tests.len() + 1 {
                    problems.push(format!("{name}: seed {seed}: too few self-tests ran"));
                }
                distinct.insert(format!("{:?}", v.parameters));
                if v.resolved.model_answers() != printed {
                    changed_keys += 1;
                }
            }
            Err(e) => problems.push(format!("{name}: seed {seed}: {e}")),
        }
    }
    if distinct.len() < 5 {
        problems.push(format!(
            "{name}: only {} distinct variants in {SEEDS} seeds",
            distinct.len()
        ));
    }
    if changed_keys < SEEDS / 2 {
        problems.push(format!(
            "{name}: only {changed_keys} of {SEEDS} variants have other keys than the printed question"
        ));
    }
    problems
}

#[test]
fn every_bank_rubric_resolves_and_passes_its_self_tests() {
    let engines = Engines::default();
    let files = bank_files();
    assert!(files.len() >= 40, "only {} rubrics in bank/", files.len());
    let problems: Vec<String> = files.iter().flat_map(|f| check_file(f, &engines)).collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_bank_file_is_listed_in_the_index() {
    let index = std::fs::read_to_string(bank_dir().join("INDEX.md")).expect("bank/INDEX.md");
    for f in bank_files() {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        assert!(
            index.contains(&name),
            "{name} is not listed in bank/INDEX.md"
        );
    }
}

#[path = "common/wrong_keys.rs"]
mod wrong_keys;
use wrong_keys::{audit_rubric, close, wrong_keys};

#[test]
fn the_audit_flags_every_wrong_printed_key_with_the_correct_value() {
    let engines = Engines::default();
    let cases = wrong_keys();
    let rubric: Rubric = serde_json::from_value(audit_rubric(&cases)).expect("audit rubric");
    let findings = rubric.audit(&engines);
    for (i, case) in cases.iter().enumerate() {
        let pointer = format!("/parts/{i}/answer/expected");
        let finding = findings
            .iter()
            .find(|f| f.pointer == pointer)
            .unwrap_or_else(|| panic!("{}: the audit does not flag the printed key", case.name));
        assert!(
            close(&finding.computed, &case.correct),
            "{}: computed {} but the correct value is {}",
            case.name,
            finding.computed,
            case.correct
        );
    }
    assert_eq!(findings.len(), cases.len(), "{findings:#?}");
}
