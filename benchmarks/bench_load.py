"""Benchmark ``reg.load(name, stage="Production")`` against
``mlflow.pyfunc.load_model("models:/NAME/Production")``.

    .venv/bin/python benchmarks/bench_load.py [--smoke] [--repeat N] [--profile]

One small scikit-learn model is registered with jupyreg in a temp SQLite registry and
promoted to Production through request + approve; then both sides load that same version
in this one process, alternating sides on each round after one untimed warm-up call of
each. Then ``--versions`` (default 200) plain-MLflow versions are added to the model and
both sides are measured again (the Production version is unchanged). Target: ratio <= 1.1.
"""

from __future__ import annotations

from collections.abc import Sequence

import _common as c

TARGET = 1.1
NAME = "bench-load"


def main(argv: Sequence[str] | None = None) -> list[c.Row]:
    p = c.parser(__doc__, default_repeat=15)
    p.add_argument("--profile", action="store_true", help="cProfile one reg.load call")
    p.add_argument("--versions", type=int, default=0, help="versions added (default 200)")
    args = p.parse_args(argv)
    repeat = c.repeats(args, 15)
    extra = args.versions or (5 if args.smoke else 200)
    c.quiet_mlflow()
    with c.workdir("load") as root:
        import mlflow
        import mlflow.pyfunc

        from jupyreg import Registry

        uri = c.sqlite_uri(root)
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        alice, bob = Registry(uri, user="alice"), Registry(uri, user="bob")
        version = alice.register(c.small_model(), NAME).version
        alice.transition(NAME, version, "Staging", reason="bench")
        bob.approve(alice.request(NAME, version, "Production", reason="bench").id)

        def ours() -> None:
            alice.load(NAME, stage="Production")

        def anchor() -> None:
            mlflow.pyfunc.load_model(f"models:/{NAME}/Production")

        sides = {"jupyreg": ours, "anchor": anchor}
        one = c.alternate(sides, repeat, warmup=1)
        c.create_versions(uri, NAME, extra, c.log_one_model(uri))
        many = c.alternate(sides, repeat, warmup=1)
        if args.profile:
            c.profile(ours)
    measure = 'reg.load(stage="Production") (SQLite'
    rows = [
        c.Row(f"{measure}, 1 version)", one["jupyreg"], one["anchor"], TARGET),
        c.Row(f"{measure}, {1 + extra} versions)", many["jupyreg"], many["anchor"], TARGET),
    ]
    c.print_table(
        "load: reg.load vs mlflow.pyfunc.load_model(models:/NAME/Production)",
        rows,
        f"same process, sides alternating, 1 warm-up call each, {repeat} repetition(s);"
        " one SQLite registry in a temp dir, the same version on both sides",
        "mlflow.pyfunc.load_model('models:/NAME/Production')",
    )
    return rows


if __name__ == "__main__":
    main()
