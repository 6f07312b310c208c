CREATE TABLE "llm_calls" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "llm_calls_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"at" timestamp with time zone NOT NULL,
	"log_id" integer,
	"job_name" text NOT NULL,
	"item" jsonb,
	"model" text NOT NULL,
	"prompt_version" text,
	"prompt_tokens" integer DEFAULT 0 NOT NULL,
	"cached_prompt_tokens" integer DEFAULT 0 NOT NULL,
	"completion_tokens" integer DEFAULT 0 NOT NULL,
	"latency_ms" integer NOT NULL,
	"outcome" text NOT NULL,
	"http_status" integer,
	"cost_usd" numeric(14, 8),
	CONSTRAINT "llm_calls_outcome_check" CHECK ("llm_calls"."outcome" in ('ok', 'retry', 'bad_output', 'error', 'aborted'))
);
--> statement-breakpoint
ALTER TABLE "drop_cache" ADD COLUMN "model" text;--> statement-breakpoint
ALTER TABLE "drop_cache" ADD COLUMN "prompt_version" text;--> statement-breakpoint
ALTER TABLE "drop_cache" ADD COLUMN "cost_usd" numeric(14, 8);--> statement-breakpoint
ALTER TABLE "drops" ADD COLUMN "model" text;--> statement-breakpoint
ALTER TABLE "drops" ADD COLUMN "prompt_version" text;--> statement-breakpoint
ALTER TABLE "drops" ADD COLUMN "cost_usd" numeric(14, 8);--> statement-breakpoint
ALTER TABLE "exam_blueprints" ADD COLUMN "prompt_version" text;--> statement-breakpoint
ALTER TABLE "exam_blueprints" ADD COLUMN "cost_usd" numeric(14, 8);--> statement-breakpoint
CREATE INDEX "llm_calls_at_idx" ON "llm_calls" USING btree ("at");--> statement-breakpoint
CREATE INDEX "llm_calls_job_at_idx" ON "llm_calls" USING btree ("job_name","at");--> statement-breakpoint
CREATE INDEX "llm_calls_log_id_idx" ON "llm_calls" USING btree ("log_id");