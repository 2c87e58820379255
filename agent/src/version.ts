/** The cutover-agent version reported in Hello. */
export const AGENT_VERSION = "0.1.0";
