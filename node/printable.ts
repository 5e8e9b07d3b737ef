/**
 * One printable line, whatever the input held: messages quote user input
 * (spec files, YAML readers' reasons), and a control character, C1 code or
 * line separator in them would break a log line or a terminal; a bidi
 * override or isolate (U+202A-202E, U+2066-2069) would make the line read
 * other than it is.
 */
export function printable(text: string): string {
  return text.replace(
    // deno-lint-ignore no-control-regex -- control characters are the point
    /[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}
