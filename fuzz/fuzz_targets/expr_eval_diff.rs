//! Parse, evaluate, differentiate (first and second order, within the node
//! budget) and evaluate the derivative, on arbitrary UTF-8.
#![no_main]

use dlgrade::compute::expr::{ExprLimits, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(e) = parse(src, &ExprLimits::default()) else {
        return;
    };
    let point = |name: &str| Some(0.5 + name.len() as f64 * 0.25);
    let _ = e.eval(&point);
    let vars = e.variables();
    let var = vars.iter().next().map_or("x", String::as_str);
    if let Ok(d) = e.derivative(var) {
        let _ = d.eval(&point);
        let _ = d.to_latex();
        if let Ok(d2) = d.derivative(var) {
            let _ = d2.eval(&point);
        }
    }
});
