import { t } from "elysia";
import { Chars, Text, withMessage } from "../../platform/http/models.ts";

export const PreferenceValue = t.Union([Chars({ maxLength: 1000 }), t.Number(), t.Boolean()]);
export const Preferences = t.Record(t.String(), PreferenceValue, {
  description: "A user's preferences: at most 50 keys",
  examples: [{ theme: "dark", notifications: true }],
});
export type Preferences = typeof Preferences.static;

export const MAX_PREFERENCE_KEYS = 50;

/** `{key: value | null}`: null removes the key. Keys are 1 to 64 characters of letters, digits, `_ - . :`. */
export const PreferencesPatch = t.Record(
  t.String({ pattern: "^[A-Za-z0-9_.:-]{1,64}$" }),
  withMessage(
    t.Union([Text({ maxLength: 1000, multiline: true }), t.Number(), t.Boolean(), t.Null()]),
    "must be text of at most 1000 characters without control characters other than tab and line breaks, a number, a boolean, or null (removes the key)",
  ),
  {
    maxProperties: MAX_PREFERENCE_KEYS,
    additionalProperties: false,
    description: "Keys to set; null removes a key",
    examples: [{ theme: "dark", notifications: true, legacy_flag: null }],
  },
);
