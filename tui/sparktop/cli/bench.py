"""`sparktop bench` (API and llama-bench figures, kept in SQLite) and `sparktop results`."""

from __future__ import annotations

import argparse
import json
import sys
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sparktop.config import Config


def add_parsers(sub: argparse._SubParsersAction) -> None:
    bench = sub.add_parser("bench", help="benchmark a served model (prefill/decode tok/s, TTFT)")
    bench.add_argument("target", metavar="NAME|URL", nargs="?")
    bench.add_argument("--prompt", type=int, default=512, help="prompt tokens (default 512)")
    bench.add_argument("--gen", type=int, default=128, help="generated tokens (default 128)")
    bench.add_argument("--reps", type=int, default=3, help="repetitions (default 3)")
    bench.add_argument(
        "--llama-bench",
        action="store_true",
        help="also run llama-bench on the model file (local llama.cpp only)",
    )
    bench.add_argument(
        "--depths",
        action="store_true",
        help="also sweep context depth 0, 4K, 16K, 32K … up to the served context",
    )
    bench.add_argument(
        "--concurrency",
        action="store_true",
        help="also run 1, 2, 4, 8 streams at once (aggregate tok/s)",
    )
    bench.add_argument(
        "--quality",
        action="store_true",
        help="also ask a few prompts per mode and judge the answers' coherence",
    )
    bench.add_argument(
        "--queue",
        nargs="+",
        metavar="NAME",
        help="benchmark these catalog models in turn, serving each (exclusive "
        "switch, no questions asked): for unattended overnight runs",
    )
    bench.add_argument("--json", action="store_true", help="machine-readable JSON")
    bench.add_argument("--no-save", action="store_true", help="do not keep the result")
    results = sub.add_parser("results", help="kept benchmark results: history, compare, export")
    results.add_argument("--model", help="only this model")
    results.add_argument("--compare", nargs=2, type=int, metavar=("A", "B"))
    results.add_argument("--export", choices=["markdown", "csv", "json"])
    results.add_argument("--champions", action="store_true", help="the champion run per mode")
    results.add_argument(
        "--promote",
        type=int,
        metavar="RUN",
        help="make RUN the champion of --mode (if it passes the mode's rule)",
    )
    results.add_argument("--mode", help="mode for --promote (see config bench.modes)")
    results.add_argument("--force", action="store_true", help="promote even if the rule fails")


def _err(message: str) -> int:
    print(f"sparktop: error: {message}", file=sys.stderr)
    return 1


def cmd_bench(config: Config, args: argparse.Namespace) -> int:
    if args.queue:
        return cmd_bench_queue(config, args)
    if not args.target:
        return _err("give a served model NAME or URL (or --queue NAME ...)")
    _doc, code = bench_one(config, args, args.target)
    return code


def cmd_bench_queue(config: Config, args: argparse.Namespace) -> int:
    """Serve each model through the exclusive switch, benchmark it, then print a summary."""
    from sparktop.control import Control
    from sparktop.servers.supervisor import ServeError

    summary = []
    for name in args.queue:
        with Control.from_config(config) as control:
            try:
                entry = control.resolve_entry(name)
                plan = control.supervisor.plan(entry, control.poll(), control.catalog.entries)
                if plan.already_running is None:
                    if not args.json:
                        print(f"== serving {name} ({plan.fit.summary()})", flush=True)
                    control.supervisor.serve(plan, force=False)
            except ServeError as exc:
                summary.append({"model": name, "error": str(exc)})
                print(f"sparktop: error: {name}: {exc}", file=sys.stderr)
                continue
        if not args.json:
            print(f"== benchmarking {name}", flush=True)
        doc, code = bench_one(config, args, entry.serve.served_name, quiet=True)
        if code != 0 or doc is None:
            summary.append({"model": name, "error": "benchmark failed"})
            continue
        api = doc["api"]["summary"]
        summary.append({
            "model": name,
            "run_id": doc.get("run_id"),
            "prefill_tps": api["prefill_tps"]["median"],
            "decode_tps": api["decode_tps"]["median"],
            "ttft_s": api["ttft_s"]["median"],
            "coherent": all(q["ok"] for q in doc.get("quality", [])) if "quality" in doc else None,
        })  # fmt: skip
    if args.json:
        json.dump({"queue": summary}, sys.stdout, indent=2)
        print()
    else:
        print("== summary")
        for row in summary:
            if "error" in row:
                print(f"  {row['model']:<28} FAILED: {row['error']}")
                continue
            coherent = {None: "", True: "  coherent", False: "  INCOHERENT"}[row["coherent"]]
            speeds = f"pp {row['prefill_tps']:8.1f}  tg {row['decode_tps']:7.1f} t/s"
            ttft = f"TTFT {row['ttft_s'] * 1000:5.0f} ms"
            print(f"  {row['model']:<28} {speeds}  {ttft}  run {row['run_id']}{coherent}")
    return 0 if all("error" not in row for row in summary) else 1


