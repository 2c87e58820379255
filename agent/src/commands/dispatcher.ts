import { v1, type cutover } from "@cutover/protocol";
import type { Logger } from "@cutover/log";

const Status = v1.CommandResult.Status;
/** Results remembered for idempotency: a repeated command id gets the stored result. */
export const REMEMBERED_RESULTS = 1024;

export type OperationName = NonNullable<cutover.v1.Command["operation"]>;
export type OperationResult = Omit<cutover.v1.CommandResult.$Properties, "commandId" | "durationMs">;
export type OperationHandler = (command: cutover.v1.Command) => Promise<OperationResult>;

/**
 * Routes each Command to the handler of its operation. Answers commands past
 * their deadline with EXPIRED, operations this agent does not know with
 * UNSUPPORTED, and a repeated command id with the first result.
 */
export class CommandDispatcher {
  private readonly results = new Map<string, Promise<cutover.v1.CommandResult.$Properties>>();
  private readonly handlers = new Map<OperationName, OperationHandler>();

  constructor(
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
    /** Results saved on disk by earlier runs (deploys), so ids stay idempotent across agent restarts. */
    private readonly storedResult: (commandId: string) => cutover.v1.CommandResult.$Properties | undefined = () => undefined,
    /** Observes each command the agent ran (metrics). */
    private readonly onFinished?: (operation: string, status: string, seconds: number) => void,
  ) {
    this.handle("ping", async (command) => ({ status: Status.OK, pong: { payload: command.ping?.payload ?? "" } }));
  }

  handle(operation: OperationName, handler: OperationHandler): void {
    this.handlers.set(operation, handler);
  }

  dispatch(command: cutover.v1.Command): Promise<cutover.v1.CommandResult.$Properties> {
    const stored = this.results.has(command.commandId) ? undefined : this.storedResult(command.commandId);
    if (stored) this.results.set(command.commandId, Promise.resolve(stored));
    const known = this.results.get(command.commandId);
    if (known) {
      this.log.info("repeated command id; returning the stored result", { commandId: command.commandId });
      return known;
    }
    const result = this.run(command);
    this.results.set(command.commandId, result);
    if (this.results.size > REMEMBERED_RESULTS) this.results.delete(this.results.keys().next().value!);
    return result;
  }

  private async run(command: cutover.v1.Command): Promise<cutover.v1.CommandResult.$Properties> {
    const started = performance.now();
    const finish = (result: OperationResult) => {
      const seconds = (performance.now() - started) / 1000;
      this.onFinished?.(command.operation ?? "unknown", Status[result.status ?? 0] ?? "UNKNOWN", seconds);
      return { ...result, commandId: command.commandId, durationMs: Math.round(seconds * 1000) };
    };
    if (command.deadlineUnixMs < this.now()) {
      return finish({ status: Status.EXPIRED, errorCode: "ERR_COMMAND_EXPIRED", message: "received after its deadline; nothing was done" });
    }
    const handler = command.operation ? this.handlers.get(command.operation) : undefined;
    if (!handler) {
      this.log.warn("unsupported operation", { commandId: command.commandId, operation: command.operation ?? "unknown" });
      return finish({ status: Status.UNSUPPORTED, errorCode: "ERR_UNSUPPORTED_OPERATION", message: "this agent does not support the operation; upgrade it" });
    }
    try {
      return finish(await handler(command));
    } catch (error) {
      const code = (error as { code?: string }).code ?? "ERR_INTERNAL";
      this.log.error("command failed", { commandId: command.commandId, operation: command.operation, code, error: (error as Error).message });
      return finish({ status: Status.FAILED, errorCode: code, message: (error as Error).message });
    }
  }
}
