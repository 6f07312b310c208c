CREATE TABLE "run_requests" (
	"id" integer PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "run_requests_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 2147483647 START WITH 1 CACHE 1),
	"job_name" text NOT NULL,
	"idempotency_key" text NOT NULL,
	"job_id" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "job_schedule" ADD COLUMN "missed_policy" text DEFAULT 'skip' NOT NULL;--> statement-breakpoint
CREATE UNIQUE INDEX "run_requests_job_key" ON "run_requests" USING btree ("job_name","idempotency_key");--> statement-breakpoint
CREATE INDEX "run_requests_created_at_idx" ON "run_requests" USING btree ("created_at");--> statement-breakpoint
ALTER TABLE "job_schedule" ADD CONSTRAINT "job_schedule_missed_policy_check" CHECK ("job_schedule"."missed_policy" in ('skip', 'once'));