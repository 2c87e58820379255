import type { cutover } from "@cutover/protocol";
import { follow, frames, lastLines, logSources } from "./tail.js";

/** Open TailLogs streams on this agent; all end when the coordinator session does. */
export class LogStreams {
  private readonly open = new Map<string, (() => void)[]>();

  constructor(private readonly stateDir: string, private readonly send: (lines: cutover.v1.LogLines.$Properties) => void) {}

  start(request: cutover.v1.TailLogs.$Properties): number {
    const streamId = request.streamId ?? "";
    this.stop(streamId);
    const sources = logSources(this.stateDir, request);
    const stops: (() => void)[] = [];
    let sent = 0;
    for (const { source, path } of sources) {
      const { lines, size } = lastLines(path, request.lines ?? 100);
      for (const chunk of frames(lines)) {
        this.send({ streamId, source, lines: chunk });
        sent += chunk.length;
      }
      if (request.follow) stops.push(follow(path, size, (more) => {
        for (const chunk of frames(more)) this.send({ streamId, source, lines: chunk });
      }));
    }
    if (request.follow) this.open.set(streamId, stops);
    return sent;
  }

  stop(streamId: string): void {
    for (const stop of this.open.get(streamId) ?? []) stop();
    this.open.delete(streamId);
  }

  stopAll(): void {
    for (const id of [...this.open.keys()]) this.stop(id);
  }
}
