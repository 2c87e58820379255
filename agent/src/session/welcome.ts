import type { Logger } from "@cutover/log";
import type { CommandVerifier } from "./command-verifier.js";
import type { LinkOptions } from "./coordinator-link.js";
import type { CoordinatorUrls } from "./coordinator-urls.js";

/**
 * A Welcome is taken only from a coordinator the verifier trusts (the pinned key, or the one the
 * enrollment token names; an epoch no lower than any seen): then the members it lists, which
 * its signature covers, are coordinators the agent may dial and follow.
 */
export function welcomeHandler(parts: {
  verifier: CommandVerifier;
  coordinators: CoordinatorUrls;
  /** The key id the enrollment token names, while nothing is pinned (see agent.ts). */
  enrollmentKeyId: string | undefined;
  log: Logger;
  /** Records that the coordinator accepted this agent's key. */
  enrolled: () => Promise<void>;
}): LinkOptions["onWelcome"] {
  const { verifier, coordinators, enrollmentKeyId, log, enrolled } = parts;
  return async (welcome, session) => {
    const trusted = await verifier.welcome(welcome, session, enrollmentKeyId);
    if (!trusted.ok) {
      log.error("not trusting this coordinator: refusing the session", { reason: trusted.reason });
      return false;
    }
    if (welcome.enrolled) log.info("enrolled with the coordinator", { hostId: welcome.hostId });
    await enrolled();
    // Known in memory from here; a list that could not be saved is saved at the next Welcome.
    await coordinators.learn(welcome.members ?? []).catch((error: Error) => log.warn("cannot save the fleet's coordinators", { error: error.message }));
    return true;
  };
}
