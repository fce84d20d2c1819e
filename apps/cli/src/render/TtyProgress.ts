import type { WaitProgress } from "@homelab/reconcile-core"
import { createLogUpdate } from "log-update"
import pc from "picocolors"
import { noticeLine, type ProgressSink, seconds, waitLine } from "./Progress.js"

// Its own module: log-update (and the Intl.Segmenter its width tables build when loaded) is loaded only when the
// progress goes to a terminal, never for pipes, CI logs or --json.

/** The spinner line of the run's wait after its actions (`Settling`), beside the actions' own. */
const SETTLING = "\u0000settling"

const frames = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"]

/** Live progress on a terminal: finished steps scroll up, one spinner line per running action (with its wait). */
export const ttyProgress = (stream: NodeJS.WriteStream): ProgressSink => {
  const render = createLogUpdate(stream, { showCursor: false })
  const busy = new Map<string, { node: string; what: string; step: string; wait?: WaitProgress; since: number }>()
  let frame = 0
  const draw = () => {
    frame = (frame + 1) % frames.length
    const now = Date.now()
    render(
      [...busy.values()]
        .map(
          (b) =>
            `${pc.cyan(frames[frame] ?? "")} ${b.node}: ${b.what}${b.wait ? pc.dim(` — ${waitLine(b.wait)}`) : b.step ? pc.dim(` — ${b.step}`) : ""} ${pc.dim(seconds(now - b.since))}`
        )
        .join("\n")
    )
  }
  const timer = setInterval(draw, 100)
  const permanent = (text: string) => {
    render.clear()
    stream.write(`${text}\n`)
    draw()
  }
  return {
    event: (e) => {
      switch (e._tag) {
        case "ActionStarted":
          busy.set(e.id, { node: e.action.node, what: e.description, step: "", since: Date.now() })
          break
        case "ActionProgress": {
          const b = busy.get(e.id)
          if (b) {
            b.step = e.step
            if (e.wait !== undefined) b.wait = e.wait
            else delete b.wait
          }
          break
        }
        case "ActionDone":
          busy.delete(e.id)
          permanent(`${pc.green("✓")} ${e.node}: ${e.detail} ${pc.dim(`(${seconds(e.ms)})`)}`)
          break
        case "ActionFailed":
          busy.delete(e.id)
          permanent(
            `${pc.red("✗")} ${e.node}: ${e.description}: ${e.error}${e.hint ? `\n    ${pc.dim(`fix: ${e.hint}`)}` : ""}`
          )
          break
        case "ActionSkipped":
          permanent(`${pc.dim("-")} ${e.node}: ${e.description}: ${e.reason}`)
          break
        case "Settling": {
          const b = busy.get(SETTLING) ?? { node: "k3s", what: "after the actions", step: "", since: Date.now() }
          busy.set(SETTLING, { ...b, wait: e.wait })
          break
        }
      }
      draw()
    },
    notice: (n) => permanent(noticeLine(n)),
    line: permanent,
    done: () => {
      busy.delete(SETTLING)
      clearInterval(timer)
      render.clear()
      render.done()
    }
  }
}
