export { cli } from "./Cli.js"
export { CommandFailed } from "./CommandFailed.js"
export { ExitCode } from "./ExitCode.js"
export { version } from "./version.js"
