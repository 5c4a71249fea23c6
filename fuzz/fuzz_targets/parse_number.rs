//! `grading::number::parse_number` on arbitrary UTF-8, with every number
//! format (the first byte picks percent on/off and the comma rule). A value
//! that parses must be finite.
#![no_main]

use dlgrade::grading::model::DecimalComma;
use dlgrade::grading::number::{NumberFormat, parse_number};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let Ok(src) = std::str::from_utf8(rest) else {
        return;
    };
    let decimal_comma = match first % 3 {
        0 => DecimalComma::Auto,
        1 => DecimalComma::Always,
        _ => DecimalComma::Never,
    };
    let fmt = NumberFormat {
        allow_percent: first & 0x80 != 0,
        decimal_comma,
    };
    if let Ok(n) = parse_number(src, fmt) {
        assert!(n.value.is_finite(), "non-finite value {n:?} from {src:?}");
    }
});
