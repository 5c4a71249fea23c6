-- Listing a rubric's submissions page by page (`WHERE rubric_id = ? AND
-- id > ? ORDER BY id`) searches this index in order instead of sorting all
-- of the rubric's submissions for every page.
CREATE INDEX submissions_rubric ON submissions (rubric_id, id);
