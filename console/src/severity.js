// The one severity table. Every list of severities, every rank and every map colour in
// the console is read from here: worst first, a rank to compare by, the map's fill.
// `pending` and `none` are map levels only (an alert not yet firing, a quiet commune).
export const SEVERITY = Object.freeze([
  Object.freeze({ name: "critical", rank: 3, colour: "#b3001b" }),
  Object.freeze({ name: "warning", rank: 2, colour: "#c25e00" }),
  Object.freeze({ name: "info", rank: 1, colour: "#1f5fbf" }),
]);

/** Map levels, worst first: the severities, then pending (rank 0.5), then none. */
export const LEVELS = Object.freeze([...SEVERITY,
  Object.freeze({ name: "pending", rank: 0.5, colour: "#8a7300" }),
  Object.freeze({ name: "none", rank: 0, colour: "#5f8f6a" })]);

export const SEVERITIES = Object.freeze(SEVERITY.map((s) => s.name));
export const SEV_RANK = Object.freeze(Object.fromEntries(SEVERITY.map((s) => [s.name, s.rank])));
const BY_RANK = new Map(LEVELS.map((l) => [l.rank, l]));
const BY_NAME = new Map(LEVELS.map((l) => [l.name, l]));

/** The severity or level name of a rank (0 or unknown: "none"). */
export function levelName(rank) { return (BY_RANK.get(rank ?? 0) || BY_NAME.get("none")).name; }

/** The map fill of a level or severity name. */
export function colourOf(name) { return (BY_NAME.get(name) || BY_NAME.get("none")).colour; }

/** The rank an alert counts for on the map: pending below every firing severity. */
export function alertLevel(a) { return a.state === "pending" ? 0.5 : SEV_RANK[a.severity] || 0; }
