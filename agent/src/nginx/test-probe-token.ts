/** A probe token for tests that render site files without a runner (probe-token.ts). */
export const TEST_PROBE_TOKEN = "0123456789abcdef0123456789abcdef";
