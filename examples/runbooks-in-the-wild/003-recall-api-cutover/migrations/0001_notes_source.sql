-- `flask db upgrade` of the release: additive, so Blue (the old image) keeps working on it.
ALTER TABLE notes ADD COLUMN source text;
