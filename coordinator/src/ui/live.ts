import { useEffect, useState } from "preact/hooks";
import { streamEvents } from "./api.js";
import type { Polled } from "./poll.js";

/** After a stream ends or fails (a coordinator restart, a dropped connection): open it again this much later. */
const RECONNECT_MS = 2000;

/**
 * The latest `type` event of the server-sent stream at `path`, for as long as the component
 * is shown: what the coordinator pushes as it happens, not a poll. The stream is opened
 * again after it ends or fails; `error` says why it is down meanwhile.
 */
export function useLive<T>(path: string, type: string): Polled<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<Error | undefined>(undefined);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const abort = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const open = async () => {
      try {
        await streamEvents(
          path,
          (event, value) => {
            if (event !== type) return;
            setData(value as T);
            setError(undefined);
          },
          abort.signal,
        );
      } catch (caught) {
        if (abort.signal.aborted) return;
        setError(caught as Error);
      }
      if (!abort.signal.aborted) timer = setTimeout(() => void open(), RECONNECT_MS);
    };
    void open();
    return () => {
      abort.abort();
      clearTimeout(timer);
    };
  }, [path, type, tick]);
  return { data, error, refresh: () => setTick((t) => t + 1) };
}
