-- releaseClaims (at the end of every generate-drops run) and the reaper's releaseOrphanedClaims
-- (every pass) find claimed blueprints by drops_claimed_by_log_id; without an index each read all
-- of exam_blueprints (BENCHMARKS.md B8). Partial: only blueprints claimed right now are in it.
-- Locking: drizzle runs migrations in one transaction, so this is a plain CREATE INDEX (CONCURRENTLY
-- cannot run in a transaction): it blocks writes to exam_blueprints (reads go on) while it builds,
-- well under a second at 100 k blueprints (B8). An operator with a much larger table can run
-- CREATE INDEX CONCURRENTLY with the same definition beforehand; IF NOT EXISTS then skips it here.
CREATE INDEX IF NOT EXISTS "exam_blueprints_drops_claimed_idx" ON "exam_blueprints" USING btree ("drops_claimed_by_log_id") WHERE drops_claimed_by_log_id is not null;
