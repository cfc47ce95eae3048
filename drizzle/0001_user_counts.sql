CREATE TABLE `table_counts` (
	`name` text PRIMARY KEY NOT NULL,
	`n` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `user_id_gaps` (
	`id` integer PRIMARY KEY NOT NULL
);
--> statement-breakpoint
INSERT INTO `table_counts` (`name`, `n`) SELECT 'users', count(*) FROM `users`;
--> statement-breakpoint
WITH RECURSIVE `seq`(`x`) AS (
	SELECT 1 WHERE (SELECT max(`id`) FROM `users`) IS NOT NULL
	UNION ALL SELECT `x` + 1 FROM `seq` WHERE `x` < (SELECT max(`id`) FROM `users`)
)
INSERT INTO `user_id_gaps` (`id`) SELECT `x` FROM `seq` WHERE NOT EXISTS (SELECT 1 FROM `users` WHERE `users`.`id` = `seq`.`x`);
--> statement-breakpoint
CREATE TRIGGER `users_counted_insert` AFTER INSERT ON `users` BEGIN
	UPDATE `table_counts` SET `n` = `n` + 1 WHERE `name` = 'users';
	DELETE FROM `user_id_gaps` WHERE `id` = new.`id`;
END;
--> statement-breakpoint
CREATE TRIGGER `users_counted_delete` AFTER DELETE ON `users` BEGIN
	UPDATE `table_counts` SET `n` = `n` - 1 WHERE `name` = 'users';
	INSERT OR IGNORE INTO `user_id_gaps` (`id`) VALUES (old.`id`);
END;
