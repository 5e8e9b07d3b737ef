/** The functional core: view, events, effects and the pure handlers. */
export * from "./view.ts";
export * from "./events.ts";
export * from "./effects.ts";
export * from "./apply.ts";
export * from "./handlers.ts";
export { decideTask, isMonitor } from "./decide.ts";
export { finishEnvelope } from "./finish.ts";
export { hrwRank, hrwScore } from "./hrw.ts";
