/**
 * The capability an agent announces when it renders ProxySpec's and LbSite's VirtualHost
 * (names, TLS, redirect, HTTP/2). An older agent would ignore those fields and serve the
 * port in plain HTTP to every name, so the coordinator refuses such a spec for its host.
 */
export const SERVES_VIRTUAL_HOSTS = "proxy.virtual-hosts";

/**
 * The capability an agent announces when it takes RunSpec.secret_env, RunSpec.env_file and
 * Deploy.secrets. An older agent would start the app without them.
 */
export const TAKES_SECRETS = "run.secrets";
