"""Sentences for a page's teaching apparatus: its key-takeaways box and its exercises' worked solutions.

Each function turns numbers of a run into one sentence (or a Markdown list of them) that a page glues with
`tad.book.glue.glue_text`; the words follow the numbers (above or below chance, higher, lower or within noise),
so the text stays true whatever data and parameters the build ran on. Numbers are written as
`tad.book.format.format_value` and `tad.book.format.ci_text` write them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from tad.book.format import ci_text, format_value
from tad.scorecard import OUTCOMES, claim
from tad.stats import VERDICTS
from tad.book.words import listing

__all__ = ["CHANCE", "takeaways", "takeaway_items", "chance_phrase", "auroc_sentence", "extremes_sentence",
           "tally_sentence", "paper_sentence", "resolution_sentence", "comparison_sentence", "gap_sentence",
           "restate_list", "promise_sentence", "claim_sentence"]

CHANCE = 0.5  # the AUROC of a random ranking


def takeaways(sentences: Sequence[str]) -> str:
    """A Markdown bullet list, one sentence per item, for a page's key-takeaways box.

    Paste it with the block form of glue (```` ```{glue:md} name ```` with ``:format: myst``), which renders
    a list; the inline role would run the items together.

    Raises
    ------
    ValueError
        No sentence, more than four, an empty one, or one that spans lines (it would break the list).
    """
    items = [s.strip() for s in sentences]
    if not 1 <= len(items) <= 4:
        raise ValueError(f"a takeaways box holds 1 to 4 sentences; got {len(items)}")
    bad = [s for s in items if not s or "\n" in s]
    if bad:
        raise ValueError(f"each takeaway must be one non-empty line; got {bad!r}")
    return "\n".join(f"- {s if s.endswith(('.', '!', '?')) else s + '.'}" for s in items)


def takeaway_items(text: str) -> list[str]:
    """The sentences of a list made by `takeaways` (e.g. as another page glued it), in order; ``[]`` for ""."""
    items = [line[2:] for line in text.splitlines() if line.startswith("- ")]
    if text.strip() and not items:
        raise ValueError(f"not a takeaways list: {text[:60]!r}")
    return items


def chance_phrase(low: float, high: float) -> str:
    """Where an AUROC interval ``[low, high]`` lies against chance (0.5): "above chance", "below chance" or
    "not distinguishable from chance" (the interval holds 0.5)."""
    if low > high:
        raise ValueError(f"interval ({low}, {high}) must be ordered low <= high")
    if low > CHANCE:
        return "above chance"
    if high < CHANCE:
        return "below chance"
    return "not distinguishable from chance"


def auroc_sentence(what: str, auroc: float, low: float, high: float) -> str:
    """``"<what> reaches an AUROC of 0.934 [0.90, 0.96], above chance."`` (the words from `chance_phrase`)."""
    return f"{what} reaches an AUROC of {ci_text(auroc, low, high)}, {chance_phrase(low, high)}."


def extremes_sentence(values: Mapping[str, float], *, what: str, kind: str = "auroc") -> str:
    """Which label has the highest and which the lowest value: ``"Mean AUROC is highest at layer 7 (0.934)
    and lowest at layer 1 (0.650)."``

    ``values`` maps a label (as the page names it) to its number; NaNs are left out. With one label the
    sentence names it alone.
    """
    clean = {k: float(v) for k, v in values.items() if v == v}
    if not clean:
        raise ValueError(f"no number to compare for {what!r}")
    hi, lo = max(clean, key=clean.get), min(clean, key=clean.get)
    if hi == lo or clean[hi] == clean[lo]:
        return f"{what[:1].upper()}{what[1:]} is {format_value(clean[hi], kind)} for {hi}."
    return (f"{what[:1].upper()}{what[1:]} is highest for {hi} ({format_value(clean[hi], kind)}) and lowest for "
            f"{lo} ({format_value(clean[lo], kind)}), a spread of "
            f"{format_value(clean[hi] - clean[lo], 'auroc' if kind == 'diff' else kind)}.")


def tally_sentence(verdicts: Sequence[str], *, what: str, higher: str = "higher", lower: str = "lower") -> str:
    """How a family of comparisons came out: ``"Of 12 comparisons (augmented against clean), 1 is lower beyond
    noise, none higher, and 11 are within noise."``

    ``verdicts`` are `tad.stats.VERDICTS` words, one per comparison; ``higher`` / ``lower`` name what each
    word means on the page (e.g. "favour the baseline").
    """
    unknown = sorted(set(verdicts) - set(VERDICTS))
    if unknown:
        raise ValueError(f"verdicts {unknown} not in {VERDICTS}")
    if not verdicts:
        return f"There is no comparison ({what}) in this run."
    n = len(verdicts)
    counts = {v: sum(1 for x in verdicts if x == v) for v in VERDICTS}
    if counts["within noise"] == n:
        if n == 1:
            return f"The one comparison ({what}) is within noise: it is not resolved by these test sets."
        return f"All {_count(n, 'comparison')} ({what}) are within noise: none is resolved by these test sets."
    parts = [f"{counts['higher'] or 'none'} {higher}", f"{counts['lower'] or 'none'} {lower}"]
    noise = counts["within noise"]
    return (f"Of {_count(n, 'comparison')} ({what}), {parts[0]} beyond noise, {parts[1]}, and "
            f"{noise or 'none'} within noise.")


def paper_sentence(what: str, ours: float, paper: float, *, ours_ci: tuple[float, float] | None = None) -> str:
    """This run's figure beside the paper's: ``"<what>: the paper reports 0.970, this run 0.934 (−0.036)."``

    With ``ours_ci`` it also says whether the paper's figure lies inside this run's interval.
    """
    text = (f"{what[:1].upper()}{what[1:]}: the paper reports {format_value(paper, 'auroc')}, this run "
            f"{format_value(ours, 'auroc')} ({format_value(ours - paper, 'diff')})")
    if ours_ci is not None:
        low, high = ours_ci
        inside = low <= paper <= high
        text += (f"; the paper's figure lies {'inside' if inside else 'outside'} this run's interval "
                 f"[{low:.2f}, {high:.2f}]")
    return text + "."


def resolution_sentence(half_widths: Sequence[float], intervals: str = "95 % intervals") -> str:
    """How fine a difference the run's intervals resolve: ``"The half-widths of the 95 % intervals have median 0.040
    (largest 0.120), so differences smaller than about 0.040 are within noise here."``

    ``intervals`` names the intervals the half-widths belong to (e.g. "simultaneous intervals of the
    differences").
    """
    values = sorted(float(h) for h in half_widths if h == h)
    if not values:
        raise ValueError("no interval half-width given")
    n = len(values)
    median = values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2
    return (f"The half-widths of the {intervals} have median {format_value(median, 'auroc')} (largest "
            f"{format_value(values[-1], 'auroc')}), so differences smaller than about "
            f"{format_value(median, 'auroc')} are within noise here.")


def comparison_sentence(a: str, b: str, diff: float, low: float, high: float, verdict: str) -> str:
    """One paired comparison in words: ``"<a> scores higher than <b>: +0.052 [0.01, 0.09]."`` or
    ``"<a> and <b> are within noise of each other: +0.010 [−0.03, 0.05] holds 0."``

    ``verdict`` is the page's `tad.stats` verdict for ``a - b`` (it may rest on a p-value as
    well as the interval).
    """
    if verdict not in VERDICTS:
        raise ValueError(f"verdict {verdict!r} not in {VERDICTS}")
    interval = f"{format_value(diff, 'diff')} [{low:.2f}, {high:.2f}]".replace("-", "−")
    if verdict == "within noise":
        return f"{a} and {b} are within noise of each other: the difference is {interval}."
    return f"{a} scores {verdict} than {b}: the difference is {interval}."


def promise_sentence(target: float, promised: float, false_alarms: int, n_good: int, low: float,
                     high: float) -> str:
    """A calibration's promise against the false-alarm rate realised on good test images: ``"At a target of
    1 %, the calibration promises 0.95 %; 2 false alarms on 80 good test images, 2.5 % [0.3 %, 8.7 %], an
    interval that holds the promise."`` (else "lies above" or "lies below the promise").

    ``low`` and ``high`` are the realised rate's 95 % interval (e.g. `tad.calibrate.clopper_pearson`).
    """
    if not 0 <= false_alarms <= n_good or n_good < 1:
        raise ValueError(f"false_alarms must lie in [0, n_good] with n_good >= 1; got {false_alarms}, {n_good}")
    if low > high:
        raise ValueError(f"interval ({low}, {high}) must be ordered low <= high")
    where = ("holds the promise" if low <= promised <= high else
             "lies above the promise" if low > promised else "lies below the promise")
    rate = f"{100 * false_alarms / n_good:.1f} % [{100 * low:.1f} %, {100 * high:.1f} %]"
    return (f"At a target of {format_value(target, 'percent')}, the calibration promises a false-alarm rate of "
            f"{100 * promised:.2f} %; {_count(false_alarms, 'false alarm')} on {n_good} good test images, "
            f"{rate}, an interval that {where}.")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def gap_sentence(what: str, gap: float, half_width: float) -> str:
    """Whether a gap between two AUROCs stands out of one trial's noise: ``"<what> is +0.300, larger than the
    typical half-width 0.040 of one trial's 95 % interval, so it is resolved."`` (or "smaller ..., so it is
    not resolved by these test sets").

    A rough yardstick, not a test: a paired test of the two (`tad.stats.compare`) resolves finer
    differences, since shared images cancel.
    """
    if not half_width >= 0:
        raise ValueError(f"half_width must be >= 0; got {half_width!r}")
    resolved = abs(gap) > half_width
    return (f"{what[:1].upper()}{what[1:]} is {format_value(gap, 'diff')}, "
            f"{'larger' if resolved else 'smaller'} than the typical half-width {format_value(half_width, 'auroc')} "
            f"of one trial's 95 % interval, so it is {'resolved' if resolved else 'not resolved by these test sets'}.")


def restate_list(items: Sequence[tuple[str, str, str]], glued: Mapping[str, Mapping[str, str]]) -> str:
    """A Markdown list restating other pages' glued values, one item per ``(page, lead, template)``.

    Each item is ``lead`` then ``template`` filled by `tad.book.glue.restate` from ``glued`` (as
    `tad.book.glue.read_glued` returns it per page). An item that cannot be said whole (its page did not run in
    this build, or computed none of a referenced value) is left out, never shown with a placeholder.
    """
    from tad.book.glue import restate

    lines = []
    for page, lead, template in items:
        text = restate(template, glued)
        if text is not None:
            lines.append(f"- {lead} {text}")
    return "\n".join(lines)


def claim_sentence(rows: pd.DataFrame, *, a: str, b: str) -> str:
    """One claim of the paper as a page tested it, per data set, against the paper: a page's honest headline.

    ``"Layer 7 against layer 1, paired on the same test images (99.5 % intervals): bottle +0.283 [0.170, 0.390],
    higher; screw −0.020 [−0.110, 0.070], within noise. Against the paper (deep layers ...; +0.331, table 3 ...):
    replicated on bottle; contradicted on screw."``

    ``rows`` are one claim's `tad.scorecard.claim_row` rows (as `tad.scorecard.read_claims` reads them back),
    one per data set; ``a`` and ``b`` name its two configurations as the page does. The verdict is the paired
    comparison's (`tad.stats.compare`), the last part the scorecard's outcome (`tad.scorecard.outcome`).
    """
    names = sorted(set(rows["claim"])) if len(rows) else []
    if len(names) != 1:
        raise ValueError(f"rows must hold one claim's rows; got claims {names}")
    c = claim(names[0])
    levels = sorted(set(rows["level"]))
    level = "/".join(format_value(v, "percent") for v in levels)
    per = "; ".join(f"{r.dataset} {_diff_interval(r.effect, r.ci_low, r.ci_high)}, {r.verdict}"
                    for r in rows.itertuples())
    paper = format_value(c.paper_effect, "diff") if c.paper_effect == c.paper_effect else "no figure"
    found = "; ".join(f"{word} on {listing(rows.dataset[rows.outcome == word])}" for word in OUTCOMES
                      if (rows.outcome == word).any())
    return (f"{a[:1].upper()}{a[1:]} against {b}, paired on the same test images ({level} intervals): {per}. "
            f"Against the paper ({c.says}; {paper}, {c.source}): {found}.")


def _diff_interval(diff: float, low: float, high: float) -> str:
    return f"{format_value(diff, 'diff')} [{low:.3f}, {high:.3f}]".replace("-", "−")
