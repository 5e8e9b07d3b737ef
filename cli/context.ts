/**
 * Shared plumbing of the CLI commands: options every command takes, exit
 * codes, output streams and the connection to etcd.
 */
import {
  Argument,
  InvalidArgumentError,
  Option,
} from "@commander-js/extra-typings";
import { parseDuration } from "../node/spec.ts";
import {
  EtcdUnreachableError,
  LOCAL_ENDPOINT,
  parseEndpoints,
} from "../node/etcd_errors.ts";
import { DEFAULT_PREFIX, Keys } from "../node/keys.ts";
import { CliError, EXIT } from "./errors.ts";
import { Store } from "./store.ts";
import { GatewayClient, NoGatewayError } from "./gateway_client.ts";
import { httpEndpoints } from "./early_probe.ts";

export { CliError, EXIT } from "./errors.ts";

/** Where a command writes and what it may read from the environment; tests swap it. */
export interface Io {
  /** Raw write to stdout. */
  out(text: string): void;
  /** Raw write to stderr. */
  err(text: string): void;
  /** stdout is a terminal: live redraws are allowed. */
  isTty: boolean;
  /** Terminal width, 0 when unknown. */
  columns(): number;
  env(name: string): string | undefined;
  now(): number;
}

const encoder = new TextEncoder();

function writeAll(file: { writeSync(p: Uint8Array): number }, text: string) {
  let bytes = encoder.encode(text);
  while (bytes.length > 0) bytes = bytes.subarray(file.writeSync(bytes));
}

/** The process's real streams and environment. */
export function processIo(): Io {
  return {
    out: (t) => writeAll(Deno.stdout, t),
    err: (t) => writeAll(Deno.stderr, t),
    isTty: Deno.stdout.isTerminal(),
    columns: () => {
      try {
        return Deno.consoleSize().columns;
      } catch {
        return 0;
      }
    },
    env: (name) => Deno.env.get(name),
    now: () => Date.now(),
  };
}

/** Options every command takes, as parsed by commander. */
export interface CommonOptions {
  etcd?: string;
  prefix?: string;
  json?: true;
  /** `--certs DIR`: ca.crt, client.crt and client.key for a secure cluster. */
  certs?: string;
}

/** `--certs DIR`, added to every command that takes `--etcd` (main.ts). */
export function certsOption() {
  return new Option(
    "--certs <dir>",
    "a secure cluster's ca.crt, client.crt and client.key (default: $BOI_ETCD_CA, $BOI_ETCD_CERT, $BOI_ETCD_KEY)",
  );
}

/** Files of the CLI's cluster certificate. */
export interface TlsFiles {
  ca: string;
  cert: string;
  key: string;
}

/** `--certs DIR`, else `BOI_ETCD_CA/CERT/KEY` (all three), else null (open mode). */
export function tlsFiles(io: Io, certs: string | undefined): TlsFiles | null {
  if (certs !== undefined) {
    return {
      ca: `${certs}/ca.crt`,
      cert: `${certs}/client.crt`,
      key: `${certs}/client.key`,
    };
  }
  const [ca, cert, key] = ["CA", "CERT", "KEY"].map((n) =>
    io.env(`BOI_ETCD_${n}`) || undefined
  );
  if (!ca && !cert && !key) return null;
  if (!ca || !cert || !key) {
    throw new CliError(
      "BOI_ETCD_CA, BOI_ETCD_CERT and BOI_ETCD_KEY must be given together",
      EXIT.usage,
    );
  }
  return { ca, cert, key };
}

/** Reads the certificate files; a missing one is a usage error naming it. */
export async function readTls(
  f: TlsFiles,
): Promise<{ ca: string; cert: string; key: string }> {
  const read = (p: string) =>
    Deno.readTextFile(p).catch((e) => {
      throw new CliError(
        `cannot read ${p}: ${(e as Error).message.split("\n")[0]}`,
        EXIT.usage,
      );
    });
  return {
    ca: await read(f.ca),
    cert: await read(f.cert),
    key: await read(f.key),
  };
}

/** `--etcd`, `--prefix` and `--json`, added to every command. */
export function commonOptions() {
  return [
    new Option(
      "--etcd <endpoints>",
      `etcd endpoints, comma-separated (default: $BOI_ETCD_ENDPOINTS or ${LOCAL_ENDPOINT})`,
    ),
    new Option(
      "--prefix <prefix>",
      `key prefix (default: $BOI_KEY_PREFIX or ${DEFAULT_PREFIX})`,
    ),
    new Option("--json", "print one JSON document on stdout"),
  ] as const;
}

/** What a command needs to run: resolved options and the output streams. */
export class Ctx {
  readonly endpoints: string[];
  readonly keys: Keys;
  readonly json: boolean;
  /** The CLI's cluster certificate files in a secure cluster, else null. */
  readonly tls: TlsFiles | null;

