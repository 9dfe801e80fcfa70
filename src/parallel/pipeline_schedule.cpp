// 1F1B pipeline schedule as data, its validation (counts, order, matching transfers, a rendezvous
// simulation that detects deadlock) and its unit-time bubble measurement.
#include "parallel/pipeline_schedule.h"

#include <algorithm>
#include <array>

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

// The stage a transfer talks to: forwards go to s + 1, backwards to s − 1.
int64_t peer_stage(int64_t stage, Kind kind) {
  return (kind == Kind::SendForward || kind == Kind::RecvBackward) ? stage + 1 : stage - 1;
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

// How many times stage `stage` of `stages` must run each kind for every micro-batch (0 or 1).
std::array<int, kNumKinds> expected_counts(int64_t stage, int64_t stages) {
  const int has_prev = stage > 0 ? 1 : 0, has_next = stage < stages - 1 ? 1 : 0;
  std::array<int, kNumKinds> e{};
  e[Kind::RecvForward] = has_prev;
  e[Kind::Forward] = 1;
  e[Kind::SendForward] = has_next;
  e[Kind::RecvBackward] = has_next;
  e[Kind::Backward] = 1;
  e[Kind::SendBackward] = has_prev;
  return e;
}

// Checks one stage's list: micro-batch range, each action the expected number of times, and the order
// receive → compute → send within each direction, forward before backward.
void validate_stage(const std::vector<PipelineAction>& actions, int64_t stage, int64_t stages, int64_t micro_batches) {
  const auto m_count = static_cast<size_t>(micro_batches);
  std::vector<std::array<int, kNumKinds>> count(m_count, std::array<int, kNumKinds>{});
  std::vector<std::array<size_t, kNumKinds>> position(m_count, std::array<size_t, kNumKinds>{});
  for (size_t i = 0; i < actions.size(); ++i) {
    const PipelineAction& a = actions[i];
    PRORES_CHECK(a.kind >= 0 && a.kind < kNumKinds, "stage ", stage, " action ", i, " has an unknown kind ",
                 static_cast<int>(a.kind));
    PRORES_CHECK(a.micro_batch >= 0 && a.micro_batch < micro_batches, "stage ", stage, " action ", i, " ",
                 to_string(a), " names a micro-batch outside 0..", micro_batches - 1);
    const auto m = static_cast<size_t>(a.micro_batch);
    ++count[m][a.kind];
    position[m][a.kind] = i;
  }
  const auto expected = expected_counts(stage, stages);
  for (size_t m = 0; m < m_count; ++m) {
    for (int k = 0; k < kNumKinds; ++k) {
      const PipelineAction a{static_cast<Kind>(k), static_cast<int64_t>(m)};
      if (is_compute(a.kind) || expected[k] == count[m][k]) continue;
      const int64_t peer = peer_stage(stage, a.kind);
      PRORES_CHECK(expected[k] != 0, "stage ", stage, " runs ", to_string(a), " but has no stage ", peer,
                   " to exchange it with");
      PRORES_CHECK(count[m][k] != 0, "stage ", stage, " has no ", to_string(a), " matching stage ", peer, "'s ",
                   to_string({counterpart(a.kind), a.micro_batch}));
    }
    for (int k = 0; k < kNumKinds; ++k) {
      PRORES_CHECK(count[m][k] == expected[k], "stage ", stage, " runs ",
                   to_string({static_cast<Kind>(k), static_cast<int64_t>(m)}), " ", count[m][k],
                   " times (expected ", expected[k], ")");
    }
    const auto& pos = position[m];
    const auto check_before = [&](Kind first, Kind second) {
      if (expected[first] == 0 || expected[second] == 0) return;
      PRORES_CHECK(pos[first] < pos[second], "stage ", stage, " runs ",
                   to_string({second, static_cast<int64_t>(m)}), " before ",
                   to_string({first, static_cast<int64_t>(m)}));
    };
    check_before(Kind::RecvForward, Kind::Forward);
    check_before(Kind::Forward, Kind::SendForward);
    check_before(Kind::Forward, Kind::Backward);
    check_before(Kind::RecvBackward, Kind::Backward);
    check_before(Kind::Backward, Kind::SendBackward);
  }
}

}  // namespace

std::string to_string(const PipelineAction& action) {
  return detail::concat(kind_name(action.kind), "(", action.micro_batch, ")");
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

PipelineSimulation simulate_schedule(const PipelineSchedule& schedule, double forward_time, double backward_time) {
  const auto stages = static_cast<int64_t>(schedule.size());
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
    const int64_t peer = peer_stage(s, a.kind);
    PRORES_CHECK(peer >= 0 && peer < stages, "stage ", s, " runs ", to_string(a), " but there is no stage ", peer);
    const PipelineAction wanted{counterpart(a.kind), a.micro_batch};
    if (done(peer) || !(head(peer) == wanted)) return false;
    const auto pi = static_cast<size_t>(peer);
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

void validate_schedule(const PipelineSchedule& schedule, int64_t stages, int64_t micro_batches) {
  PRORES_CHECK(stages >= 1, "pipeline schedule: stages must be at least 1, got ", stages);
  PRORES_CHECK(micro_batches >= 1, "pipeline schedule: micro-batches must be at least 1, got ", micro_batches);
  PRORES_CHECK(static_cast<int64_t>(schedule.size()) == stages, "pipeline schedule has ", schedule.size(),
               " stage lists for ", stages, " stages");
  for (int64_t s = 0; s < stages; ++s) validate_stage(schedule[static_cast<size_t>(s)], s, stages, micro_batches);
  simulate_schedule(schedule);
}

int64_t max_in_flight(const std::vector<PipelineAction>& stage_actions) {
  int64_t live = 0, most = 0;
  for (const PipelineAction& a : stage_actions) {
    if (a.kind == Kind::Forward) most = std::max(most, ++live);
    if (a.kind == Kind::Backward) --live;
  }
  return most;
}

double bubble_fraction_ideal(int64_t stages, int64_t micro_batches) {
  PRORES_CHECK(stages >= 1 && micro_batches >= 1, "bubble fraction: stages ", stages, " and micro-batches ",
               micro_batches, " must be at least 1");
  return static_cast<double>(stages - 1) / static_cast<double>(micro_batches + stages - 1);
}

}  // namespace prores
