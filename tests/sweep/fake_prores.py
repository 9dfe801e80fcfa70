#!/usr/bin/env python3
"""A stand-in for `prores train` in the sweep tests (sweep_check.py): lists options for `train --help` as Boost
does, records every invocation (argv and OMP_NUM_THREADS) as a JSON line in $FAKE_PRORES_LOG, and "trains" in
no time by writing a deterministic metrics.jsonl and checkpoint, behaving as its `--fake-behavior` says:

  ok         metrics.jsonl (train records with per-step arrays, validation, probe, tasks), a checkpoint, exit 0
  fail       a few log lines, an error on stderr, exit status 2
  nan        the trainer's divergence: "training diverged: loss is nan at iteration 7" on stderr, exit status 1
  ppl        as ok, but the final validation perplexity is 5000
  slow       as ok with --load; without it saves iteration 5, writes RUN/ready, waits for SIGTERM or SIGUSR1,
             then saves iteration 8 with "(stop requested)" and exits 0, as the trainer does

The values depend on --num-layers, --seed and --train-iters only (see values()), so a test can recompute them.
"""

import json
import math
import os
import signal
import sys
import time

HELP = """Usage: [mpirun -np N] prores train [--config FILE] [options]
prores train options:
  --help                                print this help
  --config arg                          INI file of options
  --num-layers arg (=2)                 transformer blocks L
  --hidden-size arg (=64)               model width C
  --norm-placement arg (=pre)           pre, post, sandwich or deepnorm
  --layernorm-scaling                   scale block l's norms by 1/sqrt(l)
  --train-iters arg (=50)               optimizer steps
  --lr arg (=0.00029999999999999997)    peak learning rate
  --seed arg (=1234)                    random seed (init and data order)
  --data-path arg                       byte-level text file
  --log-dir arg                         directory of metrics.jsonl (default:
                                        --save)
  --save arg                            checkpoint directory
  --load arg                            resume from this checkpoint directory
  --use-distributed-optimizer
                                        ZeRO-1: shard the optimizer state over
                                        data-parallel ranks
  --prores-schedule S (=linear)         residual warm-up schedule alpha(l, t):
                                        none, linear
  --prores-steps-per-layer T            per-layer warm-up length T
  --fake-behavior arg (=ok)             the test double's behaviour
"""
SWITCHES = {"help", "layernorm-scaling", "use-distributed-optimizer"}


def parse(argv):
    options = {}
    i = 0
    while i < len(argv):
        name = argv[i][2:]
        if name in SWITCHES:
            options[name] = True
            i += 1
        else:
            options[name] = argv[i + 1]
            i += 2
    return options


def values(t, layers, seed, iters):
    """loss, grad norm at step t; a loss spike at step iters // 2 for 4 layers, a gradient-norm one at iters // 3
    for seed 2."""
    loss = 5.0 - 2.0 * t / iters + 0.01 * seed + 0.05 * math.sin(t) + (3.0 if layers == 4 and t == iters // 2 else 0)
    grad_norm = 1.0 + 0.1 * math.cos(1.3 * t) + (5.0 if seed == 2 and t == iters // 3 else 0.0)
    return loss, grad_norm


def val_ppl(t, layers, seed, iters, behavior):
    if behavior == "ppl" and t == iters:
        return 5000.0
    return 40.0 + 10.0 * layers + seed + 30.0 * (1 - t / iters) + (2.0 if t == iters else 0.0)


def act_norm(t, layers, seed):
    return [1.0 + 0.3 * l * (1 + t / 100.0) + 0.01 * seed for l in range(1, layers + 1)]


def save(directory, iteration):
    os.makedirs(os.path.join(directory, f"iter_{iteration:07d}"), exist_ok=True)
    with open(os.path.join(directory, "latest"), "w") as f:
        f.write(f"{iteration}\n")


def train(options):
    behavior = options.get("fake-behavior", "ok")
    layers, seed = int(options.get("num-layers", 2)), int(options.get("seed", 1234))
    iters = int(options.get("train-iters", 50))
    log_dir, save_dir = options.get("log-dir", options.get("save")), options.get("save")
    os.makedirs(log_dir, exist_ok=True)
    first = 1
    if "load" in options:
        with open(os.path.join(options["load"], "latest")) as f:
            first = int(f.read()) + 1
        print(f"resumed from {options['load']} at iteration {first - 1}")
    metrics = open(os.path.join(log_dir, "metrics.jsonl"), "a")

    def write(record):
        metrics.write(json.dumps(record) + "\n")
        metrics.flush()

    def steps(upto):
        for t in range(first, upto + 1):
            if t % 10 == 0 or t == iters:
                span = range(t - (t - 1) % 10, t + 1)
                loss, grad_norm = values(t, layers, seed, iters)
                write({"iter": t, "loss": loss, "lr": 1e-3, "grad_norm": grad_norm, "alpha": [1.0] * layers,
                       "step_loss": [values(s, layers, seed, iters)[0] for s in span],
                       "step_grad_norm": [values(s, layers, seed, iters)[1] for s in span]})
                print(f"iter {t:6d}/{iters} | loss {loss:.4f}", flush=True)
                write({"iter": t, "val_loss": math.log(val_ppl(t, layers, seed, iters, behavior)),
                       "val_ppl": val_ppl(t, layers, seed, iters, behavior)})

    if first == 1:
        write({"iter": 0, "probe/tokens": 64, "probe/act_norm": act_norm(0, layers, seed)})
    if behavior == "fail":
        print("iter     10 | loss 5.0000\nsomething is about to go wrong", flush=True)
        print("prores: error: cannot open data/missing.bin (No such file or directory)", file=sys.stderr)
        return 2
    if behavior == "nan":
        steps(min(iters, 6))
        print("prores: error: training diverged: loss is nan at iteration 7", file=sys.stderr)
        return 1
    if behavior == "slow" and "load" not in options:
        stop = []
        signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
        signal.signal(signal.SIGUSR1, lambda *_: stop.append(1))
        steps(5)
        save(save_dir, 5)
        open(os.path.join(log_dir, "ready"), "w").close()
        deadline = time.monotonic() + 60
        while not stop and time.monotonic() < deadline:
            time.sleep(0.02)
        first = 6
        steps(8)
        save(save_dir, 8)
        print(f"saved checkpoint of iteration 8 to {save_dir} in 0.01 s (stop requested)", flush=True)
        return 0
    steps(iters)
    write({"iter": iters, "probe/tokens": 64, "probe/act_norm": act_norm(iters, layers, seed)})
    write({"iter": iters, "tasks/piqa/acc": 0.5 + 0.01 * layers, "tasks/piqa/acc_norm": 0.55 + 0.01 * seed,
           "tasks/lambada_openai/acc": 0.2 + 0.001 * seed, "tasks/lambada_openai/perplexity": 300.0})
    save(save_dir, iters)
    print(f"saved checkpoint of iteration {iters} to {save_dir} in 0.01 s\ndone: {iters} iterations")
    return 0


def main():
    with open(os.environ["FAKE_PRORES_LOG"], "a") as f:
        f.write(json.dumps({"argv": sys.argv[1:], "omp": os.environ.get("OMP_NUM_THREADS")}) + "\n")
    if sys.argv[1:2] != ["train"]:
        print(f"fake prores: only train, not {sys.argv[1:2]}", file=sys.stderr)
        return 2
    if "--help" in sys.argv:
        print(HELP, end="")
        return 0
    return train(parse(sys.argv[2:]))


if __name__ == "__main__":
    sys.exit(main())
