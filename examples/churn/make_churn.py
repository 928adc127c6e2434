"""Write a synthetic telecom churn CSV with the well-known column set (the churn data of SageMaker's
XGBoost examples): state, account length, area code, phone, international and voice mail plans,
day/eve/night/intl minutes, calls and charges, customer service calls, churn.

    python examples/churn/make_churn.py out/churn.csv --rows 5000 [--seed 0]

Churn depends on customer service calls, day minutes and the international plan, so a model has
something to learn. About 1% of eve_mins and night_calls are missing (empty fields), to be imputed.
"""

import argparse
import os

import numpy as np
import pandas as pd

STATES = ("AK AL AR AZ CA CO CT DC DE FL GA HI IA ID IL IN KS KY LA MA MD ME MI MN MO MS MT NC ND NE NH NJ NM NV "
          "NY OH OK OR PA RI SC SD TN TX UT VA VT WA WI WV WY").split()
AREA_CODES = (408, 415, 510)
CHUNK = 500_000


def churn_frame(first: int, rows: int, rng: np.random.Generator) -> pd.DataFrame:
    """rows customers numbered from `first` (their phone numbers are unique)."""
    day, eve, night, intl = (rng.normal(mu, sd, rows).clip(0) for mu, sd in ((180, 54), (200, 50), (200, 50), (10, 2.8)))
    calls = {name: rng.poisson(100, rows) for name in ("day", "eve", "night")}
    intl_calls = rng.poisson(4.5, rows)
    service = rng.poisson(1.6, rows)
    intl_plan = rng.random(rows) < 0.1
    vmail_plan = rng.random(rows) < 0.28
    score = -4.2 + 0.85 * service + 0.012 * (day - 180) + 1.6 * intl_plan - 0.6 * vmail_plan
    churn = rng.random(rows) < 1 / (1 + np.exp(-score))
    numbers = np.arange(first, first + rows)
    frame = pd.DataFrame({
        "state": np.array(STATES)[rng.integers(0, len(STATES), rows)],
        "account_length": rng.integers(1, 244, rows),
        "area_code": np.array(AREA_CODES)[rng.integers(0, 3, rows)],
        "phone": [f"{n // 10000 % 1000:03d}-{n % 10000:04d}-{n // 10_000_000}" for n in numbers],
        "intl_plan": np.where(intl_plan, "yes", "no"),
        "vmail_plan": np.where(vmail_plan, "yes", "no"),
        "vmail_message": np.where(vmail_plan, rng.poisson(29, rows), 0),
        "day_mins": day.round(1), "day_calls": calls["day"], "day_charge": (day * 0.17).round(2),
        "eve_mins": eve.round(1), "eve_calls": calls["eve"], "eve_charge": (eve * 0.085).round(2),
        "night_mins": night.round(1), "night_calls": calls["night"].astype(float), "night_charge": (night * 0.045).round(2),
        "intl_mins": intl.round(1), "intl_calls": intl_calls, "intl_charge": (intl * 0.27).round(2),
        "custserv_calls": service,
        "churn": np.where(churn, "True", "False"),
    })
    for column in ("eve_mins", "night_calls"):
        frame.loc[rng.random(rows) < 0.01, column] = np.nan
    return frame


def write_churn(path: str, rows: int, seed: int = 0) -> str:
    """Write the CSV in chunks (5M rows stay within a little memory); returns path."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    rng = np.random.default_rng(seed)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        for first in range(0, rows, CHUNK):
            churn_frame(first, min(CHUNK, rows - first), rng).to_csv(handle, index=False, header=first == 0)
    return path


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path")
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(write_churn(args.path, args.rows, args.seed))
