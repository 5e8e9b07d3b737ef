/** A node's output as the harness reads it: stderr split into lines, each parsed as JSON. */

/** One parsed stderr line of a node; lines that are not JSON become `{msg, raw: true}`. */
export type LogLine = Record<string, unknown>;

/** Parses one stderr line; a line that is not a JSON object is kept as `{msg, raw: true}`. */
export function parseLine(line: string): LogLine {
  try {
    const v = JSON.parse(line);
    if (v !== null && typeof v === "object" && !Array.isArray(v)) return v;
  } catch { /* not JSON */ }
  return { msg: line, raw: true };
}

/**
 * Reads `reader` to its end and calls `emit` once per line, the last
 * unterminated piece included; a cancelled read ends it quietly, so a test
 * sees every whole line the process wrote before it went away.
 */
export async function pumpLines(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  emit: (line: string) => void,
): Promise<void> {
  const dec = new TextDecoder();
  let buf = "";
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        emit(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
    }
  } catch { /* cancelled, or the process went away mid-read */ }
  buf += dec.decode();
  if (buf !== "") emit(buf);
}
