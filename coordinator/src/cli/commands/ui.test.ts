import test from "ava";
import { dashboardLink } from "./ui.js";

test("the dashboard link carries the token in its fragment only, encoded", (t) => {
  t.is(dashboardLink("https://coordinator:7400", "cta_abc"), "https://coordinator:7400/ui/#token=cta_abc");
  t.is(dashboardLink("http://127.0.0.1:7400/", "a b&c#d"), "http://127.0.0.1:7400/ui/#token=a%20b%26c%23d");
  const url = new URL(dashboardLink("https://coordinator:7400", "cta_secret"));
  t.is(url.pathname + url.search, "/ui/", "what a browser sends names no token");
});
