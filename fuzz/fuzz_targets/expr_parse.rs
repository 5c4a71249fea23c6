//! `compute::expr::parse` (default limits: 4096 characters, depth 64) and the
//! grading front end `grading::number::parse_expr` on arbitrary UTF-8. A tree
//! that parses is printed as LaTeX and simplified.
#![no_main]

use dlgrade::compute::expr::{ExprLimits, parse};
use dlgrade::grading::number::parse_expr;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(e) = parse(src, &ExprLimits::default()) {
        let _ = e.to_latex();
        let _ = e.variables();
        let _ = e.simplified();
    }
    let _ = parse_expr(src);
});