def bench_one(config: Config, args: argparse.Namespace, target: str,
              quiet: bool = False) -> tuple[dict | None, int]:  # fmt: skip
    from sparktop.bench.api import BenchCancelled, BenchError, run_api_bench
    from sparktop.bench.store import ResultStore
    from sparktop.control import Control
    from sparktop.servers.supervisor import ServeError

    engine, entry, model_file = None, None, None
    if target.startswith(("http://", "https://")):
        base = target.rstrip("/").removesuffix("/v1")
        from sparktop.servers.http import get

        models = get(base + "/v1/models", timeout=10).json() or {}
        ids = [m.get("id") for m in models.get("data") or [] if isinstance(m, dict)]
        if not ids:
            return None, _err(f"{base} lists no model at /v1/models")
        name = ids[0]
    else:
        with Control.from_config(config) as control:
            try:
                server = control.resolve_server(target, control.poll())
            except ServeError as exc:
                return None, _err(str(exc))
            if server.url is None or server.health != "ready":
                return None, _err(f"{server.name} is not ready ({server.health})")
            base, name, engine = server.url, server.name, server.engine
            entry = control.catalog.get(server.catalog_name or "")
            if entry is not None:
                from sparktop.catalog.files import model_path

                model_file = model_path(entry)
    cancel = threading.Event()

    def progress(step: str, result) -> None:
        if not args.json and not quiet:
            done = len(result.samples)
            print(f"  {step} ({done} done)", flush=True)

    try:
        result = run_api_bench(base, name, prompt_tokens=args.prompt, gen_tokens=args.gen,
                               repetitions=args.reps, progress=progress, cancel=cancel)  # fmt: skip
    except KeyboardInterrupt:
        cancel.set()
        return None, 130
    except (BenchError, BenchCancelled) as exc:
        return None, _err(str(exc) or "cancelled")
    summary = result.summary()
    doc: dict = {"model": name, "url": base, "api": result.to_json()}
    if args.depths or args.concurrency:
        from sparktop.bench.api import concurrency_sweep, depth_sweep

        try:
            if args.depths:
                sweep = depth_sweep(base, name, prompt_tokens=args.prompt, gen_tokens=args.gen,
                                    progress=progress, cancel=cancel)  # fmt: skip
                doc["depth_sweep"] = [
                    {"depth": d, **r.summary()} for d, r in sweep
                ]  # fmt: skip
            if args.concurrency:
                doc["concurrency"] = concurrency_sweep(base, name, cancel=cancel)
        except KeyboardInterrupt:
            cancel.set()
            return None, 130
        except (BenchError, BenchCancelled) as exc:
            return None, _err(str(exc) or "cancelled")
    rows = []
    if args.llama_bench:
        from sparktop.bench.llama_bench import run_llama_bench

        if model_file is None or not model_file.is_file():
            return None, _err("--llama-bench needs a catalog model whose GGUF is on this machine")
        try:
            rows = run_llama_bench(model_file, prompt=args.prompt, gen=args.gen,
                                   repetitions=args.reps)  # fmt: skip
        except RuntimeError as exc:
            return None, _err(str(exc))
        doc["llama_bench"] = [row.__dict__ for row in rows]
    if args.quality:
        from sparktop.bench.quality import quality_smoke

        doc["quality"] = quality_smoke(base, name, tuple(config.bench_modes))
    if not args.no_save:
        store = ResultStore()
        flags = " ".join(entry.serve.args) if entry else None
        doc["run_id"] = store.add_api(
            result,
            engine=engine,
            quant=entry.quant if entry else None,
            serve_flags=flags,
            detail=doc,
        )
    if args.json and not quiet:
        json.dump(doc, sys.stdout, indent=2)
        print()
        return doc, 0
    if quiet:
        return doc, 0

    def fmt(stat: dict, unit: str) -> str:
        if stat["median"] is None:
            return "–"
        return f"{stat['median']:.1f} ± {stat['stdev']:.1f} {unit}"

    exact = "exact (tokenized)" if result.exact_prompt else "approximate (~4 chars/token)"
    print(f"{name} at {base}: prompt {result.prompt_tokens} tokens {exact}, "
          f"{result.gen_tokens} generated, {len(result.samples)} repetitions")  # fmt: skip
    print(f"  TTFT          {summary['ttft_s']['median'] * 1000:.0f} ms")
    print(f"  prefill       {fmt(summary['prefill_tps'], 't/s')}   "
          f"(server: {fmt(summary['server_prefill_tps'], 't/s')})")  # fmt: skip
    print(f"  decode        {fmt(summary['decode_tps'], 't/s')}   "
          f"(server: {fmt(summary['server_decode_tps'], 't/s')})")  # fmt: skip
    for row in rows:
        print(f"  llama-bench {row.test:>12}  {row.avg_ts:.1f} ± {row.stddev_ts:.1f} t/s")
    for item in doc.get("depth_sweep", []):
        print(f"  depth {item['depth']:>6}: prefill {fmt(item['prefill_tps'], 't/s')}, "
              f"decode {fmt(item['decode_tps'], 't/s')}")  # fmt: skip
    for item in doc.get("concurrency", []):
        print(f"  {item['streams']} streams: {item['aggregate_decode_tps']:.1f} t/s aggregate "
              f"({item['completed']} completed)")  # fmt: skip
    if "run_id" in doc:
        print(f"  kept as run {doc['run_id']} (sparktop results)")
    for item in doc.get("quality", []):
        mark = "ok " if item["ok"] else "BAD"
        answer = item["answer"].strip().replace("\n", " ")[:70]
        problems = f" ({'; '.join(item['problems'])})" if not item["ok"] else ""
        print(f"  quality {item['mode']:<9} {mark} {answer}{problems}")
    return doc, 0


