#!/usr/bin/env python3
"""Multi-host mpirun of `prores train` on this one machine: the ctest `Multihost` (docs/parallel.md,
"Multi-host runs (network namespaces)").

    python3 tests/multihost/multihost_check.py PRORES_BINARY

Makes two hosts out of network namespaces (launch/test_hosts.sh up 2: prores-mh<pid>-1 and -2, 10.213.0.1
and .2 on a bridge, a hostname each) and launches every job from host 1 with Open MPI's own remote launch:
mpirun starts the orted daemon of host 2 through launch/netns_rsh.sh (its plm_rsh_agent, in place of ssh),
and the ranks talk over TCP only (btl tcp,self on 10.213.0.0/24; no shared memory). Checks, in order:

 0. placement: 4 ranks of `sh` report the hostname and network namespace of the host the map put them on;
 1. equivalence: TP = 2 x PP = 2 across the hosts, once with the pipeline pairs spanning the hosts (ranks
    0,1 | 2,3) and once with the TP pairs spanning them (--map-by node), and DP = 2 with one rank per host,
    each against the same layout on one host (launch/mpirun.sh in the root namespace): the train loss and
    gradient norm of every iteration agree within 1e-5 relative (test_layout_equivalence's tolerance);
 2. a lost host: killing host 2's ranks (SIGKILL) in a 200-iteration run that saves every 4 iterations, between
    two checkpoints once two exist, ends the whole job within 60 s with a non-zero status and Open MPI's line
    naming a killed rank and host 2, and leaves no process behind on either host;
 3. resume: a new launch across the hosts with --load resumes at the latest checkpoint ("resumed from ... at
    iteration K") and trains to the end; the iterations the killed run had logged after K are repeated exactly;
 4. `down`, always (also on an exception, SIGINT, SIGTERM or SIGHUP), and no namespace is left.

Exits 77 (skipped, with the reason) where this machine cannot make network namespaces (not root, `ip netns
add` refused, no veth/bridge/unshare) or mpirun is not Open MPI. OMP_NUM_THREADS=1 per rank; ~35 s on 2 cores.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TEST_HOSTS = REPO / "launch" / "test_hosts.sh"
AGENT = REPO / "launch" / "netns_rsh.sh"
MPIRUN_SH = REPO / "launch" / "mpirun.sh"
SUBNET = "10.213.0"
CIDR = SUBNET + ".0/24"
PREFIX = f"prores-mh{os.getpid()}-"
HOST1, HOST2 = PREFIX + "1", PREFIX + "2"
SKIP = 77
TOLERANCE = 1e-5  # relative, as tests/test_layout_equivalence.cpp
KILL_BOUND_S = 60
TRAIN = ["train", "--eval-interval", "0", "--log-interval", "1"]


class Failure(Exception):
    pass


def env_for(prefix=PREFIX):
    env = dict(os.environ, OMP_NUM_THREADS="1", PRORES_TEST_HOSTS_PREFIX=prefix, PRORES_TEST_HOSTS_SUBNET=SUBNET,
               PRORES_TEST_HOSTS_SLOTS="2")
    env.pop("MPIRUN_ARGS", None)
    return env


children = []  # Popen objects still running, each the leader of its own process group


def start(cmd, env, log_path):
    log = open(log_path, "w")
    p = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True)
    log.close()
    children.append(p)
    return p


def finish(p, timeout, what):
    try:
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop(p)
        raise Failure(f"{what}: still running after {timeout} s (hung)")
    children.remove(p)
    return p.returncode


def stop(p):
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    p.wait()
    if p in children:
        children.remove(p)


def run(cmd, env, log_path, timeout, what):
    t0 = time.monotonic()
    rc = finish(start(cmd, env, log_path), timeout, what)
    return rc, Path(log_path).read_text(errors="replace"), time.monotonic() - t0


def tail(text, lines=40):
    """The end of a log, for a failure message (the whole log stays in the work directory)."""
    kept = text.splitlines()[-lines:]
    return "\n".join(kept)


def hosts(*args, prefix=PREFIX, check=True):
    r = subprocess.run([str(TEST_HOSTS), *args], env=env_for(prefix), capture_output=True, text=True, timeout=60)
    if check and r.returncode != 0:
        raise Failure(f"test_hosts.sh {' '.join(args)} failed: {r.stderr.strip()}")
    return r


def skip_reason():
    if not sys.platform.startswith("linux"):
        return "network namespaces are Linux only"
    if shutil.which("mpirun") is None:
        return "no mpirun on PATH"
    version = subprocess.run(["mpirun", "--version"], capture_output=True, text=True).stdout
    if "Open MPI" not in version:
        return "mpirun is not Open MPI (the rsh agent and orted daemons are Open MPI's)"
    r = hosts("check", check=False)
    if r.returncode != 0:
        return "cannot make network namespaces: " + (r.stdout + r.stderr).strip()
    return None


def remove_stale_hosts():
    """Hosts left by an earlier run of this test that was killed (SIGKILL) before its `down`."""
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for pid in sorted({int(m) for m in re.findall(r"^prores-mh(\d+)-(?:\d+|sw)\b", listing, re.M)}):
        try:
            os.kill(pid, 0)
            continue  # its test is still running
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        hosts("down", prefix=f"prores-mh{pid}-")
        print(f"removed the test hosts of an earlier, killed run (pid {pid})")


def netns_pids(ns):
    r = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
    return [int(x) for x in r.stdout.split()]


def proc_info(pid):
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None, None
    rank = next((int(e.split(b"=", 1)[1]) for e in environ if e.startswith(b"OMPI_COMM_WORLD_RANK=")), None)
    return comm, rank


def mpirun_args(hostfile, *extra):
    return " ".join(["--hostfile", str(hostfile), "--mca", "plm_rsh_agent", str(AGENT), "--mca", "btl", "tcp,self",
                     "--mca", "btl_tcp_if_include", CIDR, "--mca", "oob_tcp_if_include", CIDR,
                     # 2 hosts x 2 slots on 2 cores: the ranks yield while they wait (the oversubscription Open MPI
                     # sees by itself on one host, not through a hostfile's slots), else each wait costs a time slice.
                     "--mca", "mpi_yield_when_idle", "1", "--display-map", *extra])


def across(hostfile, np, program, args, extra=()):
    """The command line and environment of a launch from host 1 across the hosts, through launch/mpirun.sh."""
    env = env_for()
    env["MPIRUN_ARGS"] = mpirun_args(hostfile, *extra)
    return [str(TEST_HOSTS), "exec", HOST1, str(MPIRUN_SH), str(np), program, *args], env


def one_host(np, program, args):
    return [str(MPIRUN_SH), str(np), program, *args], env_for()


def display_map(out):
    """rank -> node from mpirun --display-map (printed once per daemon; every copy must agree)."""
    placement, node = {}, None
    for line in out.splitlines():
        m = re.match(r"\s*Data for node: (\S+)", line)
        if m:
            node = m.group(1)
        m = re.search(r"Process rank: (\d+)", line)
        if m and node:
            r = int(m.group(1))
            if placement.setdefault(r, node) != node:
                raise Failure(f"--display-map puts rank {r} on {placement[r]} and on {node}")
    return placement


def coordinates(out):
    """rank -> (tp, dp, pp) from the start lines `rank 2/4: tp 0/2, dp 0/1, pp 1/2, ...`."""
    return {int(m[0]): (int(m[1]), int(m[2]), int(m[3]))
            for m in re.findall(r"^rank (\d+)/\d+: tp (\d+)/\d+, dp (\d+)/\d+, pp (\d+)/\d+", out, re.M)}


def groups(coords, kind):
    """The ranks of each TP, DP or PP group: ranks that share the other two coordinates."""
    index = {"tp": 0, "dp": 1, "pp": 2}[kind]
    out = {}
    for r, c in coords.items():
        out.setdefault(tuple(v for i, v in enumerate(c) if i != index), []).append(r)
    return sorted(sorted(g) for g in out.values())


def logged_iterations(log_dir):
    """The last iteration in a running job's metrics.jsonl (0: none yet), from its complete lines."""
    path = Path(log_dir) / "metrics.jsonl"
    text = path.read_text() if path.exists() else ""
    found = re.findall(r'^\{"iter":(\d+),"loss"', text[:text.rfind("\n") + 1], re.M)
    return max(map(int, found), default=0)


