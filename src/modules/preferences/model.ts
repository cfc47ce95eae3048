import { t } from "elysia";

export const MAX_PREFERENCE_KEYS = 50;

/** `{key: value | null}`: null removes the key. Keys are 1 to 64 characters of letters, digits, `_ - . :`. */
export const PreferencesPatch = t.Record(
  t.String({ pattern: "^[A-Za-z0-9_.:-]{1,64}$" }),
  t.Union([t.String({ maxLength: 1000 }), t.Number(), t.Boolean(), t.Null()]),
  { maxProperties: MAX_PREFERENCE_KEYS, additionalProperties: false, description: "Keys to set; null removes a key" },
);