def cmd_results(config: Config, args: argparse.Namespace) -> int:
    from sparktop.bench.store import ResultStore

    store = ResultStore()
    if store.problem:
        print(f"sparktop: warning: {store.problem}", file=sys.stderr)
    if args.promote is not None:
        if args.mode not in config.bench_modes:
            return _err(f"--mode must be one of {', '.join(config.bench_modes)}")
        try:
            reason = store.promote(args.mode, args.promote, config.champion_rule(args.mode),
                                   force=args.force)  # fmt: skip
        except (KeyError, ValueError) as exc:
            return _err(str(exc.args[0]))
        print(f"run {args.promote} is the {args.mode} champion ({reason})")
        return 0
    if args.champions:
        champions = store.champions()
        for mode in config.bench_modes:
            run = champions.get(mode)
            if run is None:
                print(f"{mode:<10} –")
                continue
            print(f"{mode:<10} run {run['id']}: {run['model']}  pp {run['prefill_tps'] or 0:.1f}"
                  f"  tg {run['decode_tps'] or 0:.1f} t/s  ({run['reason']})")  # fmt: skip
        return 0
    if args.compare:
        try:
            json.dump(store.compare(*args.compare), sys.stdout, indent=2)
        except KeyError as exc:
            return _err(str(exc.args[0]))
        print()
        return 0
    if args.export:
        sys.stdout.write(store.export(args.export, args.model))
        return 0
    for row in store.history(args.model):
        pp = f"{row['prefill_tps']:.1f}" if row["prefill_tps"] else "–"
        tg = f"{row['decode_tps']:.1f}" if row["decode_tps"] else "–"
        print(f"{row['id']:>5}  {row['model']:<28} {row['kind']:<11} pp {pp:>8}  tg {tg:>7}")
    return 0
