/**
 * Extism helpers shared by the AssemblyScript plugins: report a failure the way every host sees it.
 */
import { Host, LogLevel, Memory } from "@extism/as-pdk";
import { error_set } from "@extism/as-pdk/lib/env";

/**
 * Logs `message` at error level, sets it as the call's Extism error (the SDKs then fail the call
 * with it) and returns 1, the non-zero status ABI v1 reads as a failure.
 */
export function fail(message: string): i32 {
  Host.log(LogLevel.Error, message);
  error_set(Memory.allocateString(message).offset);
  return 1;
}

/** Body of an AssemblyScript `abort` handler: report where, then trap (never carry on). */
export function abortWith(message: string | null, fileName: string | null, line: u32, column: u32): void {
  const text = (message === null ? "abort" : message) + " at " + (fileName === null ? "?" : fileName) + ":" + line.toString() + ":" + column.toString();
  fail(text);
  unreachable();
}

/**
 * Sets the call's output to `s` as UTF-8. (`Host.outputString` of @extism/as-pdk 1.0.0 allocates
 * `s.length` bytes, the UTF-16 length: any non-ASCII character makes it write past the block and
 * fail the call.)
 */
export function outputString(s: string): void {
  Host.output(Uint8Array.wrap(String.UTF8.encode(s)));
}
