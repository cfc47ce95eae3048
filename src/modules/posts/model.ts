import { t } from "elysia";
import { Text } from "../../platform/http/models.ts";

export const CreatePostBody = t.Object(
  {
    title: Text({ minLength: 1, maxLength: 200, visible: true }),
    content: Text({ maxLength: 10_000, multiline: true }),
  },
  { additionalProperties: false, examples: [{ title: "Notes on the engine", content: "It weaves algebraic patterns." }] },
);
