#!/usr/bin/env node
// The `homelab` entry: turn on Node's on-disk compile cache before loading the (large, bundled) CLI, so every run
// after the first skips most of the JavaScript compilation.
import module from "node:module"

module.enableCompileCache?.()
await import("./main.js")
