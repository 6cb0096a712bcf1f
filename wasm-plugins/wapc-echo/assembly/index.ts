import { register, handleCall, handleAbort, hostCall, consoleLog, Result } from "@wapc/as-guest";
export function __guest_call(operation_size: usize, payload_size: usize): bool {
  return handleCall(operation_size, payload_size);
}
function process(payload: ArrayBuffer): Result<ArrayBuffer> {
  consoleLog("hi");
  const r = hostCall("agent", "bus", "publish", String.UTF8.encode('{"topic":"event.x","data":{}}'));
  if (!r.isOk) return Result.error<ArrayBuffer>(r.error()!);
  return Result.ok<ArrayBuffer>(new ArrayBuffer(0));
}
export function wapc_init(): void { register("process", process); }
export function abort(message: string | null, fileName: string | null, lineNumber: u32, columnNumber: u32): void { handleAbort(message, fileName, lineNumber, columnNumber); }
