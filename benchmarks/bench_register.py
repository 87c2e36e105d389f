"""Benchmark ``reg.register`` of a small scikit-learn model (lineage capture included)
against MLflow's ``log_model(..., registered_model_name=...)`` inside ``start_run()``.

    .venv/bin/python benchmarks/bench_register.py [--smoke] [--repeat N] [--profile]

Both sides write to one SQLite registry in a temp dir, in this one process, alternating
sides on each round after one untimed warm-up call of each (MLflow's first ``log_model``
pays about 1 s of lazy imports). Target: ratio <= 0.1.
"""

from __future__ import annotations

from collections.abc import Sequence

import _common as c

TARGET = 0.1


def main(argv: Sequence[str] | None = None) -> list[c.Row]:
    p = c.parser(__doc__, default_repeat=5)
    p.add_argument("--profile", action="store_true", help="cProfile one reg.register call")
    args = p.parse_args(argv)
    repeat = c.repeats(args, 5)
    c.quiet_mlflow()
    with c.workdir("register") as root:
        import mlflow
        import mlflow.sklearn

        from jupyreg import Registry

        uri = c.sqlite_uri(root)
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        mlflow.set_experiment("anchor")
        model = c.small_model()
        reg = Registry(uri, user="bench")

        def ours() -> None:
            reg.register(model, "bench-jupyreg", metrics={"val": {"auc": 0.9}})

        def anchor() -> None:
            with mlflow.start_run():
                mlflow.sklearn.log_model(model, name="model", registered_model_name="bench-anchor")

        warmup = 0 if args.smoke else 1
        stats = c.alternate({"jupyreg": ours, "anchor": anchor}, repeat, warmup=warmup)
        if args.profile:
            c.profile(ours)
    measure = "register small sklearn model (SQLite)"
    rows = [c.Row(measure, stats["jupyreg"], stats["anchor"], TARGET)]
    c.print_table(
        "register: reg.register vs mlflow.sklearn.log_model(registered_model_name=...)",
        rows,
        f"same process, sides alternating, {warmup} warm-up call(s) each, {repeat} repetition(s);"
        " one SQLite registry in a temp dir",
        "start_run + mlflow.sklearn.log_model(..., registered_model_name=...)",
    )
    return rows


if __name__ == "__main__":
    main()
