-- GET /api/harvest-items?q: the words of the titles, in a GIN index (PostgreSQL's own full-text
-- search, 'simple' configuration: lowercased, no stemming; no extension needed).
-- Locking: drizzle runs migrations in one transaction, so this is a plain CREATE INDEX (CONCURRENTLY
-- cannot run in a transaction): it blocks writes to harvest_items (new items, claims) while it
-- builds, about 10 s at 1 M items on a 2-core machine. An operator with a large table can run
-- CREATE INDEX CONCURRENTLY with the same definition beforehand; IF NOT EXISTS then skips it here.
CREATE INDEX IF NOT EXISTS "harvest_items_title_search_idx" ON "harvest_items" USING gin (to_tsvector('simple', "title"));
