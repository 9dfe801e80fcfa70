// 1F1B pipeline schedules as data (plain and interleaved), their validation (counts, order, matching
// transfers, a rendezvous simulation that detects deadlock) and their unit-time bubble measurement.
#include "parallel/pipeline_schedule.h"

#include <algorithm>
#include <array>
#include <optional>

#include "core/check.h"

namespace prores {

namespace {

using Kind = PipelineAction::Kind;
constexpr int kNumKinds = 6;

const char* kind_name(Kind kind) {
  switch (kind) {
    case Kind::RecvForward: return "RecvForward";
    case Kind::Forward: return "Forward";
    case Kind::SendForward: return "SendForward";
    case Kind::RecvBackward: return "RecvBackward";
    case Kind::Backward: return "Backward";
    case Kind::SendBackward: return "SendBackward";
  }
  return "?";
}

bool is_compute(Kind kind) { return kind == Kind::Forward || kind == Kind::Backward; }

bool is_forward_transfer(Kind kind) { return kind == Kind::SendForward || kind == Kind::RecvBackward; }

// The virtual stage k = c·p + s of chunk c on stage s, and the one a transfer talks to (k + 1 or k − 1).
int64_t virtual_stage(int64_t stage, int64_t chunk, int64_t stages) { return chunk * stages + stage; }
int64_t peer_virtual_stage(const PipelineAction& a, int64_t stage, int64_t stages) {
  return virtual_stage(stage, a.chunk, stages) + (is_forward_transfer(a.kind) ? 1 : -1);
}

// The action the peer must be posting for a transfer to complete.
Kind counterpart(Kind kind) {
  switch (kind) {
    case Kind::SendForward: return Kind::RecvForward;
    case Kind::RecvForward: return Kind::SendForward;
    case Kind::SendBackward: return Kind::RecvBackward;
    case Kind::RecvBackward: return Kind::SendBackward;
    default: return kind;
  }
}

// How many times virtual stage k of `virtual_stages` must run each kind for every micro-batch (0 or 1).
std::array<int, kNumKinds> expected_counts(int64_t k, int64_t virtual_stages) {
  const int has_prev = k > 0 ? 1 : 0, has_next = k < virtual_stages - 1 ? 1 : 0;
  std::array<int, kNumKinds> e{};
  e[Kind::RecvForward] = has_prev;
  e[Kind::Forward] = 1;
  e[Kind::SendForward] = has_next;
  e[Kind::RecvBackward] = has_next;
  e[Kind::Backward] = 1;
  e[Kind::SendBackward] = has_prev;
  return e;
}

// "stage 3", or "virtual stage 5" with interleaving: the peer named in messages.
std::string peer_name(int64_t k, int64_t stages, int64_t chunks) {
  if (chunks == 1) return detail::concat("stage ", k);
  return detail::concat("virtual stage ", k, " (stage ", ((k % stages) + stages) % stages, ")");
}

// Checks one stage's list: micro-batch and chunk ranges, each action the expected number of times per chunk,
// and the order receive → compute → send within each direction, forward before backward.
void validate_stage(const std::vector<PipelineAction>& actions, int64_t stage, int64_t stages, int64_t micro_batches,
                    int64_t chunks) {
  const auto cells = static_cast<size_t>(micro_batches * chunks);
  std::vector<std::array<int, kNumKinds>> count(cells, std::array<int, kNumKinds>{});
  std::vector<std::array<size_t, kNumKinds>> position(cells, std::array<size_t, kNumKinds>{});
  for (size_t i = 0; i < actions.size(); ++i) {
    const PipelineAction& a = actions[i];
    PRORES_CHECK(a.kind >= 0 && a.kind < kNumKinds, "stage ", stage, " action ", i, " has an unknown kind ",
                 static_cast<int>(a.kind));
    PRORES_CHECK(a.micro_batch >= 0 && a.micro_batch < micro_batches, "stage ", stage, " action ", i, " ",
                 to_string(a), " names a micro-batch outside 0..", micro_batches - 1);
    PRORES_CHECK(a.chunk >= 0 && a.chunk < chunks, "stage ", stage, " action ", i, " ", to_string(a),
                 " names a chunk outside 0..", chunks - 1);
    const auto cell = static_cast<size_t>(a.chunk * micro_batches + a.micro_batch);
    ++count[cell][a.kind];
    position[cell][a.kind] = i;
  }
  for (int64_t c = 0; c < chunks; ++c) {
    const auto expected = expected_counts(virtual_stage(stage, c, stages), stages * chunks);
    for (int64_t m = 0; m < micro_batches; ++m) {
      const auto cell = static_cast<size_t>(c * micro_batches + m);
      for (int k = 0; k < kNumKinds; ++k) {
        const PipelineAction a{static_cast<Kind>(k), m, c};
        if (is_compute(a.kind) || expected[k] == count[cell][k]) continue;
        const std::string peer = peer_name(peer_virtual_stage(a, stage, stages), stages, chunks);
        PRORES_CHECK(expected[k] != 0, "stage ", stage, " runs ", to_string(a), " but has no ", peer,
                     " to exchange it with");
        PRORES_CHECK(count[cell][k] != 0, "stage ", stage, " has no ", to_string(a), " matching ", peer, "'s ",
                     to_string({counterpart(a.kind), m, pipeline_peer(a, stage, stages).chunk}));
      }
      for (int k = 0; k < kNumKinds; ++k) {
        PRORES_CHECK(count[cell][k] == expected[k], "stage ", stage, " runs ", to_string({static_cast<Kind>(k), m, c}),
                     " ", count[cell][k], " times (expected ", expected[k], ")");
      }
      const auto& pos = position[cell];
      const auto check_before = [&](Kind first, Kind second) {
        if (expected[first] == 0 || expected[second] == 0) return;
        PRORES_CHECK(pos[first] < pos[second], "stage ", stage, " runs ", to_string({second, m, c}), " before ",
                     to_string({first, m, c}));
      };
      check_before(Kind::RecvForward, Kind::Forward);
      check_before(Kind::Forward, Kind::SendForward);
      check_before(Kind::Forward, Kind::Backward);
      check_before(Kind::RecvBackward, Kind::Backward);
      check_before(Kind::Backward, Kind::SendBackward);
    }
  }
}

// Checks that one chunk's actions of a stage can share the runner's buffers: its forwards and its backwards
// each run in micro-batch order, so that micro-batch m lives in activation slot m mod slots (slots: the chunk's
// max_in_flight), which RecvForward(m) may fill only once Backward(m − slots) has freed it; one received output
// gradient, consumed by the chunk's next backward; one input gradient, sent before the chunk's next backward.
void validate_buffers(const std::vector<PipelineAction>& actions, int64_t stage, int64_t chunk, bool first, bool last) {
  const int64_t slots = max_in_flight(actions, chunk);
  int64_t forwards = 0, backwards = 0, gradient_in = -1, gradient_out = -1;
  for (const PipelineAction& a : actions) {
    if (a.chunk != chunk) continue;
    const int64_t m = a.micro_batch;
    switch (a.kind) {
      case Kind::Forward:
        PRORES_CHECK(m == forwards, "stage ", stage, " runs ", to_string(a), " out of micro-batch order (expected ",
                     to_string({a.kind, forwards, chunk}), ")");
        ++forwards;
        break;
      case Kind::Backward:
        PRORES_CHECK(m == backwards, "stage ", stage, " runs ", to_string(a), " out of micro-batch order (expected ",
                     to_string({a.kind, backwards, chunk}), ")");
        PRORES_CHECK(gradient_out < 0, "stage ", stage, " runs ", to_string(a), " before ",
                     to_string({Kind::SendBackward, gradient_out, chunk}), " has sent the gradient it overwrites");
        PRORES_CHECK(last || gradient_in == m, "stage ", stage, " runs ", to_string(a),
                     " without its received gradient");
        gradient_in = -1;
        if (!first) gradient_out = m;
        ++backwards;
        break;
      case Kind::RecvForward:
        PRORES_CHECK(m < slots || backwards > m - slots, "stage ", stage, " runs ", to_string(a), " into the slot of ",
                     to_string({Kind::Backward, m - slots, chunk}), ", which has not run");
        break;
      case Kind::RecvBackward:
        PRORES_CHECK(gradient_in < 0, "stage ", stage, " runs ", to_string(a), " over the unused gradient of ",
                     to_string({Kind::RecvBackward, gradient_in, chunk}));
        gradient_in = m;
        break;
      case Kind::SendBackward:
        if (gradient_out == m) gradient_out = -1;
        break;
      case Kind::SendForward: break;
    }
  }
}

// One compute of the interleaved schedule, by stage, in that stage's order.
struct Compute {
  Kind kind;  // Forward or Backward
  int64_t micro_batch, chunk;
};

// Megatron-LM's compute order for stage s of the interleaved 1F1B (see interleaved_one_f_one_b).
std::vector<Compute> interleaved_compute_order(int64_t stage, int64_t stages, int64_t chunks, int64_t micro_batches) {
  const int64_t total = micro_batches * chunks, group = stages * chunks;
  const auto micro_batch = [&](int64_t k) { return (k / group) * stages + k % stages; };
  const auto chunk = [&](int64_t k, bool forward) {
    const int64_t c = (k % group) / stages;
    return forward ? c : chunks - 1 - c;
  };
  const int64_t warmup = micro_batches == stages
                             ? total
                             : std::min((stages - stage - 1) * 2 + (chunks - 1) * stages, total);
  std::vector<Compute> order;
  for (int64_t k = 0; k < warmup; ++k) order.push_back({Kind::Forward, micro_batch(k), chunk(k, true)});
  for (int64_t i = 0; i < total - warmup; ++i) {
    order.push_back({Kind::Forward, micro_batch(warmup + i), chunk(warmup + i, true)});
    order.push_back({Kind::Backward, micro_batch(i), chunk(i, false)});
  }
  for (int64_t k = total - warmup; k < total; ++k) order.push_back({Kind::Backward, micro_batch(k), chunk(k, false)});
  return order;
}

}  // namespace

PipelinePeer pipeline_peer(const PipelineAction& action, int64_t stage, int64_t stages) {
  const int64_t k = peer_virtual_stage(action, stage, stages);
  const int64_t s = ((k % stages) + stages) % stages;
  return {s, (k - s) / stages};
}

std::string to_string(const PipelineAction& action) {
  if (action.chunk == 0) return detail::concat(kind_name(action.kind), "(", action.micro_batch, ")");
  return detail::concat(kind_name(action.kind), "(", action.micro_batch, ", chunk ", action.chunk, ")");
}

std::ostream& operator<<(std::ostream& os, const PipelineAction& action) { return os << to_string(action); }

PipelineSchedule one_f_one_b(int64_t stages, int64_t micro_batches) {
  PRORES_CHECK(stages >= 1, "pipeline schedule: stages must be at least 1, got ", stages);
  PRORES_CHECK(micro_batches >= 1, "pipeline schedule: micro-batches must be at least 1, got ", micro_batches);
  PipelineSchedule schedule(static_cast<size_t>(stages));
  for (int64_t s = 0; s < stages; ++s) {
    const bool first = s == 0, last = s == stages - 1;
    auto& out = schedule[static_cast<size_t>(s)];
    const auto add = [&out](Kind kind, int64_t m) { out.push_back({kind, m}); };
    const int64_t warmup = std::min(stages - s - 1, micro_batches);
    const int64_t steady = micro_batches - warmup;
    for (int64_t m = 0; m < warmup; ++m) {
      if (!first) add(Kind::RecvForward, m);
      add(Kind::Forward, m);
      if (!last) add(Kind::SendForward, m);
    }
    if (steady > 0 && !first) add(Kind::RecvForward, warmup);
    for (int64_t i = 0; i < steady; ++i) {
      const int64_t fwd = warmup + i, bwd = i;
      add(Kind::Forward, fwd);
      if (!last) {
        add(Kind::RecvBackward, bwd);
        add(Kind::SendForward, fwd);
      }
      add(Kind::Backward, bwd);
      if (!first) add(Kind::SendBackward, bwd);
      if (i + 1 < steady && !first) add(Kind::RecvForward, fwd + 1);
    }
    for (int64_t bwd = steady; bwd < micro_batches; ++bwd) {
      if (!last) add(Kind::RecvBackward, bwd);
      add(Kind::Backward, bwd);
      if (!first) add(Kind::SendBackward, bwd);
    }
  }
  return schedule;
}

PipelineSchedule interleaved_one_f_one_b(int64_t stages, int64_t chunks, int64_t micro_batches) {
  PRORES_CHECK(stages >= 2, "interleaved pipeline schedule: needs at least 2 stages, got ", stages);
  PRORES_CHECK(chunks >= 2, "interleaved pipeline schedule: needs at least 2 chunks per stage, got ", chunks);
  PRORES_CHECK(micro_batches >= 1 && micro_batches % stages == 0, "interleaved pipeline schedule: the micro-batches (",
               micro_batches, ") must be a multiple of the stages (", stages, ")");
  const int64_t virtual_stages = stages * chunks;
  const auto P = static_cast<size_t>(stages);
  std::vector<std::vector<Compute>> order(P);
  for (int64_t s = 0; s < stages; ++s)
    order[static_cast<size_t>(s)] = interleaved_compute_order(s, stages, chunks, micro_batches);
  // Per (stage, chunk, micro-batch): forward and backward done, input activation and output gradient received.
  const auto cell = [&](int64_t s, int64_t c, int64_t m) {
    return static_cast<size_t>((s * chunks + c) * micro_batches + m);
  };
  const size_t cells = static_cast<size_t>(virtual_stages * micro_batches);
  std::vector<char> forward_done(cells), backward_done(cells), activation_in(cells), gradient_in(cells);
  // The buffers a transfer may not overwrite: each chunk keeps max_in_flight activation slots (micro-batch m in
  // slot m mod slots), one received output gradient and one input gradient to send.
  std::vector<int64_t> slots(P * static_cast<size_t>(chunks), 0);
  std::vector<int64_t> previous_backward(cells, -1);  // the micro-batch of the chunk's backward before m's
  for (int64_t s = 0; s < stages; ++s) {
    std::vector<int64_t> live(static_cast<size_t>(chunks), 0), last(static_cast<size_t>(chunks), -1);
    for (const Compute& c : order[static_cast<size_t>(s)]) {
      const auto ci = static_cast<size_t>(c.chunk);
      if (c.kind == Kind::Forward) {
        int64_t& most = slots[static_cast<size_t>(s * chunks + c.chunk)];
        most = std::max(most, ++live[ci]);
      } else {
        --live[ci];
        previous_backward[cell(s, c.chunk, c.micro_batch)] = last[ci];
        last[ci] = c.micro_batch;
      }
    }
  }
  struct Send {
    bool forward;
    int64_t micro_batch, from_chunk, to_stage, to_chunk;
  };
  std::vector<std::vector<Send>> pending(P);  // sent data not yet received, oldest first
  const auto receivable = [&](const Send& t) {
    if (t.forward) {
      const int64_t reused = t.micro_batch - slots[static_cast<size_t>(t.to_stage * chunks + t.to_chunk)];
      return reused < 0 || backward_done[cell(t.to_stage, t.to_chunk, reused)] != 0;
    }
    const int64_t before = previous_backward[cell(t.to_stage, t.to_chunk, t.micro_batch)];
    return before < 0 || backward_done[cell(t.to_stage, t.to_chunk, before)] != 0;
  };
  // Rendezvous execution with transfers that take no time, forwards 1 and backwards 2: a transfer happens as
  // soon as both stages are between computes (the receiver's buffer free), and a stage starts its next compute
  // as soon as its input has arrived (a backward once its chunk's previous input gradient has left).
  PipelineSchedule schedule(P);
  std::vector<size_t> next(P, 0);
  std::vector<std::optional<Compute>> running(P);
  std::vector<double> finish(P, 0.0);
  for (double now = 0;;) {
    for (bool moved = true; moved;) {
      moved = false;
      for (size_t s = 0; s < P && !moved; ++s) {
        if (running[s]) continue;
        for (auto it = pending[s].begin(); it != pending[s].end(); ++it) {
          const auto to = static_cast<size_t>(it->to_stage);
          if (running[to] || !receivable(*it)) continue;
          const Kind send = it->forward ? Kind::SendForward : Kind::SendBackward;
          schedule[s].push_back({send, it->micro_batch, it->from_chunk});
          schedule[to].push_back({counterpart(send), it->micro_batch, it->to_chunk});
          (it->forward ? activation_in : gradient_in)[cell(it->to_stage, it->to_chunk, it->micro_batch)] = 1;
          pending[s].erase(it);
          moved = true;
          break;
        }
      }
    }
    for (size_t s = 0; s < P; ++s) {
      if (running[s] || next[s] == order[s].size()) continue;
      const Compute& c = order[s][next[s]];
      const auto si = static_cast<int64_t>(s);
      const int64_t k = virtual_stage(si, c.chunk, stages);
      const size_t i = cell(si, c.chunk, c.micro_batch);
      const bool ready =
          c.kind == Kind::Forward
              ? k == 0 || activation_in[i]
              : (k == virtual_stages - 1 || gradient_in[i]) &&
                    std::none_of(pending[s].begin(), pending[s].end(),
                                 [&](const Send& t) { return !t.forward && t.from_chunk == c.chunk; });
      if (!ready) continue;
      schedule[s].push_back({c.kind, c.micro_batch, c.chunk});
      running[s] = c;
      finish[s] = now + (c.kind == Kind::Forward ? 1.0 : 2.0);
      ++next[s];
    }
    double soonest = -1;
    for (size_t s = 0; s < P; ++s)
      if (running[s] && (soonest < 0 || finish[s] < soonest)) soonest = finish[s];
    if (soonest < 0) break;  // nothing runs: finished, or stuck (checked below)
    now = soonest;
    for (size_t s = 0; s < P; ++s) {
      if (!running[s] || finish[s] != now) continue;
      const Compute c = *running[s];
      running[s].reset();
      const auto si = static_cast<int64_t>(s);
      const int64_t k = virtual_stage(si, c.chunk, stages);
      const bool forward = c.kind == Kind::Forward;
      (forward ? forward_done : backward_done)[cell(si, c.chunk, c.micro_batch)] = 1;
      if (forward ? k == virtual_stages - 1 : k == 0) continue;
      const int64_t to = forward ? k + 1 : k - 1;
      pending[s].push_back({forward, c.micro_batch, c.chunk, to % stages, to / stages});
    }
  }
  for (size_t s = 0; s < P; ++s)
    PRORES_CHECK(next[s] == order[s].size() && pending[s].empty(), "interleaved pipeline schedule: stage ", s,
                 " cannot go on after ", schedule[s].empty() ? "its start" : to_string(schedule[s].back()));
  return schedule;
}

PipelineSimulation simulate_schedule(const PipelineSchedule& schedule, double forward_time, double backward_time) {
  const auto stages = static_cast<int64_t>(schedule.size());
  int64_t chunks = 1;
  for (const auto& actions : schedule)
    for (const PipelineAction& a : actions) chunks = std::max(chunks, a.chunk + 1);
  PipelineSimulation sim;
  sim.busy.assign(schedule.size(), 0.0);
  std::vector<double> clock(schedule.size(), 0.0);
  std::vector<size_t> pc(schedule.size(), 0);
  const auto done = [&](int64_t s) { return pc[static_cast<size_t>(s)] == schedule[static_cast<size_t>(s)].size(); };
  const auto head = [&](int64_t s) { return schedule[static_cast<size_t>(s)][pc[static_cast<size_t>(s)]]; };
  // Advances stage s by one action if it can; returns whether it did.
  const auto step = [&](int64_t s) {
    if (done(s)) return false;
    const auto si = static_cast<size_t>(s);
    const PipelineAction a = head(s);
    if (is_compute(a.kind)) {
      const double t = a.kind == Kind::Forward ? forward_time : backward_time;
      clock[si] += t;
      sim.busy[si] += t;
      ++pc[si];
      return true;
    }
    const int64_t k = peer_virtual_stage(a, s, stages);
    PRORES_CHECK(k >= 0 && k < stages * chunks, "stage ", s, " runs ", to_string(a), " but there is no ",
                 peer_name(k, stages, chunks));
    const PipelinePeer peer = pipeline_peer(a, s, stages);
    const PipelineAction wanted{counterpart(a.kind), a.micro_batch, peer.chunk};
    if (done(peer.stage) || !(head(peer.stage) == wanted)) return false;
    const auto pi = static_cast<size_t>(peer.stage);
    clock[si] = clock[pi] = std::max(clock[si], clock[pi]);
    ++pc[si];
    ++pc[pi];
    return true;
  };
  for (bool progress = true; progress;) {
    progress = false;
    for (int64_t s = 0; s < stages; ++s) {
      while (step(s)) progress = true;
    }
  }
  std::string blocked;
  for (int64_t s = 0; s < stages; ++s) {
    if (!done(s)) blocked += detail::concat(blocked.empty() ? "" : ", ", "stage ", s, " at ", to_string(head(s)));
  }
  PRORES_CHECK(blocked.empty(), "pipeline schedule deadlocks with blocking transfers: ", blocked);
  sim.makespan = stages > 0 ? *std::max_element(clock.begin(), clock.end()) : 0.0;
  double total_busy = 0;
  for (double b : sim.busy) total_busy += b;
  sim.bubble_fraction = sim.makespan > 0 ? 1.0 - total_busy / (static_cast<double>(stages) * sim.makespan) : 0.0;
  return sim;
}

void validate_schedule(const PipelineSchedule& schedule, int64_t stages, int64_t micro_batches, int64_t chunks) {
  PRORES_CHECK(stages >= 1, "pipeline schedule: stages must be at least 1, got ", stages);
  PRORES_CHECK(micro_batches >= 1, "pipeline schedule: micro-batches must be at least 1, got ", micro_batches);
  PRORES_CHECK(chunks >= 1, "pipeline schedule: chunks per stage must be at least 1, got ", chunks);
  PRORES_CHECK(static_cast<int64_t>(schedule.size()) == stages, "pipeline schedule has ", schedule.size(),
               " stage lists for ", stages, " stages");
  for (int64_t s = 0; s < stages; ++s) {
    const auto& actions = schedule[static_cast<size_t>(s)];
    validate_stage(actions, s, stages, micro_batches, chunks);
    for (int64_t c = 0; c < chunks; ++c) {
      const int64_t k = virtual_stage(s, c, stages);
      validate_buffers(actions, s, c, k == 0, k == stages * chunks - 1);
    }
  }
  simulate_schedule(schedule);
}

int64_t max_in_flight(const std::vector<PipelineAction>& stage_actions, int64_t chunk) {
  int64_t live = 0, most = 0;
  for (const PipelineAction& a : stage_actions) {
    if (a.chunk != chunk) continue;
    if (a.kind == Kind::Forward) most = std::max(most, ++live);
    if (a.kind == Kind::Backward) --live;
  }
  return most;
}

double bubble_fraction_ideal(int64_t stages, int64_t micro_batches, int64_t chunks) {
  PRORES_CHECK(stages >= 1 && micro_batches >= 1 && chunks >= 1, "bubble fraction: stages ", stages,
               ", micro-batches ", micro_batches, " and chunks ", chunks, " must be at least 1");
  return static_cast<double>(stages - 1) / static_cast<double>(chunks * micro_batches + stages - 1);
}

}  // namespace prores
