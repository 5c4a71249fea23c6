//! Structural validation of a rubric; every problem carries the JSON pointer
//! of the offending field. Key values themselves are read (and their problems
//! reported) by [`Rubric::resolve_keys`](super::model::Rubric::resolve_keys).

use std::collections::BTreeSet;

use super::model::{
    AnswerSpec, CreditRule, DeductionCondition, ExpectedValue, ExprList, Recognizer, Rubric,
    RubricProblem, Tolerance,
};
use super::text;

/// Most parts in one rubric.
pub const MAX_PARTS: usize = 100;
/// Most rules, options, groups or phrases in one list.
pub const MAX_LIST: usize = 200;
/// Most phrases (including partial synonyms) in one concepts part.
pub const MAX_PHRASES: usize = 500;
/// Largest `max_points` of a part.
pub const MAX_POINTS: f64 = 1000.0;

/// `[A-Za-z][A-Za-z0-9_]*`, at most 64 characters: part ids, template
/// parameter and derived-value names.
pub(crate) fn is_ident(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(f) if f.is_ascii_alphabetic())
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
        && s.len() <= 64
}

fn finite_in(x: f64, lo: f64, hi: f64) -> bool {
    x.is_finite() && x >= lo && x <= hi
}

impl Rubric {
    /// Checks the rubric's structure. Returns every problem found.
    pub fn validate(&self) -> Result<(), Vec<RubricProblem>> {
        let mut v = Vec::new();
        if self.title.trim().is_empty() {
            v.push(RubricProblem::new("/title", "the title is empty"));
        }
        if self.parts.is_empty() || self.parts.len() > MAX_PARTS {
            v.push(RubricProblem::new(
                "/parts",
                format!("a rubric has 1 to {MAX_PARTS} parts"),
            ));
        }
        let mut ids = BTreeSet::new();
        for (i, part) in self.parts.iter().enumerate() {
            let base = format!("/parts/{i}");
            if !is_ident(&part.id) {
                v.push(RubricProblem::new(
                    format!("{base}/id"),
                    "a part id is a letter followed by letters, digits or '_' (at most 64)",
                ));
            }
            if !ids.insert(part.id.as_str()) {
                v.push(RubricProblem::new(
                    format!("{base}/id"),
                    format!("duplicate part id '{}'", part.id),
                ));
            }
            let max = part.max_points;
            if !(max.is_finite() && max > 0.0 && max <= MAX_POINTS) {
                v.push(RubricProblem::new(
                    format!("{base}/max_points"),
                    format!("max_points must be > 0 and at most {MAX_POINTS}"),
                ));
            }
            validate_answer(&part.answer, max, &format!("{base}/answer"), &mut v);
            let mut rule_ids = BTreeSet::new();
            for (name, list) in [
                ("alternatives", &part.alternatives),
                ("mistakes", &part.mistakes),
            ] {
                if list.len() > MAX_LIST {
                    v.push(RubricProblem::new(
                        format!("{base}/{name}"),
                        "too many rules",
                    ));
                }
                for (j, r) in list.iter().enumerate() {
                    let ptr = format!("{base}/{name}/{j}");
                    if !rule_ids.insert(r.id.as_str()) {
                        v.push(RubricProblem::new(
                            format!("{ptr}/id"),
                            format!("duplicate rule id '{}'", r.id),
                        ));
                    }
                    validate_rule(r, &part.answer, max, &ptr, &mut v);
                }
            }
            for (j, d) in part.deductions.iter().enumerate() {
                let ptr = format!("{base}/deductions/{j}");
                if !rule_ids.insert(d.id.as_str()) {
                    v.push(RubricProblem::new(
                        format!("{ptr}/id"),
                        format!("duplicate rule id '{}'", d.id),
                    ));
                }
                if !(d.points.is_finite() && d.points > 0.0 && d.points <= max) {
                    v.push(RubricProblem::new(
                        format!("{ptr}/points"),
                        "a deduction takes off between 0 (exclusive) and max_points",
                    ));
                }
                let shape_like = matches!(
                    part.answer,
                    AnswerSpec::Shape(_) | AnswerSpec::WeightShape(_)
                );
                match &d.when {
                    DeductionCondition::Scalar if !matches!(&part.answer, AnswerSpec::Shape(s) if s.scalar_shorthand) =>
                    {
                        v.push(RubricProblem::new(
                            format!("{ptr}/when"),
                            "'scalar' needs a shape answer with scalar_shorthand: true",
                        ));
                    }
                    DeductionCondition::Rank { .. } if !shape_like => {
                        v.push(RubricProblem::new(
                            format!("{ptr}/when"),
                            "'rank' applies to shape and weight_shape answers",
                        ));
                    }
                    DeductionCondition::Contains { phrases }
                    | DeductionCondition::Missing { phrases }
                        if phrases.is_empty()
                            || phrases.iter().any(|p| text::words(p).is_empty()) =>
                    {
                        v.push(RubricProblem::new(
                            format!("{ptr}/when/phrases"),
                            "give at least one phrase, each with a word in it",
                        ));
                    }
                    _ => {}
                }
            }
            for (j, m) in part.method_credit.iter().enumerate() {
                let ptr = format!("{base}/method_credit/{j}");
                if !rule_ids.insert(m.id.as_str()) {
                    v.push(RubricProblem::new(
                        format!("{ptr}/id"),
                        format!("duplicate rule id '{}'", m.id),
                    ));
                }
                if !(m.points.is_finite() && m.points > 0.0 && m.points <= max) {
                    v.push(RubricProblem::new(
                        format!("{ptr}/points"),
                        "method credit is between 0 (exclusive) and max_points",
                    ));
                }
                validate_tolerance(m.tolerance, &format!("{ptr}/tolerance"), &mut v);
            }
            if let Some(ft) = &part.follow_through {
                let ptr = format!("{base}/follow_through");
                match self.parts[..i].iter().find(|p| p.id == ft.from) {
                    None => v.push(RubricProblem::new(
                        format!("{ptr}/from"),
                        format!("'{}' is not an earlier part", ft.from),
                    )),
                    Some(src) => {
                        if !matches!(
                            src.answer,
                            AnswerSpec::Number(_)
                                | AnswerSpec::Integer(_)
                                | AnswerSpec::Shape(_)
                                | AnswerSpec::Vector(_)
                        ) {
                            v.push(RubricProblem::new(
                                format!("{ptr}/from"),
                                "follow-through reads number, integer, shape or vector parts",
                            ));
                        }
                    }
                }
                match (&part.answer, &ft.expr) {
                    (AnswerSpec::Number(_) | AnswerSpec::Integer(_), ExprList::One(_)) => {}
                    (AnswerSpec::Shape(_) | AnswerSpec::Vector(_), ExprList::Many(list))
                        if !list.is_empty() && list.len() <= 16 => {}
                    _ => v.push(RubricProblem::new(
                        format!("{ptr}/expr"),
                        "number and integer parts take one expression; shape and vector parts a list of 1 to 16",
                    )),
                }
                if let Some(p) = ft.points
                    && !finite_in(p, 0.0, max)
                {
                    v.push(RubricProblem::new(
                        format!("{ptr}/points"),
                        "follow-through points are between 0 and max_points",
                    ));
                }
                if let Some(pl) = &ft.plausible
                    && let (Some(lo), Some(hi)) = (pl.min, pl.max)
                    && lo > hi
                {
                    v.push(RubricProblem::new(
                        format!("{ptr}/plausible"),
                        "min must not exceed max",
                    ));
                }
            }
        }
        let total: f64 = self.parts.iter().map(|p| p.max_points).sum();
        for (t, test) in self.tests.iter().enumerate() {
            let ptr = format!("/tests/{t}");
            for k in test.answers.0.keys() {
                if !ids.contains(k.as_str()) {
                    v.push(RubricProblem::new(
                        format!("{ptr}/answers/{k}"),
                        format!("no part '{k}'"),
                    ));
                }
            }
            for k in test.expected_parts.keys() {
                if !ids.contains(k.as_str()) {
                    v.push(RubricProblem::new(
                        format!("{ptr}/expected_parts/{k}"),
                        format!("no part '{k}'"),
                    ));
                }
            }
            if !finite_in(test.expected_score, 0.0, total) {
                v.push(RubricProblem::new(
                    format!("{ptr}/expected_score"),
                    "expected_score is between 0 and the rubric's total",
                ));
            }
        }
        if v.is_empty() { Ok(()) } else { Err(v) }
    }
}

