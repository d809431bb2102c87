// What every directory backend promises, as one suite that SQLite and Postgres both run: accounts,
// memberships (an organisation keeps an owner), who sees which conversation, invitations, and the
// replay guards. Each backend opens a fresh, empty database per case and can open a second
// handle on it (another worker thread, another node's pool) so races between nodes are real.

import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type Directory, DirectoryError, type DirectoryHandle } from "../server/directory/directory.ts";
import type { Accessor } from "../server/directory/directory-types.ts";

/** A fresh database: `open()` gives one more handle on it (a node); `cleanup()` closes them and removes it. */
export interface DirectoryBackend {
  open(): Promise<DirectoryHandle>;
  cleanup(): Promise<void>;
}

const T0 = 1_700_000_000_000;
const DAY = 86_400_000;

/** The cast of most cases: a helpdesk, its supplier, an outsider, and their people. */
async function seed(d: Directory) {
  await d.createOrganisationWithOwner({ id: "org-help", name: "Helpdesk" }, { id: "u-alice", email: "Alice@Help.example", name: "Alice", passwordHash: "h" }, T0);
  await d.createOrganisationWithOwner({ id: "org-supp", name: "Supplier" }, { id: "u-sam", email: "sam@supp.example", name: "Sam", passwordHash: "h" }, T0);
  await d.createOrganisationWithOwner({ id: "org-watch", name: "Watcher" }, { id: "u-wendy", email: "wendy@watch.example", name: "Wendy", passwordHash: "h" }, T0);
  await d.createOrganisationWithOwner({ id: "org-out", name: "Outsider" }, { id: "u-olga", email: "olga@out.example", name: "Olga", passwordHash: "h" }, T0);
  // An invited supplier with only a personal organisation.
  await d.createUser({ id: "u-ivan", email: "ivan@free.example", name: "Ivan", passwordHash: null }, { id: "org-ivan", name: "Ivan" }, T0);
  await d.createConversation(
    { id: "c-1", orgId: "org-help", title: "Broken pump", externalRef: "TICKET-1", createdBy: "u-alice" },
    [
      { orgId: "org-supp", role: "participant" },
      { orgId: "org-watch", role: "observer" },
    ],
    T0 + 1,
  );
}

const person = (orgId: string, userId: string): Accessor => ({ orgId, userId });
const apiKey = (orgId: string): Accessor => ({ orgId });

