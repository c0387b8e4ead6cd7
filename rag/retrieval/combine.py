"""One query's runs fused into one ranking, as a :class:`FusionConfig` says.

:func:`fuse` fuses one query's runs: lists of Hits (what retrievers return), or plain
``{id: score}`` runs as ranx takes them (what evaluation fuses: documents ranked by their best
chunk). A fusion is described by a :class:`FusionConfig`: a method of :mod:`rag.retrieval.fusion`
(``rrf``, ``combsum-zscore``, ``mixture``, ...), where each encoder's normalisation statistics
come from (``stats``), per-encoder weights, and how a chunk missing from one encoder's list is
credited. Names select a config: a method name (``"rrf"``), optionally with a statistics source
(``"combsum-zscore@background"``), or ``"default"``.

Statistics sources, for the methods that normalise scores:

- ``candidates``: each query's retrieved candidates of that encoder (the usual reading of
  min-max / z-score fusion, and of Mixture-Embedding RAG: Chen, Zhao & Chen, "Each to Their Own:
  Exploring the Optimal Embedding in RAG", arXiv:2507.17442, 2025).
- ``background``: the same candidates without the best ``skip`` of them. The few top hits are
  where the relevant documents are; they inflate the spread of the candidates in a
  query-dependent way, while the rest estimate the distribution of non-relevant scores (score
  distribution models: Manmatha, Rath & Feng, "Modeling score distributions for combining the
  outputs of search engines", SIGIR 2001). A z-score against that background says how far a hit
  stands out of the noise, as corpus-level statistics do, but BM25's mass of zero scores (every
  document without a query term) does not enter it.
- ``calibration``: one fixed :class:`~rag.retrieval.normalize.ScoreStats` per encoder, from a
  calibration sample of queries (:func:`rag.retrieval.calibration.calibrate`; pseudo-queries drawn
  from the corpus need no judgements). Every query then shares one scale per encoder.
- ``corpus``: each query's scores over the whole corpus. Vector stores do not expose those, so
  only evaluation offers it, searching its exact stores to their full depth
  (:func:`rag.eval.systems.corpus_stats`), through ``corpus_stats``.

The default (:data:`DEFAULT_FUSION`), chosen from measurements on SciFact (train for choosing,
test for reporting), Climate-FEVER and HotpotQA with MiniLM + BM25 + WordLlama (BENCHMARKS.md,
"Multi-embedder fusion"): CombSUM of z-scores (Montague & Aslam, CIKM 2001) against each
encoder's background statistics (``skip=5``), a chunk missing from a list credited with that
list's lowest z-score (it ranks at or below the cut-off there), prior weights
:data:`PRIOR_WEIGHTS` per registered encoder, and a lexical list that ran out of matching
chunks before its depth weighted up by how few it found (:data:`RARE_WEIGHT`, see
:func:`fuse`). Why:

- z-scores matched or beat min-max and dbsf (a chunk missing from a list at that list's minimum)
  on every set; RRF (LangChain's EnsembleRetriever) throws the scores away and fell below BM25
  alone on SciFact.
- Statistics over the whole corpus were best on SciFact (0.725 vs 0.712 for candidates, equal
  weights) but worst on Climate-FEVER (0.414 vs 0.440): there a query's corpus is mostly BM25
  zeros, BM25's z-scores explode and BM25, the weaker model there, dominates. Candidate-based
  statistics are robust on every set; the background variant ties them within noise (+0.1
  points on SciFact train, where it was chosen) and keeps BM25's zeros out by construction.
- Static word embeddings (WordLlama) are the weakest retriever in every set; equal weights let
  their noise into the top ranks. Weight grids on SciFact *train* put WordLlama at 0.25-0.5 of
  MiniLM's weight in every normalisation tried; half weight, applied unchanged to the other
  sets, gained 0.3-1.9 points on all of them. Unregistered encoders get weight 1.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, overload

from rag.retrieval.fusion import Fused, HitRuns, PlainRuns, Run, Runs, is_plain
from rag.retrieval.normalize import ScoreStats, stats_from_scores
from rag.types import Hit

if TYPE_CHECKING:
    from rag.retrieval.calibration import Calibration

StatsSource = Literal["candidates", "background", "calibration", "corpus"]
STATS_SOURCES: tuple[str, ...] = ("candidates", "background", "calibration", "corpus")
# Prior weights of registered encoders under the default fusion (see the module docstring).
PRIOR_WEIGHTS: dict[str, float] = {"wordllama": 0.5}
# Weight of an exhausted lexical list's rarity under the default fusion (see fuse()).
RARE_WEIGHT = 4.0
# Per-query whole-corpus statistics: (encoder name, query index in the batch) -> ScoreStats.
CorpusStats = Callable[[str, int], ScoreStats]


@dataclass(frozen=True)
class FusionConfig:
    """How to fuse: ``method`` is a key of :data:`rag.retrieval.fusion.FUSIONS`.

    ``weights`` maps encoder (run) names to weights; names that are not among the runs are
    ignored here (so one config serves indexes with different encoders), unlike in the pure
    functions. ``missing`` and ``k_rrf`` are ``None`` for the method's own default.
    """

    method: str
    stats: StatsSource = "candidates"
    weights: Mapping[str, float] = field(default_factory=dict)
    missing: Literal["zero", "min"] | None = None
    k_rrf: float | None = None
    skip: int = 5
    # an exhausted lexical list of n of ``depth`` chunks weighs 1 + rare_weight * ln(depth / n)
    rare_weight: float = 0.0

    def __post_init__(self) -> None:
        from rag.retrieval.fusion import get_fusion

        params = inspect.signature(get_fusion(self.method)).parameters
        if self.stats not in STATS_SOURCES:
            raise ValueError(f"unknown statistics source {self.stats!r}; choose {STATS_SOURCES}")
        if self.stats != "candidates" and "stats" not in params:
            raise ValueError(f"fusion {self.method!r} takes no statistics (stats={self.stats!r})")
        if self.weights and "weights" not in params:
            raise ValueError(f"fusion {self.method!r} takes no weights")
        if self.missing is not None and "missing" not in params:
            raise ValueError(f"fusion {self.method!r} takes no 'missing' option")
        if self.k_rrf is not None and "k_rrf" not in params:
            raise ValueError(f"fusion {self.method!r} takes no k_rrf")
        if self.skip < 0:
            raise ValueError(f"skip must be >= 0, got {self.skip}")
        if self.rare_weight < 0:
            raise ValueError(f"rare_weight must be >= 0, got {self.rare_weight}")
        if self.rare_weight and "weights" not in params:
            raise ValueError(f"fusion {self.method!r} takes no weights (rare_weight)")

    @property
    def label(self) -> str:
        """``method`` or ``method@stats``: the name that :func:`parse_fusion` reads back (the
        weights and options are not part of it)."""
        return self.method if self.stats == "candidates" else f"{self.method}@{self.stats}"

    def options(
        self, names: Sequence[str], stats: Mapping[str, ScoreStats] | None
    ) -> dict[str, Any]:
        """Keyword arguments for the fusion function over runs called ``names``."""
        options: dict[str, Any] = {}
        weights = {n: float(w) for n, w in self.weights.items() if n in names}
        if weights:
            options["weights"] = weights
        if self.missing is not None:
            options["missing"] = self.missing
        if self.k_rrf is not None:
            options["k_rrf"] = self.k_rrf
        if stats:
            options["stats"] = dict(stats)
        return options

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "stats": self.stats,
            "weights": dict(self.weights),
            "missing": self.missing,
            "k_rrf": self.k_rrf,
            "skip": self.skip,
            "rare_weight": self.rare_weight,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FusionConfig:
        return cls(**{**data, "weights": dict(data.get("weights") or {})})


DEFAULT_FUSION = FusionConfig(
    method="combsum-zscore",
    stats="background",
    weights=dict(PRIOR_WEIGHTS),
    missing="min",
    skip=5,
    rare_weight=RARE_WEIGHT,
)


def parse_fusion(name: str | FusionConfig) -> FusionConfig:
    """``"default"``, ``"METHOD"`` or ``"METHOD@STATS"`` as a config (a config passes through);
    unknown names raise a ValueError naming the valid choices. ``METHOD`` alone keeps the pure
    function's defaults; with outside statistics, missing chunks get ``missing="min"``."""
    if isinstance(name, FusionConfig):
        return name
    if name == "default":
        return DEFAULT_FUSION
    method, _, stats = name.partition("@")
    if not stats or stats == "candidates":
        return FusionConfig(method=method)
    # Under outside statistics a z-score of 0 is the outside mean, which can beat a list's own
    # hits: a chunk missing from a list is credited with that list's lowest score instead.
    accepts_missing = "missing" in inspect.signature(_fusion(method)).parameters
    return FusionConfig(
        method=method,
        stats=stats,  # type: ignore[arg-type]
        missing="min" if accepts_missing else None,
    )


