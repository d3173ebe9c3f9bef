"""Write the packaged sample splitkit/server/sample_data/contacts.csv: 3,000 contacts.

Realistic contacts, some invalid, deterministic.

    .venv/bin/python scripts/make_contacts_csv.py [--rows 3000] [--seed 2024]

Rows come from the same generator the server seeds synthetic sheets with, so the CSV and a
generated sheet share one layout: about 2% lack a last name, 1% an e-mail, 2% have a
malformed e-mail.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from splitkit.server.samples import COLUMNS, generate_rows

SAMPLE_DATA = Path(__file__).resolve().parents[1] / "splitkit" / "server" / "sample_data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3_000)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--out", type=Path, default=SAMPLE_DATA / "contacts.csv")
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(generate_rows(args.rows, args.seed))
    print(f"wrote {args.rows} contacts to {args.out}")


if __name__ == "__main__":
    main()
