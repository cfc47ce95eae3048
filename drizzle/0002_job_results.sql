CREATE TABLE `job_results` (
	`job_id` text PRIMARY KEY NOT NULL,
	`job_type` text NOT NULL,
	`status` text NOT NULL,
	`created_at` text NOT NULL,
	`started_at` text,
	`completed_at` text NOT NULL,
	`error_message` text,
	`retry_count` integer DEFAULT 0 NOT NULL,
	`max_retries` integer DEFAULT 0 NOT NULL,
	`relay_attempts` integer DEFAULT 0 NOT NULL
);
--> statement-breakpoint
CREATE INDEX `job_results_completed_idx` ON `job_results` (`completed_at`);--> statement-breakpoint
ALTER TABLE `preferences` ADD `key_written_at` text DEFAULT '{}' NOT NULL;