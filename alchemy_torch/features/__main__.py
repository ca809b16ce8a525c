"""Print a kind's feature table: ``python -m alchemy_torch.features flows [option=value ...]``."""

from __future__ import annotations

import argparse
import ast

import pandas as pd

from alchemy_torch.features import describe
from alchemy_torch.io.schema import KINDS


def _value(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kind", choices=sorted(KINDS))
    parser.add_argument("options", nargs="*", help="extractor options as name=value")
    args = parser.parse_args(argv)
    options = dict(o.split("=", 1) for o in args.options)
    table = describe(args.kind, **{k: _value(v) for k, v in options.items()})
    with pd.option_context(
        "display.max_rows", None, "display.max_colwidth", 80, "display.width", 200
    ):
        print(table.to_string(index=False))
    print(f"\n{len(table)} features; behaviours: {table['behaviour'].value_counts().to_dict()}")


if __name__ == "__main__":
    main()
