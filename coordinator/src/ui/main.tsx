import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { ApiError, get } from "./api.js";
import { AppsPage } from "./apps.js";
import { AuditPage } from "./audit.js";
import { DeploymentPage, DeploymentsPage } from "./deployments.js";
import { FleetPage } from "./fleet.js";
import { sessionToken, signIn, signOut, takeTokenFromFragment } from "./session.js";
import type { Whoami } from "./types.js";

/** The page the address bar names: `#/fleet`, `#/apps`, `#/deployments`, `#/deployments/<id>`, `#/audit`. */
function route(): string[] {
  const path = window.location.hash.replace(/^#\/?/, "");
  return path === "" ? ["fleet"] : path.split("/").map(decodeURIComponent);
}

function go(path: string): void {
  window.location.hash = `#${path}`;
}

function SignIn({ onSignedIn, problem }: { onSignedIn(who: Whoami): void; problem: string | null }) {
  const [token, setToken] = useState("");
  const [error, setError] = useState<string | null>(problem);
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const who = await get<Whoami>("/v1/whoami", token.trim());
      signIn(token);
      setToken("");
      onSignedIn(who);
    } catch (caught) {
      setError((caught as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="sign-in">
      <form onSubmit={(e) => void submit(e)}>
        <h1>cutover</h1>
        <p>Sign in with an API token (`cutover token create --api --role read`, or `cutover ui` prints a link). It is kept in this tab only.</p>
        <label>
          API token <input type="password" name="token" autocomplete="off" required value={token} onInput={(e) => setToken((e.target as HTMLInputElement).value)} />
        </label>
        {error && <p class="error" role="alert">{error}</p>}
        <button type="submit" disabled={busy || token.trim() === ""}>Sign in</button>
      </form>
    </main>
  );
}

function App() {
  const [who, setWho] = useState<Whoami | null>(null);
  const [checking, setChecking] = useState(sessionToken() !== null);
  const [problem, setProblem] = useState<string | null>(null);
  const [path, setPath] = useState(route());
  useEffect(() => {
    const changed = () => setPath(route());
    window.addEventListener("hashchange", changed);
    return () => window.removeEventListener("hashchange", changed);
  }, []);
  useEffect(() => {
    if (!sessionToken()) return;
    get<Whoami>("/v1/whoami")
      .then(setWho)
      .catch((caught: Error) => {
        // A token the coordinator no longer takes: back to the sign-in page, saying why.
        if (caught instanceof ApiError && caught.status === 401) signOut();
        setProblem(caught.message);
      })
      .finally(() => setChecking(false));
  }, []);
  if (checking) return <main class="loading">signing in…</main>;
  if (!who) return <SignIn onSignedIn={(w) => { setProblem(null); setWho(w); }} problem={problem} />;
  const [page, id] = path;
  const nav = [
    ["fleet", "Fleet"],
    ["apps", "Apps"],
    ["deployments", "Deployments"],
    ...(who.role === "admin" ? [["audit", "Audit"]] : []),
  ] as [string, string][];
  return (
    <>
      <nav class="top">
        <span class="brand">cutover</span>
        {nav.map(([target, text]) => (
          <a href={`#/${target}`} class={page === target ? "current" : ""} data-nav={target}>
            {text}
          </a>
        ))}
        <span class="who" data-role={who.role}>
          {who.name} ({who.role})
        </span>
        <button
          type="button"
          class="sign-out"
          onClick={() => {
            signOut();
            setWho(null);
          }}
        >
          Sign out
        </button>
      </nav>
      <main>
        {page === "fleet" && <FleetPage />}
        {page === "apps" && <AppsPage role={who.role} go={go} />}
        {page === "deployments" && !id && <DeploymentsPage />}
        {page === "deployments" && id && <DeploymentPage id={id} role={who.role} go={go} key={id} />}
        {page === "audit" && who.role === "admin" && <AuditPage />}
        {!["fleet", "apps", "deployments", "audit"].includes(page ?? "") && <p class="empty">No such page.</p>}
      </main>
    </>
  );
}

takeTokenFromFragment();
render(<App />, document.getElementById("app")!);
