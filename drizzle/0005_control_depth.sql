CREATE TABLE "job_schedule_changes" (
	"id" integer PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "job_schedule_changes_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 2147483647 START WITH 1 CACHE 1),
	"job_name" text NOT NULL,
	"before" jsonb,
	"after" jsonb NOT NULL,
	"source" text NOT NULL,
	"actor" text,
	"changed_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "job_schedule_changes_source_check" CHECK ("job_schedule_changes"."source" in ('api', 'table', 'seed'))
);
--> statement-breakpoint
ALTER TABLE "exam_blueprints" ADD COLUMN "drops_regenerate" jsonb;--> statement-breakpoint
ALTER TABLE "job_logs" ADD COLUMN "job_id" text;--> statement-breakpoint
-- Runs logged before this column existed carry their pg-boss job id in metadata only.
UPDATE "job_logs" SET "job_id" = "metadata"->>'job_id' WHERE "job_id" IS NULL AND "metadata" ? 'job_id';--> statement-breakpoint
-- source_url becomes unique: refuse to upgrade, naming the duplicates, rather than drop or rewrite anyone's rows.
DO $$
DECLARE dup record;
BEGIN
	SELECT "source_url", count(*) AS n, array_agg("id" ORDER BY "id") AS ids INTO dup
	FROM "harvest_items" WHERE "source_url" IS NOT NULL GROUP BY "source_url" HAVING count(*) > 1 LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION 'harvest_items has % items with source_url % (ids %); source_url is unique from this version on. Delete or change the duplicates (SELECT source_url, array_agg(id) FROM harvest_items GROUP BY source_url HAVING count(*) > 1), then start again', dup.n, dup.source_url, dup.ids;
	END IF;
END $$;--> statement-breakpoint
CREATE INDEX "job_schedule_changes_job_changed_idx" ON "job_schedule_changes" USING btree ("job_name","changed_at" DESC NULLS FIRST,"id" DESC NULLS FIRST);--> statement-breakpoint
CREATE UNIQUE INDEX "harvest_items_source_url_key" ON "harvest_items" USING btree ("source_url");--> statement-breakpoint
CREATE INDEX "job_logs_job_id_idx" ON "job_logs" USING btree ("job_id","id" DESC NULLS FIRST);