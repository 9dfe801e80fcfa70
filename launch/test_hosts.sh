#!/usr/bin/env bash
# Makes N test "hosts" on this one machine out of Linux network namespaces, for running and testing
# multi-host mpirun without a cluster (tests/multihost/multihost_check.py; README.md "Multi-node mpirun with a hostfile").
#
#   launch/test_hosts.sh check            can this machine make them? (root, ip netns, veth, bridge, unshare)
#   launch/test_hosts.sh up [N]           make hosts 1..N (default 2); prints the hostfile's path
#   launch/test_hosts.sh down             remove everything `up` made (idempotent: nothing made, nothing done)
#   launch/test_hosts.sh hostfile         print the hostfile's path
#   launch/test_hosts.sh exec HOST CMD... run CMD as host HOST (its network namespace and a hostname of its
#                                         own), keeping the environment; e.g. mpirun from host 1
#
# Host i is the namespace ${PREFIX}i (PREFIX = $PRORES_TEST_HOSTS_PREFIX, default prores-host) with the
# interface prores0 at ${SUBNET}.i/24 (SUBNET = $PRORES_TEST_HOSTS_SUBNET, default 10.213.0, a private
# subnet that exists only inside these namespaces) and loopback up. Every host's prores0 is one end of a
# veth pair whose other end is a port of the bridge br0 in the namespace ${PREFIX%-}-sw (the "switch"), so
# the root namespace gets no interface, address or route. The name ${PREFIX}i resolves to its address
# inside the hosts (ip netns exec bind-mounts /etc/netns/NS/hosts over /etc/hosts), and each host's
# processes run with the hostname ${PREFIX}i (a UTS namespace of their own, `unshare --uts`), so Open MPI
# sees N distinct nodes. The hostfile ("${PREFIX}i slots=S", S = $PRORES_TEST_HOSTS_SLOTS, default 2)
# and the state live in /run/prores-test-hosts/${PREFIX}/. Processes are started on the hosts by
# launch/netns_rsh.sh, Open MPI's rsh agent. `down` kills whatever still runs in these namespaces (only
# processes started in them), then deletes the namespaces and files.
set -Eeuo pipefail

prefix=${PRORES_TEST_HOSTS_PREFIX:-prores-host}
subnet=${PRORES_TEST_HOSTS_SUBNET:-10.213.0}
slots=${PRORES_TEST_HOSTS_SLOTS:-2}
state_dir=/run/prores-test-hosts/$prefix
switch_ns=${prefix%-}-sw
me=$(basename "$0")

die() { echo "$me: $*" >&2; exit 1; }

[[ "$prefix" =~ ^[A-Za-z][A-Za-z0-9-]{0,40}$ ]] || die "PRORES_TEST_HOSTS_PREFIX '$prefix': letters, digits and '-', at most 41"
[[ "$subnet" =~ ^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$ ]] || die "PRORES_TEST_HOSTS_SUBNET '$subnet': three octets, e.g. 10.213.0"
[[ "$slots" =~ ^[1-9][0-9]*$ ]] || die "PRORES_TEST_HOSTS_SLOTS '$slots': a positive integer"

# Our namespaces that exist now: ${prefix}<digits> and the switch.
our_namespaces() {
  ip netns list 2>/dev/null | awk -v p="$prefix" -v sw="$switch_ns" \
    '$1 == sw || (index($1, p) == 1 && substr($1, length(p) + 1) ~ /^[0-9]+$/) {print $1}'
}

# Prints why this machine cannot make test hosts and returns 1, or returns 0.
check() {
  local tool probe=${prefix%-}-probe$$
  [[ "$(id -u)" -eq 0 ]] || { echo "network namespaces need root (running as uid $(id -u))"; return 1; }
  for tool in ip unshare hostname; do
    command -v "$tool" >/dev/null 2>&1 || { echo "'$tool' not found (iproute2 / util-linux)"; return 1; }
  done
  if ! ip netns add "$probe" 2>/dev/null; then
    echo "'ip netns add' is not permitted here (no CAP_SYS_ADMIN, or a container without network namespaces)"
    return 1
  fi
  local why=""
  if ! ip -n "$probe" link add pv0 type veth peer name pv1 2>/dev/null; then
    why="veth interfaces cannot be created (no veth support in the kernel)"
  elif ! ip -n "$probe" link add pbr0 type bridge 2>/dev/null; then
    why="bridge interfaces cannot be created (no bridge support in the kernel)"
  elif ! ip netns exec "$probe" unshare --uts hostname "$probe" 2>/dev/null; then
    why="'unshare --uts' is not permitted here"
  fi
  ip netns del "$probe" 2>/dev/null || true
  [[ -z "$why" ]] || { echo "$why"; return 1; }
}