fn validate_tolerance(t: Tolerance, ptr: &str, v: &mut Vec<RubricProblem>) {
    let ok = match t {
        Tolerance::Relative { rtol } => finite_in(rtol, 0.0, 1e6),
        Tolerance::Absolute { atol } => finite_in(atol, 0.0, f64::MAX),
        Tolerance::Relabs { rtol, atol } => {
            finite_in(rtol, 0.0, 1e6) && finite_in(atol, 0.0, f64::MAX)
        }
        Tolerance::Sigfig { digits } => (1..=15).contains(&digits),
        Tolerance::Decdig { digits } => digits <= 15,
        Tolerance::Exact => true,
    };
    if !ok {
        v.push(RubricProblem::new(
            ptr,
            "tolerances are finite and >= 0; sigfig digits 1..=15, decdig digits 0..=15",
        ));
    }
}

fn validate_answer(a: &AnswerSpec, max: f64, ptr: &str, v: &mut Vec<RubricProblem>) {
    match a {
        AnswerSpec::Number(n) => validate_tolerance(n.tolerance, &format!("{ptr}/tolerance"), v),
        AnswerSpec::Vector(m) | AnswerSpec::Matrix(m) => {
            validate_tolerance(m.tolerance, &format!("{ptr}/tolerance"), v);
            if let Some(p) = &m.per_entry
                && !finite_in(p.points, 0.0, max)
            {
                v.push(RubricProblem::new(
                    format!("{ptr}/per_entry/points"),
                    "per-entry points are between 0 and max_points",
                ));
            }
        }
        AnswerSpec::WeightShape(w) => {
            if w.accept.is_empty() {
                v.push(RubricProblem::new(
                    format!("{ptr}/accept"),
                    "accept at least one convention",
                ));
            }
            let mut seen = BTreeSet::new();
            for (j, c) in w.accept.iter().enumerate() {
                if !seen.insert(c.convention) {
                    v.push(RubricProblem::new(
                        format!("{ptr}/accept/{j}/convention"),
                        "convention listed twice",
                    ));
                }
                if let Some(p) = c.points
                    && !finite_in(p, 0.0, max)
                {
                    v.push(RubricProblem::new(
                        format!("{ptr}/accept/{j}/points"),
                        "points are between 0 and max_points",
                    ));
                }
            }
        }
        AnswerSpec::Expression(e) => {
            if !(1..=200).contains(&e.samples) {
                v.push(RubricProblem::new(
                    format!("{ptr}/samples"),
                    "samples is 1..=200",
                ));
            }
            if e.min_defined == 0 || e.min_defined > e.samples {
                v.push(RubricProblem::new(
                    format!("{ptr}/min_defined"),
                    "min_defined is 1..=samples",
                ));
            }
            if !finite_in(e.rtol, 0.0, 1.0) || !finite_in(e.atol, 0.0, f64::MAX) {
                v.push(RubricProblem::new(
                    format!("{ptr}/rtol"),
                    "rtol is in [0, 1] and atol finite >= 0",
                ));
            }
            for (name, [lo, hi]) in &e.ranges {
                if !(lo.is_finite() && hi.is_finite() && lo < hi) {
                    v.push(RubricProblem::new(
                        format!("{ptr}/ranges/{name}"),
                        "a range is [lo, hi] with finite lo < hi",
                    ));
                }
            }
        }
        AnswerSpec::Choice(c) => {
            if c.options.is_empty() || c.options.len() > MAX_LIST {
                v.push(RubricProblem::new(
                    format!("{ptr}/options"),
                    "give 1 to 200 options",
                ));
            }
            let mut seen = BTreeSet::new();
            for (j, o) in c.options.iter().enumerate() {
                if o.id.trim().is_empty() || !seen.insert(o.id.to_lowercase()) {
                    v.push(RubricProblem::new(
                        format!("{ptr}/options/{j}/id"),
                        "option ids are non-empty and unique (ignoring case)",
                    ));
                }
            }
            for (j, id) in c.correct.iter().enumerate() {
                if !c.options.iter().any(|o| &o.id == id) {
                    v.push(RubricProblem::new(
                        format!("{ptr}/correct/{j}"),
                        format!("'{id}' is not an option"),
                    ));
                }
            }
            if (c.correct.is_empty() && c.compute.is_none()) || (!c.multiple && c.correct.len() > 1)
            {
                v.push(RubricProblem::new(
                    format!("{ptr}/correct"),
                    "a single choice has exactly one correct option; a multiple choice at least one (or a `compute` giving them)",
                ));
            }
            if c.compute.is_some() && !c.options.iter().any(|o| o.value.is_some()) {
                v.push(RubricProblem::new(
                    format!("{ptr}/options"),
                    "a computed choice key needs options with a `value` to match",
                ));
            }
        }
        AnswerSpec::Concepts(c) => {
            if c.groups.is_empty() || c.groups.len() > MAX_LIST {
                v.push(RubricProblem::new(
                    format!("{ptr}/groups"),
                    "give 1 to 200 groups",
                ));
            }
            let phrases: usize = c
                .groups
                .iter()
                .map(|g| g.phrases.len() + g.partial.iter().map(|p| p.phrases.len()).sum::<usize>())
                .sum();
            if phrases > MAX_PHRASES {
                v.push(RubricProblem::new(
                    format!("{ptr}/groups"),
                    format!("at most {MAX_PHRASES} phrases in all groups of a part"),
                ));
            }
            let mut seen = BTreeSet::new();
            for (j, g) in c.groups.iter().enumerate() {
                let gp = format!("{ptr}/groups/{j}");
                if !seen.insert(g.id.as_str()) {
                    v.push(RubricProblem::new(format!("{gp}/id"), "duplicate group id"));
                }
                if !(g.points.is_finite() && g.points != 0.0 && g.points.abs() <= max) {
                    v.push(RubricProblem::new(
                        format!("{gp}/points"),
                        "group points are non-zero and at most max_points in size",
                    ));
                }
                if g.phrases.is_empty() || g.phrases.len() > MAX_LIST {
                    v.push(RubricProblem::new(
                        format!("{gp}/phrases"),
                        "give 1 to 200 phrases",
                    ));
                }
                for (k, p) in g.phrases.iter().enumerate() {
                    if text::words(p).is_empty() {
                        v.push(RubricProblem::new(
                            format!("{gp}/phrases/{k}"),
                            "a phrase needs at least one word",
                        ));
                    }
                }
                if let Some(m) = g.misspelled
                    && (g.points < 0.0 || !(m.is_finite() && m > 0.0 && m <= g.points))
                {
                    v.push(RubricProblem::new(
                        format!("{gp}/misspelled"),
                        "misspelled points are above 0 and at most the (positive) group's points",
                    ));
                }
                for (k, p) in g.partial.iter().enumerate() {
                    let pp = format!("{gp}/partial/{k}");
                    if g.points < 0.0
                        || !(p.points.is_finite() && p.points > 0.0 && p.points < g.points)
                    {
                        v.push(RubricProblem::new(
                            format!("{pp}/points"),
                            "partial synonyms earn more than 0 and less than their (positive) group",
                        ));
                    }
                    if p.phrases.is_empty() || p.phrases.iter().any(|s| text::words(s).is_empty()) {
                        v.push(RubricProblem::new(
                            format!("{pp}/phrases"),
                            "give at least one phrase, each with a word in it",
                        ));
                    }
                }
            }
        }
        AnswerSpec::Integer(_) | AnswerSpec::Shape(_) | AnswerSpec::FreeText(_) => {}
    }
}

