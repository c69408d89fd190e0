"""The photo pipeline every front end calls (``colorize image``, the notebook, ``colorize bench``).

One photo's path: ``plan`` turns inputs into :class:`~colorizer_lib.jobs.FileJob` s (output names,
collisions, the finished-work check), ``run`` colorizes them on the simple or the pipelined path
(one policy, :func:`use_pipeline`) and reports each job as a :class:`PhotoEvent`; ``gpu`` holds the
pipelined path's overlapping stages.

    plan    plan_jobs (the CLI's naming), claim_job/numbered (the notebook's), sort_jobs, prepare_outputs,
            output_name, protected_inputs
    gpu     colorize_jobs_pipelined, NonFiniteTriage, PipelineStats
    run     run_jobs, use_pipeline, default_batch_size, PhotoEvent, RunReport, read_result
"""

from __future__ import annotations

from .gpu import NonFiniteTriage, PipelineStats, colorize_jobs_pipelined, weights_are_finite
from .plan import (SortedJobs, claim_job, numbered, output_name, plan_jobs, prepare_outputs,
                   protected_inputs, resolved_paths, sort_jobs)
from .run import (PIPELINE_MIN_IMAGES, PhotoEvent, RunReport, default_batch_size, read_result, run_jobs,
                  use_pipeline)

__all__ = [
    "NonFiniteTriage", "PipelineStats", "colorize_jobs_pipelined", "weights_are_finite",
    "SortedJobs", "claim_job", "numbered", "output_name", "plan_jobs", "prepare_outputs",
    "protected_inputs", "resolved_paths", "sort_jobs",
    "PIPELINE_MIN_IMAGES", "PhotoEvent", "RunReport", "default_batch_size", "read_result",
    "run_jobs", "use_pipeline",
]
