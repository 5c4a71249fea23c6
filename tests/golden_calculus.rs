//! Golden tests for the expression engine (calculus) and the perceptron
//! against tests/reference/gen_calculus.py (SymPy + JAX, a loop perceptron
//! and scipy's LP for separability), plus property tests.

use std::collections::BTreeMap;

use dlgrade::compute::expr::{
    CalculusReport, CalculusRequest, Classification, Constant, Expr, ExprLimits, Func, calculus,
    computation_graph, parse,
};
use dlgrade::compute::limits::Limits;
use dlgrade::compute::perceptron::{
    Convention, Encoding, PerceptronReport, PerceptronRequest, PerceptronSample, perceptron,
};
use proptest::prelude::*;
use serde_json::Value;

const TOL: f64 = 1e-9;

fn fixture(name: &str) -> Vec<Value> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn nums(v: &Value) -> Vec<f64> {
    v.as_array()
        .map(|a| a.iter().map(num).collect())
        .unwrap_or_default()
}

fn assert_close(got: f64, want: f64, what: &str) {
    assert!(
        (got - want).abs() <= TOL * want.abs().max(1.0),
        "{what}: got {got}, want {want}"
    );
}

fn classification_name(c: Option<Classification>) -> Value {
    serde_json::to_value(c).unwrap_or(Value::Null)
}

