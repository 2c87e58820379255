/**
 * Several coordinators on one store (docs/ha.md): one leads, under an epoch raised on every
 * takeover of its lease. An agent that announces FOLLOWS_LEADER in Hello gets the epoch and the
 * members in Welcome, under the Welcome's signature (WelcomeProof.epoch, .members); it keeps the
 * highest epoch it has seen and refuses a Welcome under a lower one, so an old leader that has
 * not noticed its lease is gone cannot command it. A follower refuses the session with
 * RefusalCode.NotLeader and names the leader (Refusal.leader_url, unsigned: only a URL the agent
 * already trusts is followed).
 *
 * An agent without the capability is sent neither field and verifies the WelcomeProof it
 * always did (a proof with epoch 0 and no members encodes to the same bytes).
 */
export const FOLLOWS_LEADER = "session.epoch";

/** Most entries of Welcome.members an agent takes (a fleet has a handful of coordinators). */
export const MAX_MEMBERS = 32;
