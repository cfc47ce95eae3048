import { t } from "elysia";

export const Email = t.String({ format: "email", maxLength: 254, error: "must be a valid email address" });
export const Password = t.String({ minLength: 8, maxLength: 128, error: "must be 8 to 128 characters" });
export const FullName = t.String({ minLength: 1, maxLength: 100, error: "must be 1 to 100 characters" });

export const UserPublic = t.Object({
  id: t.Integer(),
  email: t.String(),
  full_name: t.String(),
  is_active: t.Boolean(),
  is_admin: t.Boolean(),
  created_at: t.String({ format: "date-time" }),
  updated_at: t.String({ format: "date-time" }),
});
export type UserPublic = typeof UserPublic.static;

export const PostPublic = t.Object({
  id: t.Integer(),
  user_id: t.Integer(),
  title: t.String(),
  content: t.String(),
  created_at: t.String({ format: "date-time" }),
});
export type PostPublic = typeof PostPublic.static;

export const PreferenceValue = t.Union([t.String({ maxLength: 1000 }), t.Number(), t.Boolean()]);
export const Preferences = t.Record(t.String(), PreferenceValue, { description: "At most 50 keys" });
export type Preferences = typeof Preferences.static;

export const UserDetail = t.Object({
  user: UserPublic,
  posts: t.Array(PostPublic, { description: "The newest 10 posts" }),
  preferences: Preferences,
});
export type UserDetail = typeof UserDetail.static;

export const RegisterBody = t.Object(
  { email: Email, password: Password, full_name: FullName },
  { additionalProperties: false },
);

export const UpdateUserBody = t.Object(
  { email: t.Optional(Email), password: t.Optional(Password), full_name: t.Optional(FullName) },
  { additionalProperties: false, minProperties: 1 },
);
