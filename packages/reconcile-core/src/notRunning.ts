/**
 * A VM whose IP never came, when it is not running: its state (`stopped`, or QEMU's `qmpstatus` for a VM whose process
 * runs: `paused`, `prelaunch`, `suspended`, `io-error`, …) and where to look. `undefined` for a running VM: then the
 * guest agent is the one to ask about.
 */
export const notRunning = (
  node: string,
  vmid: number,
  status: { readonly status: string; readonly qmpstatus?: string | undefined }
): { readonly state: string; readonly hint: string } | undefined => {
  const state = status.status === "stopped" ? "stopped" : (status.qmpstatus ?? status.status)
  if (state === "running") return undefined
  const look = `\`qm status ${vmid} --verbose\` and the task log of its start on ${node}`
  switch (state) {
    case "stopped":
      return {
        state,
        hint: `it stopped after it was started (the guest powered off or crashed): see its serial console (\`qm terminal ${vmid}\`) and ${look}`
      }
    case "paused":
      return { state, hint: `QEMU holds it paused: see ${look}; \`qm resume ${vmid}\` continues it` }
    case "prelaunch":
      return {
        state,
        hint: `QEMU was started but never let the guest run (is \`freeze\` set in its config?): see ${look}; \`qm resume ${vmid}\` continues it`
      }
    case "suspended":
      return { state, hint: `it is suspended: \`qm resume ${vmid}\` on ${node} continues it` }
    case "io-error":
      return { state, hint: `QEMU paused it on a disk I/O error (is its storage full?): see ${look}` }
    default:
      return { state, hint: `see ${look}` }
  }
}