  constructor(readonly io: Io, opts: CommonOptions) {
    this.tls = tlsFiles(io, opts.certs);
    const endpointText = opts.etcd ?? io.env("BOI_ETCD_ENDPOINTS") ??
      LOCAL_ENDPOINT;
    try {
      this.endpoints = parseEndpoints(endpointText);
    } catch (err) {
      const from = opts.etcd !== undefined ? "--etcd" : "BOI_ETCD_ENDPOINTS";
      throw new CliError(`${from}: ${(err as Error).message}`, EXIT.usage);
    }
    const prefix = opts.prefix ?? io.env("BOI_KEY_PREFIX") ?? DEFAULT_PREFIX;
    try {
      this.keys = new Keys(prefix);
    } catch (err) {
      const from = opts.prefix !== undefined ? "--prefix" : "BOI_KEY_PREFIX";
      throw new CliError(`${from}: ${(err as Error).message}`, EXIT.usage);
    }
    this.json = opts.json === true;
  }

  /** Prints one line on stdout. */
  print(line = ""): void {
    this.io.out(`${line}\n`);
  }

  /** Prints the single JSON document of `--json`. */
  printJson(value: unknown): void {
    this.io.out(`${JSON.stringify(value, null, 2)}\n`);
  }

  /** Prints one line on stderr. */
  warn(line: string): void {
    this.io.err(`${line}\n`);
  }

  /**
   * Runs `fn` with a fail-fast etcd connection and always closes it. With
   * `reads_only` (fn only lists, gets and asks lease TTLs) and plain-HTTP
   * endpoints, it reads over etcd's JSON gateway and never loads the etcd3
   * library (~150 ms of a cold start); an etcd without the gateway (404,
   * not JSON) gets the gRPC client, fn run again from the start.
   */
  async withStore<T>(
    fn: (store: Store) => Promise<T>,
    o: { reads_only?: boolean } = {},
  ): Promise<T> {
    const http = o.reads_only && this.tls === null
      ? httpEndpoints(this.endpoints.join(","))
      : null;
    if (http !== null) {
      const store = new Store(
        new GatewayClient(http),
        this.endpoints,
        (l) => this.warn(l),
      );
      try {
        return await fn(store);
      } catch (err) {
        if (!(err instanceof NoGatewayError)) throw err;
      }
    }
    // Loaded here, not at start-up: the etcd3 library takes ~150 ms to load,
    // which `--help`, `--version` and usage errors should not pay.
    const { connectEtcd } = await import("../node/etcd_client.ts");
    const tls = this.tls === null ? undefined : await readTls(this.tls);
    const client = connectEtcd(this.endpoints, { failFast: true, tls });
    const store = new Store(client, this.endpoints, (l) => this.warn(l));
    try {
      return await fn(store);
    } finally {
      store.close();
    }
  }
}

/** Maps any error thrown by a command to its stderr line and exit code. */
export function errorToExit(err: unknown): { message: string; code: number } {
  if (err instanceof CliError) {
    // Usage errors read like commander's own: "error: ...".
    const message = err.code === EXIT.usage && !err.message.startsWith("error:")
      ? `error: ${err.message}`
      : err.message;
    return { message, code: err.code };
  }
  if (err instanceof EtcdUnreachableError) {
    return { message: err.message, code: EXIT.unreachable };
  }
  const msg = err instanceof Error ? err.message : String(err);
  return { message: `error: ${msg.split("\n")[0]}`, code: EXIT.failed };
}

/** `user@host` for the spec record's `dispatched_by`. */
export function whoAmI(io: Io): string {
  let host = "unknown-host";
  try {
    host = Deno.hostname();
  } catch {
    // no sys permission: keep the placeholder
  }
  return `${io.env("USER") ?? io.env("LOGNAME") ?? "unknown"}@${host}`;
}

/** An id argument checked against a grammar; a bad value is a usage error. */
export function idArgument<N extends string>(
  name: N,
  what: string,
  pattern: RegExp,
) {
  return new Argument(name, what).argParser((value: string) => {
    if (!pattern.test(value)) {
      throw new InvalidArgumentError(
        `${what} must match ${pattern.source}: got ${
          JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value)
        }`,
      );
    }
    return value;
  });
}

/**
 * Longest wait a duration option may ask for: a timer longer than 2^31 ms
 * (24.8 days) fires at once. @default 24 days
 */
export const MAX_WAIT_MS = 24 * 86_400_000;

/** Parses a positive duration option like "10s", at most {@linkcode MAX_WAIT_MS}. */
export function parseDurationOption(value: string): number {
  const ms = parseDuration(value);
  const syntax = /^(\d+(\.\d+)?(ms|s|m|h|d))+$/.test(value);
  if ((ms === null && syntax) || (ms !== null && ms > MAX_WAIT_MS)) {
    throw new InvalidArgumentError(
      `must be at most 24d: got ${JSON.stringify(value)}`,
    );
  }
  if (ms === null || ms <= 0) {
    throw new InvalidArgumentError(
      `must be a positive duration like "90s" or "10m": got ${
        JSON.stringify(value)
      }`,
    );
  }
  return ms;
}
