//! The short-text helpers of `grading::text` on arbitrary UTF-8 (split in two
//! at the first NUL byte for the two-argument functions).
#![no_main]

use dlgrade::grading::text::{
    ascii_lookalikes, check_len, contains_words, contains_words_near, delatex, last_side, near,
    strip_approx, words,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let (a, b) = src.split_once('\0').unwrap_or((src, ""));
    let _ = check_len(a, "answer");
    let plain = ascii_lookalikes(a);
    let _ = last_side(&plain);
    let _ = strip_approx(&plain);
    let _ = delatex(&plain);
    let wa = words(a);
    let wb = words(b);
    let _ = contains_words(&wa, &wb);
    let _ = contains_words_near(&wa, &wb);
    let _ = near(a, b);
});
