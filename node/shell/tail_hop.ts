/**
 * The header that marks a tail request as already at the node chosen for it
 * (a forward from another node, or the CLI, which picks the node from etcd):
 * it is served from this node's log and never forwarded again.
 * @module
 */

/** Its name; its value says who sent the request (a node id, or `cli`). */
export const HOP_HEADER = "x-boi-hop";
