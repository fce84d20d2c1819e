import * as Duration from "effect/Duration"

/**
 * How long a run waits for each kind of thing before it gives up on that node (`timeouts:` in homelab.yaml). No wait
 * is unbounded, and every wait longer than a few seconds is reported while it runs (what, elapsed, limit).
 */
export interface Timeouts {
  /**
   * One PVE task (download, create, start, stop, destroy, resize). A create or a download still running after it is
   * stopped.
   */
  readonly task: Duration.Duration
  /** A started VM's guest agent reporting an IP. */
  readonly ip: Duration.Duration
  /** The k3s install script on a VM (binary download included). */
  readonly k3sInstall: Duration.Duration
  /** From starting k3s on a VM until its Node is Ready. */
  readonly k3sReady: Duration.Duration
}

/** The defaults: PVE tasks 10 min, IP 5 min, k3s install 10 min, k3s Ready 10 min. */
export const DefaultTimeouts: Timeouts = {
  task: Duration.minutes(10),
  ip: Duration.minutes(5),
  k3sInstall: Duration.minutes(10),
  k3sReady: Duration.minutes(10)
}

/**
 * The limit of every `kubectl drain` homelab runs — before an upgrade, a rolling restart, a destroy or a prune:
 * `k3s.upgrade.drainTimeout` (the key sits under `upgrade`, where it began; it applies to every drain), default 5
 * minutes.
 */
export const drainTimeout = (
  k3s: { readonly upgrade?: { readonly drainTimeout: Duration.Duration } | undefined } | undefined
) => k3s?.upgrade?.drainTimeout ?? Duration.minutes(5)
