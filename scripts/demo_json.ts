/**
 * What scripts/demo.sh reads from the CLI's JSON on stdin, with no
 * permissions at all (`deno eval` would run with every one).
 *
 * - `registered <id>...`: the ids of those that `boi nodes --json` lists.
 * - `logs`: one line per task of `boi tasks list --json`, with its log path.
 * @module
 */
const [mode, ...want] = Deno.args;
const doc = JSON.parse(await new Response(Deno.stdin.readable).text());
if (mode === "registered") {
  const ids = (doc as { node_id: string }[]).map((n) => n.node_id);
  console.log(want.filter((w) => ids.includes(w)).join(" "));
} else if (mode === "logs") {
  const tasks = doc as {
    task_id: string;
    spec_id: string;
    state: string;
    ran_on?: string | null;
    claimant_node_id?: string | null;
  }[];
  const w = Math.max(...tasks.map((t) => t.task_id.length));
  for (const t of tasks) {
    const node = t.ran_on ?? t.claimant_node_id;
    console.log(
      `  ${t.task_id.padEnd(w)}  ${t.state.padEnd(9)}  ` +
        (node
          ? `.boi/${node}/logs/${t.spec_id}/${t.task_id}.log`
          : "(not run)"),
    );
  }
} else {
  console.error(
    `demo_json: unknown mode ${
      JSON.stringify(mode)
    }: expected registered or logs`,
  );
  Deno.exit(2);
}
