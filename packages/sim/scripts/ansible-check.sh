#!/usr/bin/env bash
# Runs Ansible's community.general.proxmox_kvm and proxmox_storage_info, unmodified (Debian's `ansible` package),
# against the simulator: storage info, then create, start, read, update, stop and delete a VM. Exits non-zero when a
# module fails or a result is not what PVE would give.
#
#   bash packages/sim/scripts/ansible-check.sh        # as root (installs ansible, python3-proxmoxer with apt-get)
#
# Needs the simulator built (`pnpm exec turbo run build --filter @homelab/sim`). Not part of `./dev check`: it
# installs some 60 Debian packages first, which a fresh CI machine would download on every run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=../../../.ci/bootstrap.sh
. ../../.ci/bootstrap.sh >/dev/null # the project's Node 24 on PATH

if ! command -v ansible-playbook >/dev/null || ! python3 -c "import proxmoxer" 2>/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ansible python3-proxmoxer python3-requests >/dev/null
fi

work="$(mktemp -d)"
sim_pid=""
cleanup() {
  [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

cat >"$work/scenario.yaml" <<'EOF'
nodes:
  - name: pve
    apiPort: 0
    sshPort: 0
    bridges: [{ name: vmbr0 }]
timeScale: 0.05
timings: { unauthorizedDelayMs: 0 }
guestSshPort: 0
ipPool: 127.91.0.10
EOF

node dist/bin.js --scenario "$work/scenario.yaml" --ready-file "$work/ready.json" >/dev/null &
sim_pid=$!
for _ in $(seq 1 100); do [ -s "$work/ready.json" ] && break; sleep 0.1; done
[ -s "$work/ready.json" ] || { echo "ansible-check: the simulator did not start" >&2; exit 1; }

read -r api_host token_id token_secret < <(python3 - "$work/ready.json" <<'EOF'
import json, sys, urllib.parse
r = json.load(open(sys.argv[1]))
u = urllib.parse.urlparse(r["nodes"][0]["api"])
print(f"{u.hostname}:{u.port}", r["auth"]["tokenId"].split("!")[1], r["auth"]["tokenSecret"])
EOF
)

cat >"$work/playbook.yaml" <<EOF
- hosts: localhost
  gather_facts: false
  vars:
    pve: &pve
      api_host: "$api_host"
      api_user: root@pam
      api_token_id: "$token_id"
      api_token_secret: "$token_secret"
      validate_certs: false
  tasks:
    - name: storage info
      community.general.proxmox_storage_info: { <<: *pve }
      register: storages
    - assert:
        that: "storages.proxmox_storages | map(attribute='storage') | sort | list == ['local', 'local-lvm']"
    - name: create a VM
      community.general.proxmox_kvm:
        <<: *pve
        node: pve
        vmid: 300
        name: ansible-vm
        cores: 2
        memory: 1024
        net: { net0: "virtio,bridge=vmbr0" }
        scsi: { scsi0: "local-lvm:1" }
        agent: true
        state: present
    - name: start it
      community.general.proxmox_kvm: { <<: *pve, node: pve, vmid: 300, state: started }
    - name: read its state
      community.general.proxmox_kvm: { <<: *pve, node: pve, vmid: 300, state: current }
      register: current
    - assert: { that: "current.status == 'running'" }
    - name: update it
      community.general.proxmox_kvm: { <<: *pve, node: pve, vmid: 300, cores: 4, update: true }
    - name: stop it
      community.general.proxmox_kvm: { <<: *pve, node: pve, vmid: 300, state: stopped, force: true }
    - name: delete it
      community.general.proxmox_kvm: { <<: *pve, node: pve, vmid: 300, state: absent }
EOF

ANSIBLE_LOCALHOST_WARNING=false ANSIBLE_INVENTORY_UNPARSED_WARNING=false ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3 \
  ansible-playbook -i localhost, -c local "$work/playbook.yaml"
echo "ansible-check: proxmox_storage_info and proxmox_kvm ran against the simulator"
