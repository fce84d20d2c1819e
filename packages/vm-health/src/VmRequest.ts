import * as Schema from "effect/Schema"

/**
 * The VM the reconciler wants to create on a node, as far as preflight needs it.
 *
 * - `vmid`: the id it will use (privileges are checked on `/vms/<vmid>`, else on `/vms`); a guest with this id on the
 *   node (the VM being replaced) does not count against the node's memory.
 * - `pool`: the pool the VM goes into (VM privileges on `/pool/<pool>` count as well).
 * - `cores`, `memoryMiB`: the VM's size; `sockets` (default 1: its vCPUs are `sockets × cores`) and `balloonMiB` (the
 *   balloon minimum, 0 = ballooning off) when the VM sets them.
 * - `bridges`: the bridges its NICs attach to.
 * - `diskStorage`, `diskBytes`: where the disk is allocated (needs content `images`) and its size.
 * - `imageStorage`, `imageContent`: where the cloud image lives and how it is imported: `import` (a volume of content
 *   `import`, PVE ≥ 8.3, `import-from=<storage>:import/<file>`) or `iso` (a `.img` under `iso`, imported by path
 *   over SSH as root).
 * - `downloadImage`: the image still has to reach the image storage, as `imageTransfer` says: `download-url` (the
 *   default: the node downloads it; needs `Datastore.AllocateTemplate` and `Sys.AccessNetwork`, or `Sys.Audit` +
 *   `Sys.Modify` on `/`) or `upload` (the caller uploads it; needs `Datastore.AllocateTemplate` only).
 * - `imageBytes`: the image's size (e.g. `Content-Length` of a `HEAD`); when given and `downloadImage` is set, the
 *   image storage must have room for it (added to the disk when both live on one storage).
 *
 * @since 0.1.0
 * @category models
 */
export class VmRequest extends Schema.Class<VmRequest>("@homelab/vm-health/VmRequest")({
  vmid: Schema.optional(Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))),
  pool: Schema.optional(Schema.String),
  cores: Schema.Int.check(Schema.isGreaterThanOrEqualTo(1)),
  sockets: Schema.optional(Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))),
  memoryMiB: Schema.Int.check(Schema.isGreaterThanOrEqualTo(1)),
  balloonMiB: Schema.optional(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))),
  bridges: Schema.Array(Schema.String),
  diskStorage: Schema.String,
  diskBytes: Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0)),
  imageStorage: Schema.String,
  imageContent: Schema.Literals(["import", "iso"]),
  downloadImage: Schema.Boolean,
  imageTransfer: Schema.optional(Schema.Literals(["download-url", "upload"])),
  imageBytes: Schema.optional(Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0)))
}) {}
