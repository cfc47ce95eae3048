import { t } from "elysia";
import { Int, page, Text } from "../../platform/http/models.ts";

export const PostPublic = t.Object({
  id: Int({ minimum: 1 }),
  user_id: Int({ minimum: 1 }),
  title: t.String(),
  content: t.String(),
  created_at: t.String({ format: "date-time" }),
}, { description: "A post" });
export type PostPublic = typeof PostPublic.static;

export const PostPage = page(PostPublic, "PostPublic", "newest first");

/** How many of a user's posts their detail (GET /users/{id}) shows, newest first. */
export const DETAIL_POSTS = 10;
export const NewestPosts = t.Array(PostPublic, { description: `The newest ${DETAIL_POSTS} posts` });

export const CreatePostBody = t.Object(
  {
    title: Text({ minLength: 1, maxLength: 200, visible: true }),
    content: Text({ maxLength: 10_000, multiline: true }),
  },
  { additionalProperties: false, examples: [{ title: "Notes on the engine", content: "It weaves algebraic patterns." }] },
);
