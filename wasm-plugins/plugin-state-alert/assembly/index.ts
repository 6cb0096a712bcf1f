/**
 * plugin-state-alert, a waPC guest (abi: wapc) in AssemblyScript with @wapc/as-guest: reads the
 * agent's `agent.plugin.state` messages and publishes `alert.agent.plugin` when a plugin (built-in
 * or Wasm) is quarantined or fails, and when it runs again after that. It publishes through the
 * waPC host call agent/bus/publish and learns its own name from the host call agent/config/get.
 */
import { consoleLog, handleAbort, handleCall, hostCall, register, Result } from "@wapc/as-guest";
import { parseJson, quote, lastJsonError } from "../../_lib/json";

/** Plugins last seen quarantined or failed (to send the recovery once). */
const down = new Set<string>();
let self = "plugin-state-alert";

export function __guest_call(operationSize: usize, payloadSize: usize): bool {
  return handleCall(operationSize, payloadSize);
}

export function wapc_init(): void {
  register("process", process);
  const name = hostCall("agent", "config", "get", String.UTF8.encode("plugin.name"));
  if (name.isOk) self = String.UTF8.decode(name.get());
  consoleLog(self + ": watching agent.plugin.state (waPC)");
}

function publish(plugin: string, state: string, status: string, reason: string): string | null {
  const message =
    '{"topic":"alert.agent.plugin","data":{"status":' + quote(status) + ',"plugin":' + quote(plugin) +
    ',"state":' + quote(state) + ',"reason":' + quote(reason) + ',"source":' + quote(self) + "}}";
  const r = hostCall("agent", "bus", "publish", String.UTF8.encode(message));
  return r.isOk ? null : r.error()!.message;
}

function process(payload: ArrayBuffer): Result<ArrayBuffer> {
  const batch = parseJson(Uint8Array.wrap(payload));
  if (batch === null) return Result.error<ArrayBuffer>(new Error("input is not JSON: " + lastJsonError()));
  const messages = batch.list("messages");
  for (let i = 0; i < messages.length; i++) {
    const data = messages[i].get("data");
    if (data === null) continue;
    const plugin = data.getString("plugin");
    const state = data.getString("state");
    if (plugin == "" || plugin == self) continue;
    let refused: string | null = null;
    if (state == "quarantined" || state == "failed") {
      down.add(plugin);
      refused = publish(plugin, state, "firing", data.getString("reason"));
    } else if (state == "running" && down.has(plugin)) {
      down.delete(plugin);
      refused = publish(plugin, state, "resolved", "");
    }
    if (refused !== null) return Result.error<ArrayBuffer>(new Error("publish refused: " + refused));
  }
  return Result.ok<ArrayBuffer>(new ArrayBuffer(0));
}

/** AssemblyScript's abort: reported as the call's waPC error, then a trap (it must not return). */
export function abortHandler(message: string | null, fileName: string | null, line: u32, column: u32): void {
  handleAbort(message, fileName, line, column);
  unreachable();
}
