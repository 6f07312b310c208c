-- GET /api/jobs/logs?trigger= and ?status=FAILED without reading the whole history, and without an
-- index on a column a run's close changes (status, ended_at, items_*, error_message, metadata): one
-- would end the closes' HOT updates (drizzle/0003; measured: +20 µs of PostgreSQL CPU per run).
-- Runs that open or close their logs wait while this runs (reads go on), so none misses the
-- backfills below or the triggers at the end: 5 s at 1 M rows on a 2-core machine (README "Upgrades").
LOCK TABLE "job_logs" IN SHARE ROW EXCLUSIVE MODE;--> statement-breakpoint
-- 1. How each run was started, in a column of its own: metadata.trigger, computed and stored by
-- PostgreSQL (so every row has it, written by any release or by hand; adding it rewrites the table).
-- A close leaves its value as it was, and HOT compares indexed values: closes stay HOT.
ALTER TABLE "job_logs" ADD COLUMN "trigger" text GENERATED ALWAYS AS (metadata ->> 'trigger') STORED;--> statement-breakpoint
-- Partial: a cron run, nearly every run, adds no entry (a manual or cli run adds one at insert).
CREATE INDEX "job_logs_trigger_started_at_idx" ON "job_logs" USING btree ("trigger","started_at" DESC NULLS FIRST,"id" DESC NULLS FIRST) WHERE trigger <> 'cron';--> statement-breakpoint
-- 2. The FAILED runs' keys, in a small table of their own, kept by the triggers below.
CREATE TABLE "job_logs_failed" (
	"log_id" integer PRIMARY KEY NOT NULL,
	"job_name" text NOT NULL,
	"started_at" timestamp with time zone NOT NULL,
	"trigger" text
);
--> statement-breakpoint
INSERT INTO "job_logs_failed" ("log_id", "job_name", "started_at", "trigger")
SELECT "id", "job_name", "started_at", "trigger" FROM "job_logs" WHERE "status" = 'FAILED';--> statement-breakpoint
CREATE INDEX "job_logs_failed_started_at_idx" ON "job_logs_failed" USING btree ("started_at" DESC NULLS FIRST,"log_id" DESC NULLS FIRST);--> statement-breakpoint
CREATE INDEX "job_logs_failed_job_name_started_at_idx" ON "job_logs_failed" USING btree ("job_name","started_at" DESC NULLS FIRST,"log_id" DESC NULLS FIRST);--> statement-breakpoint
CREATE INDEX "job_logs_failed_trigger_started_at_idx" ON "job_logs_failed" USING btree ("trigger","started_at" DESC NULLS FIRST,"log_id" DESC NULLS FIRST);--> statement-breakpoint
-- A FAILED log has its row here, with its job_name, started_at and trigger; any other log has none.
CREATE FUNCTION "job_logs_failed_sync"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP <> 'DELETE' AND NEW."status" = 'FAILED' THEN
		INSERT INTO "job_logs_failed" ("log_id", "job_name", "started_at", "trigger")
		VALUES (NEW."id", NEW."job_name", NEW."started_at", NEW."trigger")
		ON CONFLICT ("log_id") DO UPDATE SET "job_name" = EXCLUDED."job_name", "started_at" = EXCLUDED."started_at", "trigger" = EXCLUDED."trigger";
	ELSE
		DELETE FROM "job_logs_failed" WHERE "log_id" = OLD."id";
	END IF;
	RETURN NULL;
END
$$;--> statement-breakpoint
-- The WHEN clauses are checked row by row without calling the function: opening a run, closing it
-- COMPLETED or deleting a COMPLETED log costs a comparison, not a call. A trigger rather than a
-- foreign key with on delete cascade, which would run a delete for every log deleted.
CREATE TRIGGER "job_logs_failed_insert" AFTER INSERT ON "job_logs"
FOR EACH ROW WHEN (NEW."status" = 'FAILED') EXECUTE FUNCTION "job_logs_failed_sync"();--> statement-breakpoint
CREATE TRIGGER "job_logs_failed_update" AFTER UPDATE OF "status", "job_name", "started_at", "metadata" ON "job_logs"
FOR EACH ROW WHEN ((OLD."status" = 'FAILED' OR NEW."status" = 'FAILED')
	AND (OLD."status", OLD."job_name", OLD."started_at", OLD."trigger") IS DISTINCT FROM (NEW."status", NEW."job_name", NEW."started_at", NEW."trigger"))
EXECUTE FUNCTION "job_logs_failed_sync"();--> statement-breakpoint
CREATE TRIGGER "job_logs_failed_delete" AFTER DELETE ON "job_logs"
FOR EACH ROW WHEN (OLD."status" = 'FAILED') EXECUTE FUNCTION "job_logs_failed_sync"();--> statement-breakpoint
CREATE FUNCTION "job_logs_failed_truncate"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	TRUNCATE "job_logs_failed";
	RETURN NULL;
END
$$;--> statement-breakpoint
CREATE TRIGGER "job_logs_failed_truncate" AFTER TRUNCATE ON "job_logs"
FOR EACH STATEMENT EXECUTE FUNCTION "job_logs_failed_truncate"();
