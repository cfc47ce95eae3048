CREATE TABLE `scaler_decisions` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`at` text NOT NULL,
	`region` text NOT NULL,
	`from_count` integer NOT NULL,
	`to_count` integer NOT NULL,
	`action` text NOT NULL,
	`reason` text NOT NULL,
	`outcome` text NOT NULL,
	`detail` text,
	`instance` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `scaler_decisions_region_at` ON `scaler_decisions` (`region`,`at`);