"""What the report writes: the one list of its tables and figures.

The report stage writes them, the Snakemake rule (rules/report.smk) declares them as outputs (and
`polyrefusal dvc-yaml` as DVC outs, metrics and plots), and the report's documents show them.
Files: ``results/scores/<table>``, ``results/report/plots/<figure>.png``; each figure's
caption for ``snakemake --report`` is ``report/<figure>.rst``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    name: str
    #: the section of ``snakemake --report`` it appears in
    category: str
    #: the caption in the report's own documents (report.md / report.html)
    caption: str


FIGURES: tuple[Figure, ...] = (
    Figure('asr_heatmap', '1. Safety',
           'ASR per model and evaluation language (share of harmful prompts whose answer is not a refusal).'),
    Figure('over_refusal', '1. Safety',
           'ASR against over-refusal (share of benign prompts refused) per model, over all languages, with 95% bootstrap CIs: a model that buys a low ASR by refusing everything sits on the right.'),
    Figure('asr_by_category_style', '1. Safety',
           'ASR per model and harm category (left) and attack style (right).'),
    Figure('group_disparity', '2. Disparity',
           "Defense rate (1 - ASR) per target group with 95% bootstrap CIs, one panel per model; dashed line: the model's mean over the groups. Groups in the base model's order (best defended first)."),
    Figure('language_disparity', '2. Disparity',
           "Defense rate per evaluation language with 95% bootstrap CIs, one panel per model; dashed line: the model's mean."),
    Figure('transfer_matrix', '3. Transfer',
           'Cross-lingual transfer: change in ASR against the base model per training configuration and evaluation language (blue = safer); single-language configurations in seriation order, with their clustering.'),
    Figure('language_consistency', '4. Language and capability',
           "Language consistency: share of answers in the prompt's language, per model and language."),
    Figure('capability', '4. Language and capability',
           'Capability: multiple-choice accuracy per model and language (lm-evaluation-harness); grey = language not covered by the capability set.'),
    Figure('judge_agreement', '5. Judges and training',
           "Agreement between judges (Cohen's kappa per language)."),
    Figure('training_curves', '5. Judges and training',
           'DPO training curves per configuration (train_log.csv).'),
)
FIGURE_CAPTIONS = {f.name: f.caption for f in FIGURES}

#: Score files under results/scores/ (every one written on every run; empty where not configured).
TABLES: tuple[str, ...] = (
    'asr.csv',
    'transfer_matrix.csv',
    'transfer_delta.csv',
    'metrics.json',
    'asr_ci.csv',
    'mean_asr.csv',
    'group_disparity.csv',
    'language_disparity.csv',
    'disparity_summary.csv',
    'over_refusal.csv',
    'language_consistency.csv',
    'transfer_single.csv',
    'transfer_order.json',
    'capability.csv',
    'fluency.csv',
    'judge_agreement.csv',
    'zero_shot.csv',
)
#: The headline figures (DVC metrics: dvc metrics show / diff).
METRICS = "metrics.json"

