// Access that is not a person's sign-in: organisations' API keys and operators' support grants.

import type { ApiKeyRecord, SupportGrant } from "./directory-types.ts";

/** API keys and operator support grants. */
export interface AccessDirectory {
  /** Stores a new key; only the secret's hash is kept. */
  createApiKey(key: { id: string; orgId: string; name: string; scopes: string[]; secretHash: string; createdBy: string }, now: number): Promise<void>;
  getApiKey(id: string): Promise<ApiKeyRecord | null>;
  listApiKeys(orgId: string): Promise<ApiKeyRecord[]>;
  /** False when the key is not the organisation's or already revoked. */
  revokeApiKey(orgId: string, id: string, now: number): Promise<boolean>;
  /** Records use, at most once a minute per key (a write per request would be wasted I/O). */
  touchApiKey(id: string, now: number): Promise<void>;

  /** Records a support grant before its token is issued: the record is the audit of the access. `not_found` for an unknown conversation. */
  recordSupportGrant(grant: SupportGrant): Promise<void>;
  getSupportGrant(id: string): Promise<SupportGrant | null>;
  listSupportGrants(conversationId: string): Promise<SupportGrant[]>;
  /** False when unknown or already revoked. */
  revokeSupportGrant(id: string, now: number): Promise<boolean>;
}
