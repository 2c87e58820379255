/**
 * The end of a control server's GET/PUT/DELETE handler (inside `content_by_lua_block`),
 * shared by the app sites' live ports (lua.ts) and a load balancer's state (lb/lua.ts):
 * DELETE runs `onDelete`, a method other than GET, PUT or DELETE is refused (405), and
 * every answer's body is the value before the call (`previous`, "" when none), so one
 * call both changes and reports. The caller's lines open with `if method == "PUT" then`.
 */
export function controlAnswerTail(onDelete: readonly string[]): string[] {
  return [
    '            elseif method == "DELETE" then',
    ...onDelete.map((line) => `                ${line}`),
    '            elseif method ~= "GET" then',
    "                return ngx.exit(ngx.HTTP_NOT_ALLOWED)",
    "            end",
    '            ngx.header["Content-Type"] = "text/plain"',
    '            ngx.print(previous or "")',
  ];
}
