"""report.html: one self-contained page from a run report and its visuals, pure Python.

No request leaves the page: CSS is inline, images are data: URIs, charts are inline SVG
written here (a few rectangles need no plotting library on the driver), and a
Content-Security-Policy forbids anything else. Every value from the data is escaped.
"""

from __future__ import annotations

import html
import json
from typing import Dict, List, Optional, Sequence, Tuple

PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
           "#bab0ac")
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
STYLE = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:18px 28px}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;color:#c9cfdb;font-size:13px}main{padding:8px 28px 40px;max-width:1280px}
section{background:#fff;border:1px solid #e2e5ea;border-radius:8px;padding:14px 18px;margin:16px 0}
h2{font-size:16px;margin:0 0 10px}h3{font-size:14px;margin:12px 0 6px}
table{border-collapse:collapse;font-size:13px}td,th{padding:3px 10px;border-bottom:1px solid #eef0f3;text-align:right}
th{background:#f2f4f7}td:first-child,th:first-child{text-align:left}
.bar{display:inline-block;height:9px;background:#4e79a7;vertical-align:middle;margin-left:6px;border-radius:2px}
.tiles{display:flex;flex-wrap:wrap;gap:14px}.tile{display:flex;flex-direction:column;gap:4px;font-size:12px}
.cell{display:flex;gap:4px;align-items:flex-end}.cell img,.pair img,.q img{max-width:96px;max-height:96px;
border:1px solid #ddd;background:#fafafa}.kpis{display:flex;flex-wrap:wrap;gap:12px}
.kpi{border:1px solid #e2e5ea;border-radius:6px;padding:8px 14px;min-width:130px}
.kpi b{display:block;font-size:20px}.bad b{color:#c62828}.good b{color:#2e7d32}
.pair{display:flex;gap:10px;align-items:center;margin:6px 0;font-size:12px}.pair .d{font-weight:bold;width:70px}
.q{display:flex;gap:10px;align-items:center;margin:4px 0;font-size:12px}.noimg{width:96px;height:40px;
border:1px dashed #ccc;color:#999;display:flex;align-items:center;justify-content:center}
code,.path{font-family:ui-monospace,Menlo,monospace;font-size:12px;word-break:break-all}
.legend span{display:inline-block;margin-right:12px;font-size:12px}.legend i{display:inline-block;width:10px;
height:10px;margin-right:4px;vertical-align:middle}details pre{font-size:12px;white-space:pre-wrap}
.charts{display:flex;flex-wrap:wrap;gap:24px}
"""


def esc(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def render(report: dict, visuals: dict) -> str:
    """The whole page: summary, counts, balance, thumbnails, leakage, duplicates, quarantine, histograms."""
    title = f"sparkprep {report.get('job', 'report')}: {report.get('output', {}).get('uri', '')}"
    parts = [_kpis(report), _counts(report), _balance(report), _thumbnails(visuals.get("thumbs", []), visuals.get("caps", {})),
             _near(report, visuals.get("images", {})), _exact(report), _quarantine(report, visuals.get("quarantine", [])),
             _histograms(visuals.get("histograms", {})), _normalization(report), _features(report), _parameters(report)]
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta http-equiv='Content-Security-Policy' content=\"{CSP}\">"
            "<meta name='viewport' content='width=device-width,initial-scale=1'>"
            f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>"
            f"<header><h1>{esc(title)}</h1><p>{esc(_subtitle(report))}</p></header><main>"
            + "".join(p for p in parts if p) + "</main></body></html>")


def _subtitle(report: dict) -> str:
    versions = report.get("versions", {})
    return (f"input {report.get('input', {}).get('uri', '?')} · {report.get('rows', 0)} rows · "
            f"{report.get('seconds', 0):.1f} s · sparkprep {versions.get('sparkprep', '?')}, "
            f"Spark {versions.get('spark', '?')}")


def _kpis(report: dict) -> str:
    quarantined = sum(v["count"] for v in report.get("quarantine", {}).values())
    dup = report.get("duplicates") or {}
    near = report.get("near_duplicates")
    cells = [("rows", report.get("rows", 0), ""), ("quarantined", quarantined, "bad" if quarantined else "good")]
    if "duplicates" in report or "features" not in report:  # tabular features have no file duplicates
        cells += [("exact-duplicate groups", dup.get("groups", 0), ""),
                  ("exact groups across splits", dup.get("groups_in_several_splits", 0),
                   "bad" if dup.get("groups_in_several_splits") else "good")]
    if near:
        cells.append(("near pairs across splits (leakage)", near.get("pairs_across_splits", 0),
                      "bad" if near.get("pairs_across_splits") else "good"))
        cells.append(("near pairs within splits", near.get("pairs_within_splits", 0), ""))
    body = "".join(f"<div class='kpi {cls}'><b>{esc(value)}</b>{esc(name)}</div>" for name, value, cls in cells)
    return f"<section><h2>Summary</h2><div class='kpis'>{body}</div></section>"


def _counts(report: dict) -> str:
    counts = report.get("counts") or {}
    splits = list(counts)
    labels = sorted({label for per in counts.values() for label in per})
    if not splits:
        return ""
    top = max([counts[s].get(l, 0) for s in splits for l in labels] + [1])
    head = "<tr><th>label</th>" + "".join(f"<th>{esc(s)}</th>" for s in splits) + "<th>total</th></tr>"
    rows = []
    for label in labels:
        cells = [counts[s].get(label, 0) for s in splits]
        rows.append(f"<tr><td>{esc(label)}</td>" + "".join(
            f"<td>{c}<span class='bar' style='width:{round(60 * c / top)}px'></span></td>" for c in cells)
            + f"<td>{sum(cells)}</td></tr>")
    totals = [sum(counts[s].values()) for s in splits]
    rows.append("<tr><th>total</th>" + "".join(f"<th>{t}</th>" for t in totals) + f"<th>{sum(totals)}</th></tr>")
    return (f"<section><h2>Rows by split and label</h2><p>All statuses; quarantined rows are listed below.</p>"
            f"<table>{head}{''.join(rows)}</table></section>")


def _balance(report: dict) -> str:
    """One stacked horizontal bar per split: each label's share, in one shared colour per label."""
    counts = report.get("counts") or {}
    labels = sorted({label for per in counts.values() for label in per})
    if not counts or not labels:
        return ""
    colour = {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(labels)}
    width, bar, gap, left = 640, 22, 10, 90
    svg = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width + left + 10}' "
           f"height='{len(counts) * (bar + gap) + gap}' role='img' aria-label='class balance per split'>"]
    for row, (split, per) in enumerate(counts.items()):
        y, total, x = gap + row * (bar + gap), sum(per.values()) or 1, float(left)
        svg.append(f"<text x='0' y='{y + bar * 0.7}' font-size='12'>{esc(split)}</text>")
        for label in labels:
            share = per.get(label, 0) / total
            if share:
                w = share * width
                svg.append(f"<rect x='{x:.1f}' y='{y}' width='{w:.1f}' height='{bar}' fill='{colour[label]}'>"
                           f"<title>{esc(split)} / {esc(label)}: {per.get(label, 0)} ({share:.1%})</title></rect>")
                x += w
    svg.append("</svg>")
    legend = "".join(f"<span><i style='background:{colour[l]}'></i>{esc(l)}</span>" for l in labels[:len(PALETTE) * 3])
    return f"<section><h2>Class balance per split</h2>{''.join(svg)}<div class='legend'>{legend}</div></section>"


def _thumbnails(thumbs: List[dict], cap: dict) -> str:
    if not thumbs:
        return ""
    cells: Dict[Tuple[str, str], List[dict]] = {}
    for t in thumbs:
        cells.setdefault((t["split"], t["label"]), []).append(t)
    blocks = []
    for split in sorted({s for s, _ in cells}):
        tiles = []
        for (s, label), items in sorted(cells.items()):
            if s != split:
                continue
            imgs = "".join(f"<img src='{t['uri']}' alt='{esc(t['path'])}' title='{esc(t['path'])}'>"
                           for t in items if t.get("uri"))
            tiles.append(f"<div class='tile'><div class='cell'>{imgs}</div>{esc(label)}</div>")
        blocks.append(f"<h3>{esc(split)}</h3><div class='tiles'>{''.join(tiles)}</div>")
    return (f"<section><h2>Samples per split and label</h2><p>Up to {cap.get('per_cell', '?')} ok originals per "
            f"cell, chosen by the hash of their key (not the first rows); at most {cap.get('labels', '?')} labels."
            f"</p>{''.join(blocks)}</section>")


def _img(images: Dict[str, Optional[str]], path: str) -> str:
    uri = images.get(path)
    return f"<img src='{uri}' alt='{esc(path)}' title='{esc(path)}'>" if uri else "<div class='noimg'>no preview</div>"


def _near(report: dict, images: Dict[str, Optional[str]]) -> str:
    near = report.get("near_duplicates")
    if not near:
        return ("<section><h2>Near-duplicates (perceptual hash)</h2><p>Not audited: the table has no perceptual "
                "hashes (--phash off, or no images). <code>jobs/report.py</code> hashes the bytes and audits it.</p>"
                "</section>") if report.get("job") in ("split", "pipeline") else ""
    if not near.get("hashed_rows"):
        return "<section><h2>Near-duplicates (perceptual hash)</h2><p>No image had a hash: nothing was audited.</p></section>"
    rows = "".join(f"<tr><td>{esc(pair)}</td><td>{n}</td></tr>" for pair, n in near.get("pairs_by_split_pair", {}).items())
    pairs = "".join(
        f"<div class='pair'><span class='d'>{_pair_distance(p)}</span>{_img(images, p['a']['path'])}"
        f"{_img(images, p['b']['path'])}<span><span class='path'>{esc(p['a']['path'])}</span> ({esc(p['a']['split'])})"
        f"<br><span class='path'>{esc(p['b']['path'])}</span> ({esc(p['b']['split'])}){_crop_note(p)}</span></div>"
        for p in near.get("examples", []))
    clusters = near.get("clusters") or {}
    flat, capped = near.get("flat_hashes", {}), near.get("capped_band_keys", {})
    merge, angle = near.get("merge"), near.get("angle") or {}
    rule = (f"whose DCT directions are within <b>{angle.get('threshold_degrees')} degrees</b> (the 64-bit pHash "
            "cannot tell these images apart)" if angle.get("used") else
            f"whose 64-bit pHash ({esc(near.get('hash', 'phash-v1'))}) differs in at most <b>{near['threshold']}</b> bits")
    return ("<section><h2>Near-duplicates (perceptual hash)</h2>"
            f"<p>Pairs of rows {rule}, exact copies included. Search: {esc(near.get('layout'))}"
            f"{_layout_plan(near.get('layout_plan'), near.get('layout'))}. {near.get('hashed_rows', 0)} hashed rows, "
            f"{near.get('distinct_hashes', 0)} distinct hashes.</p>"
            + _calibration(near.get("calibration"), near.get("pairs_within_splits", 0) +
                           near.get("pairs_across_splits", 0)) + _second_hash(near.get("second_hash")) +
            _angle(angle) + _crops(near.get("crops")) +
            f"<table><tr><th>split pair</th><th>row pairs</th></tr>{rows}</table>"
            f"<p>Clusters (connected components): {clusters.get('count', 0)}, {clusters.get('rows', 0)} rows, "
            f"largest {clusters.get('largest', 0)}, {clusters.get('in_several_splits', 0)} spread over several "
            f"splits; sizes {esc(json.dumps(clusters.get('sizes', {}), sort_keys=True))}.</p>"
            f"<p>Not joined (reported instead): {flat.get('count', 0)} hashes shared by more than "
            f"{near.get('bucket_cap')} rows ({flat.get('rows', 0)} rows, flat or low-information images) and "
            f"{capped.get('count', 0)} band keys shared by more than {near.get('bucket_cap')} hashes.</p>"
            + (f"<p>--near-duplicates merge: {merge['clusters']} clusters keyed by their smallest key; "
               f"{merge['rows_moved']} rows moved against the plain hash split. Not merged: "
               f"{_not_merged(merge.get('not_merged'))} too large, "
               f"{_not_merged(merge.get('without_centre'))} without a member within "
               f"{merge.get('centre_links', 2)} links of every other (chains).</p>" if merge else "")
            + ("<h3>Pairs across splits (leakage), closest first</h3>" + pairs if pairs
               else "<p><b>No near-duplicate pair crosses splits.</b></p>")
            + "</section>")


def _not_merged(part: Optional[dict]) -> str:
    """'N clusters (R rows, e.g. a, b)' of a merge's not-merged listing."""
    if not part or not part.get("clusters"):
        return "0 clusters"
    first = (part.get("examples") or [{}])[0].get("examples") or []
    return (f"{part['clusters']} clusters ({part['rows']} rows" + (f", e.g. {esc(', '.join(first))}" if first else "")
            + ")")


def _layout_plan(plan: Optional[dict], layout: Optional[str]) -> str:
    """How the search's layout was chosen (sparkprep.audit.bands.planned_layout), after the layout itself."""
    if not plan:
        return ""
    said = (f", planned from {plan['sampled_hashes']:,} sampled hashes: "
            f"{plan['expected_candidate_pairs']:,.0f} candidate pairs expected")
    if plan["uniform_layout"] == layout:
        return said + " (the layout uniform hashes would get too)"
    return (said + f", against {plan['uniform_expected_candidate_pairs']:,.0f} for the layout uniform hashes would "
                   f"get ({esc(plan['uniform_layout'])})")


def _calibration(calibration: Optional[dict], found: int) -> str:
    """Why this threshold: the expected chance pairs per threshold, and the random pairs' distances."""
    if not calibration:
        return ""
    expected = "".join(f"<tr><td>{t}</td><td>{e:g}</td></tr>" for t, e in calibration["expected_chance_pairs"].items())
    return (f"<p>Threshold {esc(calibration['how'])}: {esc(calibration['reason'])}. Bound: "
            f"{esc(calibration['bound'])}; {found} row pairs found at this threshold.</p>"
            f"<table><tr><th>threshold (bits)</th><th>expected chance pairs</th></tr>{expected}</table>"
            + _bars(f"Distances of {calibration['sampled_pairs']:,} random pairs of {calibration['sampled_rows']:,} "
                    "sampled hashes (bits)", _binned(calibration["random_pair_distances"], 4)))


def _second_hash(second: Optional[dict]) -> str:
    """The 256-bit hash's calibration, when the 64-bit one could not tell the images apart."""
    if not second:
        return ""
    calibration = second["calibration"]
    expected = "".join(f"<tr><td>{t}</td><td>{e:g}</td></tr>" for t, e in calibration["expected_chance_pairs"].items()
                       if int(t) % 2 == 0)
    return (f"<h3>The second hash (phash256)</h3><p>The 64-bit hash cannot tell these images apart, so the audit "
            f"measured the 256-bit one: {esc(second['rule'])}. Its threshold: {esc(calibration['reason'])}.</p>"
            f"<table><tr><th>phash256 threshold (bits)</th><th>expected chance pairs</th></tr>{expected}</table>"
            + _bars(f"phash256 distances of {calibration['sampled_pairs']:,} random pairs (bits)",
                    _binned(calibration["random_pair_distances"], 16)))


def _pair_distance(pair: dict) -> str:
    """A listed pair's distance: bits of the 64-bit hash, and the angle when the rule is the angle."""
    if "angle" in pair:
        return f"{pair['angle']:.2f}&deg; ({pair['distance']} bits)"
    if pair.get("crop"):
        return f"crop, {pair['crop']['distance']} bits"
    return f"{pair['distance']} bits"


def _crop_note(pair: dict) -> str:
    """Which window of which image a crop pair matched (the whole pHash of the other is that close to it)."""
    crop = pair.get("crop")
    if not crop:
        return ""
    return (f"<br>the {esc(crop['window'])} window of the {'first' if crop['window_of'] == 'a' else 'second'}; the "
            f"whole images' pHashes are {pair['distance']} bits apart")


def _crops(crops: Optional[dict]) -> str:
    """The crop search (--near-signature crop-robust): its threshold and what it added, or why it did not run."""
    if not crops:
        return ""
    if not crops.get("searched"):
        return f"<p>Crop pairs (--near-signature crop-robust): not searched: {esc(crops.get('reason'))}.</p>"
    return (f"<p>Crop pairs (--near-signature crop-robust): the whole pHash of one image within <b>"
            f"{crops['threshold']}</b> bits of the pHash of one of 16 fixed windows of another (its corners at 0.95, "
            f"0.92 and 0.88 of each side, its sides at 0.8); {esc(crops['calibration']['reason'])}. Search: "
            f"{esc(crops.get('layout'))}. {crops['hash_pairs']} pairs of distinct hashes that the pHash search did "
            f"not find, included in every count below; {crops.get('crowded_keys', 0)} crowded window keys not "
            f"joined.</p>")


def _angle(angle: dict) -> str:
    """The angle's calibration and search, when the audit measured it (sparkprep.audit.rule)."""
    calibration = angle.get("calibration")
    if not calibration:
        return f"<p>The angle between DCT directions: {esc(angle['rule'])}.</p>" if angle else ""
    expected = "".join(f"<tr><td>{r}</td><td>{e:g}</td></tr>" for r, e in calibration["expected_chance_pairs"].items()
                       if float(r) % 1 == 0 or float(r) <= 3)
    search = angle.get("search") or {}
    compared = (f" The search compared {angle['compared_pairs']:,} pairs (planned: "
                f"{search['expected_candidate_pairs']:,}, on {search['axes']} principal axes)."
                if "compared_pairs" in angle and search else "")
    return (f"<h3>The angle between DCT directions</h3><p>{esc(angle['rule'])}. Its threshold: "
            f"{esc(calibration['reason'])}; {calibration['copies_set_aside']} sampled pairs were set aside as "
            f"copies first.{compared}</p>"
            f"<table><tr><th>angle (degrees)</th><th>expected chance pairs</th></tr>{expected}</table>"
            + _bars(f"Angles of the random pairs of {calibration['sampled_rows']:,} sampled rows (degrees)",
                    _binned(calibration.get("random_pair_angles") or {}, 5)))


def _binned(counts: Dict[str, int], width: int) -> List[Tuple[str, int]]:
    """Distance counts in bins of `width` bits, from 0 to the largest distance seen."""
    bins: Dict[int, int] = {}
    for distance, n in counts.items():
        bins[int(distance) // width] = bins.get(int(distance) // width, 0) + n
    return [(f"{b * width}-{b * width + width - 1}", bins.get(b, 0)) for b in range(max(bins) + 1)] if bins else []


def _exact(report: dict) -> str:
    dup = report.get("duplicates")
    if not dup or not dup.get("groups"):
        return ""
    items = "".join(f"<li><code>{esc(e['sha256'][:16])}</code>: " + ", ".join(
        f"<span class='path'>{esc(p)}</span>" for p in e["paths"]) + "</li>" for e in dup.get("examples", []))
    return (f"<section><h2>Exact duplicates</h2><p>{dup['groups']} groups of identical files, {dup['extra_copies']} "
            f"extra copies; {dup['conflicting_label_groups']} groups with conflicting labels, "
            f"{dup['groups_in_several_splits']} spread over several splits.</p><ul>{items}</ul></section>")


def _quarantine(report: dict, listed: List[dict]) -> str:
    quarantine = report.get("quarantine") or {}
    if not quarantine:
        return "<section><h2>Quarantine</h2><p>Nothing was quarantined.</p></section>"
    counts = "".join(f"<tr><td>{esc(reason)}</td><td>{info['count']}</td></tr>" for reason, info in quarantine.items())
    rows = "".join(
        f"<div class='q'>{_img({r['path']: r.get('uri')}, r['path'])}<span><b>{esc(r['status'])}</b> "
        f"<span class='path'>{esc(r['path'])}</span><br>{esc(r['error'])}</span></div>" for r in listed)
    return (f"<section><h2>Quarantine</h2><table><tr><th>reason</th><th>rows</th></tr>{counts}</table>"
            f"<h3>Examples (up to {len(listed)})</h3>{rows}</section>")


def _bars(title: str, bins: Sequence[Sequence]) -> str:
    """A vertical bar chart of (bin label, count)."""
    if not bins:
        return ""
    top = max(c for _, c in bins) or 1
    width, height, step = 36, 120, 42
    svg = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{len(bins) * step + 10}' height='{height + 40}' "
           f"role='img' aria-label='{esc(title)}'>"]
    for i, (label, count) in enumerate(bins):
        h = round(height * count / top)
        x = 5 + i * step
        svg.append(f"<rect x='{x}' y='{height - h + 14}' width='{width}' height='{h}' fill='#4e79a7'>"
                   f"<title>{esc(label)}: {count}</title></rect>"
                   f"<text x='{x + width / 2}' y='{height - h + 10}' font-size='10' text-anchor='middle'>{count}</text>"
                   f"<text x='{x + width / 2}' y='{height + 28}' font-size='10' text-anchor='middle'>{esc(label)}</text>")
    svg.append("</svg>")
    return f"<div><h3>{esc(title)}</h3>{''.join(svg)}</div>"


def _histograms(histograms: Dict[str, List]) -> str:
    charts = "".join(_bars(name, bins) for name, bins in histograms.items() if bins)
    return f"<section><h2>Sizes of the ok images</h2><div class='charts'>{charts}</div></section>" if charts else ""


def _normalization(report: dict) -> str:
    norm = report.get("normalization")
    if not norm:
        return ""
    rows = "".join(f"<tr><td>{esc(ch)} channels</td><td>{esc(n['split'])}</td><td>{n['images']}</td>"
                   f"<td>{esc(n['mean'])}</td><td>{esc(n['std'])}</td></tr>" for ch, n in sorted(norm.items()))
    return ("<section><h2>Normalization (what transforms.Normalize wants)</h2><table><tr><th>images</th><th>split</th>"
            f"<th>count</th><th>mean</th><th>std</th></tr>{rows}</table></section>")


def _features(report: dict) -> str:
    """jobs/features.py: what the fit split taught the pipeline, and the categories other splits brought."""
    features = report.get("features")
    if not features:
        return ""
    fitted = features.get("fitted", {})
    scaled = fitted.get("standard") or fitted.get("minmax") or {}
    numeric = sorted(set(fitted.get("impute", {})) | set(scaled))
    head = "<tr><th>numeric column</th><th>imputed with</th><th>scaler</th></tr>"
    rows = "".join(f"<tr><td>{esc(c)}</td><td>{esc(fitted.get('impute', {}).get(c, '-'))}</td>"
                   f"<td>{esc(', '.join(f'{k} {v:.4g}' for k, v in scaled.get(c, {}).items()) or '-')}</td></tr>"
                   for c in numeric)
    unknown = features.get("unknown_categories", {})
    columns = sorted(fitted.get("categories", {}))
    cats = "".join(f"<tr><td>{esc(c)}</td><td>{fitted['categories'][c]}</td>"
                   + "".join(f"<td>{unknown.get(s, {}).get(c, 0)}</td>" for s in unknown) + "</tr>" for c in columns)
    cat_head = "<tr><th>categorical column</th><th>categories</th>" + "".join(
        f"<th>unknown in {esc(s)}</th>" for s in unknown) + "</tr>"
    return (f"<section><h2>Features ({features['count']}), fitted on split {esc(features['fit_split'])} only</h2>"
            f"<table>{head}{rows}</table>" + (f"<h3>One-hot columns</h3><table>{cat_head}{cats}</table>" if columns else "")
            + f"<details><summary>feature names in vector order</summary><pre>{esc(chr(10).join(features['names']))}"
            "</pre></details></section>")


def _parameters(report: dict) -> str:
    split = report.get("split")
    shown = {k: report.get(k) for k in ("split", "config", "versions", "reconciliation") if report.get(k) is not None}
    line = (f"<p>{esc(split['split_algo'])}, seed {esc(split['seed'])!s}, ratios {esc(split['ratios'])}, key-by "
            f"{esc(split['key_by'])}, stratify {esc(split['stratify'])}</p>") if split else ""
    return (f"<section><h2>Parameters and versions</h2>{line}<details><summary>the run's config, split parameters, "
            f"reconciliation and versions</summary><pre>{esc(json.dumps(shown, indent=2, default=str))}</pre>"
            "</details></section>")
