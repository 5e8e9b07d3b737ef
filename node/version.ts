/** boi's version: the node registers it, `boi --version` prints it. */
export const VERSION = "0.1.0";
