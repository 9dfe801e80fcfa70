#!/usr/bin/env bash
# An ssh stand-in for Open MPI's rsh launcher on the network-namespace test hosts of launch/test_hosts.sh:
#
#   mpirun --mca plm_rsh_agent $PWD/launch/netns_rsh.sh --hostfile HOSTFILE ...
#   launch/netns_rsh.sh [ssh options] HOST COMMAND...
#
# Open MPI 4.1 calls its agent as ssh: `AGENT [plm_rsh_args] HOST orted -mca ess "env" ...`, the remote
# command split into words that still carry their shell quoting (`"env"`), to be joined with spaces and run
# by the remote shell. This script skips ssh-style options before HOST (those taking a value skip it too),
# finds the network namespace that owns HOST (a namespace of that name, or the one whose interfaces have
# HOST's IPv4 address, HOST resolved with getent), and runs `sh -c "COMMAND..."` there with the namespace's
# name as hostname (`unshare --uts`) and an ssh-like clean environment (PATH, HOME, USER, LOGNAME, SHELL,
# LANG only): the orted daemon starts "on" that host and everything the job needs reaches it through Open
# MPI (-x VAR), as over a real ssh. Only namespaces named $PRORES_NETNS_PREFIX* (default prores-) are searched.
set -euo pipefail

me=$(basename "$0")
die() { echo "$me: $*" >&2; exit 255; }  # 255: ssh's own status for a failure of ssh itself

# ssh's options that take a value (OpenSSH: -B -b -c -D -E -e -F -I -i -J -L -l -m -O -o -p -Q -R -S -W -w).
while (($# > 0)) && [[ "$1" == -* ]]; do
  opt=$1
  shift
  [[ "$opt" == -- ]] && break
  if [[ "$opt" =~ ^-[BbcDEeFIiJLlmOopQRSWw]$ ]]; then
    (($# > 0)) || die "option $opt needs a value"
    shift
  fi
done
(($# >= 1)) || die "usage: $me [ssh options] HOST COMMAND..."
host=$1
shift
(($# >= 1)) || die "$host: no command given (an interactive login is not supported)"
host=${host#*@}  # user@host: the user is ignored (every host is this machine)

prefix=${PRORES_NETNS_PREFIX:-prores-}
mapfile -t namespaces < <(ip netns list 2>/dev/null | awk -v p="$prefix" 'index($1, p) == 1 {print $1}')
((${#namespaces[@]} > 0)) || die "$host: no network namespaces named ${prefix}* (run launch/test_hosts.sh up)"

ns=""
for candidate in "${namespaces[@]}"; do
  [[ "$candidate" == "$host" ]] && ns=$candidate
done
if [[ -z "$ns" ]]; then
  if [[ "$host" =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
    address=$host
  else
    address=$(getent ahostsv4 "$host" 2>/dev/null | awk 'NR == 1 {print $1}') || true
    [[ -n "$address" ]] || die "$host: not a test host and does not resolve to an IPv4 address"
  fi
  for candidate in "${namespaces[@]}"; do
    if ip -n "$candidate" -4 -o addr show 2>/dev/null | grep -q " inet ${address//./\\.}/"; then
      [[ -z "$ns" ]] || die "$host ($address): owned by two namespaces, $ns and $candidate"
      ns=$candidate
    fi
  done
  [[ -n "$ns" ]] || die "$host ($address): no namespace ${prefix}* has this address"
fi

clean_env=(PATH="${PATH:-/usr/local/bin:/usr/bin:/bin}" HOME="${HOME:-/}" USER="${USER:-$(id -un)}"
           LOGNAME="${LOGNAME:-$(id -un)}" SHELL=/bin/sh)
[[ -z "${LANG:-}" ]] || clean_env+=(LANG="$LANG")
# The remote command as ssh runs it: its words joined with spaces, run by the shell.
# shellcheck disable=SC2016  # $0 and $@ are the inner shell's
exec ip netns exec "$ns" unshare --uts sh -c 'hostname "$0" && exec env -i "$@"' \
  "$ns" "${clean_env[@]}" sh -c "$*"
