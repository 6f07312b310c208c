CREATE TABLE "alert_state" (
	"job_name" text NOT NULL,
	"kind" text NOT NULL,
	"open" boolean DEFAULT false NOT NULL,
	"opened_at" timestamp with time zone,
	"closed_at" timestamp with time zone,
	"alert_id" integer,
	CONSTRAINT "alert_state_pkey" PRIMARY KEY("job_name","kind"),
	CONSTRAINT "alert_state_kind_check" CHECK ("alert_state"."kind" in ('dead_lettered', 'all_items_failed', 'overdue', 'budget_exhausted'))
);
--> statement-breakpoint
CREATE TABLE "alerts" (
	"id" integer PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "alerts_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 2147483647 START WITH 1 CACHE 1),
	"kind" text NOT NULL,
	"job_name" text NOT NULL,
	"log_id" integer,
	"job_id" text,
	"error" text,
	"occurred_at" timestamp with time zone NOT NULL,
	"payload" jsonb NOT NULL,
	"delivery_job_id" text NOT NULL,
	"status" text DEFAULT 'pending' NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"last_attempt_at" timestamp with time zone,
	"last_error" text,
	"delivered_at" timestamp with time zone,
	"resolved_by" integer,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "alerts_kind_check" CHECK ("alerts"."kind" in ('dead_lettered', 'all_items_failed', 'overdue', 'budget_exhausted', 'recovered')),
	CONSTRAINT "alerts_status_check" CHECK ("alerts"."status" in ('pending', 'delivered', 'failed'))
);
