import { useEffect, useState } from "preact/hooks";

/** What a poll shows: the latest answer, and the latest error (cleared by the next answer). */
export interface Polled<T> {
  data: T | undefined;
  error: Error | undefined;
  refresh(): void;
}

/** Calls `load` now and every `everyMs` while the component is shown; answers that arrive after it is gone are dropped. */
export function usePoll<T>(load: () => Promise<T>, everyMs: number, key: unknown[] = []): Polled<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<Error | undefined>(undefined);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let alive = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const run = async () => {
      try {
        const value = await load();
        if (!alive) return;
        setData(value);
        setError(undefined);
      } catch (caught) {
        if (alive) setError(caught as Error);
      }
      if (alive) timer = setTimeout(run, everyMs);
    };
    void run();
    return () => {
      alive = false;
      clearTimeout(timer);
    };
  }, [...key, tick]);
  return { data, error, refresh: () => setTick((t) => t + 1) };
}
