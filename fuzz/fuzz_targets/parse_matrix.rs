//! `grading::matrix::parse_matrix` on arbitrary UTF-8; a matrix that parses is
//! transposed, flipped, rendered and read back.
#![no_main]

use dlgrade::grading::matrix::{parse_matrix, render_matrix};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(m) = parse_matrix(src) {
        let t = m.transpose();
        assert_eq!(t.transpose().to_rows(), m.to_rows());
        let _ = m.hflip();
        let _ = m.vflip();
        let _ = m.as_vector();
        let text = render_matrix(&m, false);
        let _ = parse_matrix(&text);
    }
});
