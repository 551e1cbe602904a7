"""What a hidden unit keeps track of: simple features of a text, and the unit whose
activation follows each one most closely.

A recurrent model is never told that quotes open and close or that lines have
indentation; if one of its units follows such a thing, it found it useful for predicting
the next character. We look for that the plain way: read a stretch of held-out text,
and correlate every unit's activation, token by token, with each feature below. A unit is
named only when the correlation is strong; otherwise we say that none is.

Every feature is the value *after* reading a token (what the model could know by then).
"""

from __future__ import annotations

import numpy as np

FEATURES = {  # name -> what it means, for the label
    "quotes": "inside double quotes",
    "brackets": "inside brackets ( [ {",
    "column": "position in the line",
    "indent": "indentation of the line",
}
TRACK_THRESHOLD = 0.5  # |correlation| from which a unit is said to track a feature


def text_features(pieces: list[str]) -> dict[str, np.ndarray]:
    """Each feature of :data:`FEATURES` after every token (``pieces`` are the tokens' text,
    characters or words), as float arrays (T,)."""
    out = {name: np.zeros(len(pieces)) for name in FEATURES}
    quoted, depth, column, indent, leading = False, 0, 0, 0, True
    for t, piece in enumerate(pieces):
        for ch in piece:
            if ch == "\n":
                column, indent, leading = 0, 0, True
                continue
            column += 1
            if leading and ch == " ":
                indent += 1  # still in the line's leading spaces
            else:
                leading = False
            if ch == '"':
                quoted = not quoted
            elif ch in "([{":
                depth += 1
            elif ch in ")]}":
                depth = max(0, depth - 1)
        out["quotes"][t] = quoted
        out["brackets"][t] = depth > 0
        out["column"][t] = column
        out["indent"][t] = indent
    return out


def correlations(acts: np.ndarray, features: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Pearson correlation of every unit (columns of ``acts``, (T, units)) with every
    feature: r = mean(za * zf), with z the values standardised over the T tokens. A unit or
    a feature that never changes correlates 0 with everything."""
    a = acts - acts.mean(0)
    a_sd = a.std(0)
    a = np.divide(a, a_sd, out=np.zeros_like(a), where=a_sd > 1e-8)
    out = {}
    for name, f in features.items():
        f = f - f.mean()
        sd = f.std()
        out[name] = (a * (f / sd)[:, None]).mean(0) if sd > 1e-8 else np.zeros(acts.shape[1])
    return out


def tracked_unit(acts: np.ndarray, pieces: list[str], threshold: float = TRACK_THRESHOLD) -> dict:
    """The unit that follows a feature of the text best: {"unit", "feature", "label", "r",
    "found"} (``found`` when |r| >= threshold), and the best unit for every feature
    ({"best": {feature: [unit, r]}}), so a view can say how close the others came."""
    rs = correlations(np.asarray(acts, dtype=np.float64), text_features(pieces))
    best = {name: (int(np.abs(r).argmax()), float(r[np.abs(r).argmax()])) for name, r in rs.items()}
    name, (unit, r) = max(best.items(), key=lambda kv: abs(kv[1][1]))
    return {"unit": unit, "feature": name, "label": FEATURES[name], "r": round(r, 3),
            "found": abs(r) >= threshold, "threshold": threshold,
            "best": {k: [u, round(v, 3)] for k, (u, v) in best.items()}}