fn run_case(case: &Value) -> CalculusReport {
    let name = case["name"].as_str().unwrap_or("?");
    let req: CalculusRequest = serde_json::from_value(case["request"].clone())
        .unwrap_or_else(|e| panic!("{name}: bad request: {e}"));
    calculus(&req, &Limits::default()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn calculus_matches_sympy_and_jax() {
    let cases = fixture("calculus_cases.json");
    assert!(cases.len() >= 150, "only {} cases", cases.len());
    let mut points_checked = 0;
    for case in &cases {
        let name = case["name"].as_str().unwrap_or("?");
        let exp = &case["expected"];
        let rep = run_case(case);
        let vars: Vec<String> = exp["variables"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(rep.variables, vars, "{name}: variables");
        let want_points = exp["points"].as_array().cloned().unwrap_or_default();
        assert_eq!(rep.points.len(), want_points.len(), "{name}");
        for (got, want) in rep.points.iter().zip(&want_points) {
            let at = format!("{name} at {:?}", got.point);
            assert_close(got.value, num(&want["value"]), &format!("{at}: value"));
            let wg = nums(&want["gradient"]);
            assert_eq!(got.gradient.len(), wg.len(), "{at}");
            for (k, (g, w)) in got.gradient.iter().zip(&wg).enumerate() {
                assert_close(*g, *w, &format!("{at}: gradient[{k}]"));
            }
            let wh: Vec<Vec<f64>> = want["hessian"]
                .as_array()
                .map(|rows| rows.iter().map(nums).collect())
                .unwrap_or_default();
            let gh = got.hessian.clone().unwrap_or_default();
            assert_eq!(gh.len(), wh.len(), "{at}");
            for (i, (gr, wr)) in gh.iter().zip(&wh).enumerate() {
                for (j, (g, w)) in gr.iter().zip(wr).enumerate() {
                    assert_close(*g, *w, &format!("{at}: hessian[{i}][{j}]"));
                }
            }
            assert_eq!(
                classification_name(got.classification),
                want["classification"],
                "{at}: classification"
            );
            points_checked += 1;
        }
    }
    assert!(points_checked >= 250, "{points_checked} points");
}

#[test]
fn symbolic_derivatives_equal_sympys() {
    let limits = ExprLimits::default();
    let mut compared = 0;
    for case in fixture("calculus_cases.json") {
        let name = case["name"].as_str().unwrap_or("?").to_string();
        let rep = run_case(&case);
        let sympy = case["expected"]["sympy_gradient"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for (k, text) in sympy.iter().enumerate() {
            let Some(text) = text.as_str() else { continue };
            let theirs =
                parse(text, &limits).unwrap_or_else(|e| panic!("{name}: SymPy's {text}: {e}"));
            let ours_text = &rep.gradient[k].derivative.text;
            let ours = parse(ours_text, &limits)
                .unwrap_or_else(|e| panic!("{name}: ours {ours_text}: {e}"));
            for p in &rep.points {
                let at = |n: &str| p.point.get(n).copied();
                let (Ok(a), Ok(b)) = (ours.eval(&at), theirs.eval(&at)) else {
                    panic!(
                        "{name}: cannot evaluate {ours_text} or {text} at {:?}",
                        p.point
                    );
                };
                assert_close(
                    a,
                    b,
                    &format!(
                        "{name}: d/d{} {ours_text} vs SymPy {text}",
                        rep.variables[k]
                    ),
                );
                compared += 1;
            }
        }
    }
    assert!(compared >= 300, "{compared} comparisons");
}

#[test]
fn backpropagation_equals_symbolic_gradient() {
    for case in fixture("calculus_cases.json") {
        let name = case["name"].as_str().unwrap_or("?");
        let rep = run_case(&case);
        let expr = parse(&rep.expression.text, &ExprLimits::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        for p in &rep.points {
            let at = |n: &str| p.point.get(n).copied();
            let g = computation_graph(&expr, &at).unwrap_or_else(|e| panic!("{name}: {e}"));
            for (v, want) in rep.variables.iter().zip(&p.gradient) {
                let got = g.gradient.get(v).copied().unwrap_or(0.0);
                assert_close(got, *want, &format!("{name}: graph d/d{v}"));
            }
            let out = g.nodes.last().map(|n| n.value).unwrap_or(f64::NAN);
            assert_close(out, p.value, &format!("{name}: graph output"));
        }
    }
}

#[test]
fn critical_points_match_sympy() {
    let mut checked = 0;
    for case in fixture("calculus_cases.json") {
        let want = &case["expected"]["critical_points"];
        let Some(want) = want.as_array() else {
            continue;
        };
        let name = case["name"].as_str().unwrap_or("?");
        let rep = run_case(&case);
        let cp = rep
            .critical_points
            .unwrap_or_else(|| panic!("{name}: no critical points"));
        assert!(cp.solved, "{name}: {}", cp.note);
        assert_eq!(cp.points.len(), want.len(), "{name}: count");
        for w in want {
            let wp: BTreeMap<String, f64> =
                serde_json::from_value(w["point"].clone()).unwrap_or_default();
            let found = cp.points.iter().find(|p| {
                wp.iter().all(|(k, v)| {
                    p.point
                        .get(k)
                        .is_some_and(|x| (x - v).abs() <= 1e-9 * v.abs().max(1.0))
                })
            });
            let found = found.unwrap_or_else(|| panic!("{name}: missing critical point {wp:?}"));
            assert_eq!(
                classification_name(found.classification),
                w["classification"],
                "{name} {wp:?}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 25, "{checked}");
}

#[test]
fn perceptron_matches_reference_loop() {
    let cases = fixture("perceptron_cases.json");
    assert!(cases.len() >= 20);
    for case in cases {
        let name = case["name"].as_str().unwrap_or("?");
        let req: PerceptronRequest = serde_json::from_value(case["request"].clone())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let rep: PerceptronReport =
            perceptron(&req, &Limits::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let exp = &case["expected"];
        assert_eq!(
            serde_json::to_value(&rep.samples).ok().as_ref(),
            Some(&exp["samples"]),
            "{name}"
        );
        assert_eq!(Some(rep.converged), exp["converged"].as_bool(), "{name}");
        assert_eq!(
            Some(rep.epochs_run as u64),
            exp["epochs_run"].as_u64(),
            "{name}"
        );
        assert_eq!(
            rep.linearly_separable,
            exp["linearly_separable"].as_bool(),
            "{name}"
        );
        let trace = exp["trace"].as_array().cloned().unwrap_or_default();
        assert_eq!(rep.trace.len(), trace.len(), "{name}");
        for (got, want) in rep.trace.iter().zip(&trace) {
            let at = format!("{name} epoch {} sample {}", got.epoch, got.sample);
            assert_eq!(Some(got.epoch as u64), want["epoch"].as_u64(), "{at}");
            assert_eq!(Some(got.sample as u64), want["sample"].as_u64(), "{at}");
            assert_close(got.net, num(&want["net"]), &format!("{at}: net"));
            assert_eq!(got.output, num(&want["output"]), "{at}: output");
            assert_eq!(got.error, num(&want["error"]), "{at}: error");
            for (g, w) in got.weights.iter().zip(nums(&want["weights"])) {
                assert_close(*g, w, &format!("{at}: weights"));
            }
            assert_close(got.bias, num(&want["bias"]), &format!("{at}: bias"));
        }
        for (g, w) in rep.weights.iter().zip(nums(&exp["weights"])) {
            assert_close(*g, w, &format!("{name}: final weights"));
        }
    }
}

// ---------------------------------------------------------------- proptest

/// Canonical expression trees: everything the parser can produce (no
/// negation of a bare number, no one-term sums or one-factor products).
fn arb_expr() -> impl Strategy<Value = Expr> {
    let number = prop_oneof![
        (0u32..1000).prop_map(|n| f64::from(n) / 4.0),
        any::<f64>().prop_filter("finite", |v| v.is_finite()),
        Just(1e-7),
        Just(-2.5),
    ];
    let leaf = prop_oneof![
        number.prop_map(Expr::Num),
        prop_oneof!["x", "y", "w_1", "theta", "x2"].prop_map(|s| Expr::Var(s.to_string())),
        prop_oneof![Just(Constant::Pi), Just(Constant::E)].prop_map(Expr::Const),
    ];
    leaf.prop_recursive(5, 48, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::Add),
            (
                prop::collection::vec(inner.clone(), 1..3),
                prop::collection::vec(inner.clone(), 0..2)
            )
                .prop_filter("two factors", |(n, d)| n.len() + d.len() >= 2)
                .prop_map(|(num, den)| Expr::Mul { num, den }),
            inner
                .clone()
                .prop_filter("no negated literal", |e| !matches!(e, Expr::Num(_)))
                .prop_map(|e| Expr::Neg(Box::new(e))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Expr::Pow(Box::new(a), Box::new(b))),
            (0..Func::ALL.len(), prop::collection::vec(inner, 1..3)).prop_map(|(k, mut args)| {
                let f = Func::ALL[k];
                if f.is_unary() {
                    args.truncate(1);
                }
                Expr::Call(f, args)
            }),
        ]
    })
}

/// Smooth expressions in x for the finite-difference check.
fn arb_smooth() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        (1u32..8).prop_map(|n| Expr::Num(f64::from(n) / 2.0)),
        Just(Expr::var("x")),
        Just(Expr::var("x")),
    ];
    leaf.prop_recursive(4, 24, 3, |inner| {
        let smooth = prop_oneof![
            Just(Func::Exp),
            Just(Func::Sin),
            Just(Func::Cos),
            Just(Func::Tanh),
            Just(Func::Sigmoid),
            Just(Func::Softplus),
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::Add),
            prop::collection::vec(inner.clone(), 2..4)
                .prop_map(|num| Expr::Mul { num, den: vec![] }),
            (inner.clone(), 1u32..4)
                .prop_map(|(a, k)| Expr::Pow(Box::new(a), Box::new(Expr::Num(f64::from(k))))),
            inner.clone().prop_map(|a| Expr::Neg(Box::new(a))),
            (smooth, inner.clone()).prop_map(|(f, a)| Expr::Call(f, vec![a])),
            // divisions by something bounded away from zero
            (inner.clone(), inner).prop_map(|(a, b)| Expr::Mul {
                num: vec![a],
                den: vec![Expr::Add(vec![
                    Expr::Num(2.0),
                    Expr::Call(Func::Sin, vec![b]),
                ])],
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn display_parses_back_to_the_same_tree(e in arb_expr()) {
        let text = e.to_string();
        let limits = ExprLimits { max_len: 1 << 20, max_depth: 128 };
        let back = parse(&text, &limits);
        prop_assert_eq!(back.as_ref().ok(), Some(&e), "{} -> {:?}", text, back);
    }

    #[test]
    fn simplification_and_derivatives_print_parseable_text(e in arb_expr()) {
        let limits = ExprLimits { max_len: 1 << 20, max_depth: 128 };
        let s = e.simplified();
        prop_assert_eq!(parse(&s.to_string(), &limits).ok(), Some(s.clone()), "{}", s);
        if let Ok(d) = e.derivative("x") {
            prop_assert_eq!(parse(&d.to_string(), &limits).ok(), Some(d.clone()), "{}", d);
        }
    }

    #[test]
    fn derivative_agrees_with_central_differences(e in arb_smooth(), x0 in -1.0f64..1.0) {
        let f = |x: f64| e.eval(&|_: &str| Some(x));
        let d = e.derivative("x").map_err(|err| TestCaseError::fail(err.to_string()))?;
        let exact = d.eval(&|_: &str| Some(x0)).map_err(|err| TestCaseError::fail(err.to_string()))?;
        let h = 1e-5;
        if let (Ok(a), Ok(b), Ok(c)) = (f(x0 + h), f(x0 - h), f(x0)) {
            prop_assume!(c.abs() < 1e6 && exact.abs() < 1e6);
            let fd = (a - b) / (2.0 * h);
            prop_assert!((fd - exact).abs() <= 1e-4 * (1.0 + exact.abs()), "{} at {}: {} vs {}", e, x0, exact, fd);
            // and the simplified function is the same function
            let s = e.simplified().eval(&|_: &str| Some(x0));
            prop_assert!(s.is_ok_and(|s| (s - c).abs() <= 1e-9 * (1.0 + c.abs())));
        }
    }

    #[test]
    fn parser_never_panics_on_arbitrary_text(s in "\\PC{0,80}") {
        let limits = ExprLimits::default();
        if let Ok(e) = parse(&s, &limits) {
            let again = parse(&e.to_string(), &ExprLimits { max_len: 1 << 20, max_depth: 128 });
            prop_assert_eq!(again.ok(), Some(e.clone()));
        }
    }

    #[test]
    fn calculus_never_panics(
        s in "[-+*/^() xy0-9.a-z,]{1,40}",
        x in -3.0f64..3.0,
        y in -3.0f64..3.0,
        graph in any::<bool>(),
    ) {
        let req = CalculusRequest {
            expression: s,
            variables: None,
            points: vec![[("x".to_string(), x), ("y".to_string(), y)].into()],
            hessian: true,
            graph,
            critical_points: true,
            tolerance: 1e-9,
        };
        if let Err(e) = calculus(&req, &Limits::default()) {
            prop_assert!(e.pointer.starts_with('/') && !e.message.is_empty());
        }
    }

    #[test]
    fn perceptron_never_panics(
        rows in prop::collection::vec((prop::collection::vec(-3.0f64..3.0, 2), any::<bool>()), 1..12),
        eta in 0.01f64..2.0,
        threshold in any::<bool>(),
    ) {
        let samples = rows
            .into_iter()
            .map(|(x, t)| PerceptronSample { x, target: if t { 1.0 } else { 0.0 } })
            .collect();
        let req = PerceptronRequest {
            gate: None,
            inputs: None,
            samples: Some(samples),
            learning_rate: eta,
            convention: if threshold { Convention::Threshold } else { Convention::Bias },
            output_encoding: Encoding::Binary,
            input_encoding: Encoding::Binary,
            initial_weights: None,
            initial_bias: 0.0,
            threshold: if threshold { 0.2 } else { 0.0 },
            learn_threshold: false,
            max_epochs: 50,
        };
        let rep = perceptron(&req, &Limits::default());
        prop_assert!(rep.is_ok());
        if let Ok(rep) = rep {
            // converged implies the final weights classify every sample
            if rep.converged {
                for s in &rep.samples {
                    let dot: f64 = rep.weights.iter().zip(&s.x).map(|(w, x)| w * x).sum();
                    let fires = if threshold { dot >= rep.bias } else { dot + rep.bias >= 0.0 };
                    prop_assert_eq!(if fires { 1.0 } else { 0.0 }, s.target);
                }
                // and a converged perceptron proves separability
                if !threshold {
                    prop_assert_eq!(rep.linearly_separable, Some(true));
                }
            }
            // a separator, when reported, separates
            if let Some(h) = &rep.separator {
                for s in &rep.samples {
                    let v: f64 = h.weights.iter().zip(&s.x).map(|(w, x)| w * x).sum::<f64>() + h.bias;
                    let ok = if s.target == 1.0 { v >= 1.0 - 1e-6 } else { v <= -1.0 + 1e-6 };
                    prop_assert!(ok, "separator {:?} fails on {:?}", h, s);
                }
            }
        }
    }

    #[test]
    fn parser_never_panics_on_math_like_text(s in "[-+*/^()\\[\\],. xyeπσ√²³⁻¹0-9a-z×·−÷]{0,60}") {
        let limits = ExprLimits::default();
        match parse(&s, &limits) {
            Ok(e) => {
                let again = parse(&e.to_string(), &ExprLimits { max_len: 1 << 20, max_depth: 128 });
                prop_assert_eq!(again.ok(), Some(e.clone()));
                let _ = e.eval(&|_: &str| Some(0.5));
                let _ = e.derivative("x");
            }
            Err(err) => prop_assert!(err.position <= s.len() && !err.message.is_empty()),
        }
    }
}