def metrics(log_dir):
    records = [json.loads(line) for line in (Path(log_dir) / "metrics.jsonl").read_text().splitlines() if line]
    return {r["iter"]: r for r in records if "loss" in r}


def compare(a, b, what, iters=None):
    """Largest relative difference of loss and grad_norm over the common iterations; fails beyond TOLERANCE."""
    iters = sorted(set(a) & set(b)) if iters is None else iters
    worst, bitwise = 0.0, True
    for it in iters:
        for key in ("loss", "grad_norm"):
            x, y = a[it][key], b[it][key]
            rel = abs(x - y) / max(abs(y), 1e-30)
            bitwise &= x == y
            worst = max(worst, rel)
            if rel > TOLERANCE:
                raise Failure(f"{what}: iteration {it} {key} {x!r} vs {y!r} (relative {rel:.2e} > {TOLERANCE})")
    return worst, bitwise


def main():
    if len(sys.argv) != 2:
        print(f"usage: {sys.argv[0]} PRORES_BINARY", file=sys.stderr)
        return 2
    prores = str(Path(sys.argv[1]).resolve())
    if not os.access(prores, os.X_OK):
        print(f"{sys.argv[0]}: {prores} is not an executable", file=sys.stderr)
        return 2
    reason = skip_reason()
    if reason:
        print(f"SKIP: {reason}")
        return SKIP

    t_start = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="prores-multihost-"))
    figures = []
    ok, interrupted = False, None
    try:
        remove_stale_hosts()
        hostfile = Path(hosts("up", "2").stdout.strip())
        print(f"hosts up: {hostfile.read_text().strip()!r}; work dir {work}")
        # A deterministic byte-level corpus (the same at every run): lines of words from a fixed lexicon.
        corpus = work / "corpus.txt"
        state = 20261127
        words, text = [], []
        for _ in range(400):
            state = (state * 6364136223846793005 + 1442695040888963407) % 2**64
            words.append("".join(chr(97 + (state >> (8 * k)) % 26) for k in range(2 + (state >> 60) % 7)))
        size = 0
        while size < 200_000:
            state = (state * 6364136223846793005 + 1442695040888963407) % 2**64
            line = " ".join(words[(state >> (5 * k)) % 400] for k in range(3 + (state >> 61))) + ".\n"
            text.append(line)
            size += len(line)
        corpus.write_text("".join(text))
        base = ["--config", str(REPO / "configs" / "tiny.ini"), "--data-path", str(corpus)]

        # 0. Placement: every rank runs where the map says, in that host's namespace and under its hostname.
        probe = ('echo "probe rank=$OMPI_COMM_WORLD_RANK host=$(hostname) net=$(readlink /proc/self/ns/net) '
                 'addr=$(ip -4 -o addr show prores0 | awk \'{print $4}\')"')
        cmd, env = across(hostfile, 4, "sh", ["-c", probe])
        rc, out, secs = run(cmd, env, work / "probe.log", 60, "placement probe")
        if rc != 0:
            raise Failure(f"placement probe: mpirun exited {rc}:\n{tail(out)}")
        seen = {int(m[0]): m[1:] for m in re.findall(r"probe rank=(\d+) host=(\S+) net=(\S+) addr=(\S+)", out)}
        for r, host, i in [(0, HOST1, 1), (1, HOST1, 1), (2, HOST2, 2), (3, HOST2, 2)]:
            inode = os.stat(f"/run/netns/{host}").st_ino
            want = (host, f"net:[{inode}]", f"{SUBNET}.{i}/24")
            if seen.get(r) != want:
                raise Failure(f"placement probe: rank {r} reports {seen.get(r)}, expected {want}:\n{tail(out)}")
        print(f"0. placement: ranks 0,1 on {HOST1} ({SUBNET}.1), ranks 2,3 on {HOST2} ({SUBNET}.2), each in its "
              f"host's network namespace and hostname ({secs:.1f} s)")

        # 1. Equivalence with one host.
        tpp = ["--tensor-model-parallel-size", "2", "--pipeline-model-parallel-size", "2", "--micro-batch-size", "2"]
        dp = ["--micro-batch-size", "2"]
        short = [*TRAIN, *base, "--train-iters", "6"]
        references = {}
        for name, np, flags in [("tp2_pp2", 4, tpp), ("dp2", 2, dp)]:
            cmd, env = one_host(np, prores, [*short, *flags, "--log-dir", str(work / f"{name}_one")])
            rc, out, secs = run(cmd, env, work / f"{name}_one.log", 120, f"{name} on one host")
            if rc != 0:
                raise Failure(f"{name} on one host: exit {rc}:\n{tail(out)}")
            references[name] = metrics(work / f"{name}_one")
            if sorted(references[name]) != list(range(1, 7)):
                raise Failure(f"{name} on one host: logged iterations {sorted(references[name])}, expected 1..6")
        cases = [("tp2_pp2 pipeline pairs across hosts", "tp2_pp2", 4, tpp, [], "pp",
                  {0: HOST1, 1: HOST1, 2: HOST2, 3: HOST2}),
                 ("tp2_pp2 TP pairs across hosts", "tp2_pp2", 4, tpp, ["--map-by", "node"], "tp",
                  {0: HOST1, 1: HOST2, 2: HOST1, 3: HOST2}),
                 ("dp2 one rank per host", "dp2", 2, dp, ["--map-by", "node"], "dp", {0: HOST1, 1: HOST2})]
        for i, (title, ref, np, flags, extra, spanning, want) in enumerate(cases):
            log_dir = work / f"across_{i}"
            cmd, env = across(hostfile, np, prores, [*short, *flags, "--log-dir", str(log_dir)], extra)
            rc, out, secs = run(cmd, env, work / f"across_{i}.log", 120, title)
            if rc != 0:
                raise Failure(f"{title}: exit {rc}:\n{tail(out)}")
            placement = display_map(out)
            if placement != want:
                raise Failure(f"{title}: ranks placed {placement}, expected {want}:\n{tail(out)}")
            coords = coordinates(out)
            if len(coords) != np:
                raise Failure(f"{title}: {len(coords)} start lines for {np} ranks:\n{tail(out)}")
            for g in groups(coords, spanning):
                if len({placement[r] for r in g}) != 2:
                    raise Failure(f"{title}: {spanning.upper()} group {g} does not span the two hosts")
            run_metrics = metrics(log_dir)
            if sorted(run_metrics) != list(range(1, 7)):
                raise Failure(f"{title}: logged iterations {sorted(run_metrics)}, expected 1..6")
            worst, bitwise = compare(run_metrics, references[ref], title)
            spans = ", ".join("+".join(map(str, g)) for g in groups(coords, spanning))
            figures.append(f"{title} ({spanning.upper()} groups {spans} span the hosts): 6 iterations, "
                           f"{'bitwise equal' if bitwise else f'max relative difference {worst:.1e}'} "
                           f"to one host ({secs:.1f} s)")
            print("1. " + figures[-1])

        # 2. A lost host: SIGKILL host 2's ranks after the first checkpoints.
        save = work / "checkpoints"
        long_run = [*TRAIN, *base, *tpp, "--train-iters", "200", "--global-batch-size", "128", "--probe-samples", "8",
                    "--save", str(save), "--save-interval", "4"]
        cmd, env = across(hostfile, 4, prores, [*long_run, "--log-dir", str(work / "killed")])
        p = start(cmd, env, work / "killed.log")
        # Kill between two checkpoints, once at least two exist: the iterations logged after the latest one are
        # then trained again by the resumed run, which must repeat them exactly.
        deadline = time.monotonic() + 90
        latest = save / "latest"
        while not (latest.exists() and int(latest.read_text() or 0) >= 8 and
                   logged_iterations(work / "killed") >= int(latest.read_text() or 0) + 2):
            if p.poll() is not None:
                raise Failure(f"the run to kill ended (exit {p.returncode}) before its checkpoint of iteration 8:\n"
                              + tail((work / "killed.log").read_text(errors="replace")))
            if time.monotonic() > deadline:
                stop(p)
                raise Failure("the run to kill wrote no checkpoint of iteration 8 in 90 s")
            time.sleep(0.01)
        victims = {}
        for pid in netns_pids(HOST2):
            comm, rank = proc_info(pid)
            if comm == "prores":
                victims[pid] = rank
        if sorted(victims.values()) != [2, 3]:
            stop(p)
            raise Failure(f"expected ranks 2 and 3 as prores processes in {HOST2}, found {victims}")
        t_kill = time.monotonic()
        for pid in victims:
            os.kill(pid, signal.SIGKILL)
        rc = finish(p, KILL_BOUND_S, f"the job after killing {HOST2}'s ranks")
        end_after_kill = time.monotonic() - t_kill
        out = (work / "killed.log").read_text(errors="replace")
        if rc == 0:
            raise Failure(f"the job exited 0 after its ranks on {HOST2} were killed:\n{tail(out)}")
        noticed = re.findall(r"process rank (\d+) with PID (\d+) on node (\S+) exited on signal 9", out)
        if not any(int(r) in (2, 3) and int(pid) in victims and node == HOST2 for r, pid, node in noticed):
            raise Failure(f"no line names a killed rank (2 or 3, pids {sorted(victims)}) on {HOST2}:\n{tail(out)}")
        for host in (HOST1, HOST2):  # nothing is left running on either host (daemons, ranks, agents)
            for _ in range(100):
                left = netns_pids(host)
                if not left:
                    break
                time.sleep(0.1)
            if left:
                raise Failure(f"processes left on {host} 10 s after the job ended: "
                              f"{[(q, proc_info(q)[0]) for q in left]}")
        resume_at = int(latest.read_text())
        killed_metrics = metrics(work / "killed")
        if not 8 <= resume_at < 200:
            raise Failure(f"latest checkpoint after the kill: {resume_at}, expected 8..196")
        line = next(l for l in out.splitlines() if re.search(r"process rank \d+ with PID", l))
        figures.append(f"kill -9 of ranks 2,3 ({HOST2}) at iteration {max(killed_metrics, default=0)} of 200: "
                       f"the job ended {end_after_kill:.1f} s later with exit {rc}; \"{line.strip()}\"")
        print("2. " + figures[-1])

        # 3. Resume across the hosts from the latest checkpoint, to the end.
        cmd, env = across(hostfile, 4, prores, [*long_run, "--load", str(save), "--log-dir", str(work / "resumed")])
        rc, out, secs = run(cmd, env, work / "resumed.log", 240, "the resumed run")
        if rc != 0:
            raise Failure(f"the resumed run: exit {rc}:\n{tail(out)}")
        if f"resumed from {save} at iteration {resume_at}\n" not in out:
            raise Failure(f"the resumed run does not say 'resumed from {save} at iteration {resume_at}':\n{tail(out)}")
        if not re.search(r"^iter +200/200 \|", out, re.M) or "done: " not in out:
            raise Failure(f"the resumed run did not reach iteration 200:\n{tail(out)}")
        resumed = metrics(work / "resumed")
        if sorted(resumed) != list(range(resume_at + 1, 201)):
            raise Failure(f"the resumed run logged iterations {min(resumed)}..{max(resumed)} ({len(resumed)}), "
                          f"expected {resume_at + 1}..200")
        repeated = sorted(set(resumed) & set(killed_metrics))
        worst, bitwise = compare(resumed, killed_metrics, "resumed vs killed run", repeated)
        figures.append(f"resume at iteration {resume_at} across the hosts, to 200 ({secs:.1f} s); the "
                       f"{len(repeated)} iteration(s) the killed run had logged after it: "
                       f"{'bitwise equal' if bitwise else f'max relative difference {worst:.1e}'}")
        print("3. " + figures[-1])
        ok = True
    except Failure as e:
        print(f"FAIL: {e}", file=sys.stderr)
    except KeyboardInterrupt as e:
        interrupted = str(e) or "SIGINT"
        print(f"INTERRUPTED ({interrupted}): stopping the jobs and removing the hosts", file=sys.stderr)
    finally:
        for p in list(children):
            stop(p)
        hosts("down", check=False)
        left = [n for n in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
                if n.startswith(PREFIX)]
        if left:
            print(f"FAIL: namespaces left after down: {left}", file=sys.stderr)
            ok = False
        if ok:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"logs kept in {work}", file=sys.stderr)
    if interrupted:
        return 130
    if not ok:
        return 1
    print(f"4. hosts down. PASS in {time.monotonic() - t_start:.1f} s")
    return 0


def on_signal(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")  # unwinds through main()'s finally: children stopped, hosts down


if __name__ == "__main__":
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    sys.exit(main())
