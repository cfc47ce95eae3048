import { t } from "elysia";
import { Chars, Int } from "../../platform/http/models.ts";

// Only checked against the stored account: no text rule here, so a password set before one existed still logs in.
export const LoginBody = t.Object(
  {
    email: Chars({ maxLength: 254, minLength: 1 }),
    password: Chars({ minLength: 1, maxLength: 128 }),
  },
  { additionalProperties: false, examples: [{ email: "ada@example.com", password: "correct-horse-battery" }] },
);

export const TokenResponse = t.Object({
  access_token: t.String({ description: "Send it as `Authorization: Bearer <token>`" }),
  token_type: t.Literal("bearer"),
  expires_in: Int({ minimum: 1, description: "Seconds until the token expires", examples: [3600] }),
});

export const LogoutBody = t.Object(
  { all: t.Optional(t.Boolean({ description: "End every session of the caller, not only this token's" })) },
  { additionalProperties: false, examples: [{ all: true }] },
);
