CREATE TABLE "drop_cache" (
	"id" integer PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "drop_cache_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 2147483647 START WITH 1 CACHE 1),
	"blueprint_id" integer NOT NULL,
	"hash" text NOT NULL,
	"payload" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "drops" (
	"id" integer PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "drops_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 2147483647 START WITH 1 CACHE 1),
	"blueprint_id" integer NOT NULL,
	"topic_code" text NOT NULL,
	"title" text NOT NULL,
	"content" text NOT NULL,
	"position" integer NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "exam_blueprints" (
	"id" integer PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "exam_blueprints_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 2147483647 START WITH 1 CACHE 1),
	"harvest_item_id" integer NOT NULL,
	"exam_name" text NOT NULL,
	"organization" text,
	"topics" jsonb NOT NULL,
	"raw_output" jsonb NOT NULL,
	"model" text NOT NULL,
	"drops_generated_at" timestamp with time zone,
	"drops_claimed_by_log_id" integer,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "exam_blueprints_harvest_item_id_unique" UNIQUE("harvest_item_id")
);
--> statement-breakpoint
CREATE TABLE "harvest_items" (
	"id" integer PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "harvest_items_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 2147483647 START WITH 1 CACHE 1),
	"title" text NOT NULL,
	"source_url" text,
	"content" text NOT NULL,
	"status" text DEFAULT 'PENDING' NOT NULL,
	"error_message" text,
	"claimed_by_log_id" integer,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "harvest_items_status_check" CHECK ("harvest_items"."status" in ('PENDING', 'PROCESSING', 'BLUEPRINT_DONE', 'BLUEPRINT_ERROR'))
);
--> statement-breakpoint
CREATE TABLE "job_logs" (
	"id" integer PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "job_logs_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 2147483647 START WITH 1 CACHE 1),
	"job_name" text NOT NULL,
	"status" text NOT NULL,
	"started_at" timestamp with time zone DEFAULT now() NOT NULL,
	"ended_at" timestamp with time zone,
	"items_processed" integer DEFAULT 0 NOT NULL,
	"items_failed" integer DEFAULT 0 NOT NULL,
	"error_message" text,
	"metadata" jsonb DEFAULT '{}'::jsonb NOT NULL,
	CONSTRAINT "job_logs_status_check" CHECK ("job_logs"."status" in ('STARTED', 'COMPLETED', 'FAILED'))
);
--> statement-breakpoint
CREATE TABLE "job_schedule" (
	"id" integer PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "job_schedule_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 2147483647 START WITH 1 CACHE 1),
	"job_name" text NOT NULL,
	"cron_expression" text NOT NULL,
	"timezone" text NOT NULL,
	"is_active" boolean DEFAULT true NOT NULL,
	"last_run_at" timestamp with time zone,
	"next_run_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "job_schedule_job_name_unique" UNIQUE("job_name")
);
--> statement-breakpoint
ALTER TABLE "drop_cache" ADD CONSTRAINT "drop_cache_blueprint_id_exam_blueprints_id_fk" FOREIGN KEY ("blueprint_id") REFERENCES "public"."exam_blueprints"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "drops" ADD CONSTRAINT "drops_blueprint_id_exam_blueprints_id_fk" FOREIGN KEY ("blueprint_id") REFERENCES "public"."exam_blueprints"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "exam_blueprints" ADD CONSTRAINT "exam_blueprints_harvest_item_id_harvest_items_id_fk" FOREIGN KEY ("harvest_item_id") REFERENCES "public"."harvest_items"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "drop_cache_blueprint_hash_key" ON "drop_cache" USING btree ("blueprint_id","hash");--> statement-breakpoint
CREATE UNIQUE INDEX "drops_blueprint_topic_position_key" ON "drops" USING btree ("blueprint_id","topic_code","position");--> statement-breakpoint
CREATE INDEX "exam_blueprints_pending_drops_idx" ON "exam_blueprints" USING btree ("id") WHERE drops_generated_at is null;--> statement-breakpoint
CREATE INDEX "harvest_items_status_id_idx" ON "harvest_items" USING btree ("status","id");--> statement-breakpoint
CREATE INDEX "job_logs_job_name_started_at_idx" ON "job_logs" USING btree ("job_name","started_at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "job_logs_started_at_idx" ON "job_logs" USING btree ("started_at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "job_logs_started_idx" ON "job_logs" USING btree ("status") WHERE status = 'STARTED';