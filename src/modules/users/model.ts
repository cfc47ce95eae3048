import type { Static, TSchema } from "@sinclair/typebox";
import { t } from "elysia";
import { Chars, Int, page, Text, withMessage } from "../../platform/http/models.ts";

export const Email = withMessage(
  Chars({ format: "email", maxLength: 254, examples: ["ada@example.com"] }),
  "must be a valid email address of at most 254 characters",
);
export const Password = Text({ minLength: 8, maxLength: 128, examples: ["correct-horse-battery"] });
export const FullName = Text({ minLength: 1, maxLength: 100, visible: true, examples: ["Ada Lovelace"] });

export const UserPublic = t.Object({
  id: Int({ minimum: 1, examples: [42] }),
  email: t.String({ format: "email" }),
  full_name: t.String(),
  is_active: t.Boolean(),
  is_admin: t.Boolean(),
  created_at: t.String({ format: "date-time" }),
  updated_at: t.String({ format: "date-time" }),
}, { description: "An account as anyone may see it (never the password hash)" });
export type UserPublic = typeof UserPublic.static;

export const UserPage = page(UserPublic, "UserPublic", "by id, oldest first");

/**
 * A user's detail: the account and the parts of it other features own (the newest posts, the preferences), each
 * with its schema (DetailParts, service.ts). The users feature builds it once per instance of its routes; it is
 * generic over the parts' schemas so the types the root hands in reach the detail's value.
 */
export const userDetailSchema = <P extends TSchema, R extends TSchema>(parts: { posts: { schema: P }; preferences: { schema: R } }) =>
  t.Object({
    user: UserPublic,
    posts: parts.posts.schema,
    preferences: parts.preferences.schema,
  }, { description: "A user with their newest posts and their preferences" });
/** The detail's value, typed by the parts' schemas (P: the posts', R: the preferences'), which the root supplies. */
export type UserDetail<P extends TSchema = TSchema, R extends TSchema = TSchema> = Static<ReturnType<typeof userDetailSchema<P, R>>>;

export const RegisterBody = t.Object(
  { email: Email, password: Password, full_name: FullName },
  {
    additionalProperties: false,
    examples: [{ email: "ada@example.com", password: "correct-horse-battery", full_name: "Ada Lovelace" }],
  },
);

export const UpdateUserBody = t.Object(
  { email: t.Optional(Email), password: t.Optional(Password), full_name: t.Optional(FullName) },
  { additionalProperties: false, minProperties: 1, examples: [{ full_name: "Ada King" }] },
);
