// Password hashes: argon2id, the one set of parameters that registration, password changes and the login's
// stand-in hash (for unknown emails) must share.
export const hashPassword = (password: string) => Bun.password.hash(password, { algorithm: "argon2id" });
