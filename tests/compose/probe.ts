/**
 * Whether the Compose test can run on this machine: null when it can, else
 * the reason it is skipped. Installs what is missing (scripts/compose_setup.sh)
 * and builds the base image first, because only a real container start tells
 * whether the kernel and our rights allow containers. A failing install or
 * build is not a reason to skip: the test then runs and fails on it.
 */
import { REPO_ROOT, run } from "../harness/mod.ts";

/** The repo-local podman config (runc, ulimits) every podman call here uses. */
export const CONTAINERS_CONF = `${REPO_ROOT}/.boi/compose/containers.conf`;

async function has(cmd: string): Promise<boolean> {
  return (await run("sh", ["-c", `command -v ${cmd}`])).code === 0;
}

/** Null when containers can run here, else why the Compose test is skipped. */
export async function composeProbe(): Promise<string | null> {
  if (Deno.build.os !== "linux") return `needs Linux, this is ${Deno.build.os}`;
  // The scripts call podman directly: as another user it would run rootless,
  // which these machines do not support (and sudo cannot prompt in CI).
  const uid = Deno.uid();
  if (uid !== 0) return `rootful podman needs root: running as uid ${uid}`;
  if (!await has("podman") && !await has("apt-get")) {
    return "podman is not installed and there is no apt-get to install it";
  }
  const env = { CONTAINERS_CONF };
  const steps: [string, string[]][] = [
    ["bash", ["scripts/compose_setup.sh"]],
    ["bash", ["scripts/compose_image.sh", "--base"]],
  ];
  for (const [cmd, args] of steps) {
    const r = await run(cmd, args, { env, timeoutMs: 300_000 });
    for (const line of r.stderr.split("\n")) {
      if (/ built in |^compose-setup: ok/.test(line)) console.log(line);
    }
    if (r.code !== 0) return null; // not a skip: compose_up.sh will fail on it
  }
  const r = await run("podman", [
    "run",
    "--rm",
    "--network",
    "none",
    "localhost/debian-min:bookworm",
    "true",
  ], { env, timeoutMs: 60_000 });
  if (r.code !== 0) {
    const why = r.stderr.trim().split("\n").at(-1) ?? `exit ${r.code}`;
    return `podman cannot run a container here: ${why}`;
  }
  return null;
}
