/**
 * The names in a node's certificate. Its HTTPS is verified by whoever calls
 * it (the CLI, other nodes forwarding a tail, a browser) against the host in
 * the node's advertised `addr`, so the certificate must name that host: on a
 * machine other than the caller's that is not `127.0.0.1`.
 *
 * A joining node asks for its names in the CSR's subjectAltName (the body of
 * `POST /v1/join` stays SPEC §10's `{token, node_id, caps, csr}`); the admin
 * node signs them after {@linkcode requestedNames} checked their form. It
 * does not check that the joiner owns them: a token holder is trusted with
 * the cluster already (its certificate opens etcd), as Consul's auto_encrypt
 * signs the SANs an agent asks for (docs/operations.md, threat model).
 */
import { hostNames } from "./deps.ts";
import { x509 } from "./x509.ts";

/** DNS and IP subject alternative names. */
export interface CertNames {
  dns: string[];
  ips: string[];
}

/**
 * At most this many names a joiner may ask for (its host name, the host of
 * `BOI_HTTP_ADDR` and each of `BOI_HTTP_HOSTS`). @default 32
 */
export const MAX_REQUESTED_NAMES = 32;

const IPV4 =
  /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
const DNS_NAME = new RegExp(`^(?=.{1,253}$)${LABEL}(?:\\.${LABEL})*$`);
const UNSPECIFIED = new Set(["0.0.0.0", "::"]);
const SAN_OID = "2.5.29.17";

/** An IPv6 literal's canonical text, or null: not one. */
function ipv6(host: string): string | null {
  if (!host.includes(":")) return null;
  try {
    return new URL(`http://[${host}]/`).hostname.slice(1, -1);
  } catch {
    return null;
  }
}

/**
 * The names this node's certificate should carry: `localhost`, `127.0.0.1`,
 * its node id and host name, and {@linkcode advertisedNames}.
 */
export function nodeCertNames(
  nodeId: string,
  httpHost: string,
  httpHosts: readonly string[],
): CertNames {
  return mergeNames(
    { dns: hostNames([nodeId]), ips: ["127.0.0.1"] },
    advertisedNames(httpHost, httpHosts),
  );
}

/**
 * What a joining node's CSR asks for: {@linkcode advertisedNames} and its
 * host name when that is a DNS name. Not its node id, `localhost` or
 * `127.0.0.1`: the admin node adds those itself, and a node id may hold `_`,
 * which no DNS name does.
 */
export function joinRequestNames(
  httpHost: string,
  httpHosts: readonly string[],
): CertNames {
  const own = hostNames().filter((n) => n !== "localhost" && DNS_NAME.test(n));
  return mergeNames(
    { dns: own.map((n) => n.toLowerCase()), ips: [] },
    advertisedNames(httpHost, httpHosts),
  );
}

/**
 * The names callers reach this node by, which its certificate must carry:
 * the host of `BOI_HTTP_ADDR` (unless it binds every address) and
 * `BOI_HTTP_HOSTS` (`*` names nothing).
 */
export function advertisedNames(
  httpHost: string,
  httpHosts: readonly string[],
): CertNames {
  return classify(httpHost, httpHosts).names;
}

/** Hosts of `BOI_HTTP_ADDR` and `BOI_HTTP_HOSTS` no certificate can name (`my_host`, `fe80::1%eth0`): worth a warning. */
export function unnamedHosts(
  httpHost: string,
  httpHosts: readonly string[],
): string[] {
  return classify(httpHost, httpHosts).unnamed;
}

