import { assert, describe, it } from "@effect/vitest"
import { ExitCode } from "../src/ExitCode.js"
import { runHomelab } from "./helpers.js"

describe("usage errors exit 2, as the README's table says", () => {
  it("an unknown subcommand, an unknown flag, a missing argument: help on stdout, the error on stderr, exit 2", async () => {
    const cases: Array<[Array<string>, string]> = [
      [["bogus"], 'Unknown subcommand "bogus" for "homelab"'],
      [["plan", "--bogus"], "Unrecognized flag: --bogus in command homelab plan"],
      [["reprovision"], "Missing required argument: node"],
      [["config", "bogus"], 'Unknown subcommand "bogus" for "homelab config"']
    ]
    const results = await Promise.all(cases.map(([args]) => runHomelab(args)))
    for (const [i, [args, error]] of cases.entries()) {
      const result = results[i]!
      assert.strictEqual(result.code, ExitCode.Changes, args.join(" "))
      assert.include(result.stderr, error)
      assert.include(result.stdout, "USAGE")
    }
  })

  it("no subcommand at all (bare `homelab`, bare `homelab config`) is a usage error like an unknown one", async () => {
    const [bare, config, json] = await Promise.all([runHomelab([]), runHomelab(["config"]), runHomelab(["--json"])])
    assert.strictEqual(bare.code, ExitCode.Usage, bare.stderr)
    assert.include(bare.stdout, "USAGE")
    assert.include(bare.stderr, 'Missing subcommand for "homelab": give one of plan, apply, status,')
    assert.strictEqual(config.code, ExitCode.Usage, config.stderr)
    assert.include(config.stdout, "homelab config <subcommand>")
    assert.include(config.stderr, 'Missing subcommand for "homelab config": give one of check, schema, import-env')
    // under --json: the error object on stdout, the text on stderr, no help
    assert.strictEqual(json.code, ExitCode.Usage, json.stderr)
    assert.deepStrictEqual(JSON.parse(json.stdout).error.code, "usage")
    assert.include(json.stderr, 'Missing subcommand for "homelab"')
  })

  it('an empty --config (`--config=`, `-c ""`) is a usage error naming --config, not the current folder', async () => {
    const [equals, separate, json] = await Promise.all([
      runHomelab(["--config=", "config", "check"]),
      runHomelab(["plan", "-c", ""]),
      runHomelab(["--json", "status", "--config="])
    ])
    for (const result of [equals, separate, json]) {
      assert.strictEqual(result.code, ExitCode.Usage, result.stderr)
      assert.include(
        result.stderr,
        "Missing value for flag --config. Expected: the path of homelab.yaml, not an empty value"
      )
      assert.notInclude(result.stderr, "a directory")
    }
    assert.strictEqual(JSON.parse(json.stdout).error.code, "usage")
  })

  it("--help after an unknown subcommand is that error, not the parent's help with exit 0", async () => {
    const [root, nested] = await Promise.all([
      runHomelab(["bogus", "--help"]),
      runHomelab(["--json", "config", "frobnicate", "-h"])
    ])
    assert.strictEqual(root.code, ExitCode.Changes)
    assert.include(root.stderr, 'Unknown subcommand "bogus" for "homelab"')
    assert.strictEqual(nested.code, ExitCode.Changes)
    assert.include(nested.stderr, 'Unknown subcommand "frobnicate" for "homelab config"')
    assert.strictEqual(JSON.parse(nested.stdout).error.code, "usage")
  })

  it("--help still works after flags that take a value, and for known subcommands", async () => {
    const [plan, check] = await Promise.all([
      runHomelab(["-c", "plan.yaml", "plan", "--help"]),
      runHomelab(["config", "check", "--help"])
    ])
    assert.strictEqual(plan.code, 0, plan.stderr)
    assert.include(plan.stdout, "homelab plan [flags]")
    assert.strictEqual(check.code, 0, check.stderr)
    assert.include(check.stdout, "homelab config check")
  })

  it("under --json a usage error is one JSON object on stdout (the text goes to stderr)", async () => {
    const result = await runHomelab(["--json", "plan", "--bogus"])
    assert.strictEqual(result.code, ExitCode.Changes)
    assert.deepStrictEqual(JSON.parse(result.stdout), {
      error: {
        code: "usage",
        message: "Unrecognized flag: --bogus in command homelab plan",
        hint: "see `homelab plan --help`",
        node: null,
        exitCode: 2
      }
    })
    assert.include(result.stderr, "Unrecognized flag: --bogus")
  })
})
