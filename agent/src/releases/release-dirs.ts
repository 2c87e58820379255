import type { ChunkSource, ReleaseStore } from "./release-store.js";

/** A release as the transaction names it: with its artifact's hash, or none (the app runs from its scratch dir). */
export interface ReleaseId {
  release: string;
  sha256?: string;
}

/** Where an app's releases run from (ReleaseStore below; unit tests use a fake). */
export interface ReleaseDirs {
  /** The release's directory: its artifact unpacked (fetched from the coordinator first when missing), or the app's scratch dir. */
  dirOf(app: string, release: ReleaseId): Promise<string>;
  /** Deletes the app's unpacked releases except `keep`. */
  prune(app: string, keep: string[]): void;
  /** Deletes every unpacked release of the app (`cutover apps remove`); true when there were some. */
  removeAll(app: string): boolean;
}

/** The releases under STATE/releases, fetched chunk by chunk over the coordinator link. */
export function releaseDirs(store: ReleaseStore, fetchChunk: ChunkSource): ReleaseDirs {
  return {
    dirOf: (app, { release, sha256 }) => (sha256 ? store.ensure(app, release, sha256, fetchChunk) : Promise.resolve(store.scratchDir(app))),
    prune: (app, keep) => store.prune(app, keep),
    removeAll: (app) => store.removeAll(app),
  };
}
