ALTER TABLE `instances` ADD `replica_lag_seconds` real;--> statement-breakpoint
ALTER TABLE `instances` ADD `history` text;