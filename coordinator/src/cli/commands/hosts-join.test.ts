import test from "ava";
import { joinCommandLine, shellQuote } from "./hosts-join.js";

const KEY = "xEQcm3eq4fJ94ZndLSDzQfeFDVt5F7GkQ_O9TmCLx3k";
const TLS = { fingerprint: `sha256:${Array(32).fill("AB").join(":")}`, publicKeySha256: "U20aqasVT+Xfo0eO3lTDG8GlDU5LT+D2BAX0aXPjl7c=" };

test("the pasted line: curl pinned to the certificate's key, run only once whole, install.sh fetching the signed agent with the key from the line", (t) => {
  t.is(
    joinCommandLine({ coordinatorUrl: "https://coord.example:7400/", token: "cte_s.k", manifest: { publicKey: KEY, tls: TLS }, labels: "role=geoip,zone=a", address: "10.0.0.5" }),
    `s=$(curl -fsS -k --pinnedpubkey sha256//U20aqasVT+Xfo0eO3lTDG8GlDU5LT+D2BAX0aXPjl7c= https://coord.example:7400/install.sh) && bash -c "$s" install.sh ` +
      `--coordinator https://coord.example:7400 --pin ${TLS.fingerprint} --token cte_s.k --coordinator-key ${KEY} --fetch-agent --labels role=geoip,zone=a --address 10.0.0.5`,
  );
});

test("over plain http the line has no pins (the CLI prints it only with --allow-unpinned)", (t) => {
  t.is(
    joinCommandLine({ coordinatorUrl: "http://127.0.0.1:7400", token: "cte_s.k", manifest: { publicKey: KEY, tls: null } }),
    `s=$(curl -fsS http://127.0.0.1:7400/install.sh) && bash -c "$s" install.sh --coordinator http://127.0.0.1:7400 --token cte_s.k --coordinator-key ${KEY} --fetch-agent`,
  );
});

test("shellQuote leaves plain words alone and single-quotes the rest", (t) => {
  t.is(shellQuote("role=geoip,zone=a"), "role=geoip,zone=a");
  t.is(shellQuote("a b"), "'a b'");
  t.is(shellQuote("it's $HOME"), `'it'\\''s $HOME'`);
  t.is(shellQuote(""), "''");
});
