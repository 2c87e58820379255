/**
 * proxy.directives: what a spec may add to its app's nginx server block.
 *
 * nginx runs its master as root, and some directives run code in the workers
 * (`*_by_lua*`, `perl`, `js_*`), make the master read files (`include`,
 * `ssl_certificate`, `load_module`), write files (`access_log`) or serve them
 * (`root`, `alias`), or send requests elsewhere (`proxy_pass`, `mirror`). A
 * deploy token must not reach any of that, so the names are an allowlist of
 * timeouts, sizes, buffering, headers and compression, and the arguments are
 * plain words: no `;`, braces, `#`, backslashes or stray quotes that could end
 * the directive and start another. The coordinator checks every spec with this;
 * the agent checks again before it renders a site.
 */

/** Directive names a spec may use, sorted; the same list is in packages/spec/README.md. */
export const ALLOWED_PROXY_DIRECTIVES: readonly string[] = [
  "add_header",
  "allow",
  "chunked_transfer_encoding",
  "client_body_buffer_size",
  "client_body_timeout",
  "client_header_buffer_size",
  "client_header_timeout",
  "client_max_body_size",
  "deny",
  "gzip",
  "gzip_buffers",
  "gzip_comp_level",
  "gzip_disable",
  "gzip_http_version",
  "gzip_min_length",
  "gzip_proxied",
  "gzip_types",
  "gzip_vary",
  "ignore_invalid_headers",
  "keepalive_requests",
  "keepalive_time",
  "keepalive_timeout",
  "large_client_header_buffers",
  "limit_rate",
  "limit_rate_after",
  "proxy_buffer_size",
  "proxy_buffering",
  "proxy_buffers",
  "proxy_busy_buffers_size",
  "proxy_connect_timeout",
  "proxy_download_rate",
  "proxy_hide_header",
  "proxy_ignore_headers",
  "proxy_intercept_errors",
  "proxy_max_temp_file_size",
  "proxy_next_upstream",
  "proxy_next_upstream_timeout",
  "proxy_next_upstream_tries",
  "proxy_pass_header",
  "proxy_read_timeout",
  "proxy_request_buffering",
  "proxy_responses",
  "proxy_send_timeout",
  "proxy_set_header",
  "proxy_socket_keepalive",
  "proxy_timeout",
  "proxy_upload_rate",
  "send_timeout",
  "server_tokens",
  "tcp_nodelay",
  "underscores_in_headers",
];

const ALLOWED = new Set(ALLOWED_PROXY_DIRECTIVES);
/**
 * What an argument may hold: letters, digits and the punctuation values need
 * ($variables, 10m, text/css, 1.1, X-Frame-Options), or the same and spaces in
 * double quotes. Never ; { } # \\ ' or a quote inside a word: nginx reads those as syntax.
 */
const ARGUMENT_CHARS = "A-Za-z0-9_.:/=,+*$@%~!?^|()\\[\\]<>&\\-";
const ARGUMENT = `(?:[${ARGUMENT_CHARS}]+|"[${ARGUMENT_CHARS} ]*")`;
const DIRECTIVE = new RegExp(`^[a-z][a-z0-9_]*(?:[ \\t]+${ARGUMENT})*$`);

/** The outcome of checking one entry: its normalized text, or why it is refused. */
export type DirectiveCheck = { ok: true; directive: string } | { ok: false; why: string };

/**
 * Checks one proxy.directives entry: `name arg...` on one line, with an optional
 * `;` at the end. The normalized text has one space between words and no `;`.
 */
export function checkProxyDirective(entry: unknown): DirectiveCheck {
  if (typeof entry !== "string") return { ok: false, why: "not a string" };
  const text = entry.trim().replace(/;$/, "").trimEnd();
  if (text === "") return { ok: false, why: "empty" };
  const name = text.split(/[ \t]/, 1)[0]!;
  if (!ALLOWED.has(name)) {
    return { ok: false, why: `${JSON.stringify(name.slice(0, 40))} is not an allowed directive (the list is in packages/spec/README.md)` };
  }
  if (!DIRECTIVE.test(text)) {
    return { ok: false, why: "its arguments may hold letters, digits, $variables and -_.:/=,+*@%~!?^|()[]<>&, spaces only in double quotes; not ; { } # \\ ', newlines or a quote inside a word" };
  }
  const args = text.slice(name.length).match(new RegExp(ARGUMENT, "g")) ?? [];
  return { ok: true, directive: [name, ...args].join(" ") };
}
