"""How well the hourly anomaly flag (analytics/expected.py) finds an undercounting day, by traffic level.

Synthetic stores, open Monday-Saturday 10-19 (the last hour at a quarter rate, as when nobody enters
in its last 45 minutes), Poisson visitors, 5 weeks; on the last week's Tuesday the camera counts only
a share of the visitors (binomial thinning). For each traffic level and share, over ``--seeds``
stores: the mean number of that day's 9 open hours flagged -1, the share of stores with at least 7,
and the flags in the week's 45 other open hours (false flags). The figures quoted in docs/analytics.md.

    .venv/bin/python bench/expected_power.py [--seeds 60]
"""

from __future__ import annotations

import argparse

import numpy as np

from footfall.analytics.expected import History, anomaly, expect

WEEKS = 5
BROKEN = 7 * (WEEKS - 1) + 1  # the last week's Tuesday
OTHER_DAYS = [BROKEN - 1, BROKEN + 1, BROKEN + 2, BROKEN + 3, BROKEN + 4]  # Mon, Wed-Sat


def one_store(rate: float, share: float, seed: int) -> tuple[int, int]:
    rng = np.random.default_rng(seed)
    n = 7 * WEEKS
    weekday = np.arange(n) % 7
    rates = np.zeros((n, 24))
    rates[np.ix_(weekday < 6, range(10, 18))] = rate
    rates[weekday < 6, 18] = rate / 4
    visitors = rng.poisson(rates).astype(float)
    visitors[BROKEN] = rng.binomial(visitors[BROKEN].astype(int), share)
    history = History(visitors, np.ones((n, 24), bool), np.zeros(n, np.int64), weekday, (weekday == 6) * 1)
    days = np.arange(7 * (WEEKS - 1), n)
    exp = expect(history, days, days)
    flags = anomaly(visitors[days], exp.low, exp.high)[:, 10:19]
    hits = int(np.sum(flags[BROKEN - days[0]] == -1))
    false = int(np.sum(flags[[d - days[0] for d in OTHER_DAYS]] != 0))
    return hits, false


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=60)
    args = parser.parse_args()
    print(
        "| visitors an hour | share counted | hours flagged (of 9), mean | stores with >= 7 "
        "| false flags (of 45), mean | stores with <= 3 |"
    )
    print("|---|---|---|---|---|---|")
    for rate in (6.0, 9.0, 12.0):
        for share in (0.0, 0.05, 0.1, 0.2):
            runs = np.array([one_store(rate, share, seed) for seed in range(args.seeds)])
            hits, false = runs[:, 0], runs[:, 1]
            print(
                f"| {rate:g} | {share:.0%} | {hits.mean():.2f} | {np.mean(hits >= 7):.0%} | "
                f"{false.mean():.2f} | {np.mean(false <= 3):.0%} |"
            )


if __name__ == "__main__":
    main()