def _fusion(method: str) -> Callable[..., Fused]:
    from rag.retrieval.fusion import get_fusion

    return get_fusion(method)


def resolve_fusion_name(name: str) -> str:
    """The label of the fusion ``name`` selects (``"default"`` -> the default's label)."""
    return parse_fusion(name).label


def background_stats(ranking: Sequence[Hit] | Run, skip: int) -> ScoreStats | None:
    """Statistics of a run's scores (Hits or a plain ``{id: score}`` run, best first) without its
    best ``skip`` entries (``None`` -- use the candidates themselves -- when fewer than two
    would remain, or when they are all equal: a small index whose other chunks all score 0
    has no spread to measure against, and a z-score of 0 for every hit would erase the list)."""
    scores = list(ranking.values()) if isinstance(ranking, Mapping) else [h.score for h in ranking]
    if len(scores) - skip < 2:
        return None
    stats = stats_from_scores(scores[skip:])
    if stats.max - stats.min <= 1e-12 * max(1.0, abs(stats.max)):
        return None
    return stats


def exhausted_stats(ranking: Sequence[Hit] | Run, depth: int, skip: int) -> ScoreStats | None:
    """Background statistics of a lexical run that listed fewer than ``depth`` chunks: its
    scores after the best ``skip``, plus a 0 for every chunk it did not list up to ``depth``;
    when that background has no spread (it held one or a few matches), the whole padded run."""
    scores = list(ranking.values()) if isinstance(ranking, Mapping) else [h.score for h in ranking]
    padded = scores + [0.0] * (depth - len(scores))
    for values in (padded[skip:], padded):
        if len(values) < 2:
            continue
        stats = stats_from_scores(values)
        if stats.max - stats.min > 1e-12 * max(1.0, abs(stats.max)):
            return stats
    return None


