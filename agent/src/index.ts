export { writeFileAtomic } from "./state/atomic-write.js";
