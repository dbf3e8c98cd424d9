"""A claim beside what a run measured, and the verdict; the claims table every report shows.

Every experiment computes its own verdicts from its metrics; when an input a verdict needs is
missing (one evaluation, a target neither network reached, no seed left), the verdict is
"cannot be judged" with the reason, never "does not agree".
"""

from __future__ import annotations

from dataclasses import dataclass

from bnlab.outputs.report_tables import md_table

CANNOT_JUDGE = "cannot be judged"
AGREEMENT = {
    "yes": "agrees",
    "no": "does not agree",
    "partly": "agrees only in part",
    CANNOT_JUDGE: CANNOT_JUDGE,
}


@dataclass(frozen=True)
class Verdict:
    name: str
    claim: str
    theirs: str
    ours: str
    agrees: str  # a key of AGREEMENT

    def __post_init__(self) -> None:
        if self.agrees not in AGREEMENT:
            raise ValueError(f"verdict: expected one of {list(AGREEMENT)}, got {self.agrees!r}")

    @property
    def judged(self) -> bool:
        return self.agrees != CANNOT_JUDGE

    def sentence(self) -> str:
        """ "name: what we measured; this agrees." (or "cannot be judged: why")."""
        if not self.judged:
            return f"{self.name}: {CANNOT_JUDGE} ({self.ours})."
        return f"{self.name}: {self.ours}; this {AGREEMENT[self.agrees]}."


def cannot_judge(name: str, claim: str, theirs: str, why: str) -> Verdict:
    return Verdict(name, claim, theirs, why, CANNOT_JUDGE)


def count_word(k: int, n: int) -> str:
    """ "yes" when all ``n`` checks hold, "no" when none does, else "partly"."""
    return "yes" if k == n else "no" if k == 0 else "partly"


def claims_section(verdicts: list[Verdict], notes: str = "") -> str:
    """The table of claims (theirs, ours, verdict), their sources, and ``notes`` (thresholds)."""
    if not verdicts:
        return "No claim can be compared with this run."
    rows = [[v.name, v.theirs, v.ours, AGREEMENT[v.agrees]] for v in verdicts]
    sources = "\n".join(f"- {v.name}: {v.claim}" for v in verdicts)
    parts = [md_table(["claim", "theirs", "ours", "verdict"], rows), "Sources:", sources]
    return "\n\n".join(parts + ([notes] if notes else []))
