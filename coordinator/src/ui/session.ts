// The API token the operator signed in with: in this tab's sessionStorage only (gone when the tab
// closes, never in localStorage or a cookie), read once from a `#token=…` link, which is then
// taken out of the address bar and history. A URL fragment is never sent to the server.

const KEY = "cutover.token";

/** Moves a token from the URL fragment into the session; true when there was one. */
export function takeTokenFromFragment(): boolean {
  const match = /^#token=([^&]+)/.exec(window.location.hash);
  if (!match) return false;
  const token = decodeURIComponent(match[1]!).trim();
  history.replaceState(null, "", `${window.location.pathname}${window.location.search}#/fleet`);
  if (token) sessionStorage.setItem(KEY, token);
  return token !== "";
}

export function sessionToken(): string | null {
  return sessionStorage.getItem(KEY);
}

export function signIn(token: string): void {
  sessionStorage.setItem(KEY, token.trim());
}

export function signOut(): void {
  sessionStorage.removeItem(KEY);
}
