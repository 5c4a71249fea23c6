//! The question bank: the rubrics in `bank/` (embedded in the binary), each
//! with computed answer keys and self-tests, loaded into the database by
//! `dlgrade bank load` and on the first start with an empty database.

use anyhow::Context;
use include_dir::{Dir, include_dir};
use sha2::{Digest, Sha256};

use crate::compute::limits::Limits;
use crate::grading::Rubric;
use crate::grading::engines::Engines;
use crate::store::Store;
use crate::store::rubrics::NewRubricVersion;

static BANK: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/bank");

/// Who stored bank rubrics (the `created_by` of their versions).
pub const BANK_AUTHOR: &str = "bank";

/// One bank file: its slug (the file name without `.json`) and its text.
pub fn files() -> Vec<(&'static str, &'static str)> {
    let mut files: Vec<(&str, &str)> = BANK
        .files()
        .filter_map(|f| {
            let name = f.path().file_name()?.to_str()?;
            let slug = name.strip_suffix(".json")?;
            Some((slug, f.contents_utf8()?))
        })
        .collect();
    files.sort_unstable();
    files
}

/// The template parameters of a bank question (empty for a fixed question
/// or an unknown slug), read once from the embedded files.
pub fn parameters(slug: &str) -> Vec<String> {
    static PARAMETERS: std::sync::OnceLock<std::collections::HashMap<String, Vec<String>>> =
        std::sync::OnceLock::new();
    PARAMETERS
        .get_or_init(|| {
            files()
                .into_iter()
                .filter_map(|(slug, text)| {
                    let rubric: Rubric = serde_json::from_str(text).ok()?;
                    Some((
                        slug.to_owned(),
                        rubric.template?.parameters.into_keys().collect(),
                    ))
                })
                .collect()
        })
        .get(slug)
        .cloned()
        .unwrap_or_default()
}

/// What loading did with one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loaded {
    Created {
        slug: String,
        rubric_id: String,
    },
    NewVersion {
        slug: String,
        rubric_id: String,
        version: i64,
    },
    Unchanged {
        slug: String,
    },
}

/// Loads every bank file: new files become rubrics, changed files new
/// versions, unchanged files are skipped. A file that does not parse,
/// resolve or pass its self-tests stops the load with its name.
pub async fn load(store: &Store, limits: &Limits) -> anyhow::Result<Vec<Loaded>> {
    let known: std::collections::HashMap<String, (String, String)> = store
        .bank_entries()
        .await?
        .into_iter()
        .map(|e| (e.slug, (e.rubric_id, e.content_hash)))
        .collect();
    let mut outcome = Vec::new();
    for (slug, text) in files() {
        let hash = hex::encode(Sha256::digest(text.as_bytes()));
        if known.get(slug).is_some_and(|(_, h)| *h == hash) {
            outcome.push(Loaded::Unchanged { slug: slug.into() });
            continue;
        }
        let rubric: Rubric = serde_json::from_str(text)
            .with_context(|| format!("bank/{slug}.json is not a rubric"))?;
        let engines = Engines {
            limits: limits.clone(),
        };
        let resolved = rubric.resolve_keys(&engines).map_err(|problems| {
            anyhow::anyhow!(
                "bank/{slug}.json does not resolve: {}",
                problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        })?;
        let tests = resolved.run_all_self_tests();
        anyhow::ensure!(
            tests.failures.is_empty(),
            "bank/{slug}.json fails {} of its {} self-tests: {:?}",
            tests.failures.len(),
            tests.total,
            tests.failures
        );
        if rubric.template.is_some() {
            for seed in 0..3 {
                rubric.variant(seed, &engines).map_err(|e| {
                    anyhow::anyhow!("bank/{slug}.json gives no variant for seed {seed}: {e}")
                })?;
            }
        }
        let findings = rubric.audit(&engines);
        let body = serde_json::to_value(&rubric)?;
        let resolved_json = serde_json::to_value(resolved.rubric())?;
        let warnings = serde_json::to_value(&findings)?;
        let new = NewRubricVersion {
            title: &rubric.title,
            body: &body,
            resolved: &resolved_json,
            warnings: &warnings,
            author: BANK_AUTHOR,
        };
        let (loaded, rubric_id) = match known.get(slug) {
            Some((rubric_id, _)) => match store.add_rubric_version(rubric_id, new).await? {
                Some(record) => (
                    Loaded::NewVersion {
                        slug: slug.into(),
                        rubric_id: record.rubric_id.clone(),
                        version: record.version,
                    },
                    record.rubric_id,
                ),
                None => anyhow::bail!("bank entry {slug} points at a missing rubric {rubric_id}"),
            },
            None => {
                let record = store.create_rubric(new).await?;
                (
                    Loaded::Created {
                        slug: slug.into(),
                        rubric_id: record.rubric_id.clone(),
                    },
                    record.rubric_id,
                )
            }
        };
        store.upsert_bank_entry(slug, &rubric_id, &hash).await?;
        outcome.push(loaded);
    }
    Ok(outcome)
}
