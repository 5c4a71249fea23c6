//! Item statistics of a rubric's graded submissions, as Moodle's quiz
//! statistics report them: per part the mean, the facility index and the
//! discrimination index, the score distribution, and how often each credit
//! rule (each recognized common mistake included) matched.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::grade::GradeResult;

/// Statistics of one part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PartStatistics {
    pub part_id: String,
    pub max_points: f64,
    /// Mean points.
    pub mean: f64,
    /// Population standard deviation of the points.
    pub std_dev: f64,
    /// Facility index: mean points / max points, in percent (Moodle).
    pub facility: f64,
    /// Discrimination index: Pearson correlation, in percent, between the
    /// part's points and the rest of the test (total minus this part), as
    /// Moodle defines it. None when either has no variance or n < 2.
    pub discrimination_index: Option<f64>,
    /// How often each rule set the score (`full`, an alternative or mistake
    /// id, ...; `none` when nothing matched), most frequent first.
    pub rule_counts: Vec<RuleCount>,
}

/// How often one rule matched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RuleCount {
    pub rule: String,
    pub count: u64,
}

/// One bin of the score distribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ScoreBin {
    /// Lower bound, in percent of the maximum (inclusive).
    pub from_percent: f64,
    /// Upper bound, in percent (exclusive, except 100 which is in the last bin).
    pub to_percent: f64,
    pub count: u64,
}

/// Statistics of a rubric's graded submissions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Statistics {
    /// Number of graded results counted.
    pub count: u64,
    /// Mean total score.
    pub mean_score: f64,
    /// Median total score.
    pub median_score: f64,
    /// Population standard deviation of the total score.
    pub std_dev: f64,
    /// Ten bins of 10 % of the maximum score each.
    pub distribution: Vec<ScoreBin>,
    /// Per part, in rubric order.
    pub parts: Vec<PartStatistics>,
}

fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        0.0
    } else {
        xs.iter().sum::<f64>() / xs.len() as f64
    }
}

fn std_dev(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let m = mean(xs);
    (xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / xs.len() as f64).sqrt()
}

/// Pearson correlation; None without variance on either side.
fn correlation(xs: &[f64], ys: &[f64]) -> Option<f64> {
    if xs.len() < 2 || xs.len() != ys.len() {
        return None;
    }
    let (mx, my) = (mean(xs), mean(ys));
    let mut sxy = 0.0;
    let mut sxx = 0.0;
    let mut syy = 0.0;
    for (x, y) in xs.iter().zip(ys) {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx) * (x - mx);
        syy += (y - my) * (y - my);
    }
    let denominator = (sxx * syy).sqrt();
    (denominator > 1e-12).then(|| sxy / denominator)
}

