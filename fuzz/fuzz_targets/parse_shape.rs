//! `grading::shape::parse_shape` on arbitrary UTF-8, then rendering the dims
//! it read and reading them back (must give the same dims).
#![no_main]

use dlgrade::grading::shape::{parse_shape, render_shape};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(shape) = parse_shape(src) {
        let text = render_shape(&shape.dims);
        let again = parse_shape(&text);
        assert!(
            again.as_ref().is_ok_and(|s| s.dims == shape.dims),
            "{src:?} -> {:?} -> {text:?} -> {again:?}",
            shape.dims
        );
    }
});
