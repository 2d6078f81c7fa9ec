"""Public-opinion benchmark (issue 14): accuracy on the held-out weeks, and posts/s on one core.

Run: ``python bench/bench_opinion.py`` (``--posts 100000``).  Writes ``bench/results/opinion.md``.

1. **Accuracy**: the default generated feed (30,000 posts over the sample year), everything
   learnt on posts before :data:`geodata.opinion.HELD_OUT_FROM`, measured after it, beside
   the baselines (community full names verbatim; the catalogue's category names verbatim;
   topics by near-duplicates and threads only), with the confusion where it fails.
2. **Throughput**: parse + geoparse + category (keyword rules) + grouping
   (:func:`analytics.opinion.pipeline.understand`) over ``--posts`` posts in a child
   process pinned to one CPU; wall time, posts/s and the child's peak RSS over its RSS
   with the posts loaded.  Two feeds of the same posts: spread over a year, and squeezed
   into one day (a busy city's day: every topic open at once, the grouping's worst case).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import pickle
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402

from analytics.opinion.category import CategoryModel, catalogue_name_baseline  # noqa: E402
from analytics.opinion.evaluate import pairwise_f1, score  # noqa: E402
from analytics.opinion.gazetteer import build_gazetteer, exact_name_baseline  # noqa: E402
from analytics.opinion.pipeline import understand  # noqa: E402
from analytics.opinion.topics import group_topics  # noqa: E402
from geodata.opinion import HELD_OUT_FROM, generate_posts, held_out  # noqa: E402
from geodata.sample import DEFAULT_SEED, generate  # noqa: E402


def _label(v):
    return v if isinstance(v, str) else None


def _md(df: pd.DataFrame) -> str:
    cols = [str(c) for c in df.columns]
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    out += ["| " + " | ".join(str(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(out)


def _acc(a, b) -> float:
    return sum(x == y for x, y in zip(a, b, strict=True)) / len(a)


def accuracy(frames) -> list[str]:
    feed = generate_posts(frames, seed=DEFAULT_SEED)
    mask = held_out(feed)
    train, test = feed[~mask], feed[mask].reset_index(drop=True)
    gaz = build_gazetteer(frames)
    res = understand(test, gaz)
    base = exact_name_baseline(frames)
    s = score(res, [base(t) for t in res["text"]])
    truth = [_label(v) for v in test["true_category"]]
    model = CategoryModel().fit(list(train["text"]), [_label(v) for v in train["true_category"]])
    model_acc = _acc(model.predict(list(test["text"])), truth)
    base_cat = _acc([catalogue_name_baseline(t) for t in test["text"]], truth)
    parents = [
        a if isinstance(a, str) else b if isinstance(b, str) else None
        for a, b in zip(res["reply_to"], res["repost_of"], strict=True)
    ]
    dup_only = group_topics(
        list(res["text"]),
        list(res["posted_at"]),
        [None] * len(res),
        list(res["category"]),
        ids=list(res["post_id"]),
        parents=parents,
    )
    base_f1 = pairwise_f1(list(res["true_topic"]), dup_only)
    methods = res.loc[res["place_id"].notna(), "place_method"].value_counts()
    names = dict(zip(frames["communities"]["code"], frames["communities"]["name"], strict=True))
    pc = s["place_confusion"]
    wrong = res[
        res["community_code"].notna()
        & res["true_community"].notna()
        & (res["community_code"] != res["true_community"])
    ]
    wc = pd.DataFrame(
        {
            "text": wrong["text"],
            "truth": wrong["true_community"],
            "predicted": wrong["community_code"],
            "how": wrong["place_method"],
        }
    )
    for df in (pc, wc):
        for col in ("truth", "predicted"):
            df[col] = [f"{names[v]} ({v})" if v in names else v for v in df[col]]
    lines = [
        "## Accuracy on the held-out weeks",
        "",
        f"Feed: `generate_posts(generate(), seed={DEFAULT_SEED})`, {len(feed):,} posts over the "
        f"sample year; trained/tuned on the {len(train):,} posts before {HELD_OUT_FROM}, "
        f"measured on the {len(test):,} after ({int(test['true_actionable'].sum()):,} "
        f"actionable, {s['posts_naming_a_community']:,} naming a community, "
        f"{test['true_topic'].ge(0).groupby(test['true_topic']).any().sum() - 1:,} topics).",
        "",
        "| measure | target | ours | baseline | baseline is |",
        "|---|---:|---:|---:|---|",
        f"| place -> right community (posts naming one) | >= 90 % | "
        f"{s['place_accuracy']:.1%} | {s['baseline_place_accuracy']:.1%} | "
        "longest community/village full name verbatim |",
        f"| wrong place (same posts) | <= 3 % | {s['wrong_place_rate']:.2%} | "
        f"{s['baseline_wrong_place_rate']:.2%} | same |",
        f"| unknown place (same posts) | | {s['place_unknown_rate']:.1%} | "
        f"{1 - s['baseline_place_accuracy'] - s['baseline_wrong_place_rate']:.1%} | same |",
        f"| category, keyword rules (all posts) | >= 85 % | {s['category_accuracy']:.1%} | "
        f"{base_cat:.1%} | catalogue name (路灯不亮, ...) verbatim, else not actionable |",
        f"| category, char 1-3-gram linear SVM trained on the training part | >= 85 % | "
        f"{model_acc:.1%} | {base_cat:.1%} | same |",
        f"| topic pairwise F1 (all posts) | >= 0.90 | {s['topic_f1']:.3f} | {base_f1:.3f} | "
        "near-duplicates and reply/repost threads only |",
        "",
        f"Places found by: {', '.join(f'{k} {v:,}' for k, v in methods.items())}; "
        f"{s['placed_without_a_name']:,} posts whose text names no community got one (GPS, "
        "or a river inside one community).",
        "",
        "Where the place fails (truth community, predicted; — = unknown):",
        "",
        _md(s["place_confusion"]),
        "",
        f"The {len(wc)} posts placed in a wrong community:",
        "",
        _md(wc),
        "",
        "Where the category fails (truth, predicted; — = not actionable):",
        "",
        _md(s["category_confusion"]),
        "",
    ]
    return lines


def _hwm_kb() -> float:
    """Peak resident memory of this process (kB): VmHWM, which exec resets (ru_maxrss keeps
    the parent's peak across the spawn's exec)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1])
    except OSError:
        pass
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _child(path: str, gaz_path: str, out: mp.Queue) -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    with open(gaz_path, "rb") as f:
        gaz = pickle.load(f)
    posts = pd.read_pickle(path)
    rss0 = _hwm_kb()
    t0 = time.perf_counter()
    res = understand(posts, gaz)
    dt = time.perf_counter() - t0
    rss1 = _hwm_kb()
    out.put(
        {
            "seconds": dt,
            "rss0_mb": rss0 / 1024,
            "rss1_mb": rss1 / 1024,
            "topics": int(res["topic_id"].nunique()),
            "placed": float(res["place_id"].notna().mean()),
        }
    )


