import { t } from "elysia";

export const LoginBody = t.Object(
  { email: t.String({ maxLength: 254, minLength: 1 }), password: t.String({ minLength: 1, maxLength: 128 }) },
  { additionalProperties: false },
);

export const TokenResponse = t.Object({
  access_token: t.String(),
  token_type: t.Literal("bearer"),
  expires_in: t.Integer({ description: "Seconds" }),
});

export const LogoutBody = t.Object(
  { all: t.Optional(t.Boolean({ description: "End every session of the caller, not only this token's" })) },
  { additionalProperties: false },
);
