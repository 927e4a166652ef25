"""Count fuzzer mismatches by category, class and backend, without asserting anything.

    TRITON_INTERPRET=1 python tests/fuzz_census.py --calls 300 --backends reference triton

Prints a table of categories per backend and one example of each (category, backend, detail
prefix); `--json PATH` writes every non-'same' verdict. Allowlisted differences are counted apart.
"""

import argparse
import collections
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))

from fuzz_allowlist import allowed  # noqa: E402
from fuzz_calls import CELL_KINDS, LAYER_KINDS, calls, describe  # noqa: E402
from fuzz_worker import Worker  # noqa: E402
from hypothesis import HealthCheck, given, seed, settings  # noqa: E402


def census(kinds, backends, count, worker, rng_seed):
    """[(call, verdict)] of `count` calls per kind and backend."""
    results = []
    for backend in backends:
        for kind in kinds:
            @seed(rng_seed)
            @settings(max_examples=count, derandomize=False, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            @given(call=calls(kind, backend))
            def collect(call):
                results.append((call, worker.run(call)))
            collect()
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200, help="calls per class and backend")
    parser.add_argument("--backends", nargs="+", default=["reference"])
    parser.add_argument("--kinds", nargs="+", default=list(LAYER_KINDS + CELL_KINDS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    with Worker() as worker:
        results = census(args.kinds, args.backends, args.calls, worker, args.seed)
    counts = collections.Counter()
    examples = {}
    for call, verdict in results:
        reason = allowed(call, verdict) if verdict.category != "same" else None
        category = f"allowed:{reason}" if reason else verdict.category
        key = (call["backend"], category)
        counts[key] += 1
        if category != "same":
            examples.setdefault((call["backend"], category, verdict.detail[:60]),
                                (call, verdict))
    total = collections.Counter(call["backend"] for call, _ in results)
    print(f"{len(results)} calls in {time.perf_counter() - start:.0f} s")
    for backend in args.backends:
        print(f"\n{backend}: {total[backend]} calls")
        for (name, category), n in sorted(counts.items()):
            if name == backend:
                print(f"  {category:40s} {n:5d}  {100 * n / total[backend]:5.1f}%")
    print("\nexamples:")
    for (backend, category, _), (call, verdict) in sorted(examples.items()):
        if category.startswith("allowed"):
            continue
        print(f"- [{backend} {category}] {describe(call)}\n    {verdict.detail}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump([{"call": call, "category": verdict.category, "detail": verdict.detail,
                        "torch_error": verdict.torch_error, "our_error": verdict.our_error}
                       for call, verdict in results if verdict.category != "same"], handle,
                      indent=1, default=str)


if __name__ == "__main__":
    main()
