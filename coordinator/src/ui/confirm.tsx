import { useEffect, useRef, useState } from "preact/hooks";

/** What an action will do, asked before it is sent. */
export interface Confirmation {
  /** The button's label, e.g. "Abort". */
  action: string;
  /** One sentence naming what will happen, e.g. "Stop deployment … of geoip and roll back the hosts it changed." */
  consequence: string;
  run(): Promise<void>;
}

/** A modal dialog that names what an action will do; nothing is sent until the operator confirms. */
export function ConfirmDialog(props: { ask: Confirmation | null; busy: boolean; error: string | null; onCancel(): void; onConfirm(): void }) {
  const dialog = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const element = dialog.current;
    if (!element) return;
    if (props.ask && !element.open) element.showModal();
    if (!props.ask && element.open) element.close();
  }, [props.ask]);
  return (
    <dialog ref={dialog} class="confirm" onCancel={(e) => { e.preventDefault(); props.onCancel(); }}>
      {props.ask && (
        <form method="dialog" onSubmit={(e) => { e.preventDefault(); props.onConfirm(); }}>
          <h2>{props.ask.action}?</h2>
          <p class="consequence">{props.ask.consequence}</p>
          {props.error && <p class="error" role="alert">{props.error}</p>}
          <div class="buttons">
            <button type="button" class="cancel" onClick={props.onCancel} disabled={props.busy}>Cancel</button>
            <button type="submit" class="danger" data-confirm={props.ask.action.toLowerCase()} disabled={props.busy}>{props.ask.action}</button>
          </div>
        </form>
      )}
    </dialog>
  );
}

/** One confirmation at a time: `ask` opens the dialog; `dialog` is the element to render. */
export function useConfirm(): { ask(confirmation: Confirmation): void; dialog: preact.JSX.Element } {
  const [pending, setPending] = useState<Confirmation | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const confirm = async () => {
    if (!pending) return;
    setBusy(true);
    setError(null);
    try {
      await pending.run();
      setPending(null);
    } catch (caught) {
      setError((caught as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return {
    ask: (confirmation) => {
      setError(null);
      setPending(confirmation);
    },
    dialog: <ConfirmDialog ask={pending} busy={busy} error={error} onCancel={() => setPending(null)} onConfirm={() => void confirm()} />,
  };
}
