/** What the bench ran on, so a table is never read without its machine. */

async function version(cmd: string, args: string[]): Promise<string> {
  try {
    const out = await new Deno.Command(cmd, {
      args,
      stdout: "piped",
      stderr: "null",
    })
      .output();
    return new TextDecoder().decode(out.stdout).split("\n")[0].trim();
  } catch {
    return "missing";
  }
}

/** CPU, memory, OS and the versions of everything measured. */
export async function machine(): Promise<Record<string, string | number>> {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
  const model = cpuinfo.match(/^model name\s*:\s*(.+)$/m)?.[1] ?? "unknown CPU";
  const cpus = navigator.hardwareConcurrency;
  const memGiB = Math.round(Deno.systemMemoryInfo().total / 2 ** 30);
  const info = {
    cpus,
    cpu_model: model,
    mem_gib: memGiB,
    os: `${Deno.build.os} ${Deno.osRelease()}`,
    deno: Deno.version.deno,
    etcd: (await version("etcd", ["--version"])).replace(
      /^etcd Version:\s*/,
      "",
    ),
    node: await version("node", ["--version"]),
    redis: await version("redis-server", ["--version"]),
  };
  return {
    ...info,
    summary:
      `${cpus} vCPU (${model}), ${memGiB} GiB, ${info.os}; Deno ${info.deno}, etcd ${info.etcd}, Node.js ${info.node}, ${info.redis}`,
  };
}