export function runDirectoryContract(name: string, openBackend: () => Promise<DirectoryBackend>): void {
  describe(`Directory contract: ${name}`, () => {
    let backend: DirectoryBackend;
    let d: Directory;

    beforeEach(async () => {
      backend = await openBackend();
      d = (await backend.open()).directory;
    });
    afterEach(async () => {
      await backend.cleanup();
    });

    describe("people and organisations", () => {
      it("signs up an organisation with its owner, and refuses a second account for the same email whatever its case", async () => {
        await seed(d);
        expect(await d.getMembership("org-help", "u-alice")).toBe("owner");
        expect((await d.getUserByEmail("ALICE@help.EXAMPLE"))?.id).toBe("u-alice");
        expect(await d.getUser("u-alice")).toMatchObject({ email: "alice@help.example", totpEnabled: false, totpSealed: null, totpLastStep: null, createdAt: T0 });

        const again = d.createOrganisationWithOwner({ id: "org-dup", name: "Dup" }, { id: "u-dup", email: "alice@HELP.example", name: "A", passwordHash: "h" }, T0);
        await expect(again).rejects.toBeInstanceOf(DirectoryError);
        await expect(again).rejects.toMatchObject({ code: "conflict" });
        // All or nothing: the organisation of the refused sign-up does not exist.
        expect(await d.getOrganisation("org-dup")).toBeNull();
        await expect(d.createUser({ id: "u-dup2", email: "ivan@FREE.example", name: "I", passwordHash: null }, { id: "org-dup2", name: "I" }, T0)).rejects.toMatchObject({
          code: "conflict",
        });
        expect(await d.getOrganisation("org-dup2")).toBeNull();
      });

      it("stores organisation settings, booleans and lists included, changing only what is given", async () => {
        await seed(d);
        expect(await d.getOrganisation("org-help")).toEqual({ id: "org-help", name: "Helpdesk", createdAt: T0, require2fa: false, requireSecurityKey: false, ipAllowlist: [], retentionDays: 365 });
        await d.updateOrganisation("org-help", { require2fa: true, ipAllowlist: ["10.0.0.0/8"] });
        await d.updateOrganisation("org-help", { name: "Help Desk" });
        expect(await d.getOrganisation("org-help")).toEqual({ id: "org-help", name: "Help Desk", createdAt: T0, require2fa: true, requireSecurityKey: false, ipAllowlist: ["10.0.0.0/8"], retentionDays: 365 });
        await d.updateOrganisation("org-help", { retentionDays: 30 });
        expect((await d.getOrganisation("org-help"))?.retentionDays).toBe(30);
        await d.updateOrganisation("org-help", { require2fa: false });
        expect((await d.getOrganisation("org-help"))?.require2fa).toBe(false);
        await expect(d.updateOrganisation("org-nope", { name: "x" })).rejects.toMatchObject({ name: "DirectoryError", code: "not_found" });
      });

      it("keeps a sealed TOTP secret byte for byte and accepts each step once, never an earlier one", async () => {
        await seed(d);
        const sealed = new Uint8Array([0, 1, 2, 250, 255]);
        await d.setTotp("u-alice", sealed, false);
        expect(await d.getUser("u-alice")).toMatchObject({ totpSealed: sealed, totpEnabled: false });
        expect(await d.consumeTotpStep("u-alice", 100)).toBe(true);
        await d.enableTotp("u-alice");
        expect(await d.getUser("u-alice")).toMatchObject({ totpEnabled: true, totpLastStep: 100 });
        expect(await d.consumeTotpStep("u-alice", 100)).toBe(false);
        expect(await d.consumeTotpStep("u-alice", 99)).toBe(false);
        expect(await d.consumeTotpStep("u-alice", 101)).toBe(true);
        // A new secret starts a new replay guard; clearing it turns two-factor off.
        await d.setTotp("u-alice", null, false);
        expect(await d.getUser("u-alice")).toMatchObject({ totpSealed: null, totpEnabled: false, totpLastStep: null });
        await d.enableTotp("u-alice");
        expect((await d.getUser("u-alice"))?.totpEnabled).toBe(false);
      });

      it("accepts a TOTP step presented on two nodes at once exactly once", async () => {
        await seed(d);
        const other = (await backend.open()).directory;
        for (let step = 1000; step < 1005; step++) {
          const results = await Promise.all([0, 1, 2, 3].map((i) => (i % 2 ? other : d).consumeTotpStep("u-alice", step)));
          expect(results.filter(Boolean)).toHaveLength(1);
        }
      });

      it("uses each recovery code once, also when two nodes race for it, and replaces the set", async () => {
        await seed(d);
        const other = (await backend.open()).directory;
        await d.replaceRecoveryCodes("u-alice", ["r1", "r2", "r3"]);
        expect(await d.countRecoveryCodes("u-alice")).toBe(3);
        const race = await Promise.all([d.consumeRecoveryCode("u-alice", "r1", T0), other.consumeRecoveryCode("u-alice", "r1", T0)]);
        expect(race.filter(Boolean)).toHaveLength(1);
        expect(await d.consumeRecoveryCode("u-alice", "r1", T0)).toBe(false);
        expect(await d.countRecoveryCodes("u-alice")).toBe(2);
        expect(await d.countRecoveryCodes("u-sam")).toBe(0);
        expect(await d.consumeRecoveryCode("u-alice", "nope", T0)).toBe(false);
        expect(await d.consumeRecoveryCode("u-sam", "r2", T0)).toBe(false);
        await d.replaceRecoveryCodes("u-alice", ["n1"]);
        expect(await d.consumeRecoveryCode("u-alice", "r2", T0)).toBe(false);
        expect(await d.consumeRecoveryCode("u-alice", "n1", T0)).toBe(true);
      });

      it("issues a first set of recovery codes only when none is unused, once of two racing nodes", async () => {
        await seed(d);
        const other = (await backend.open()).directory;
        const race = await Promise.all([d.issueRecoveryCodesIfNone("u-alice", ["a1", "a2"]), other.issueRecoveryCodesIfNone("u-alice", ["b1", "b2"])]);
        expect(race.filter(Boolean)).toHaveLength(1);
        const [kept, lost] = race[0] ? ["a1", "b1"] : ["b1", "a1"];
        expect(await d.countRecoveryCodes("u-alice")).toBe(2);
        expect(await d.consumeRecoveryCode("u-alice", lost, T0)).toBe(false);
        expect(await d.consumeRecoveryCode("u-alice", kept, T0)).toBe(true);
        // One unused code left: still no new set.
        expect(await d.issueRecoveryCodesIfNone("u-alice", ["c1"])).toBe(false);
        expect(await d.consumeRecoveryCode("u-alice", kept.replace("1", "2"), T0)).toBe(true);
        // All used: a fresh set.
        expect(await d.issueRecoveryCodesIfNone("u-alice", ["c1"])).toBe(true);
        expect(await d.countRecoveryCodes("u-alice")).toBe(1);
      });

      it("removes recovery codes only once no security key and no authenticator app is left", async () => {
        await seed(d);
        await d.replaceRecoveryCodes("u-alice", ["r1", "r2"]);
        await d.addWebauthnCredential({ id: "key-1", userId: "u-alice", name: "YubiKey", publicKey: new Uint8Array([1, 2, 3]), counter: 0, transports: [], createdAt: T0 });
        await d.setTotp("u-alice", new Uint8Array([9, 9]), false);
        await d.enableTotp("u-alice");
        expect(await d.removeRecoveryCodesWithoutSecondFactor("u-alice")).toBe(false); // key and app
        await d.setTotp("u-alice", null, false);
        expect(await d.removeRecoveryCodesWithoutSecondFactor("u-alice")).toBe(false); // the key
        expect(await d.countRecoveryCodes("u-alice")).toBe(2);
        expect(await d.removeWebauthnCredential("u-alice", "key-1")).toBe(true);
        expect(await d.removeRecoveryCodesWithoutSecondFactor("u-alice")).toBe(true);
        expect(await d.countRecoveryCodes("u-alice")).toBe(0);
        expect(await d.consumeRecoveryCode("u-alice", "r1", T0)).toBe(false);
        expect(await d.removeRecoveryCodesWithoutSecondFactor("u-alice")).toBe(false); // none left to remove
      });

      it("removes the recovery codes when two nodes remove a person's last two keys at once", async () => {
        await seed(d);
        const other = (await backend.open()).directory;
        await d.replaceRecoveryCodes("u-alice", ["r1", "r2"]);
        for (const id of ["key-1", "key-2"]) {
          await d.addWebauthnCredential({ id, userId: "u-alice", name: id, publicKey: new Uint8Array([1, 2, 3]), counter: 0, transports: [], createdAt: T0 });
        }
        // Each removes one key and then the codes if no factor is left, as the key route does. The two
        // transactions may or may not overlap (nothing here holds one open): the outcome is checked,
        // not that the interleaving that needs the owner's row lock happened.
        const removeWith = (directory: typeof d, id: string) =>
          directory.auditedSteps(
            [
              { op: "removeWebauthnCredential", args: ["u-alice", id] },
              { op: "removeRecoveryCodesWithoutSecondFactor", args: ["u-alice"], optional: true },
            ],
            [],
          );
        const outcomes = await Promise.all([removeWith(d, "key-1"), removeWith(other, "key-2")]);
        expect(outcomes.map((o) => o.changed)).toEqual([true, true]);
        expect(await d.listWebauthnCredentials("u-alice")).toEqual([]);
        expect(await d.countRecoveryCodes("u-alice")).toBe(0);
      });

      it("lists members and memberships, and changes roles", async () => {
        await seed(d);
        await d.putMember("org-help", "u-sam", "member", T0 + 5);
        expect(await d.listMembers("org-help")).toEqual([
          { userId: "u-alice", email: "alice@help.example", name: "Alice", role: "owner" },
          { userId: "u-sam", email: "sam@supp.example", name: "Sam", role: "member" },
        ]);
        await d.putMember("org-help", "u-sam", "admin", T0 + 6);
        expect(await d.getMembership("org-help", "u-sam")).toBe("admin");
        expect(await d.listMemberships("u-sam")).toEqual([
          { orgId: "org-supp", orgName: "Supplier", userId: "u-sam", role: "owner" },
          { orgId: "org-help", orgName: "Helpdesk", userId: "u-sam", role: "admin" },
        ]);
        expect(await d.removeMember("org-help", "u-sam")).toBe(true);
        expect(await d.removeMember("org-help", "u-sam")).toBe(false);
        expect(await d.getMembership("org-help", "u-sam")).toBeNull();
      });

      it("never removes or demotes an organisation's last owner", async () => {
        await seed(d);
        await expect(d.removeMember("org-help", "u-alice")).rejects.toMatchObject({ name: "DirectoryError", code: "invalid" });
        await expect(d.putMember("org-help", "u-alice", "admin", T0)).rejects.toMatchObject({ code: "invalid" });
        expect(await d.getMembership("org-help", "u-alice")).toBe("owner");
        // With a second owner, either may go, but not both.
        await d.putMember("org-help", "u-sam", "owner", T0 + 1);
        expect(await d.removeMember("org-help", "u-alice")).toBe(true);
        await expect(d.removeMember("org-help", "u-sam")).rejects.toMatchObject({ code: "invalid" });
      });

      it("keeps one owner when two nodes remove the only two owners at once", async () => {
        await seed(d);
        const other = (await backend.open()).directory;
        for (let round = 0; round < 3; round++) {
          const org = `org-race-${round}`;
          await d.createOrganisationWithOwner({ id: org, name: "Race" }, { id: `u-race-${round}`, email: `race${round}@x.example`, name: "R", passwordHash: "h" }, T0);
          await d.putMember(org, "u-olga", "owner", T0 + 1);
          const outcomes = await Promise.allSettled([d.removeMember(org, `u-race-${round}`), other.removeMember(org, "u-olga")]);
          expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(1);
          const refused = outcomes.find((o) => o.status === "rejected") as PromiseRejectedResult;
          expect(refused.reason).toMatchObject({ name: "DirectoryError", code: "invalid" });
          expect((await d.listMembers(org)).filter((m) => m.role === "owner")).toHaveLength(1);
        }
      });
    });

    describe("API keys", () => {
      it("creates, lists, revokes once, and records use at most once a minute", async () => {
        await seed(d);
        await d.createApiKey({ id: "k-1", orgId: "org-help", name: "ERP", scopes: ["conversations:read"], secretHash: "sh", createdBy: "u-alice" }, T0);
        expect(await d.getApiKey("k-1")).toEqual({
          id: "k-1",
          orgId: "org-help",
          name: "ERP",
          scopes: ["conversations:read"],
          secretHash: "sh",
          createdAt: T0,
          createdBy: "u-alice",
          lastUsedAt: null,
          revokedAt: null,
        });
        await d.touchApiKey("k-1", T0 + 1000);
        await d.touchApiKey("k-1", T0 + 30_000);
        expect((await d.getApiKey("k-1"))?.lastUsedAt).toBe(T0 + 1000);
        await d.touchApiKey("k-1", T0 + 70_000);
        expect((await d.getApiKey("k-1"))?.lastUsedAt).toBe(T0 + 70_000);
        expect(await d.revokeApiKey("org-supp", "k-1", T0)).toBe(false);
        expect(await d.revokeApiKey("org-help", "k-1", T0 + 5)).toBe(true);
        expect(await d.revokeApiKey("org-help", "k-1", T0 + 6)).toBe(false);
        expect((await d.listApiKeys("org-help")).map((k) => [k.id, k.revokedAt])).toEqual([["k-1", T0 + 5]]);
        expect(await d.getApiKey("k-nope")).toBeNull();
      });
    });

    describe("who may see a conversation", () => {
      it("lets the starting organisation write, participant organisations act by their role, and nobody else in", async () => {
        await seed(d);
        expect(await d.accessRole("c-1", person("org-help", "u-alice"))).toBe("writer");
        expect(await d.accessRole("c-1", apiKey("org-help"))).toBe("writer");
        expect(await d.accessRole("c-1", person("org-supp", "u-sam"))).toBe("writer");
        expect(await d.accessRole("c-1", apiKey("org-supp"))).toBe("writer");
        expect(await d.accessRole("c-1", person("org-watch", "u-wendy"))).toBe("observer");
        expect(await d.accessRole("c-1", apiKey("org-watch"))).toBe("observer");
        expect(await d.accessRole("c-1", person("org-out", "u-olga"))).toBeNull();
        expect(await d.accessRole("c-1", apiKey("org-out"))).toBeNull();
        expect(await d.accessRole("c-nope", person("org-help", "u-alice"))).toBeNull();
      });

      it("gives invited people their own role, or their organisation's when that is better", async () => {
        await seed(d);
        await d.putPerson("c-1", "u-ivan", "participant", T0);
        await d.putPerson("c-1", "u-olga", "observer", T0);
        await d.putPerson("c-1", "u-wendy", "participant", T0);
        await d.putPerson("c-1", "u-sam", "observer", T0);
        expect(await d.accessRole("c-1", person("org-ivan", "u-ivan"))).toBe("writer");
        expect(await d.accessRole("c-1", person("org-out", "u-olga"))).toBe("observer");
        expect(await d.accessRole("c-1", person("org-watch", "u-wendy"))).toBe("writer");
        expect(await d.accessRole("c-1", person("org-supp", "u-sam"))).toBe("writer");
        // The invitation is the person's, not their organisation's: its API keys stay out.
        expect(await d.accessRole("c-1", apiKey("org-out"))).toBeNull();
        expect(await d.listPeople("c-1")).toEqual([
          { userId: "u-ivan", email: "ivan@free.example", role: "participant" },
          { userId: "u-olga", email: "olga@out.example", role: "observer" },
          { userId: "u-sam", email: "sam@supp.example", role: "observer" },
          { userId: "u-wendy", email: "wendy@watch.example", role: "participant" },
        ]);
        expect(await d.removePerson("c-1", "u-olga")).toBe(true);
        expect(await d.removePerson("c-1", "u-olga")).toBe(false);
        expect(await d.accessRole("c-1", person("org-out", "u-olga"))).toBeNull();
      });

      it("makes a closed conversation read-only for everyone who could see it", async () => {
        await seed(d);
        await d.putPerson("c-1", "u-ivan", "participant", T0);
        await d.setConversationStatus("c-1", "closed");
        expect((await d.getConversation("c-1"))?.status).toBe("closed");
        for (const who of [person("org-help", "u-alice"), apiKey("org-help"), person("org-supp", "u-sam"), person("org-ivan", "u-ivan"), person("org-watch", "u-wendy")]) {
          expect(await d.accessRole("c-1", who)).toBe("observer");
        }
        expect(await d.accessRole("c-1", person("org-out", "u-olga"))).toBeNull();
        await d.setConversationStatus("c-1", "open");
        expect(await d.accessRole("c-1", person("org-supp", "u-sam"))).toBe("writer");
      });

      it("lets a person act for an organisation only while a member of it", async () => {
        await seed(d);
        await d.putMember("org-help", "u-ivan", "member", T0);
        expect(await d.accessRole("c-1", person("org-help", "u-ivan"))).toBe("writer");
        expect(await d.removeMember("org-help", "u-ivan")).toBe(true);
        expect(await d.accessRole("c-1", person("org-help", "u-ivan"))).toBeNull();
        expect(await d.listConversations(person("org-help", "u-ivan"), { limit: 10 })).toEqual([]);
        // Claiming an organisation one never belonged to gets nothing either.
        expect(await d.accessRole("c-1", person("org-help", "u-olga"))).toBeNull();
        expect(await d.listConversations(person("org-supp", "u-olga"), { limit: 10 })).toEqual([]);
      });

      it("changes participant organisations and refuses unknown ones, all or nothing at creation", async () => {
        await seed(d);
        expect(await d.listParticipants("c-1")).toEqual([
          { orgId: "org-supp", orgName: "Supplier", role: "participant" },
          { orgId: "org-watch", orgName: "Watcher", role: "observer" },
        ]);
        await d.putParticipant("c-1", "org-supp", "observer", T0 + 9);
        expect(await d.accessRole("c-1", person("org-supp", "u-sam"))).toBe("observer");
        expect(await d.removeParticipant("c-1", "org-watch")).toBe(true);
        expect(await d.removeParticipant("c-1", "org-watch")).toBe(false);
        expect(await d.accessRole("c-1", person("org-watch", "u-wendy"))).toBeNull();
        await expect(d.putParticipant("c-1", "org-nope", "participant", T0)).rejects.toMatchObject({ name: "DirectoryError", code: "not_found" });
        const creating = d.createConversation(
          { id: "c-bad", orgId: "org-help", title: "x", externalRef: null, createdBy: "u-alice" },
          [{ orgId: "org-nope", role: "participant" }],
          T0,
        );
        await expect(creating).rejects.toMatchObject({ code: "not_found" });
        expect(await d.getConversation("c-bad")).toBeNull();
      });

      it("lists what each accessor may see, newest first, a page at a time, filtered by external reference", async () => {
        await seed(d);
        await d.createConversation({ id: "c-2", orgId: "org-supp", title: "Supplier's own", externalRef: "S-9", createdBy: "u-sam" }, [], T0 + 2);
        await d.createConversation({ id: "c-3", orgId: "org-help", title: "Internal", externalRef: "TICKET-1", createdBy: "u-alice" }, [], T0 + 3);
        await d.createConversation({ id: "c-4", orgId: "org-out", title: "Outsider's", externalRef: null, createdBy: "u-olga" }, [], T0 + 3);
        await d.putPerson("c-4", "u-ivan", "observer", T0);
        const ids = async (who: Accessor, options: Parameters<Directory["listConversations"]>[1]) => (await d.listConversations(who, options)).map((c) => c.id);

        expect(await ids(person("org-help", "u-alice"), { limit: 10 })).toEqual(["c-3", "c-1"]);
        expect(await ids(apiKey("org-help"), { limit: 10 })).toEqual(["c-3", "c-1"]);
        expect(await ids(person("org-supp", "u-sam"), { limit: 10 })).toEqual(["c-2", "c-1"]);
        expect(await ids(person("org-watch", "u-wendy"), { limit: 10 })).toEqual(["c-1"]);
        expect(await ids(person("org-ivan", "u-ivan"), { limit: 10 })).toEqual(["c-4"]);
        expect(await ids(apiKey("org-ivan"), { limit: 10 })).toEqual([]);
        expect(await ids(person("org-help", "u-alice"), { limit: 10, externalRef: "TICKET-1" })).toEqual(["c-3", "c-1"]);
        expect(await ids(person("org-supp", "u-sam"), { limit: 10, externalRef: "TICKET-1" })).toEqual(["c-1"]);

        // Paging: ties on createdAt are broken by id, so no conversation is skipped or repeated.
        const all = await d.listConversations(person("org-out", "u-olga"), { limit: 10 });
        expect(all.map((c) => c.id)).toEqual(["c-4"]);
        await d.putParticipant("c-3", "org-out", "observer", T0);
        await d.putParticipant("c-1", "org-out", "observer", T0);
        const seen: string[] = [];
        let before: { createdAt: number; id: string } | undefined;
        for (;;) {
          const page = await d.listConversations(person("org-out", "u-olga"), { limit: 1, before });
          if (page.length === 0) break;
          seen.push(page[0].id);
          before = { createdAt: page[0].createdAt, id: page[0].id };
        }
        expect(seen).toEqual(["c-4", "c-3", "c-1"]);
        expect(await d.getConversation("c-3")).toEqual({
          id: "c-3",
          orgId: "org-help",
          title: "Internal",
          externalRef: "TICKET-1",
          status: "open",
          createdAt: T0 + 3,
          createdBy: "u-alice",
        });
      });
    });

    describe("invitations", () => {
      const invitation = {
        id: "inv-1",
        tokenHash: "tok-hash-1",
        conversationId: "c-1",
        email: "Ivan@Free.example",
        role: "participant" as const,
        invitedByOrg: "org-help",
        invitedBy: "u-alice",
        createdAt: T0,
        expiresAt: T0 + 14 * DAY,
      };

      it("stores an invitation by its token's hash, and revokes it once", async () => {
        await seed(d);
        await d.createInvitation(invitation);
        const stored = await d.getInvitationByTokenHash("tok-hash-1");
        expect(stored).toEqual({ ...invitation, tokenHash: undefined, email: "ivan@free.example", revokedAt: null, userId: null, deviceHash: null });
        expect(await d.getInvitation("inv-1")).toEqual(stored);
        expect(await d.listInvitations("c-1")).toEqual([stored]);
        expect(await d.revokeInvitation("inv-1", T0 + 1)).toBe(true);
        expect(await d.revokeInvitation("inv-1", T0 + 2)).toBe(false);
        expect((await d.getInvitation("inv-1"))?.revokedAt).toBe(T0 + 1);
        expect(await d.getInvitationByTokenHash("nope")).toBeNull();
      });

      it("binds to the first person and device only, adding them to the conversation, even when two nodes race", async () => {
        await seed(d);
        const other = (await backend.open()).directory;
        await d.createInvitation(invitation);
        const race = await Promise.all([d.bindInvitation("inv-1", "u-ivan", "device-a", T0), other.bindInvitation("inv-1", "u-ivan", "device-b", T0)]);
        expect(race.filter(Boolean)).toHaveLength(1);
        const bound = await d.getInvitation("inv-1");
        expect(bound?.userId).toBe("u-ivan");
        expect(bound?.deviceHash).toBe(race[0] ? "device-a" : "device-b");
        expect(await d.bindInvitation("inv-1", "u-olga", "device-c", T0)).toBe(false);
        expect(await d.listPeople("c-1")).toEqual([{ userId: "u-ivan", email: "ivan@free.example", role: "participant" }]);
        expect(await d.accessRole("c-1", person("org-ivan", "u-ivan"))).toBe("writer");
        expect(await d.accessRole("c-1", person("org-out", "u-olga"))).toBeNull();
      });

      it("accepts an emailed device code once, within its validity, also when two nodes race", async () => {
        await seed(d);
        const other = (await backend.open()).directory;
        await d.createInvitation(invitation);
        await d.addInvitationCode("inv-1", "code-1", T0 + 600_000);
        const race = await Promise.all([d.consumeInvitationCode("inv-1", "code-1", T0), other.consumeInvitationCode("inv-1", "code-1", T0)]);
        expect(race.filter(Boolean)).toHaveLength(1);
        expect(await d.consumeInvitationCode("inv-1", "code-1", T0)).toBe(false);
        await d.addInvitationCode("inv-1", "code-2", T0 + 600_000);
        expect(await d.consumeInvitationCode("inv-1", "code-2", T0 + 600_000)).toBe(false);
        expect(await d.consumeInvitationCode("inv-1", "wrong", T0)).toBe(false);
        // The same code issued again is fresh (and unused) until its new expiry.
        await d.addInvitationCode("inv-1", "code-1", T0 + 1_200_000);
        expect(await d.consumeInvitationCode("inv-1", "code-1", T0 + 700_000)).toBe(true);
      });
    });

    describe("refresh-token families", () => {
      const token = (tokenHash: string, familyId = "fam-1") => ({ tokenHash, familyId, userId: "u-alice", orgId: "org-help", expiresAt: T0 + DAY });
      const NO_GRACE = 0;
      const GRACE = 30_000;

      it("rotates a token into its successor, and revokes the family when a spent token comes back", async () => {
        await seed(d);
        await d.insertRefreshToken(token("t1"), T0);
        expect(await d.rotateRefreshToken("t1", "t2", T0 + DAY, T0 + 1, NO_GRACE)).toEqual({ status: "rotated", userId: "u-alice", orgId: "org-help", familyId: "fam-1", conversationScope: null, retried: false });
        expect(await d.rotateRefreshToken("t2", "t3", T0 + DAY, T0 + 2, NO_GRACE)).toMatchObject({ status: "rotated" });
        expect(await d.isFamilyRevoked("fam-1")).toBe(false);
        // t1 again: stolen or replayed. The family ends, the live successor with it.
        expect(await d.rotateRefreshToken("t1", "t9", T0 + DAY, T0 + 3, NO_GRACE)).toEqual({ status: "reused", familyId: "fam-1", userId: "u-alice" });
        expect(await d.isFamilyRevoked("fam-1")).toBe(true);
        expect(await d.rotateRefreshToken("t3", "t4", T0 + DAY, T0 + 4, NO_GRACE)).toEqual({ status: "invalid" });
        expect(await d.rotateRefreshToken("t9", "t10", T0 + DAY, T0 + 4, NO_GRACE)).toEqual({ status: "invalid" });
      });

      it("refuses unknown and expired tokens without revoking anything", async () => {
        await seed(d);
        await d.insertRefreshToken(token("t1"), T0);
        expect(await d.rotateRefreshToken("nope", "x", T0 + DAY, T0, NO_GRACE)).toEqual({ status: "invalid" });
        expect(await d.rotateRefreshToken("t1", "t2", T0 + 2 * DAY, T0 + DAY, NO_GRACE)).toEqual({ status: "invalid" });
        expect(await d.isFamilyRevoked("fam-1")).toBe(false);
      });

      it("lets exactly one of two nodes rotate the same token at once; the other is a reuse that ends the family", async () => {
        await seed(d);
        const other = (await backend.open()).directory;
        for (let round = 0; round < 4; round++) {
          const family = `fam-race-${round}`;
          await d.insertRefreshToken(token(`r${round}`, family), T0);
          const outcomes = await Promise.all([
            d.rotateRefreshToken(`r${round}`, `r${round}-a`, T0 + DAY, T0 + 1, NO_GRACE),
            other.rotateRefreshToken(`r${round}`, `r${round}-b`, T0 + DAY, T0 + 1, NO_GRACE),
          ]);
          expect(outcomes.map((o) => o.status).sort()).toEqual(["reused", "rotated"]);
          expect(await d.isFamilyRevoked(family)).toBe(true);
          // Whichever successor was issued is dead with its family.
          const winner = outcomes[0].status === "rotated" ? `r${round}-a` : `r${round}-b`;
          expect(await other.rotateRefreshToken(winner, `${winner}-next`, T0 + DAY, T0 + 2, NO_GRACE)).toEqual({ status: "invalid" });
        }
      });

      it("answers one retry of the newest spent token within the grace, retiring its unseen successor", async () => {
        await seed(d);
        await d.insertRefreshToken(token("g1", "fam-g"), T0);
        expect(await d.rotateRefreshToken("g1", "g2", T0 + DAY, T0 + 1, GRACE)).toMatchObject({ status: "rotated", retried: false });
        // g2's answer was lost: the client retries with g1.
        expect(await d.rotateRefreshToken("g1", "g2b", T0 + DAY, T0 + GRACE, GRACE)).toEqual({
          status: "rotated",
          userId: "u-alice",
          orgId: "org-help",
          familyId: "fam-g",
          conversationScope: null,
          retried: true,
        });
        expect(await d.isFamilyRevoked("fam-g")).toBe(false);
        expect(await d.rotateRefreshToken("g2b", "g3", T0 + DAY, T0 + GRACE + 1, GRACE)).toMatchObject({ status: "rotated", retried: false });
        // g2 turning up now was never the client's: the family ends.
        expect(await d.rotateRefreshToken("g2", "gx", T0 + DAY, T0 + GRACE + 2, GRACE)).toMatchObject({ status: "reused", familyId: "fam-g" });
        expect(await d.rotateRefreshToken("g3", "g4", T0 + DAY, T0 + GRACE + 3, GRACE)).toEqual({ status: "invalid" });
      });

      it("refuses the retry after the grace, after the successor was used, and a second time, each ending the family", async () => {
        await seed(d);
        const cases: [string, (family: string) => Promise<void>][] = [
          ["late", async (f) => void (await d.rotateRefreshToken(`${f}-1`, `${f}-2`, T0 + DAY, T0, GRACE))],
          ["successor used", async (f) => {
            await d.rotateRefreshToken(`${f}-1`, `${f}-2`, T0 + DAY, T0, GRACE);
            await d.rotateRefreshToken(`${f}-2`, `${f}-3`, T0 + DAY, T0 + 1, GRACE);
          }],
          ["second retry", async (f) => {
            await d.rotateRefreshToken(`${f}-1`, `${f}-2`, T0 + DAY, T0, GRACE);
            await d.rotateRefreshToken(`${f}-1`, `${f}-2b`, T0 + DAY, T0 + 1, GRACE);
          }],
        ];
        for (const [name, before] of cases) {
          const family = `fam-${name.replace(/ /g, "-")}`;
          await d.insertRefreshToken(token(`${family}-1`, family), T0);
          await before(family);
          const at = name === "late" ? T0 + GRACE + 1 : T0 + 2;
          expect(await d.rotateRefreshToken(`${family}-1`, `${family}-x`, T0 + DAY, at, GRACE), name).toMatchObject({ status: "reused", familyId: family });
          expect(await d.isFamilyRevoked(family), name).toBe(true);
        }
      });

      it("grants exactly one of two nodes' retries of the same token at once; the other ends the family", async () => {
        await seed(d);
        const other = (await backend.open()).directory;
        for (let round = 0; round < 4; round++) {
          const family = `fam-retry-race-${round}`;
          await d.insertRefreshToken(token(`q${round}`, family), T0);
          await d.rotateRefreshToken(`q${round}`, `q${round}-lost`, T0 + DAY, T0 + 1, GRACE);
          const outcomes = await Promise.all([
            d.rotateRefreshToken(`q${round}`, `q${round}-a`, T0 + DAY, T0 + 2, GRACE),
            other.rotateRefreshToken(`q${round}`, `q${round}-b`, T0 + DAY, T0 + 2, GRACE),
          ]);
          expect(outcomes.map((o) => o.status).sort()).toEqual(["reused", "rotated"]);
          expect(await d.isFamilyRevoked(family)).toBe(true);
        }
      });

      it("signs a person out everywhere", async () => {
        await seed(d);
        await d.insertRefreshToken(token("a1", "fam-a"), T0);
        await d.insertRefreshToken(token("b1", "fam-b"), T0);
        await d.insertRefreshToken({ ...token("s1", "fam-s"), userId: "u-sam", orgId: "org-supp" }, T0);
        await d.revokeFamily("fam-a", "u-alice", "signed out", T0);
        await d.revokeFamily("fam-a", "u-alice", "signed out again", T0 + 1);
        expect((await d.revokeUserSessions("u-alice", "password changed", T0 + 2)).sort()).toEqual(["fam-a", "fam-b"]);
        expect(await d.isFamilyRevoked("fam-b")).toBe(true);
        expect(await d.isFamilyRevoked("fam-s")).toBe(false);
        expect(await d.rotateRefreshToken("b1", "b2", T0 + DAY, T0 + 3, 0)).toEqual({ status: "invalid" });
      });
    });

    describe("membership invitations", () => {
      const invitation = (id: string, orgId: string, email: string, role: "owner" | "admin" | "member" = "member") => ({
        id,
        orgId,
        email,
        role,
        invitedBy: "u-alice",
        createdAt: T0,
        expiresAt: T0 + DAY,
      });

      it("adds a member only when the invited person accepts, once, while it is live", async () => {
        await seed(d);
        await d.createMemberInvitation(invitation("mi-1", "org-help", "Sam@Supp.example", "admin"));
        expect(await d.getMembership("org-help", "u-sam")).toBeNull();
        expect(await d.listMemberInvitations("org-help")).toMatchObject([{ id: "mi-1", email: "sam@supp.example", role: "admin" }]);
        expect(await d.listMemberInvitationsForEmail("SAM@supp.example", T0)).toMatchObject([{ id: "mi-1", orgId: "org-help", orgName: "Helpdesk" }]);
        // Someone else (another address) cannot accept it.
        expect(await d.acceptMemberInvitation("mi-1", { id: "u-olga", email: "olga@out.example" }, T0 + 1)).toBeNull();
        expect(await d.acceptMemberInvitation("mi-1", { id: "u-sam", email: "sam@supp.example" }, T0 + 1)).toEqual({ orgId: "org-help", role: "admin" });
        expect(await d.getMembership("org-help", "u-sam")).toBe("admin");
        expect(await d.acceptMemberInvitation("mi-1", { id: "u-sam", email: "sam@supp.example" }, T0 + 2)).toBeNull();
        expect(await d.listMemberInvitations("org-help")).toEqual([]);
        // Expired: refused and no longer offered.
        await d.createMemberInvitation(invitation("mi-2", "org-help", "olga@out.example"));
        expect(await d.listMemberInvitationsForEmail("olga@out.example", T0 + DAY)).toEqual([]);
        expect(await d.acceptMemberInvitation("mi-2", { id: "u-olga", email: "olga@out.example" }, T0 + DAY)).toBeNull();
      });

      it("never changes an existing membership by accepting (an owner is not demoted)", async () => {
        await seed(d);
        await d.createMemberInvitation(invitation("mi-3", "org-help", "alice@help.example", "member"));
        expect(await d.acceptMemberInvitation("mi-3", { id: "u-alice", email: "alice@help.example" }, T0 + 1)).toEqual({ orgId: "org-help", role: "owner" });
        expect(await d.getMembership("org-help", "u-alice")).toBe("owner");
      });

      it("revokes only through the inviting organisation; the invited person may decline", async () => {
        await seed(d);
        await d.createMemberInvitation(invitation("mi-4", "org-help", "sam@supp.example"));
        expect(await d.revokeMemberInvitation("org-out", "mi-4", T0 + 1)).toBe(false);
        expect(await d.declineMemberInvitation("mi-4", "olga@out.example", T0 + 1)).toBe(false);
        expect(await d.declineMemberInvitation("mi-4", "sam@supp.example", T0 + 1)).toBe(true);
        expect(await d.revokeMemberInvitation("org-help", "mi-4", T0 + 2)).toBe(false);
        await d.createMemberInvitation(invitation("mi-5", "org-help", "sam@supp.example"));
        expect(await d.revokeMemberInvitation("org-help", "mi-5", T0 + 1)).toBe(true);
        expect(await d.acceptMemberInvitation("mi-5", { id: "u-sam", email: "sam@supp.example" }, T0 + 2)).toBeNull();
      });

      it("accepts an invitation once when two nodes accept it at the same moment", async () => {
        await seed(d);
        const other = (await backend.open()).directory;
        await d.createMemberInvitation(invitation("mi-6", "org-help", "sam@supp.example"));
        const outcomes = await Promise.all([
          d.acceptMemberInvitation("mi-6", { id: "u-sam", email: "sam@supp.example" }, T0 + 1),
          other.acceptMemberInvitation("mi-6", { id: "u-sam", email: "sam@supp.example" }, T0 + 1),
        ]);
        expect(outcomes.filter((o) => o !== null)).toHaveLength(1);
      });
    });

    describe("sessions scoped to one conversation", () => {
      it("keeps a refresh family's conversation scope through every rotation", async () => {
        await seed(d);
        await d.insertRefreshToken({ tokenHash: "s1", familyId: "fam-s", userId: "u-ivan", orgId: "org-ivan", expiresAt: T0 + DAY, conversationScope: "c-1" }, T0);
        expect(await d.rotateRefreshToken("s1", "s2", T0 + DAY, T0 + 1, 0)).toMatchObject({ status: "rotated", conversationScope: "c-1" });
        expect(await d.rotateRefreshToken("s2", "s3", T0 + DAY, T0 + 2, 0)).toMatchObject({ status: "rotated", conversationScope: "c-1" });
      });
    });

    describe("operator support access", () => {
      it("records grants for existing conversations only, lists them, and revokes once", async () => {
        await seed(d);
        const grant = { id: "sup-1", operator: "ops.jan", conversationId: "c-1", reason: "customer asked us to look", grantedAt: T0, expiresAt: T0 + 3_600_000 };
        await d.recordSupportGrant(grant);
        expect(await d.getSupportGrant("sup-1")).toEqual({ ...grant, revokedAt: null });
        expect(await d.listSupportGrants("c-1")).toEqual([{ ...grant, revokedAt: null }]);
        expect(await d.revokeSupportGrant("sup-1", T0 + 5)).toBe(true);
        expect(await d.revokeSupportGrant("sup-1", T0 + 6)).toBe(false);
        expect((await d.getSupportGrant("sup-1"))?.revokedAt).toBe(T0 + 5);
        await expect(d.recordSupportGrant({ ...grant, id: "sup-2", conversationId: "c-nope" })).rejects.toMatchObject({ name: "DirectoryError", code: "not_found" });
      });
    });

    describe("deletion and retention", () => {
      it("takes a party's access away when it deletes its side, and only that party's", async () => {
        await seed(d);
        const parties = await d.deleteConversationSide("c-1", "org-supp", "u-sam", "deleted", T0 + 10);
        expect(parties).toEqual([
          { orgId: "org-help", retentionDays: 365, sideDeletedAt: null },
          { orgId: "org-supp", retentionDays: 365, sideDeletedAt: T0 + 10 },
          { orgId: "org-watch", retentionDays: 365, sideDeletedAt: null },
        ]);
        expect(await d.accessRole("c-1", person("org-supp", "u-sam"))).toBeNull();
        expect(await d.accessRole("c-1", apiKey("org-supp"))).toBeNull();
        expect(await d.listConversations(person("org-supp", "u-sam"), { limit: 10 })).toEqual([]);
        expect(await d.accessRole("c-1", person("org-help", "u-alice"))).toBe("writer");
        // Deleting again keeps the first time.
        await d.deleteConversationSide("c-1", "org-supp", "u-sam", "again", T0 + 20);
        expect((await d.listConversationParties("c-1"))[1].sideDeletedAt).toBe(T0 + 10);
        await expect(d.deleteConversationSide("c-1", "org-out", "u-olga", "x", T0)).rejects.toMatchObject({ code: "not_found" });
        await expect(d.deleteConversationSide("c-nope", "org-out", "u-olga", "x", T0)).rejects.toMatchObject({ code: "not_found" });
      });

      it("keeps legal holds per party and removes a destroyed conversation's record with everything on it", async () => {
        await seed(d);
        const hold = { conversationId: "c-1", orgId: "org-supp", setBy: "u-sam", reason: "litigation", setAt: T0 + 5 };
        await d.putLegalHold(hold);
        expect(await d.listLegalHolds("c-1")).toEqual([hold]);
        await expect(d.putLegalHold({ ...hold, conversationId: "c-nope" })).rejects.toMatchObject({ code: "not_found" });
        expect(await d.removeLegalHold("c-1", "org-help")).toBe(false);
        expect(await d.removeLegalHold("c-1", "org-supp")).toBe(true);
        await d.putLegalHold(hold);
        await d.deleteConversationSide("c-1", "org-help", "u-alice", "deleted", T0 + 6);
        expect(await d.listConversationIds("", 10)).toEqual(["c-1"]);
        expect(await d.removeConversationRecord("c-1")).toBe(true);
        expect(await d.removeConversationRecord("c-1")).toBe(false);
        expect(await d.getConversation("c-1")).toBeNull();
        expect(await d.listConversationParties("c-1")).toEqual([]);
        expect(await d.listLegalHolds("c-1")).toEqual([]);
        expect(await d.listConversationIds("", 10)).toEqual([]);
      });

      it("shares a deletion ledger: each destruction recorded once, listed oldest first", async () => {
        await d.recordDeletion({ subject: "conversation", id: "c-9", reason: "retention", at: T0 + 2 });
        await d.recordDeletion({ subject: "person", id: "u-9", reason: "person-deleted", at: T0 + 1 });
        await d.recordDeletion({ subject: "conversation", id: "c-9", reason: "replay", at: T0 + 3 });
        expect(await d.listDeletions()).toEqual([
          { subject: "person", id: "u-9", reason: "person-deleted", at: T0 + 1 },
          { subject: "conversation", id: "c-9", reason: "retention", at: T0 + 2 },
        ]);
      });

      it("erases a person's personal data but keeps their id, and refuses to orphan an organisation", async () => {
        await seed(d);
        await d.putMember("org-help", "u-sam", "member", T0);
        await expect(d.erasePerson("u-alice", T0)).rejects.toMatchObject({ code: "invalid" });
        await d.insertRefreshToken({ tokenHash: "rt-1", familyId: "fam-1", userId: "u-sam", orgId: "org-supp", expiresAt: T0 + 1e9 }, T0);
        await d.setTotp("u-sam", new Uint8Array([1, 2, 3]), true);
        const erased = await d.erasePerson("u-sam", T0 + 1);
        expect({ ...erased, orgs: [...erased.orgs].sort() }).toEqual({ families: ["fam-1"], orgs: ["org-help", "org-supp"] });
        const user = await d.getUser("u-sam");
        expect(user).toMatchObject({ id: "u-sam", name: "", passwordHash: null, totpSealed: null, totpEnabled: false });
        expect(user?.email).not.toContain("supp.example");
        expect(await d.getUserByEmail("sam@supp.example")).toBeNull();
        expect(await d.listMemberships("u-sam")).toEqual([]);
        expect(await d.isFamilyRevoked("fam-1")).toBe(true);
        await expect(d.erasePerson("u-nobody", T0)).rejects.toMatchObject({ code: "not_found" });
      });

      it("erases on an organisation's behalf only when it is the person's one membership", async () => {
        await seed(d);
        await d.putMember("org-help", "u-sam", "member", T0);
        // Sam belongs to the supplier as well: the helpdesk cannot erase the account.
        await expect(d.erasePerson("u-sam", T0 + 1, { onlyMemberOf: "org-help" })).rejects.toMatchObject({ code: "not_found" });
        await expect(d.erasePerson("u-sam", T0 + 1, { onlyMemberOf: "org-out" })).rejects.toMatchObject({ code: "not_found" });
        expect((await d.getUser("u-sam"))?.email).toBe("sam@supp.example");
        await d.putMember("org-help", "u-ivan", "member", T0);
        await d.putMember("org-ivan", "u-olga", "owner", T0);
        await d.removeMember("org-ivan", "u-ivan");
        await d.createMemberInvitation({ id: "mi-e", orgId: "org-out", email: "ivan@free.example", role: "member", invitedBy: "u-olga", createdAt: T0, expiresAt: T0 + DAY });
        expect((await d.erasePerson("u-ivan", T0 + 1, { onlyMemberOf: "org-help" })).orgs).toEqual(["org-help"]);
        expect(await d.getUserByEmail("ivan@free.example")).toBeNull();
        // Invitations addressed to the erased person are gone too.
        expect(await d.listMemberInvitations("org-out")).toEqual([]);
      });

      it("refuses the last owner's erasure without naming the organisation", async () => {
        await seed(d);
        await d.putMember("org-help", "u-sam", "member", T0);
        const refusal = await d.erasePerson("u-alice", T0).catch((error: unknown) => error as Error);
        expect(refusal).toMatchObject({ code: "invalid" });
        expect((refusal as Error).message).not.toContain("org-help");
      });
    });

    it("keeps everything across a reopen of the same database", async () => {
      await seed(d);
      const again = (await backend.open()).directory;
      expect(await again.getMembership("org-help", "u-alice")).toBe("owner");
      expect(await again.accessRole("c-1", person("org-watch", "u-wendy"))).toBe("observer");
    });
  });
}