@overload
def fuse(
    runs: PlainRuns,
    config: FusionConfig | str = ...,
    *,
    k: int | None = ...,
    calibration: Calibration | Mapping[str, ScoreStats] | None = ...,
    corpus_stats: Callable[[str], ScoreStats] | None = ...,
    source: str | None = ...,
    depth: int | None = ...,
    lexical: Collection[str] = ...,
) -> dict[str, float]: ...


@overload
def fuse(
    runs: HitRuns,
    config: FusionConfig | str = ...,
    *,
    k: int | None = ...,
    calibration: Calibration | Mapping[str, ScoreStats] | None = ...,
    corpus_stats: Callable[[str], ScoreStats] | None = ...,
    source: str | None = ...,
    depth: int | None = ...,
    lexical: Collection[str] = ...,
) -> list[Hit]: ...


def fuse(
    runs: Runs,
    config: FusionConfig | str = "default",
    *,
    k: int | None = None,
    calibration: Calibration | Mapping[str, ScoreStats] | None = None,
    corpus_stats: Callable[[str], ScoreStats] | None = None,
    source: str | None = None,
    depth: int | None = None,
    lexical: Collection[str] = (),
) -> Fused:
    """Fuse one query's runs as ``config`` says: ``{name: [Hit, ...]}`` gives fused Hits,
    plain ``{name: {id: score}}`` runs (each best first) a plain fused run ``{id: score}``,
    best first (the same scores and order; see :mod:`rag.retrieval.fusion`).

    ``calibration`` supplies the statistics of ``stats="calibration"``; ``corpus_stats(name)``
    those of ``stats="corpus"`` for this query. Fused hits are named ``source`` (default
    ``"fusion:" + config.label``) and keep every encoder's score and rank in ``components``.

    ``depth`` is how many hits each run was asked for and ``lexical`` names the runs whose
    unlisted chunks all score 0 (BM25 lists only chunks holding a query term). Under
    background statistics such a run shorter than ``depth`` is exhausted: its background is
    its tail plus those zeros (:func:`exhausted_stats`) and a chunk it lacks is credited with
    the zero, so the one chunk holding a rare word stands far out of its list, as it should,
    instead of being normalised against nothing. Its weight is also multiplied by
    ``1 + config.rare_weight * ln(depth / n)`` (``n`` the chunks it listed): that only ``n``
    chunks hold any query term is evidence in itself, as a rare term's IDF is, and without it
    a dense encoder's confident ordering of the other chunks reorders the few that hold the
    query's words (BENCHMARKS.md, "Rare-term matches in fusion"; the default's weight was
    chosen on queries over three other novels than the ones reported).
    """
    from rag.retrieval.fusion import get_fusion

    config = parse_fusion(config)
    names = list(runs)
    stats: dict[str, ScoreStats] | None = None
    floors: dict[str, float] = {}
    rarity: dict[str, float] = {}
    if config.stats == "background":
        stats = {}
        for name, ranking in runs.items():
            found = background_stats(ranking, config.skip)
            if name in lexical and depth is not None and 0 < len(ranking) < depth:
                found = exhausted_stats(ranking, depth, config.skip)
                floors[name] = 0.0
                rarity[name] = 1.0 + config.rare_weight * math.log(depth / len(ranking))
            if found is not None:
                stats[name] = found
    elif config.stats == "calibration":
        if calibration is None:
            raise ValueError("stats='calibration' needs a calibration (see calibrate())")
        table = getattr(calibration, "stats", calibration)
        missing = [n for n in names if n not in table]
        if missing:
            raise ValueError(f"the calibration has no statistics for {missing}")
        stats = {n: table[n] for n in names}
    elif config.stats == "corpus":
        if corpus_stats is None:
            raise ValueError("stats='corpus' needs every unit's score (evaluation only)")
        stats = {n: corpus_stats(n) for n in names}
    options = config.options(names, stats)
    if config.rare_weight and rarity:
        weights = dict(options.get("weights", {}))
        for name, factor in rarity.items():
            weights[name] = weights.get(name, 1.0) * factor
        options["weights"] = weights
    if floors and "floors" in inspect.signature(get_fusion(config.method)).parameters:
        options["floors"] = floors
    fused = get_fusion(config.method)(runs, k=k, **options)
    if is_plain(runs) or not fused:
        return fused
    label = source or f"fusion:{config.label}"
    hits: list[Hit] = fused  # type: ignore[assignment]  # Hit runs give Hits
    if hits[0].source != label:
        hits = [replace(h, source=label) for h in hits]
    return hits
