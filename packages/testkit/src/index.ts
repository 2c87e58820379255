export { startLoad, quantile, median } from "./load.js";
export type { LoadReport, LoadOptions, LoadRun } from "./load.js";
export { randomLoopback, freePort } from "./net.js";
export { createTestCa, type IssuedCertificate, type TestCa } from "./test-ca.js";
export { postgresMissing, startPostgres, type PostgresCluster } from "./postgres.js";