fn validate_rule(
    r: &CreditRule,
    answer: &AnswerSpec,
    max: f64,
    ptr: &str,
    v: &mut Vec<RubricProblem>,
) {
    if !finite_in(r.points, 0.0, max) {
        v.push(RubricProblem::new(
            format!("{ptr}/points"),
            "rule points are between 0 and max_points",
        ));
    }
    let given = [
        r.value.is_some(),
        r.patch.is_some(),
        r.recognize.is_some(),
        r.dims.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if given != 1 {
        v.push(RubricProblem::new(
            ptr,
            "a rule gives exactly one of value, patch, recognize, dims",
        ));
    }
    let valued = !matches!(
        answer,
        AnswerSpec::Choice(_) | AnswerSpec::Concepts(_) | AnswerSpec::FreeText(_)
    );
    if !valued && given > 0 {
        v.push(RubricProblem::new(
            ptr,
            "choice, concepts and free_text parts take no alternatives or mistakes",
        ));
    }
    if r.patch.is_some() {
        let computed = matches!(
            super::resolve::expected_of(answer),
            Some(ExpectedValue::Computed(_))
        );
        if !computed {
            v.push(RubricProblem::new(
                format!("{ptr}/patch"),
                "a patch needs the part's expected value to be computed",
            ));
        }
    }
    if r.dims.is_some() && !matches!(answer, AnswerSpec::Shape(_)) {
        v.push(RubricProblem::new(
            format!("{ptr}/dims"),
            "dims applies to shape answers",
        ));
    }
    if let Some(rec) = r.recognize {
        let ok = match rec {
            Recognizer::Transpose => matches!(answer, AnswerSpec::Matrix(_)),
            Recognizer::SignFlip => matches!(
                answer,
                AnswerSpec::Number(_)
                    | AnswerSpec::Integer(_)
                    | AnswerSpec::Vector(_)
                    | AnswerSpec::Matrix(_)
            ),
            Recognizer::PercentScale => matches!(answer, AnswerSpec::Number(_)),
            Recognizer::OffByOne => {
                matches!(answer, AnswerSpec::Number(_) | AnswerSpec::Integer(_))
            }
            Recognizer::Reversed | Recognizer::Permutation | Recognizer::Subsequence => {
                matches!(answer, AnswerSpec::Shape(_) | AnswerSpec::WeightShape(_))
            }
        };
        if !ok {
            v.push(RubricProblem::new(
                format!("{ptr}/recognize"),
                "this mistake does not apply to the part's answer type",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(json: serde_json::Value) -> Vec<String> {
        let r: Rubric = serde_json::from_value(json).unwrap();
        match r.validate() {
            Ok(()) => vec![],
            Err(v) => v.into_iter().map(|p| p.pointer).collect(),
        }
    }

    #[test]
    fn a_good_rubric_validates() {
        assert!(
            problems(serde_json::json!({
                "title": "t", "parts": [{"id": "a", "max_points": 1,
                "answer": {"type": "number", "expected": 2}}]
            }))
            .is_empty()
        );
    }

    #[test]
    fn problems_carry_pointers() {
        let p = problems(serde_json::json!({
            "title": " ",
            "parts": [
                {"id": "a", "max_points": 0, "answer": {"type": "number", "expected": 2,
                    "tolerance": {"mode": "sigfig", "digits": 0}},
                 "alternatives": [{"id": "x", "points": 5, "value": 1}],
                 "mistakes": [{"id": "x", "points": 0, "recognize": "transpose"}]},
                {"id": "a", "max_points": 1, "answer": {"type": "choice",
                    "options": [{"id": "a"}], "correct": ["b"]},
                 "follow_through": {"from": "z", "expr": "z"}},
                {"id": "9c", "max_points": 1, "answer": {"type": "shape", "expected": [1]},
                 "alternatives": [{"id": "p", "points": 1, "patch": {"/a": 1}}],
                 "deductions": [{"id": "d", "points": 1, "when": {"kind": "scalar"}}]}
            ],
            "tests": [{"name": "t", "answers": {"q": "1"}, "expected_score": 99}]
        }));
        for want in [
            "/title",
            "/parts/0/max_points",
            "/parts/0/answer/tolerance",
            "/parts/0/alternatives/0/points",
            "/parts/0/mistakes/0/id",
            "/parts/0/mistakes/0/recognize",
            "/parts/1/id",
            "/parts/1/answer/correct/0",
            "/parts/1/follow_through/from",
            "/parts/2/id",
            "/parts/2/alternatives/0/patch",
            "/parts/2/deductions/0/when",
            "/tests/0/answers/q",
            "/tests/0/expected_score",
        ] {
            assert!(p.iter().any(|x| x == want), "missing {want} in {p:?}");
        }
    }
}
