// People and their credentials in the directory: accounts, passwords, two-factor (TOTP and
// recovery codes) and security keys. The sign-in and account services depend on this part only.

import type { User, WebauthnCredential } from "./directory-types.ts";

/** People, passwords, second factors and security keys. */
export interface AccountDirectory {
  /** A person with their own (personal) organisation, e.g. an invited supplier's first sign-in. `conflict` when the email exists. */
  createUser(
    user: { id: string; email: string; name: string; passwordHash: string | null },
    personalOrg: { id: string; name: string },
    now: number,
  ): Promise<void>;
  getUser(id: string): Promise<User | null>;
  /** Emails compare case-insensitively (stored lowercased). */
  getUserByEmail(email: string): Promise<User | null>;
  setPasswordHash(userId: string, hash: string): Promise<void>;
  /** Stores a (pending or enabled) sealed TOTP secret, or clears it. Resets the replay guard. */
  setTotp(userId: string, sealed: Uint8Array | null, enabled: boolean): Promise<void>;
  /** Turns on a confirmed TOTP secret (the step used to confirm it stays spent). */
  enableTotp(userId: string): Promise<void>;
  /** Records a used TOTP step; false if that step (or a later one) was already used. */
  consumeTotpStep(userId: string, step: number): Promise<boolean>;
  /** Replaces a person's recovery codes (hashes) with a fresh set. */
  replaceRecoveryCodes(userId: string, hashes: string[]): Promise<void>;
  /**
   * Stores a fresh set only when the person has no unused code left (their first security key);
   * false, changing nothing, when they still have some: of two racing first registrations, one
   * set is issued and the codes it answered with are the ones that work.
   */
  issueRecoveryCodesIfNone(userId: string, hashes: string[]): Promise<boolean>;
  /** Deletes the recovery codes of a person left with no second factor (no key, no authenticator app); false when any is left or there were none. */
  removeRecoveryCodesWithoutSecondFactor(userId: string): Promise<boolean>;
  /** Uses a recovery code once; false when unknown or already used. */
  consumeRecoveryCode(userId: string, hash: string, now: number): Promise<boolean>;
  /** How many of a person's recovery codes are still unused (whether sign-in offers them). */
  countRecoveryCodes(userId: string): Promise<number>;
  /** Stores a newly registered security key (`conflict` if the credential id is taken). */
  addWebauthnCredential(credential: Omit<WebauthnCredential, "lastUsedAt">): Promise<void>;
  listWebauthnCredentials(userId: string): Promise<WebauthnCredential[]>;
  getWebauthnCredential(id: string): Promise<WebauthnCredential | null>;
  /** Records a use with the authenticator's new counter; false when the counter went backwards (a clone). */
  useWebauthnCredential(id: string, counter: number, now: number): Promise<boolean>;
  renameWebauthnCredential(userId: string, id: string, name: string): Promise<boolean>;
  removeWebauthnCredential(userId: string, id: string): Promise<boolean>;
}
