// `npm run build`: install dependencies if needed, generate the protocol code, tsc -b.
import { build, ensureInstalled } from "./setup.mjs";

ensureInstalled();
build();
