"""A first run (``make demo``): synthetic bags, Alchemy draws, features, and a short summary."""

from __future__ import annotations

import argparse

import torch

from alchemy_torch import Bags, Resampler, datasets, features, resolve_device


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kind", default="flows", choices=list(features.EXTRACTORS))
    parser.add_argument("--targets", type=int, default=300)
    parser.add_argument("--option", type=int, default=4)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)

    records, labels = datasets.synthetic(args.kind, n_targets=args.targets, seed=args.seed)
    bags = Bags.from_records(args.kind, records, labels).to(resolve_device(args.device))
    print(bags)
    resampler = Resampler(args.option, iterations=args.iterations)
    draws = resampler.draw(bags, seed=args.seed)
    print(f"{resampler} -> {len(draws)} pseudo-bags, {draws.rows.numel():,} records")
    extractor = features.make(args.kind).fit(bags)
    originals, pseudo = extractor(bags), extractor(bags, draws)
    print(
        f"{type(extractor).__name__}: {originals.shape[1]} features; "
        f"originals {tuple(originals.shape)}, "
        f"pseudo {tuple(pseudo.shape)}"
    )
    sizes = draws.lengths.to(torch.float64)
    for label, name in ((1, "malicious"), (0, "benign")):
        mine = bags.labels[draws.owner] == label
        print(
            f"  {name:9s}: {int((bags.labels == label).sum()):4d} targets of "
            f"{bags.lengths[bags.labels == label].double().mean():7.1f} records on average -> "
            f"{int(mine.sum()):5d} pseudo-bags of {sizes[mine].mean():7.1f}"
        )


if __name__ == "__main__":
    main()
