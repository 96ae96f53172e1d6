-- The production database before the cutover.
CREATE TABLE notes (id bigserial PRIMARY KEY, body text NOT NULL);
INSERT INTO notes (body) SELECT 'note ' || g FROM generate_series(1, 20) g;
