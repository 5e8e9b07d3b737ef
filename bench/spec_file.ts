/** Spec files for bench runs: many independent tasks, each one command. */

/**
 * Writes a spec of `n` tasks `t0..t{n-1}` running `run` and returns its path:
 * a string runs under `sh -c`, an argv list runs the program itself.
 */
export async function writeSpecFile(
  dir: string,
  name: string,
  n: number,
  run: string | string[],
  extra = "",
): Promise<string> {
  const lines = [`name: ${name}`, "tasks:"];
  for (let i = 0; i < n; i++) {
    lines.push(`  - id: t${i}`, `    run: ${JSON.stringify(run)}`);
    if (extra) lines.push(`    ${extra}`);
  }
  const path = `${dir}/${name}.yaml`;
  await Deno.writeTextFile(path, lines.join("\n") + "\n");
  return path;
}
