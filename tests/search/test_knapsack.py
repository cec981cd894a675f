import itertools
import random

import pytest

from leanconv.search import choose, pareto_front


def brute_force(options, budget):
    """The least summed loss over every plan within the budget, or None."""
    best = None
    for plan in itertools.product(*options):
        cost, loss = sum(c for c, _ in plan), sum(v for _, v in plan)
        if cost <= budget + 1e-12 and (best is None or loss < best):
            best = loss
    return best


def random_options(rng, layers, candidates, integer):
    def cost():
        return float(rng.randint(0, 20)) if integer else rng.uniform(0.0, 5.0)
    return [[(cost(), rng.uniform(0.0, 1.0)) for _ in range(rng.randint(1, candidates))]
            for _ in range(layers)]


@pytest.mark.parametrize("seed", range(40))
def test_choose_matches_brute_force(seed):
    rng = random.Random(seed)
    integer = seed % 2 == 0
    options = random_options(rng, rng.randint(1, 5), 4, integer)
    budget = float(rng.randint(1, 60)) if integer else rng.uniform(0.5, 15.0)
    optimum = brute_force(options, budget)
    selection = choose(options, budget, bins=int(budget) if integer else 1000)
    if optimum is None:
        assert selection is None
        return
    assert selection.cost <= budget + 1e-9  # feasible in the real costs
    chosen = [layer[j] for layer, j in zip(options, selection.indices, strict=True)]
    assert selection.loss == pytest.approx(sum(v for _, v in chosen))
    assert selection.lower_bound <= optimum + 1e-9 <= selection.loss + 2e-9
    if integer:  # integer costs on a unit grid: no rounding, the DP is exact
        assert selection.loss == pytest.approx(optimum)


def test_pareto_front_is_the_brute_force_front():
    rng = random.Random(7)
    options = random_options(rng, 4, 3, integer=True)
    front = pareto_front(options, bins=int(sum(max(c for c, _ in layer) for layer in options)))
    assert [s.cost for s in front] == sorted(s.cost for s in front)
    assert all(a.loss > b.loss for a, b in itertools.pairwise(front))
    for selection in front:  # each is the best plan at its own cost
        assert selection.loss == pytest.approx(brute_force(options, selection.cost))
    assert front[-1].loss == pytest.approx(sum(min(v for _, v in layer) for layer in options))


@pytest.mark.parametrize("args,message", [
    (([], 1.0), "options must be a non-empty list"),
    (([[]], 1.0), r"options\[0\]=\[\] must be a non-empty list"),
    (([[(-1.0, 0.0)]], 1.0), r"options\[0\] holds \(-1.0, 0.0\)"),
    (([[(1.0, float("nan"))]], 1.0), "finite loss"),
    (([[(1.0, 0.0)]], 0.0), "budget=0.0 is invalid"),
])
def test_bad_arguments(args, message):
    with pytest.raises(ValueError, match=message):
        choose(*args)


def test_an_unreachable_budget_is_none_and_a_tight_one_is_the_cheapest_plan():
    options = [[(1.0, 0.0), (0.3, 1.0)], [(1.0, 0.0), (0.3, 2.0)]]
    assert choose(options, 0.5) is None
    tight = choose(options, 0.6, bins=7)  # 0.3 is not a multiple of 0.6 / 7: rounding fails
    assert tight.indices == (1, 1) and tight.cost == pytest.approx(0.6)