down() {
  local ns pids
  for ns in $(our_namespaces); do
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    # shellcheck disable=SC2086  # one pid per word
    [[ -z "$pids" ]] || kill -9 $pids 2>/dev/null || true
  done
  for ns in $(our_namespaces); do
    ip netns del "$ns" 2>/dev/null || die "cannot delete namespace $ns"
    rm -rf "/etc/netns/$ns"
  done
  # The /etc/netns entries of hosts whose namespace is gone already (a down interrupted half-way).
  if [[ -d /etc/netns ]]; then
    find /etc/netns -mindepth 1 -maxdepth 1 -type d -regextype posix-extended \
      -regex "/etc/netns/${prefix}[0-9]+" -exec rm -rf {} +
  fi
  if [[ -f "$state_dir/created-etc-netns" ]]; then rmdir /etc/netns 2>/dev/null || true; fi
  rm -rf "$state_dir"
  rmdir /run/prores-test-hosts 2>/dev/null || true
}

up() {
  local n=$1 i ns reason
  if ! [[ "$n" =~ ^[1-9][0-9]*$ ]] || ((n > 250)); then die "N '$n': the number of hosts, 1 to 250"; fi
  reason=$(check) || die "cannot make test hosts: $reason"
  [[ -z "$(our_namespaces)" ]] || die "namespaces ${prefix}* exist already: run '$0 down' first (or set PRORES_TEST_HOSTS_PREFIX)"
  ip -4 route show | grep -q "^${subnet//./\\.}\.0/" &&
    die "subnet ${subnet}.0/24 is routed on this machine already: set PRORES_TEST_HOSTS_SUBNET to an unused one"
  trap 'echo "$me: up failed; removing what it made" >&2; down' ERR
  mkdir -p "$state_dir"
  if [[ ! -d /etc/netns ]]; then mkdir /etc/netns; touch "$state_dir/created-etc-netns"; fi

  ip netns add "$switch_ns"
  ip -n "$switch_ns" link set lo up
  ip -n "$switch_ns" link add br0 type bridge
  ip -n "$switch_ns" link set br0 up
  local hosts_file="$state_dir/hosts" hostfile="$state_dir/hostfile"
  printf '127.0.0.1\tlocalhost\n' >"$hosts_file"
  : >"$hostfile"
  for ((i = 1; i <= n; i++)); do
    printf '%s.%d\t%s%d\n' "$subnet" "$i" "$prefix" "$i" >>"$hosts_file"
    printf '%s%d slots=%d\n' "$prefix" "$i" "$slots" >>"$hostfile"
  done
  for ((i = 1; i <= n; i++)); do
    ns=$prefix$i
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    # The veth pair is made inside the switch namespace and one end moved to the host: no root-namespace name.
    ip -n "$switch_ns" link add "h$i" type veth peer name prores0 netns "$ns"
    ip -n "$switch_ns" link set "h$i" master br0 up
    ip -n "$ns" addr add "$subnet.$i/24" dev prores0
    ip -n "$ns" link set prores0 up
    mkdir -p "/etc/netns/$ns"
    cp "$hosts_file" "/etc/netns/$ns/hosts"
  done
  echo "$n" >"$state_dir/count"
  trap - ERR
  # Host 1 reaches every other one (the bridge forwards at once: no STP); checked where ping is installed.
  if command -v ping >/dev/null 2>&1; then
    for ((i = 2; i <= n; i++)); do
      ip netns exec "${prefix}1" ping -c 1 -W 2 "$subnet.$i" >/dev/null 2>&1 ||
        { down; die "host ${prefix}1 cannot reach $subnet.$i over the bridge"; }
    done
  fi
  echo "$hostfile"
}

run_as_host() {
  local host=$1
  shift
  (($# > 0)) || die "exec $host: no command given"
  if ! [[ "$host" =~ ^${prefix}[0-9]+$ ]] || ! ip netns list | awk -v h="$host" '$1 == h {f = 1} END {exit !f}'; then
    die "exec: '$host' is not one of the test hosts (${prefix}1..N; run '$0 up' first)"
  fi
  # shellcheck disable=SC2016  # $0 and $@ are the inner shell's
  exec ip netns exec "$host" unshare --uts sh -c 'hostname "$0" && exec "$@"' "$host" "$@"
}

cmd=${1:-}
case "$cmd" in
  check) check ;;
  up) (($# <= 2)) || die "usage: $0 up [N]"; up "${2:-2}" ;;
  down) (($# == 1)) || die "usage: $0 down"; down ;;
  hostfile) [[ -f "$state_dir/hostfile" ]] || die "no test hosts are up (run '$0 up')"; echo "$state_dir/hostfile" ;;
  exec) (($# >= 3)) || die "usage: $0 exec HOST COMMAND [ARGS...]"; shift; run_as_host "$@" ;;
  *) die "usage: $0 check | up [N] | down | hostfile | exec HOST COMMAND [ARGS...]" ;;
esac
