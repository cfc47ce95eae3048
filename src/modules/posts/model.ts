import { t } from "elysia";

export const CreatePostBody = t.Object(
  {
    title: t.String({ minLength: 1, maxLength: 200, error: "must be 1 to 200 characters" }),
    content: t.String({ maxLength: 10_000, error: "must be at most 10000 characters" }),
  },
  { additionalProperties: false },
);