function classify(
  httpHost: string,
  httpHosts: readonly string[],
): { names: CertNames; unnamed: string[] } {
  const out: CertNames = { dns: [], ips: [] };
  const unnamed: string[] = [];
  for (const raw of [httpHost, ...httpHosts]) {
    const h = raw.replace(/^\[(.*)\]$/, "$1").toLowerCase();
    const v6 = ipv6(h);
    if (h === "*" || UNSPECIFIED.has(v6 ?? h)) continue;
    if (IPV4.test(h)) out.ips.push(h);
    else if (v6 !== null && !h.includes("%")) out.ips.push(v6);
    // All-numeric labels are IPv4 forms to a URL (`1.2.3` is 1.2.0.3).
    else if (DNS_NAME.test(h) && !/^[0-9.]+$/.test(h)) out.dns.push(h);
    else unnamed.push(raw);
  }
  return { names: mergeNames(out, { dns: [], ips: [] }), unnamed };
}

/** The subjectAltName extension a CSR asks for these names with. */
export function sanExtension(names: CertNames): x509.Extension {
  return new x509.SubjectAlternativeNameExtension([
    ...names.dns.map((value) => ({ type: "dns" as const, value })),
    ...names.ips.map((value) => ({ type: "ip" as const, value })),
  ]);
}

/**
 * The names a join CSR asks for, checked: DNS names without wildcards and
 * IP literals other than 0.0.0.0 and ::, at most {@linkcode MAX_REQUESTED_NAMES}.
 * Returns a one-line reason when the request is not acceptable.
 */
export function requestedNames(
  csr: x509.Pkcs10CertificateRequest,
): CertNames | string {
  const ext = csr.extensions.find((e) => e.type === SAN_OID);
  if (ext === undefined) return { dns: [], ips: [] };
  let items: readonly x509.GeneralName[];
  try {
    items = new x509.SubjectAlternativeNameExtension(ext.rawData).names.items;
  } catch {
    return "its subjectAltName extension does not parse";
  }
  if (items.length > MAX_REQUESTED_NAMES) {
    return `it asks for ${items.length} names; at most ${MAX_REQUESTED_NAMES} are signed`;
  }
  const out: CertNames = { dns: [], ips: [] };
  for (const n of items) {
    const shown = JSON.stringify(String(n.value).slice(0, 80));
    if (n.type === "dns") {
      if (!DNS_NAME.test(n.value)) {
        return `it asks for the DNS name ${shown}: a host name like "build-1.example.com" is expected (no wildcards)`;
      }
      out.dns.push(n.value.toLowerCase());
    } else if (n.type === "ip") {
      const v6 = ipv6(n.value);
      if (
        (!IPV4.test(n.value) && v6 === null) || UNSPECIFIED.has(v6 ?? n.value)
      ) {
        return `it asks for the IP address ${shown}: a unicast IPv4 or IPv6 address is expected`;
      }
      out.ips.push(v6 ?? n.value);
    } else {
      return `it asks for a ${n.type} name ${shown}: only DNS names and IP addresses are signed`;
    }
  }
  return out;
}

/** The names in a certificate, to compare with the ones the node would ask for now. */
export function certNamesOf(pem: string): CertNames {
  const cert = new x509.X509Certificate(pem);
  const ext = cert.extensions.find((e) => e.type === SAN_OID);
  const items = ext === undefined
    ? []
    : new x509.SubjectAlternativeNameExtension(ext.rawData).names.items;
  return {
    dns: items.filter((n) => n.type === "dns").map((n) =>
      n.value.toLowerCase()
    ),
    ips: items.filter((n) => n.type === "ip").map((n) =>
      ipv6(n.value) ?? n.value
    ),
  };
}

/** The names of `want` that `have` lacks, as `host` strings (empty: covered). */
export function missingNames(have: CertNames, want: CertNames): string[] {
  const dns = new Set(have.dns);
  const ips = new Set(have.ips);
  return [
    ...want.dns.filter((n) => !dns.has(n)),
    ...want.ips.filter((n) => !ips.has(n)),
  ];
}

/** Both sets of names, without repeats. */
export function mergeNames(a: CertNames, b: CertNames): CertNames {
  return {
    dns: [...new Set([...a.dns, ...b.dns])],
    ips: [...new Set([...a.ips, ...b.ips])],
  };
}
