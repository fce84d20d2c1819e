import { execFileSync } from "node:child_process"
import fs from "node:fs"
import path from "node:path"
import { defineConfig } from "tsup"

/**
 * dist/THIRD-PARTY-NOTICES.md: the name, version, licence and licence text of every package the bundle includes
 * (read from esbuild's metafile), as their licences require of a redistributed copy.
 */
const writeNotices = () => {
  const metafile = path.join("dist", "metafile-esm.json")
  const inputs = Object.keys(JSON.parse(fs.readFileSync(metafile, "utf8")).inputs)
  fs.rmSync(metafile)
  const dirs = new Set<string>()
  for (const input of inputs) {
    const match = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input)
    if (match?.[1] !== undefined) dirs.add(match[1])
  }
  const sections = [...dirs]
    .map((dir) => {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"))
      const file = fs.readdirSync(dir).find((f) => /^(licen[cs]e|copying)(\.|$)/i.test(f))
      const text = file === undefined ? "" : fs.readFileSync(path.join(dir, file), "utf8").trim()
      return { name: `${pkg.name}@${pkg.version}`, license: String(pkg.license ?? "see the package"), text }
    })
    .sort((a, b) => a.name.localeCompare(b.name))
  fs.writeFileSync(
    path.join("dist", "THIRD-PARTY-NOTICES.md"),
    [
      "# Third-party notices",
      "",
      "The `homelab` bundle includes these packages (besides the @homelab libraries of this repository).",
      "",
      ...sections.flatMap((s) => [
        `## ${s.name} (${s.license})`,
        "",
        ...(s.text === "" ? [] : ["```", s.text, "```", ""])
      ])
    ].join("\n")
  )
}

/**
 * dist/fast-paths.json: what the built CLI prints for `--version` and `--help` (and their short forms), plain and
 * coloured. bin.js prints these without loading the CLI (start-up in the time of an empty Node process).
 */
const writeFastPaths = () => {
  const capture = (flag: string, color: boolean) =>
    execFileSync(process.execPath, [path.join("dist", "main.js"), flag], {
      encoding: "utf8",
      env: { ...process.env, TERM: "xterm-256color", NO_COLOR: color ? "" : "1", FORCE_COLOR: color ? "1" : "" }
    })
  const paths = Object.fromEntries(
    ["--version", "-v", "--help", "-h"].map((flag) => [
      flag,
      { plain: capture(flag, false), color: capture(flag, true) }
    ])
  )
  fs.writeFileSync(path.join("dist", "fast-paths.json"), `${JSON.stringify(paths, null, 2)}\n`)
}

/**
 * Keeps every file of the bundle ASCII. Node decodes an ASCII file into a one-byte string; a single other character
 * (the `…` of a regular expression) made it decode the 700 kB chunk of our libraries into a two-byte string, at more
 * than twice the time (10 ms against 4 ms of CPU on every run). esbuild's `charset: "ascii"` escapes strings and
 * templates, not regular expression literals: what is left is escaped here, `\uXXXX` meaning the same character in a
 * regular expression (a pair of them, one astral character, with or without the `u` flag).
 */
const escapeRegExpText = () => {
  for (const file of fs.readdirSync("dist").filter((f) => f.endsWith(".js"))) {
    const text = fs.readFileSync(path.join("dist", file), "utf8")
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the range is every non-ASCII code unit
    const escaped = text.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)
    if (escaped !== text) fs.writeFileSync(path.join("dist", file), escaped)
  }
}

// The published `homelab` is self-contained: every library it uses (ours, effect, ssh2, yaml, …) is bundled and
// tree-shaken, so `npm i -g @homelab/cli` installs one package with no dependencies and no install scripts (ssh2's
// optional native build, cpu-features, is never fetched; ssh2 runs on Node's crypto).
//
// Code splitting keeps start-up small: `bin.js` → `main.js` loads the command definitions only; each command's code
// is a chunk behind a dynamic `import()` (commands/*Run.ts), so `--version` and `--help` never load the Proxmox or
// SSH clients, and only `demo` loads the simulator.
export default defineConfig({
  // index.ts is for this repo's benches (not published, see package.json#files).
  entry: ["src/bin.ts", "src/main.ts", "src/index.ts"],
  format: ["esm"],
  platform: "node",
  target: "node22",
  dts: false, // nothing to declare: the package has no exports, only the `homelab` bin
  sourcemap: false,
  clean: true,
  splitting: true,
  metafile: true,
  onSuccess: async () => {
    escapeRegExpText()
    writeNotices()
    writeFastPaths()
  },
  minifySyntax: true,
  minifyWhitespace: true,
  // Everything is bundled but ssh2's optional native bindings: ssh2 requires them in a try/catch and falls back to
  // pure JS, so they stay unresolved (cpu-features is never installed; sshcrypto.node is never built).
  noExternal: [/^(?!cpu-features$)(?!.*\.node$)/],
  external: ["cpu-features", /\.node$/],
  // undici is not bundled: see src/noUndici.ts
  esbuildOptions: (options) => {
    options.alias = { undici: "./src/noUndici.ts" }
    // ASCII strings (see escapeRegExpText)
    options.charset = "ascii"
  },
  // Bundled CommonJS dependencies (ssh2) call require() and read __dirname: give the ESM chunks both.
  banner: {
    js: 'import { createRequire as __createRequire } from "node:module"; const require = __createRequire(import.meta.url); const __dirname = import.meta.dirname;'
  }
})
