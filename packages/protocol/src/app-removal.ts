/** The capability an agent announces in Hello when it carries out RemoveApp (`cutover apps remove`). */
export const REMOVES_APPS = "apps.remove";