def throughput(frames, n: int, tmp: str) -> list[str]:
    posts = generate_posts(frames, seed=DEFAULT_SEED, n_posts=n)
    posts = posts.drop(columns=[c for c in posts.columns if c.startswith("true_")])
    t0 = posts["posted_at"].min()
    span = posts["posted_at"].max() - t0
    day = posts.copy()
    day["posted_at"] = t0 + (posts["posted_at"] - t0) * (pd.Timedelta(hours=24) / span)
    rows = []
    ctx = mp.get_context("spawn")
    gaz_path = os.path.join(tmp, "gazetteer.pkl")
    with open(gaz_path, "wb") as f:
        pickle.dump(build_gazetteer(frames), f)
    for name, feed in (("a year", posts), ("one day", day)):
        path = os.path.join(tmp, f"posts_{name.replace(' ', '_')}.pkl")
        feed.to_pickle(path)
        q: mp.Queue = ctx.Queue()
        p = ctx.Process(target=_child, args=(path, gaz_path, q))
        p.start()
        r = q.get()
        p.join()
        rows.append(
            f"| {n:,} over {name} | {r['seconds']:.1f} | {n / r['seconds']:,.0f} | "
            f"{r['rss1_mb'] - r['rss0_mb']:,.0f} | {r['rss1_mb']:,.0f} | {r['topics']:,} |"
        )
        print(rows[-1], flush=True)
    return [
        "## Throughput, one core",
        "",
        "parse + geoparse + category (keyword rules) + grouping: "
        "`understand(posts, build_gazetteer(frames))`, one process pinned to one CPU.",
        "",
        "| posts | seconds | posts/s | peak RSS added (MB) | peak RSS (MB) | topics |",
        "|---|---:|---:|---:|---:|---:|",
        *rows,
        "",
        "Target: a busy city's day, 100k posts, in under a minute.  *peak RSS added*: the "
        "child's peak resident memory over its peak with the gazetteer (unpickled) "
        "and the posts loaded; *peak RSS*: the whole child (Python, pandas, numpy, "
        "scikit-learn's import not included: the rules need none).",
        "",
    ]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posts", type=int, default=100_000)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "opinion.md"))
    args = ap.parse_args(argv)
    frames = generate(seed=DEFAULT_SEED)
    head = [
        "# Public-opinion benchmark",
        "",
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs (shared). "
        f"Command: `python bench/bench_opinion.py --posts {args.posts}`.",
        "",
    ]
    acc = accuracy(frames)
    print("\n".join(acc), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        thr = throughput(frames, args.posts, tmp)
    Path(args.out).write_text("\n".join(head + thr + acc), encoding="utf-8")
    print("wrote", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
