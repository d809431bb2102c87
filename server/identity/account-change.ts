// A change to a person's account security (a sign-in, two-factor on or off, a security key) and
// the second factor it spends, committed with their audit entries in one directory transaction:
// a refused or failed audit append leaves no session, no spent recovery code and no changed
// setting behind, and the person is told so in words.

import { ErrorCode } from "../../protocol/index.ts";
import type { OrgEventFor, OrgEventInput } from "../directory/org-recorder.ts";
import { type AuditedChanges, type AuditedStep, DirectoryError } from "../directory/directory.ts";
import type { OrganisationDirectory } from "../directory/organisation-directory.ts";
import { ParleyError } from "../platform/errors.ts";
import type { HttpServices } from "./http-services.ts";

/** The directory part that names a person's organisations. */
export interface MembershipLookup {
  directory: Pick<OrganisationDirectory, "listMemberships">;
}

/** What committing an account change uses: the audited steps, the code throttle, the log. */
export type AccountChangeServices = MembershipLookup &
  Pick<HttpServices, "orgAudit" | "codeLimiter" | "logger"> & {
    directory: Pick<AuditedChanges, "auditedSteps">;
  };

/**
 * A second factor checked but not yet spent where spending is a change to record (a recovery
 * code, a security key's counter): its steps and entries join the change it unlocks.
 */
export interface PendingFactor {
  steps: AuditedStep[];
  events: OrgEventFor[];
  /** The attempt throttle's key: failed when the factor turns out spent meanwhile, cleared on success. */
  gateKey: string;
  /** What the person is told when a step finds the factor already spent. */
  refusal: ParleyError;
}

/** An event recorded in the chain of each of the person's organisations (their account is each one's business). */
export async function inEveryOrg(services: MembershipLookup, userId: string, event: OrgEventInput): Promise<OrgEventFor> {
  return { orgs: (await services.directory.listMemberships(userId)).map((m) => m.orgId), event };
}

/**
 * Commits the factor's steps and then `steps`, with every entry, all or nothing. Resolves with
 * the results of `steps`, or null when one of them changed nothing (then nothing changed); a
 * factor found spent meanwhile is refused as a wrong code. `what` names the change for the person
 * when the audit trail cannot take it ("the sign-in").
 */
export async function commitAccountChange(
  services: AccountChangeServices,
  what: string,
  factor: PendingFactor | null,
  steps: readonly AuditedStep[],
  events: readonly OrgEventFor[],
): Promise<unknown[] | null> {
  const factorSteps = factor?.steps ?? [];
  let outcome: Awaited<ReturnType<typeof services.orgAudit.recordStepsWith>>;
  try {
    outcome = await services.orgAudit.recordStepsWith(services.directory, [...factorSteps, ...steps], [...(factor?.events ?? []), ...events]);
  } catch (error) {
    if (error instanceof ParleyError || (error instanceof DirectoryError && error.code !== "unavailable")) throw error;
    services.logger.error({ err: error, change: what }, "account change refused: its audit entry could not be written");
    throw new ParleyError(ErrorCode.StoreUnavailable, `${what} could not be recorded in the audit trail, so it did not happen; nothing changed, try again`);
  }
  if (!outcome.changed) {
    if (factor && outcome.unchangedStep < factorSteps.length) {
      await services.codeLimiter.fail(factor.gateKey);
      throw factor.refusal;
    }
    return null;
  }
  if (factor) await services.codeLimiter.succeed(factor.gateKey);
  return outcome.results.slice(factorSteps.length);
}

/** A step that belongs to a change only if it changes something, with the entries that say it did. */
export interface FollowingStep {
  step: AuditedStep;
  events: OrgEventFor[];
}

/**
 * {@link commitAccountChange} with `following` (a step the caller found applies: recovery codes
 * issued with a first key, removed with the last factor). Should it change nothing by the time it
 * runs (a simultaneous request got there first), the change commits again without it, so its
 * entries are written exactly when it happened. `followed` says whether it did.
 */
export async function commitAccountChangeWith(
  services: AccountChangeServices,
  what: string,
  factor: PendingFactor | null,
  steps: readonly AuditedStep[],
  events: readonly OrgEventFor[],
  following: FollowingStep | null,
): Promise<{ results: unknown[] | null; followed: boolean }> {
  if (following) {
    const results = await commitAccountChange(services, what, factor, [...steps, following.step], [...events, ...following.events]);
    if (results) return { results: results.slice(0, steps.length), followed: true };
  }
  return { results: await commitAccountChange(services, what, factor, steps, events), followed: false };
}
