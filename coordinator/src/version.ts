/** The cutover version this coordinator and CLI were built as. */
export const VERSION = "0.1.0";