/// Statistics over `results` (one per learner, as the caller chooses them).
/// Parts are identified by id, in the order of the first result.
pub fn statistics(results: &[&GradeResult]) -> Statistics {
    let totals: Vec<f64> = results.iter().map(|r| r.score).collect();

    let mut distribution: Vec<ScoreBin> = (0..10)
        .map(|i| ScoreBin {
            from_percent: f64::from(i) * 10.0,
            to_percent: f64::from(i + 1) * 10.0,
            count: 0,
        })
        .collect();
    for r in results {
        if r.max_score > 0.0 {
            let percent = (r.score / r.max_score * 100.0).clamp(0.0, 100.0);
            let bin = ((percent / 10.0).floor() as usize).min(9);
            distribution[bin].count += 1;
        }
    }

    let part_ids: Vec<(String, f64)> = results
        .first()
        .map(|r| {
            r.parts
                .iter()
                .map(|p| (p.part_id.clone(), p.max_points))
                .collect()
        })
        .unwrap_or_default();
    let parts = part_ids
        .into_iter()
        .map(|(id, max_points)| {
            let mut points = Vec::with_capacity(results.len());
            let mut rest = Vec::with_capacity(results.len());
            let mut counts: BTreeMap<String, u64> = BTreeMap::new();
            for r in results {
                let part = r.parts.iter().find(|p| p.part_id == id);
                let p = part.map_or(0.0, |p| p.points);
                points.push(p);
                rest.push(r.score - p);
                let rule = part
                    .and_then(|p| p.matched_rule.clone())
                    .unwrap_or_else(|| "none".into());
                *counts.entry(rule).or_default() += 1;
            }
            let mut rule_counts: Vec<RuleCount> = counts
                .into_iter()
                .map(|(rule, count)| RuleCount { rule, count })
                .collect();
            rule_counts.sort_by(|a, b| b.count.cmp(&a.count).then(a.rule.cmp(&b.rule)));
            let m = mean(&points);
            PartStatistics {
                part_id: id,
                max_points,
                mean: m,
                std_dev: std_dev(&points),
                facility: if max_points > 0.0 {
                    m / max_points * 100.0
                } else {
                    0.0
                },
                discrimination_index: correlation(&points, &rest).map(|r| r * 100.0),
                rule_counts,
            }
        })
        .collect();

    let mut sorted = totals.clone();
    sorted.sort_by(f64::total_cmp);
    let median_score = match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    };
    Statistics {
        count: results.len() as u64,
        mean_score: mean(&totals),
        median_score,
        std_dev: std_dev(&totals),
        distribution,
        parts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grading::grade::{GradeStatus, PartResult, Verdict};

    fn result(parts: &[(&str, f64, f64, &str)]) -> GradeResult {
        let parts: Vec<PartResult> = parts
            .iter()
            .map(|(id, points, max, rule)| PartResult {
                part_id: (*id).into(),
                points: *points,
                max_points: *max,
                verdict: if points == max {
                    Verdict::Correct
                } else {
                    Verdict::Incorrect
                },
                matched_rule: (!rule.is_empty()).then(|| (*rule).to_string()),
                feedback: vec![],
                normalized_answer: None,
                reason: None,
                follow_through_applied: false,
                mask: None,
            })
            .collect();
        GradeResult {
            score: parts.iter().map(|p| p.points).sum(),
            max_score: parts.iter().map(|p| p.max_points).sum(),
            status: GradeStatus::FullyGraded,
            parts,
        }
    }

    #[test]
    fn facility_discrimination_and_rule_counts() {
        let rs = [
            result(&[("a", 2.0, 2.0, "full"), ("b", 1.0, 1.0, "full")]),
            result(&[("a", 1.0, 2.0, "spatial_only"), ("b", 1.0, 1.0, "full")]),
            result(&[("a", 0.0, 2.0, ""), ("b", 0.0, 1.0, "")]),
            result(&[("a", 2.0, 2.0, "full"), ("b", 0.0, 1.0, "")]),
        ];
        let refs: Vec<&GradeResult> = rs.iter().collect();
        let s = statistics(&refs);
        assert_eq!(s.count, 4);
        assert!((s.mean_score - 7.0 / 4.0).abs() < 1e-12);
        assert!((s.median_score - 2.0).abs() < 1e-12);
        let a = &s.parts[0];
        assert!((a.mean - 1.25).abs() < 1e-12);
        assert!((a.facility - 62.5).abs() < 1e-12);
        // a = [2,1,0,2], rest = b = [1,1,0,0]: r = 0.5/sqrt(2.75*1) by hand
        let expected = 0.5 / (2.75f64).sqrt() * 100.0;
        assert!((a.discrimination_index.unwrap() - expected).abs() < 1e-9);
        assert_eq!(
            a.rule_counts[0],
            RuleCount {
                rule: "full".into(),
                count: 2
            }
        );
        assert!(a.rule_counts.contains(&RuleCount {
            rule: "none".into(),
            count: 1
        }));
        // 3/3 -> last bin, 2/3 -> 60-70, 0 -> first, 2/3
        assert_eq!(s.distribution[9].count, 1);
        assert_eq!(s.distribution[6].count, 2);
        assert_eq!(s.distribution[0].count, 1);
    }

    #[test]
    fn no_variance_means_no_discrimination_index() {
        let rs = [
            result(&[("a", 1.0, 1.0, "full")]),
            result(&[("a", 1.0, 1.0, "full")]),
        ];
        let refs: Vec<&GradeResult> = rs.iter().collect();
        assert_eq!(statistics(&refs).parts[0].discrimination_index, None);
        assert_eq!(statistics(&[]).count, 0);
    }
}
